"""Alembic environment: runs on the connection that labledger.storage.schema hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from labledger.storage.tables import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    # `alembic -x url=...` from a developer's shell (e.g. to write a new revision)
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give a database: alembic -x url=sqlite:///file.sqlite3 ...")
    with create_engine(url).begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
