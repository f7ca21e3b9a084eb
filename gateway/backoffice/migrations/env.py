"""Alembic's environment for the back office. gateway/backoffice/migrate.py runs it with an open
connection (`config.attributes["connection"]`); nothing here reads alembic.ini or a URL."""

from alembic import context

from gateway.backoffice.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=True)  # SQLite alters tables by copying them (batch mode)
with context.begin_transaction():
    context.run_migrations()
