"""A demo desk (`securecomm serve --demo`): Connecticut's TRUST Act at a New Haven County jail, one
user of each role with a fresh random password, and a few detainers received in the last days —
awaiting review, one of them past release eligibility, declined, and honored with a hold running."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from pathlib import Path
from typing import Any

from securecomm.desk.api import DetainerIntake
from securecomm.desk.audit import AuditKey
from securecomm.desk.db import database_url, open_database
from securecomm.desk.security import Role
from securecomm.desk.service import SYSTEM, Desk

JURISDICTION = "Connecticut (demo)"
POLICY = "ct/trust-act-2013"
PLACE = "09009"  # New Haven County


def is_loopback(host: str) -> bool:
    """Whether an address to listen on reaches only this machine (demo passwords are printed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _detainers(now: dt.datetime) -> list[dict[str, Any]]:
    def at(hours: float) -> str:
        return (now + dt.timedelta(hours=hours)).isoformat(timespec="seconds")

    felony = {"category": "burglary", "level": "felony", "felony_class": "B", "years_ago": 4}
    return [
        {"booking_ref": "NH-1001", "release_eligible_at": at(6)},
        {
            "booking_ref": "NH-1002",
            "release_eligible_at": at(-2),
            "current_charges": [{"category": "theft", "level": "misdemeanor"}],
        },
        {
            "booking_ref": "NH-1003",
            "public_safety_risk": False,
            "current_charges": [{"category": "traffic", "level": "infraction"}],
        },
        {"booking_ref": "NH-1004", "detainer_form": "I-247A", "convictions": [felony], "release_eligible_at": at(3)},
        {"booking_ref": "NH-1005", "issuing_office": "ERO Boston", "judicial_warrant": True},
    ]


def build_demo_desk(data_dir: Path) -> dict[str, str]:
    """Make the demo desk in an empty `data_dir` (its SQLite database and audit key); returns each
    demo user's name and password."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if any(data_dir.iterdir()):
        raise FileExistsError(f"{data_dir} is not empty: a demo desk is made in a new directory")
    key = AuditKey.generate()
    key.write(data_dir / "audit.key")
    database = open_database(database_url(data_dir, None))
    try:
        desk = Desk(database, audit_key=key)
        passwords = {role.value: secrets.token_urlsafe(12) for role in Role}
        desk.initialize(
            jurisdiction=JURISDICTION,
            policy_id=POLICY,
            admin_username=Role.SUPERVISOR.value,
            admin_password=passwords[Role.SUPERVISOR.value],
            place=PLACE,
            actor=SYSTEM,
        )
        for role, password in passwords.items():
            if role != Role.SUPERVISOR.value:
                desk.add_user(role, password, role, SYSTEM)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for number, facts in enumerate(_detainers(now), start=1):
            body = {
                "detainer_number": f"DEMO-{number:04d}",
                "received_at": (now - dt.timedelta(hours=30 - 4 * number)).isoformat(),
                "issuing_office": "ERO Hartford",
                **facts,
            }
            desk.intake(SYSTEM, DetainerIntake.model_validate(body).model_dump())
    finally:
        database.dispose()
    return passwords
