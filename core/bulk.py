"""Statements over thousands of rows at once: a bulk decision, a full count's finalisation.

Django's client-side binding (psycopg's ``ClientCursor``) splits a statement's text at every
placeholder and quotes every value in Python, and the ORM resolves every ``__in`` value on its
own. For a few rows that is nothing; for 5,000 it costs more than PostgreSQL takes to run the
statement. So from a size on:

* a list of values is sent as one array (``any_of``: ``= ANY(%s::bigint[])``);
* rows of values are sent as one JSON document (``json_rows`` and ``json_select``), read back
  by each column's type — exact for decimals and times;
* ``bulk_update_rows`` writes many rows in one UPDATE, sending a value shared by every row
  once;
* ``gc_paused`` keeps the cyclic garbage collector out of a step that builds tens of
  thousands of model instances.

Other databases (the SQLite demo) get the ordinary forms. Only table and column names taken
from the models are interpolated; every value is a parameter.
"""

from __future__ import annotations

import datetime
import gc
import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, Lookup

#: From this many values on, PostgreSQL gets a list as one array parameter (``= ANY``)
#: rather than a placeholder per value: the client-side binding splits the statement's text
#: at every placeholder and Django resolves every ``__in`` value on its own, which for a bulk
#: decision's 5,000 ids cost more than running the statement. A sale's few ids keep ``IN``.
ARRAY_FROM = 100


def in_list(column: str, values: Iterable, array_type: str = "bigint") -> tuple[str, list]:
    """``column IN (%s, …)`` and its parameters — ``column = ANY(%s::array_type[])`` for
    ``ARRAY_FROM`` values or more on PostgreSQL; an empty list matches nothing."""
    values = list(values)
    if not values:
        return "1 = 0", []
    if len(values) >= ARRAY_FROM and connection.vendor == "postgresql":
        return f"{column} = ANY(%s::{array_type}[])", [values]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", values


class AnyOf(Lookup):
    """``any_of("field", values)``: the ORM's ``field__in=values`` written by ``in_list`` —
    one array parameter on PostgreSQL from ``ARRAY_FROM`` values on. Used as a filter
    expression (``Model.objects.filter(any_of("pk", ids))``), so nothing is registered on
    Django's fields."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> list:
        return list(self.rhs)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple]:
        lhs, lhs_params = compiler.compile(self.lhs)
        field = self.lhs.output_field
        values = [field.get_db_prep_value(v, connection, prepared=False) for v in self.rhs]
        if not values:
            raise EmptyResultSet  # the ORM's way to match nothing (``in_list`` writes 1 = 0)
        condition, params = in_list(lhs, values, field.rel_db_type(connection))
        return condition, (*lhs_params, *params)


def any_of(field: str, values: Iterable) -> AnyOf:
    """A filter: ``field`` is one of ``values`` (see ``AnyOf``)."""
    return AnyOf(F(field), list(values))


# --- many rows as one parameter -----------------------------------------------------------------


def _exact_json(value: Any) -> str:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime.date):  # datetimes too: ISO 8601 keeps the offset
        return value.isoformat()
    raise TypeError(type(value).__name__)


def json_rows(rows: Iterable[Sequence]) -> str | None:
    """``rows`` as one JSON array of arrays — the parameter of ``json_select`` — or None when
    a value has no exact text form here (the caller sends it another way).

    Thousands of rows bound as one string cost the client a single ``json.dumps``; bound as
    one array per column, the client-side binding quotes every value in Python (a quarter of
    a second for a few arrays of 5,000), and as a ``VALUES`` list it splits the statement's
    text at every placeholder. Decimals and times travel as text and are read back by their
    column's type: exact."""
    try:
        return json.dumps(rows if isinstance(rows, list) else list(rows), default=_exact_json)
    except (TypeError, ValueError):
        return None


def cast_type(db_type: str) -> str:
    """The type to cast a parameter to for a column of ``db_type``: ``text`` for a
    ``varchar(n)``, whose explicit cast would cut an overlong value silently where the
    INSERT's or UPDATE's own assignment refuses it; the type itself otherwise."""
    return "text" if db_type.startswith("varchar") else db_type


