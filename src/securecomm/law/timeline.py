"""Which policies govern each county's jail (or police) on each day.

The historical timeline is built from the library: every enacted or reconstructed policy
applies to the counties of its places from its effective date until the next policy of
the same jurisdiction takes effect. ICE's request as written (`us/ice-request`) applies
everywhere. Policies of different jurisdictions are layers that all bind the jail at once — a
state's statute, a county's ordinance, a department's policy that narrows the statute it works
under (`Policy.layer`: `ct/doc-2014` on top of `ct/trust-act-2013`, never instead of it). How the
layers combine (`law.layers`): **decline beats review beats honor** — a detainer is honored only
if every layer in force honors it, since each limits when a jail *may* hold — and **the earliest
hold deadline wins**. The simulation's jail stage applies every entry in force on the day by
that rule.

A reform replaces the policies of a set of counties from a date with one policy — and, when that
policy narrows another jurisdiction's (a department's policy), the narrowed jurisdiction's
policies stay in force beneath it on their own dates.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from securecomm.core.places import resolve_place
from securecomm.law.loader import load_library, load_policy
from securecomm.law.model import Kind


@dataclass(frozen=True)
class TimelineEntry:
    policy_id: str
    counties: frozenset[str]
    start: dt.date
    end: dt.date | None = None  # exclusive; None = still in force

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


@dataclass(frozen=True)
class PolicyTimeline:
    kind: Kind
    entries: tuple[TimelineEntry, ...]

    @classmethod
    def historical(cls, kind: Kind = "detainer") -> PolicyTimeline:
        """Every policy of the library of this kind, on its real dates."""
        by_jurisdiction = defaultdict(list)
        for policy in load_library():
            if policy.kind == kind and policy.status != "proposed" and policy.effective is not None:
                by_jurisdiction[policy.jurisdiction.name].append(policy)
        entries = []
        for policies in by_jurisdiction.values():
            policies.sort(key=lambda policy: policy.effective)
            for current, following in zip(policies, [*policies[1:], None], strict=True):
                counties = frozenset(resolve_place(",".join(current.jurisdiction.places)))
                end = following.effective if following is not None else None
                entries.append(TimelineEntry(current.id, counties, current.effective, end))
        return cls(kind, tuple(sorted(entries, key=lambda entry: (entry.start, entry.policy_id))))

    def replace(self, counties: frozenset[str], policy_id: str, start: dt.date) -> PolicyTimeline:
        """From `start`, the given counties follow `policy_id` (on top of the policies it narrows)."""
        policy = load_policy(policy_id)
        if policy.kind != self.kind:
            raise ValueError(f"policy {policy_id} is a {policy.kind} policy, not a {self.kind} policy")
        entries = []
        for entry in self.entries:
            outside = entry.counties - counties
            inside = entry.counties & counties
            if outside:
                entries.append(TimelineEntry(entry.policy_id, outside, entry.start, entry.end))
            if inside and entry.start < start:
                end = start if entry.end is None else min(entry.end, start)
                entries.append(TimelineEntry(entry.policy_id, inside, entry.start, end))
        entries.append(TimelineEntry(policy_id, counties, start))
        entries += _narrowed_entries(policy.layer.narrows, self.kind, counties, start)
        return PolicyTimeline(self.kind, tuple(sorted(entries, key=lambda entry: (entry.start, entry.policy_id))))

    def in_force(self, county: str, day: dt.date) -> list[str]:
        return [entry.policy_id for entry in self.entries if county in entry.counties and entry.covers(day)]


def _narrowed_entries(
    jurisdiction: str | None, kind: Kind, counties: frozenset[str], start: dt.date
) -> list[TimelineEntry]:
    """The historical entries of a narrowed jurisdiction (and of those it narrows) on these counties from `start`."""
    entries: list[TimelineEntry] = []
    while jurisdiction is not None:
        policies = [policy for policy in load_library() if policy.jurisdiction.name == jurisdiction]
        history = PolicyTimeline.historical(kind).entries
        for entry in history:
            if entry.policy_id in {policy.id for policy in policies} and (entry.end is None or entry.end > start):
                inside = entry.counties & counties
                if inside:
                    entries.append(TimelineEntry(entry.policy_id, inside, max(entry.start, start), entry.end))
        jurisdiction = policies[0].layer.narrows if policies else None
    return entries


def parse_reform(spec: str) -> tuple[frozenset[str], str, dt.date | None]:
    """`PLACE=POLICY_ID[@DATE]` → (counties, policy id, start date or None)."""
    if "=" not in spec:
        raise ValueError(f"--policy {spec!r}: expected PLACE=POLICY_ID[@DATE], e.g. CT=ct/trust-act-2013@2012-01-01")
    place, rest = spec.split("=", 1)
    policy_id, _, date_text = rest.partition("@")
    start = parse_date(date_text, f"--policy {spec!r}") if date_text else None
    load_policy(policy_id.strip())
    return frozenset(resolve_place(place)), policy_id.strip(), start


def parse_date(text: str, what: str) -> dt.date:
    """The `@DATE` of a reform's spec (`what` names the spec in the error)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a date (YYYY-MM-DD)") from None
