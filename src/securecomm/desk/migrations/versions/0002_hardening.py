"""Hardening (issue #13): temporary locks, disabled users and forced password changes; the
client address of a token; ICE's detainer number (unique with the booking); idempotency keys;
registered policy files.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite ≥ 3.35 adds and drops columns in place): no table is rebuilt, so the
    # tokens that refer to users stay valid.
    op.add_column("users", sa.Column("locked_until_utc", sa.DateTime(), nullable=True))
    op.add_column("users", sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("users", sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("users", sa.Column("password_changed_utc", sa.DateTime(), nullable=True))
    # A lock of the old kind (until a supervisor lifts it) becomes a disabled account: still shut
    # out, and still lifted only by a supervisor (`desk enable-user`).
    op.execute("UPDATE users SET disabled = locked")
    op.drop_column("users", "locked")
    op.add_column("tokens", sa.Column("client_addr", sa.String(64), nullable=True))
    op.add_column("detainers", sa.Column("detainer_number", sa.String(64), nullable=True))
    op.create_index("ux_detainers_booking_number", "detainers", ["booking_ref", "detainer_number"], unique=True)
    op.create_table(
        "idempotency_keys",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("detainer_id", BigId, nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_utc", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "registered_policies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("policy_id", sa.String(200), nullable=False, unique=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("recorded_utc", sa.DateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registered_policies")
    op.drop_table("idempotency_keys")
    op.drop_index("ux_detainers_booking_number", table_name="detainers")
    op.drop_column("detainers", "detainer_number")
    op.drop_column("tokens", "client_addr")
    op.add_column("users", sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE users SET locked = disabled")
    for column in ("password_changed_utc", "must_change_password", "disabled", "locked_until_utc"):
        op.drop_column("users", column)