def json_select(types: Sequence[str]) -> str:
    """``SELECT (e->>0)::type0, … FROM jsonb_array_elements(%s::jsonb) … ORDER BY n``: the
    rows of a ``json_rows`` parameter, each column read as its database type, in order."""
    columns = ", ".join(
        f"(e->>{index})::{cast_type(db_type)}" for index, db_type in enumerate(types)
    )
    return (
        f"SELECT {columns}"  # noqa: S608 - column casts from the models' types only
        " FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n"
    )


# --- many rows in one UPDATE ---------------------------------------------------------------------


def bulk_update_rows(model: Any, rows: Sequence, fields: Sequence[str]) -> None:
    """Write ``fields`` of ``rows`` (saved instances of ``model``) in one statement on
    PostgreSQL. A column holding one value in every row is sent once (``SET f = %s``: a bulk
    decision sets one status, person and time on thousands of rows); the other columns go
    with the ids as one JSON parameter (``json_rows``; as one array per column when a value
    has no exact JSON text, e.g. a JSON column's) — ``UPDATE t SET f = v.f … FROM (…) v WHERE
    t.id = v.id``. The statement stays short however many rows, and is a hash join where
    ``bulk_update``'s ``CASE WHEN id = … THEN …`` is tried branch by branch for every row
    (quadratic: 2 s of database and 2 s of Python for 500 discrepancies). Other databases
    (the SQLite demo) use ``bulk_update``."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, fields, batch_size=1000)
        return
    meta, quote = model._meta, connection.ops.quote_name
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    ids = [row.pk for row in rows]
    fixed: list[tuple[Any, Any]] = []
    varying: list[tuple[Any, list]] = []
    for column in (meta.get_field(name) for name in fields):
        raw = [getattr(row, column.attname) for row in rows]
        if all(value == raw[0] for value in raw):
            fixed.append((column, column.get_db_prep_save(raw[0], connection)))
        else:
            varying.append((column, [column.get_db_prep_save(v, connection) for v in raw]))
    assignments = [f"{quote(f.column)} = %s::{cast_type(f.db_type(connection))}" for f, _ in fixed]
    params: list = [value for _, value in fixed]
    if not varying:
        where = f"{pk} = ANY(%s::{meta.pk.rel_db_type(connection)}[])"
        statement = f"UPDATE {table} SET {', '.join(assignments)} WHERE {where}"  # noqa: S608
        params.append(ids)
    else:
        columns = [(meta.pk, ids), *varying]
        names = ", ".join(quote(f.column) for f, _ in columns)
        assignments += [f"{quote(f.column)} = v.{quote(f.column)}" for f, _ in varying]
        types = [str(f.rel_db_type(connection)) for f, _ in columns]
        payload = json_rows(zip(*(values for _, values in columns), strict=True))
        if payload is not None:  # every row in one JSON parameter (``json_rows``)
            source = f"({json_select(types)})"
            params.append(payload)
        else:
            source = f"unnest({', '.join(f'%s::{cast_type(t)}[]' for t in types)})"
            params += [values for _, values in columns]
        statement = (
            f"UPDATE {table} AS t SET {', '.join(assignments)}"  # noqa: S608 - names only
            f" FROM {source} AS v ({names}) WHERE t.{pk} = v.{pk}"
        )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)  # names only are interpolated


# --- many objects at once ----------------------------------------------------------------------

_pauses = 0
_pauses_lock = threading.Lock()
_enabled_before = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector from running inside the block.

    A bulk step builds tens of thousands of model instances, and every few hundred
    allocations the collector runs; its full passes scan every object the process holds
    (Django's, every module's), which cost a 5,000-row bulk approval and finalisation a third
    of their Python time (bench/README.md, "Discrepancies"). Reference counting still frees
    the step's objects as it goes; only cycles wait for the block to end. Process-wide and
    nestable across threads: the collector is paused by the first block to enter and resumed
    (if it was running) when the last one leaves.
    """
    global _pauses, _enabled_before
    with _pauses_lock:
        if _pauses == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pauses_lock:
            _pauses -= 1
            if _pauses == 0 and _enabled_before:
                gc.enable()
