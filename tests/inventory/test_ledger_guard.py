"""The database keeps the ledger append-only (inventory.db_triggers), on PostgreSQL and SQLite.

PostgreSQL: every way of changing or removing a row (ORM instance, QuerySet, raw SQL) is refused
with SQLSTATE 23000 (``integrity_constraint_violation``, which Django raises as IntegrityError)
and leaves the row as it was; only a ``LedgerPurge`` for the row's organisation lets a DELETE
through. SQLite: a real ``migrate`` into a temporary file installs the triggers, they refuse
UPDATE and DELETE, and a table rebuild (which drops them) is repaired by the next ``migrate``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.utils import ConnectionHandler

from inventory.models import LedgerPurge, StockLedger
from inventory.stock import triggers as db_triggers
from tests.factories import ProductFactory, StoreFactory
from tests.stock_helpers import receive

TRIGGERS = {"inventory_ledger_no_update", "inventory_ledger_no_delete"}


class Rollback(Exception):
    """Raised to undo a savepoint on purpose."""


@pytest.fixture
def product(org):
    return ProductFactory(org=org, sku="GUARD")


@pytest.fixture
def rows(org, store, product):
    receive(org, store, product, 5, lot="L1", cost=2)
    receive(org, store, product, 3, lot="L2", cost=2)
    return list(StockLedger.objects.filter(org=org).order_by("id"))


def ledger_snapshot() -> list[dict]:
    return list(StockLedger.unscoped.order_by("id").values())


def refuse(operation) -> None:
    """``operation`` must fail in the database; a savepoint keeps the test transaction usable."""
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        operation()


def save_changed(row):
    row.qty_delta = Decimal("99")
    row.save()


def raw(sql: str, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


OPERATIONS = {
    "orm save": lambda row: save_changed(row),
    "orm delete": lambda row: row.delete(),
    "queryset update": lambda row: StockLedger.objects.filter(pk=row.pk).update(reason="edited"),
    "queryset delete": lambda row: StockLedger.objects.filter(pk=row.pk).delete(),
    "raw update": lambda row: raw(
        "UPDATE inventory_stockledger SET qty_delta = 0 WHERE id = %s", [row.pk]
    ),
    "raw delete": lambda row: raw("DELETE FROM inventory_stockledger WHERE id = %s", [row.pk]),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_ledger_change_is_refused_by_postgresql_and_changes_nothing(operation, rows):
    before = ledger_snapshot()
    refuse(lambda: OPERATIONS[operation](rows[0]))
    assert ledger_snapshot() == before


def test_ledger_refusal_is_sqlstate_integrity_constraint_violation(rows):
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        raw("UPDATE inventory_stockledger SET reason = 'x' WHERE id = %s", [rows[0].pk])
    assert error.value.__cause__.sqlstate == "23000"


def test_ledger_bulk_update_of_many_rows_is_refused(rows):
    before = ledger_snapshot()
    refuse(lambda: StockLedger.objects.all().update(reason="rewritten"))
    for row in rows:
        row.reason = "rewritten"
    refuse(lambda: StockLedger.objects.bulk_update(rows, ["reason"]))
    assert ledger_snapshot() == before


def test_ledger_purge_allows_deleting_only_that_orgs_rows(org, other_org, rows):
    their_store = StoreFactory(org=other_org, code="R1")
    receive(other_org, their_store, ProductFactory(org=other_org, sku="THEIRS"), 4)
    theirs_before = list(StockLedger.unscoped.filter(org=other_org).values())
    LedgerPurge.objects.create(org_id=org.pk)

    with transaction.atomic():
        deleted, _ = StockLedger.unscoped.filter(org=org).delete()
    assert deleted == len(rows)
    # the purge names one organisation: the other's rows stay protected, and UPDATE never passes
    refuse(lambda: StockLedger.unscoped.filter(org=other_org).delete())
    refuse(lambda: StockLedger.unscoped.filter(org=other_org).update(reason="x"))
    assert list(StockLedger.unscoped.filter(org=other_org).values()) == theirs_before


def test_ledger_purge_does_not_allow_updates_of_the_purged_org(org, rows):
    LedgerPurge.objects.create(org_id=org.pk)
    refuse(lambda: StockLedger.unscoped.filter(org=org).update(reason="x"))


def test_ledger_truncate_stays_possible_for_test_flushes(rows):
    with pytest.raises(Rollback), transaction.atomic():
        # the inserts above left deferred foreign-key checks pending: run them first
        raw("SET CONSTRAINTS ALL IMMEDIATE", [])
        raw("TRUNCATE inventory_stockledger", [])
        assert not StockLedger.unscoped.exists()
        raise Rollback
    raw("SET CONSTRAINTS ALL DEFERRED", [])
    assert StockLedger.unscoped.count() == len(rows)


def test_ledger_guard_install_is_idempotent(rows):
    db_triggers.install(connection)
    db_triggers.install(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid ="
            " 'inventory_stockledger'::regclass AND NOT tgisinternal"
        )
        assert cursor.fetchone()[0] == 1
    refuse(lambda: StockLedger.objects.filter(pk=rows[0].pk).delete())


def test_ledger_inserts_still_work(org, store, product, rows):
    receive(org, store, product, 1, lot="L3")
    assert StockLedger.objects.count() == len(rows) + 1


# --- SQLite ---------------------------------------------------------------------------------


def sqlite_manage(path: Path, *args: str, script: str | None = None) -> subprocess.CompletedProcess:
    """Run ``manage.py`` against a SQLite file: base settings with no DATABASE_URL."""
    env = {
        **os.environ,
        "DATABASE_URL": "",
        "SQLITE_PATH": str(path),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": "",
    }
    command = [sys.executable, str(settings.BASE_DIR / "manage.py"), *args]
    if script is not None:
        command += ["-c", script]
    return subprocess.run(
        command,
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


_migrated_template: list[Path] = []


def migrated_sqlite_copy(directory: Path) -> Path:
    """A fresh copy of a SQLite database migrated once per test process (migrate takes seconds)."""
    if not _migrated_template:
        directory_ = tempfile.mkdtemp(prefix="ledger-guard-")
        atexit.register(shutil.rmtree, directory_, ignore_errors=True)
        template = Path(directory_) / "migrated.sqlite3"
        result = sqlite_manage(template, "migrate", "--no-input", "-v0")
        assert result.returncode == 0, result.stderr
        _migrated_template.append(template)
    path = directory / "db.sqlite3"
    shutil.copy(_migrated_template[0], path)
    return path


@pytest.fixture
def sqlite_db(tmp_path) -> Path:
    return migrated_sqlite_copy(tmp_path)


def sqlite_triggers(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                " AND tbl_name = 'inventory_stockledger'"
            )
        }


def insert_ledger_row(db: sqlite3.Connection, org_id: int = 1) -> int:
    """A minimal row; foreign keys are off, so the referenced rows need not exist."""
    db.execute("PRAGMA foreign_keys = OFF")
    cursor = db.execute(
        "INSERT INTO inventory_stockledger (org_id, store_id, location_id, product_id, batch_id,"
        " qty_delta, ref_type, ref_id, ref_line, source, source_ref, reason, unit_cost,"
        " occurred_at, created_at) VALUES (?, 1, 1, 1, 1, '5', 'RECEIPT', 1, 0, '', '', '',"
        " '1', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        (org_id,),
    )
    db.commit()
    return cursor.lastrowid


def test_sqlite_migrate_installs_the_guard(sqlite_db):
    assert sqlite_triggers(sqlite_db) == TRIGGERS


def test_sqlite_guard_refuses_update_and_delete(sqlite_db):
    with sqlite3.connect(sqlite_db) as db:
        row = insert_ledger_row(db)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE inventory_stockledger SET qty_delta = '0' WHERE id = ?", (row,))
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM inventory_stockledger WHERE id = ?", (row,))
        db.rollback()
        assert db.execute("SELECT qty_delta FROM inventory_stockledger").fetchall() == [(5,)]


def test_sqlite_purge_allows_deleting_only_that_orgs_rows(sqlite_db):
    with sqlite3.connect(sqlite_db) as db:
        ours, theirs = insert_ledger_row(db, org_id=1), insert_ledger_row(db, org_id=2)
        db.execute("INSERT INTO inventory_ledgerpurge (org_id) VALUES (1)")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE inventory_stockledger SET reason = 'x' WHERE id = ?", (ours,))
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM inventory_stockledger WHERE id = ?", (theirs,))
        db.execute("DELETE FROM inventory_stockledger WHERE id = ?", (ours,))
        db.commit()
        assert db.execute("SELECT id FROM inventory_stockledger").fetchall() == [(theirs,)]


def test_sqlite_table_rebuild_drops_the_guard_and_migrate_puts_it_back(
    sqlite_db, django_db_blocker
):
    # given: a schema change that makes Django rebuild the ledger table (SQLite cannot ALTER a
    # column in place), as a future migration would
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(sqlite_db)}}
    )
    sqlite = handler["default"]
    old = StockLedger._meta.get_field("reason")
    new = models.CharField(max_length=300, blank=True, default="")
    new.set_attributes_from_name("reason")
    new.model = StockLedger
    try:
        with django_db_blocker.unblock():
            with sqlite.schema_editor() as editor:
                editor.alter_field(StockLedger, old, new)
            # then: the rebuild dropped the triggers...
            assert sqlite_triggers(sqlite_db) == set()
            # ...and install() puts them back, twice without harm
            db_triggers.install(sqlite)
            db_triggers.install(sqlite)
            assert sqlite_triggers(sqlite_db) == TRIGGERS
            with sqlite.cursor() as cursor:
                cursor.execute("DROP TRIGGER inventory_ledger_no_update")
                cursor.execute("DROP TRIGGER inventory_ledger_no_delete")
    finally:
        handler.close_all()
    # when: migrate runs again (nothing to apply: post_migrate still re-installs the guard)
    result = sqlite_manage(sqlite_db, "migrate", "--no-input", "-v0")
    assert result.returncode == 0, result.stderr
    assert sqlite_triggers(sqlite_db) == TRIGGERS
    with sqlite3.connect(sqlite_db) as db:
        row = insert_ledger_row(db)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM inventory_stockledger WHERE id = ?", (row,))
