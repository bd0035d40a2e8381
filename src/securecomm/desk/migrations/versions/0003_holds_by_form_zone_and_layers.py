"""Holds by detainer form and time zone, layered policies (issue #12): the desk's place and time zone;
per detainer the zone of its times, the hold's deadline in UTC, the limit that set it, the deciding
layer and every layer's answer.

The new columns are nullable and left empty on the rows already there: a row's digest in the audit
chain leaves out these columns while they are null (audit.LATER_COLUMNS), so every row written before
this migration still matches the chain.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DETAINER_COLUMNS = (
    sa.Column("time_zone", sa.String(64), nullable=True),
    sa.Column("hold_until_utc", sa.DateTime(), nullable=True),
    sa.Column("hold_citation", sa.String(300), nullable=True),
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Column("layers", sa.Text(), nullable=True),
)


def upgrade() -> None:
    op.add_column("desk_settings", sa.Column("place", sa.String(200), nullable=True))
    op.add_column("desk_settings", sa.Column("time_zone", sa.String(64), nullable=True))
    for column in DETAINER_COLUMNS:
        op.add_column("detainers", column)


def downgrade() -> None:
    for column in reversed(DETAINER_COLUMNS):
        op.drop_column("detainers", column.name)
    op.drop_column("desk_settings", "time_zone")
    op.drop_column("desk_settings", "place")
