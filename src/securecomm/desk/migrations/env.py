"""Alembic environment for the desk: migrations run programmatically on the connection that
`securecomm.desk.db.migrate` passes in (no alembic.ini, no logging configuration)."""

from __future__ import annotations

from alembic import context

from securecomm.desk.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the desk's migrations through securecomm.desk.db.migrate(engine)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
