"""Alembic environment: runs on the connection dpa.db.migrate hands over."""

from alembic import context

from dpa import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from sqlmodel import SQLModel

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
