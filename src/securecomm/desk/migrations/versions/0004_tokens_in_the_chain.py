"""Tokens in the audit chain (issue #13): from now on each login's entry carries its token's row digest
and each logout, revocation or clean-up names the token rows it deleted, so `verify-audit` checks the
tokens table like the others. The tokens issued before were in no entry: they are revoked here (every
user logs in again once after the upgrade), so that no row of the table is one the chain never saw.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM tokens")


def downgrade() -> None:
    pass  # nothing to undo: the tokens revoked stay revoked
