"""The database itself keeps the ledger append-only.

A trigger refuses every UPDATE and every DELETE of ``inventory_stockledger`` rows, on PostgreSQL
and SQLite alike, so no code path (ORM, raw SQL, admin, a shell) can rewrite history. The one
exception is deleting a whole organisation: while ``inventory_ledgerpurge`` names it (inside
``org_purge``'s transaction), that organisation's rows may be deleted. TRUNCATE is not a row
operation and stays possible, so test databases can be flushed.

SQLite rebuilds a table on most schema changes and drops its triggers; ``install`` is therefore
idempotent and runs after every ``migrate`` (post_migrate) as well as in the migration.
"""

from __future__ import annotations

TABLE = "inventory_stockledger"
MESSAGE = "inventory_stockledger is append-only: post a reversing entry instead"

POSTGRES = f"""
CREATE OR REPLACE FUNCTION inventory_ledger_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM inventory_ledgerpurge WHERE org_id = OLD.org_id
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS inventory_ledger_append_only ON {TABLE};
CREATE TRIGGER inventory_ledger_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION inventory_ledger_guard();
"""

SQLITE = [
    f"""CREATE TRIGGER IF NOT EXISTS inventory_ledger_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
    f"""CREATE TRIGGER IF NOT EXISTS inventory_ledger_no_delete BEFORE DELETE ON {TABLE}
    WHEN NOT EXISTS (SELECT 1 FROM inventory_ledgerpurge WHERE org_id = OLD.org_id)
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
]


def install(connection) -> None:
    """(Re)create the guard on ``connection``; a no-op when it is already there."""
    if TABLE not in connection.introspection.table_names():
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(POSTGRES)
        elif connection.vendor == "sqlite":
            for statement in SQLITE:
                cursor.execute(statement)


def install_after_migrate(sender, using="default", **kwargs) -> None:
    from django.db import connections

    install(connections[using])
