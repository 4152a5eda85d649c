"""Small helpers for the hand-written SQL of the hot write path.

A POS sale spends more time in the ORM building its statements than in PostgreSQL running
them (bench/README.md), so the statements a sale runs are written by hand, with fixed text and
placeholders only. They must still run on SQLite (the demo), so the helpers here keep the two
databases' differences in one place: row locks, datetime parameters, and converting what a raw
cursor returns into the Python values Django would give.

Only constant table and column names are ever interpolated; every value is a placeholder.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import TypeVar

from django.db import connection
from django.db.models import Field, Model

from core.bulk import ARRAY_FROM, in_list  # noqa: F401 - in_list: the hot path's lists too

M = TypeVar("M", bound=Model)


def pairs_in(
    columns: tuple[str, str], pairs: Sequence[tuple], types: tuple[str, str]
) -> tuple[str, list]:
    """``(a, b) IN (VALUES (%s, %s), …)`` — ``IN (SELECT * FROM unnest(%s::type[], %s::type[]))``
    for ``ARRAY_FROM`` pairs or more on PostgreSQL (one array per column); none matches
    nothing."""
    if not pairs:
        return "1 = 0", []
    head = f"({columns[0]}, {columns[1]}) IN "
    if len(pairs) >= ARRAY_FROM and connection.vendor == "postgresql":
        firsts, seconds = (list(column) for column in zip(*pairs, strict=True))
        return (
            head + f"(SELECT * FROM unnest(%s::{types[0]}[], %s::{types[1]}[]))",
            [firsts, seconds],
        )
    return head + f"(VALUES {values_clause(len(pairs), 2)})", [v for pair in pairs for v in pair]


def values_clause(rows: int, columns: int) -> str:
    """``(%s, %s), (%s, %s)`` for a multi-row VALUES list."""
    row = "(" + ", ".join(["%s"] * columns) + ")"
    return ", ".join([row] * rows)


def db_datetime(value: datetime.datetime | None) -> datetime.datetime | str | None:
    """A datetime parameter as the database wants it (SQLite: naive UTC text, as Django writes
    it; a raw aware datetime would be stored with an offset and compare wrongly)."""
    return connection.ops.adapt_datetimefield_value(value)


def for_update(alias: str) -> str:
    """`` FOR UPDATE OF alias`` where the database has row locks (not SQLite)."""
    return f" FOR UPDATE OF {alias}" if connection.features.has_select_for_update_of else ""


def columns(fields: Sequence[Field], alias: str) -> str:
    return ", ".join(f"{alias}.{field.column}" for field in fields)


def instances(
    model: type[M], fields: Sequence[Field], rows: Iterable[Sequence], start: int = 0
) -> list[M]:
    """Model instances from raw rows whose columns ``start:start+len(fields)`` are ``fields``
    (all of the model's concrete fields, in order), converted as the ORM would convert them."""
    converters = []
    for index, field in enumerate(fields):
        col = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((index, found, col))
    stop = start + len(fields)
    names = [field.attname for field in fields]
    out = []
    for row in rows:
        values = list(row[start:stop])
        for index, found, col in converters:
            for convert in found:
                values[index] = convert(values[index], col, connection)
        out.append(model.from_db(connection.alias, names, values))
    return out


def insert(
    table: str, column_names: Sequence[str], rows: Sequence[Sequence], suffix: str = ""
) -> None:
    """``INSERT INTO table (columns) VALUES …`` (and ``suffix``, e.g. an ``ON CONFLICT``
    clause) for many rows: one statement on PostgreSQL, chunks within SQLite's limit on
    parameters elsewhere."""
    if not rows:
        return
    limit = connection.features.max_query_params
    per_chunk = max(1, limit // len(column_names)) if limit else len(rows)
    head = f"INSERT INTO {table} ({', '.join(column_names)}) VALUES "
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start : start + per_chunk]
            cursor.execute(
                head + values_clause(len(chunk), len(column_names)) + suffix,
                [value for row in chunk for value in row],
            )
