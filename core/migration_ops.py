"""Migration operations the apps share.

``fillfactor`` leaves room in a table's pages for updates that skip its indexes, and
``without_fk_indexes`` turns off the single-column index Django keeps for a foreign key
(``db_index=False``) by dropping just that index. Django's own ``AlterField`` for the change
also drops and re-adds the foreign key's constraint, which on a large table locks it while
every row is checked again — for an index nothing reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import migrations


def without_fk_indexes(
    app_label: str, fields: dict[str, list[str]], altered: list
) -> migrations.SeparateDatabaseAndState:
    """The operation that applies ``altered`` (the ``AlterField``s setting ``db_index=False``
    on ``fields``: model name → field names) to the migration state, and in the database
    drops those fields' indexes (``DROP INDEX IF EXISTS``; re-created on reversal)."""

    def indexes(apps: Any, schema_editor: Any) -> Iterator[tuple[str, str, str]]:
        for model_name, names in fields.items():
            model = apps.get_model(app_label, model_name)
            table = model._meta.db_table
            for name in names:
                column = model._meta.get_field(name).column
                yield schema_editor._create_index_name(table, [column]), table, column

    def drop(apps: Any, schema_editor: Any) -> None:
        for index, _, _ in indexes(apps, schema_editor):
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(index)}")

    def restore(apps: Any, schema_editor: Any) -> None:
        quote = schema_editor.quote_name
        for index, table, column in indexes(apps, schema_editor):
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {quote(index)} ON {quote(table)} ({quote(column)})"
            )

    return migrations.SeparateDatabaseAndState(
        state_operations=altered,
        database_operations=[migrations.RunPython(drop, restore)],
    )


def fillfactor(app_label: str, model_name: str, percent: int) -> migrations.RunPython:
    """Leave ``100 - percent`` % of each new page of the model's table free (PostgreSQL), so
    an update that changes no indexed column can put the new row version beside the old one
    and skip every index ("HOT"): for rows rewritten all day (a quant on every sale) or by
    the thousand (a count's variance rows). Existing pages fill up as before until they are
    rewritten; other databases have no such setting."""

    def table(apps: Any) -> str:
        return str(apps.get_model(app_label, model_name)._meta.db_table)

    def apply(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            quoted = schema_editor.quote_name(table(apps))
            schema_editor.execute(f"ALTER TABLE {quoted} SET (fillfactor = {int(percent)})")

    def revert(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            quoted = schema_editor.quote_name(table(apps))
            schema_editor.execute(f"ALTER TABLE {quoted} RESET (fillfactor)")

    return migrations.RunPython(apply, revert)
