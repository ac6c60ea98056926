"""Alembic environment for the worker's own schema objects; run only through `adapters.schema`."""

from alembic import context

from reef_alerts.adapters.schema import VERSION_TABLE
from reef_alerts.adapters.tables import worker_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=worker_metadata,
    # Our own version table, so the web app's Alembic history is never touched.
    version_table=VERSION_TABLE,
    transactional_ddl=True,
    # A transaction per revision, so a failed one leaves the ones before it applied. (The history
    # index, built CONCURRENTLY, is made by adapters.schema outside Alembic and any transaction.)
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
