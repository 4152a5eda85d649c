"""One lock order, in one place (``inventory.locks.LOCK_ORDER``), and the code follows it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from inventory.locks import LOCK_ORDER, lock_helpers

ROOT = Path(__file__).resolve().parents[2]
APPS = ("core", "inventory", "counts", "demo")
LOCKING = re.compile(r"select_for_update|FOR UPDATE")


def test_the_lock_order_is_one_ranked_table():
    ranks = [rank for rank, _, _ in LOCK_ORDER]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    rows = [row for _, row, _ in LOCK_ORDER]
    assert len(set(rows)) == len(rows)


def test_every_lock_helper_locks_a_row_of_the_table():
    for module in ("inventory.locks", "inventory.stock.locks", "counts.locks"):
        importlib.import_module(module)
    helpers = lock_helpers()
    assert {"inventory.stock.locks.lock_quants", "counts.locks.lock_session"} <= set(helpers)
    rows = {row for _, row, _ in LOCK_ORDER}
    assert {helper: row for helper, row in helpers.items() if row not in rows} == {}


def test_only_the_locks_modules_lock_rows():
    """A lock taken elsewhere would not be in the table, and its order not checked."""
    offenders = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if path.name == "locks.py" or "migrations" in path.parts:
                continue
            text = path.read_text()
            if path.name == "sql.py":  # core.sql spells the clause for the locks modules
                continue
            if LOCKING.search(text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
