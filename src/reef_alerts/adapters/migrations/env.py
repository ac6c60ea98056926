"""Alembic environment for the worker's own schema objects; run only through `adapters.schema`."""

from alembic import context

from reef_alerts.adapters.schema import VERSION_TABLE
from reef_alerts.adapters.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # Our own version table, so the web app's Alembic history is never touched.
    version_table=VERSION_TABLE,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
