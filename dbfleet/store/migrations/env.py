"""Alembic environment for dbfleet's store: runs on the connection `migrate.py` hands over.

There is no alembic.ini and no URL here on purpose: dbfleet.store.migrate opens the
connection with dbfleet's own engine settings (SQLite pragmas, MySQL charset) and holds
the transaction and the migration lock around this script.
"""

from alembic import context

from dbfleet.store.models import Base

connection = context.config.attributes.get('connection')
if connection is None:
    raise RuntimeError("dbfleet's migrations run through dbfleet.store.migrate "
                       "(or 'dbfleet store upgrade'), not the alembic command line")

context.configure(connection=connection, target_metadata=Base.metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
