"""Retention: closed discrepancies past the window move to ``ArchivedDiscrepancy``.

The live table stays the size of what people still work on (its indexes serve the lists, the
holds and the gauge), while nothing is lost: an archived discrepancy keeps its id and every
column, so a count's variance row (``VarianceRow.discrepancy``, deliberately without a database
constraint) and the audit trail (events by object id: the timeline) still point at it, the
detail reads it by id and analytics count it.

Only closed discrepancies move — REJECTED, ADJUSTED, or APPROVED with nothing to post (an
informational one acknowledged): everything ``open_q`` does not match — and only once their
last step (the adjustment, else the decision) is older than the window.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.errors import ValidationFailed
from discrepancies.locks import lock_discrepancies
from discrepancies.models import ArchivedDiscrepancy, Discrepancy, open_q
from inventory.audit.services import audit_record
from inventory.models import AuditAction, Organization

#: Rows moved per transaction: short transactions, and an id list every backend takes as
#: statement parameters.
BATCH_SIZE = 500
MINIMUM = datetime.timedelta(days=1)


@dataclass
class ArchiveResult:
    cutoff: datetime.datetime
    dry_run: bool
    count: int = 0  # archived (or, in a dry run, that would be)
    batches: list[list[int]] = field(default_factory=list)  # the ids of each batch moved


def archivable(*, org: Organization, cutoff: datetime.datetime):
    """The organisation's closed discrepancies whose last step came before ``cutoff``."""
    return (
        Discrepancy.objects.filter(org=org)
        .exclude(open_q())
        .alias(closed_at=Coalesce(F("adjusted_at"), F("decided_at"), F("created_at")))
        .filter(closed_at__lt=cutoff)
    )


def _columns() -> list[str]:
    """The archive's columns that the live table has too (all of them but ``archived_at``)."""
    live = {f.column for f in Discrepancy._meta.concrete_fields}
    return [f.column for f in ArchivedDiscrepancy._meta.concrete_fields if f.column in live]


def _move(org: Organization, ids: list[int], now: datetime.datetime) -> None:
    """INSERT … SELECT the rows into the archive, then DELETE them: two statements."""
    q = connection.ops.quote_name
    columns = ", ".join(q(c) for c in _columns())
    marks = ", ".join(["%s"] * len(ids))
    live, archive = q(Discrepancy._meta.db_table), q(ArchivedDiscrepancy._meta.db_table)
    where = f"WHERE {q('org_id')} = %s AND {q('id')} IN ({marks})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {archive} ({columns}, {q('archived_at')}) "  # noqa: S608 - names only
            f"SELECT {columns}, %s FROM {live} {where}",
            # adapted as the ORM would (SQLite keeps naive UTC text)
            [connection.ops.adapt_datetimefield_value(now), org.pk, *ids],
        )
        cursor.execute(f"DELETE FROM {live} {where}", [org.pk, *ids])  # noqa: S608


def discrepancies_archive(
    *,
    org: Organization,
    older_than: datetime.timedelta,
    actor=None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> ArchiveResult:
    """Move ``org``'s closed discrepancies whose last step is older than ``older_than`` (at
    least a day) into the archive, keeping their ids and every column.

    Batches of ``batch_size`` by ascending id, one transaction each: the batch's rows are
    locked (``lock_discrepancies``; rank 55 of the lock order, nothing else taken), copied with
    one INSERT … SELECT, deleted with one DELETE, and the move audited with one
    ``discrepancies.archived`` event listing the ids. Running it again moves nothing more;
    two runs at once do not collide (the second finds the first's rows gone once it gets the
    locks). ``dry_run`` counts what would move and changes nothing.
    """
    if older_than < MINIMUM:
        raise ValidationFailed(
            "Archive only what closed at least a day ago.",
            fields={"older_than_days": ["At least 1."]},
        )
    if batch_size < 1:
        raise ValidationFailed(fields={"batch_size": ["At least 1."]})
    now = timezone.now()
    result = ArchiveResult(cutoff=now - older_than, dry_run=dry_run)
    if dry_run:
        result.count = archivable(org=org, cutoff=result.cutoff).count()
        return result
    after = 0
    while True:
        with transaction.atomic():
            candidates = list(
                archivable(org=org, cutoff=result.cutoff)
                .filter(pk__gt=after)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not candidates:
                break
            after = candidates[-1]
            # Closed rows never change again, but a concurrent run may have moved them.
            ids = sorted(lock_discrepancies(org=org, ids=candidates))
            if ids:
                _move(org, ids, now)
                audit_record(
                    org=org,
                    action=AuditAction.DISCREPANCIES_ARCHIVED,
                    obj=Discrepancy,
                    after={
                        "ids": ids,
                        "count": len(ids),
                        "older_than_days": older_than.days,
                        "closed_before": result.cutoff,
                    },
                    actor=actor,
                )
                result.batches.append(ids)
                result.count += len(ids)
        if len(candidates) < batch_size:
            break
    return result
