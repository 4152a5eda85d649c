"""Recording discrepancies: the one service every hook calls.

A count's reconciliation, an ad-hoc correction, a POS shortfall, the nightly invariant check —
and later imports and transfers — describe what they found as ``Finding``s; this service
judges each against its category's variance policy (``discrepancies.judgement``), stores them
in one INSERT, holds the products that now have an open HIGH or CRITICAL discrepancy at their
store, logs one line per discrepancy and announces them (``discrepancies_recorded``: the
notifications listen) once the caller's transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from core.bulk import any_of
from core.errors import ValidationFailed
from discrepancies.judgement import Judgement, Policies, judge
from discrepancies.models import (
    SERIOUS,
    CorrectionMode,
    Discrepancy,
    Kind,
    Status,
    open_q,
)
from discrepancies.signals import discrepancies_recorded
from inventory.models import Organization
from inventory.stock.holds import holds_sync

logger = logging.getLogger("discrepancies")
MONEY_QUANTUM = Decimal("0.0001")
#: The largest value at cost a discrepancy stores (``MONEY``: 14 digits, 4 places).
MAX_VALUE = Decimal("9999999999.9999")


@dataclass(frozen=True)
class Finding:
    """One mismatch a hook found: expected vs actual of ``product`` at a place, and where it
    came from. ``status`` other than NEW records it already decided (an ad-hoc correction
    within policy is recorded ADJUSTED, with its ledger rows)."""

    store_id: int
    product_id: int
    category: str  # the product's: which variance policy judges it
    expected: Decimal
    actual: Decimal
    unit_cost: Decimal
    source: str
    document_type: str
    document_id: int | None = None
    document_line: int = 0
    location_id: int | None = None
    batch_id: int | None = None
    kind: str = Kind.COUNT
    corrective: bool = True
    store_on_hand: Decimal | None = None
    source_ref: str = ""
    reason: str = ""
    correction_mode: str = CorrectionMode.KEEP_DIFFERENCE
    status: str = Status.NEW
    ledger_ref: tuple[str, int, int] | None = None
    posted_quantity: Decimal | None = None

    @property
    def variance(self) -> Decimal:
        return self.actual - self.expected

    @property
    def value(self) -> Decimal:
        return (self.variance * self.unit_cost).quantize(MONEY_QUANTUM)

    @property
    def value_fits(self) -> bool:
        """Whether the value at cost fits the column (a billion units of a 100-dollar
        product does not): a caller refuses the request naming its line first."""
        return abs(self.variance * self.unit_cost) <= MAX_VALUE


def findings_judge(
    *, org: Organization, findings: Sequence[Finding], policies: Policies | None = None
) -> list[Judgement]:
    """Each finding judged against its product's category policy (one query for all)."""
    policies = policies or Policies(org)
    return [
        judge(
            policies.for_category(f.category),
            variance=f.variance,
            expected=f.expected,
            value=f.value,
            threshold=policies.threshold,
            store_on_hand=f.store_on_hand,
        )
        for f in findings
    ]


def discrepancies_record(
    *,
    org: Organization,
    findings: Sequence[Finding],
    actor,
    judgements: Sequence[Judgement] | None = None,
) -> list[Discrepancy]:
    """Store ``findings`` as discrepancies (judged here unless the caller already judged
    them), in the caller's transaction. Returns them with their ids, in order."""
    if not findings:
        return []
    too_large = [n for n, f in enumerate(findings) if not f.value_fits]
    if too_large:
        # the database would refuse the row (numeric overflow, a 500); never store a value
        # that is not variance × cost
        raise ValidationFailed(
            "A discrepancy's value at cost is too large to record.",
            fields={
                "value": [f"At most {MAX_VALUE} at cost (finding {n + 1})." for n in too_large]
            },
        )
    if judgements is None:
        judgements = findings_judge(org=org, findings=findings)
    now = timezone.now()
    user = actor if getattr(actor, "pk", None) else None
    rows = []
    for f, j in zip(findings, judgements, strict=True):
        decided = f.status != Status.NEW
        ref_type, ref_id, ref_line = f.ledger_ref or ("", None, None)
        rows.append(
            Discrepancy(
                org=org,
                store_id=f.store_id,
                location_id=f.location_id,
                product_id=f.product_id,
                batch_id=f.batch_id,
                source=f.source,
                kind=f.kind,
                status=f.status,
                severity=j.severity,
                expected=f.expected,
                actual=f.actual,
                variance=f.variance,
                unit_cost=f.unit_cost,
                value=f.value,
                store_on_hand=f.store_on_hand,
                document_type=f.document_type,
                document_id=f.document_id,
                document_line=f.document_line,
                source_ref=f.source_ref[:128],
                reason=f.reason[:255],
                corrective=f.corrective,
                within_policy=j.within_policy,
                escalated=j.escalated,
                correction_mode=f.correction_mode,
                created_by=user,
                created_at=now,
                decided_at=now if decided else None,
                adjusted_at=now if f.status == Status.ADJUSTED else None,
                ledger_ref_type=ref_type,
                ledger_ref_id=ref_id,
                ledger_ref_line=ref_line,
                posted_quantity=f.posted_quantity,
            )
        )
    created = Discrepancy.objects.bulk_create(rows)
    # Recording only ever adds holds (it closes nothing): the serious open ones just recorded
    # hold their product at their store — one upsert, and no statement at all when none is
    # serious (a sale's oversell is recorded inside the sale). Releasing is for decisions.
    held = {(d.store_id, d.product_id) for d in created if d.is_open and d.severity in SERIOUS}
    if held:
        holds_sync(org=org, held=held, released=())
    for d in created:
        log_event("discrepancy_recorded", d, actor=user)
    serious = [d.pk for d in created if d.severity in SERIOUS and d.is_open]
    discrepancies_recorded.send(
        sender=Discrepancy, org=org, ids=[d.pk for d in created], serious=serious
    )
    return created


def holds_refresh(*, org: Organization, pairs: Iterable[tuple[int, int]]) -> None:
    """Hold each (store, product) of ``pairs`` that has an open HIGH or CRITICAL discrepancy;
    release the others. Two statements besides the one read, whatever the number of pairs."""
    pairs = set(pairs)
    if not pairs:
        return
    stores = {store for store, _ in pairs}
    products = {product for _, product in pairs}
    serious = set(
        Discrepancy.objects.filter(
            open_q(),
            any_of("store_id", sorted(stores)),
            any_of("product_id", sorted(products)),
            org=org,
            severity__in=SERIOUS,
        )
        .values_list("store_id", "product_id")
        .distinct()
    )
    held = pairs & serious
    holds_sync(org=org, held=held, released=pairs - held)


def log_event(event: str, d: Discrepancy, *, actor=None, **extra) -> None:
    """One structured line per discrepancy event (the JSON log formatter keeps ``extra``)."""
    logger.info(
        "%s #%s %s %s %s",
        event,
        d.pk,
        d.source,
        d.severity,
        d.status,
        extra={
            "event": event,
            "discrepancy": d.pk,
            "org_id": d.org_id,
            "store_id": d.store_id,
            "product_id": d.product_id,
            "location_id": d.location_id,
            "source": d.source,
            "type": d.kind,
            "severity": d.severity,
            "status": d.status,
            "expected": str(d.expected),
            "actual": str(d.actual),
            "variance": str(d.variance),
            "value": str(d.value),
            "actor_id": getattr(actor, "pk", actor),
            "ledger_ref": (
                f"{d.ledger_ref_type}:{d.ledger_ref_id}:{d.ledger_ref_line}"
                if d.ledger_ref_id is not None
                else None
            ),
            **extra,
        },
    )
