"""Ad-hoc corrections: an adjustment or a write-off is a request, judged before anything moves.

``correction_request`` resolves and checks the lines with the stock documents' own rules
(``inventory.stock.documents``: the same 400s, every problem at once), then describes each line
as a finding — expected = what the records hold at its place (the named lot's quant, else the
product's stock at the location), actual = expected + the signed quantity — and judges them all
against the variance policies (one read):

* every line within policy, and the person may approve such a correction: it posts at once as
  the stock document it always was (same ``client_ref``, same 201 answer), and each line is
  recorded as a discrepancy already ``ADJUSTED``, linked to its ledger rows, so analytics see
  every correction;
* any line above policy: nothing moves. The request is kept (``CorrectionRequest``: its resolved
  lines are what approval posts) with one ``NEW`` discrepancy per line, and the answer is
  ``pending_approval``. Approving a line (``discrepancies_decide``, through the ``CORRECTION``
  source handler below) posts that line alone as its own stock document; rejecting posts nothing;
* an ``expiry`` write-off of lots already past their date (the store's today; a line without
  a lot may take no more than the expired stock at its place, which FEFO takes first) is
  informational: expired stock goes whatever the size, so it posts at once, and a line above
  policy is recorded ``NEW`` and not corrective (to acknowledge). One that would take stock
  that has not expired is judged like any correction — the label alone approves nothing.

Idempotency lives on the request (unique org/kind/client_ref, with a hash of the resolved
request), checked before anything else is judged or written: the same request again answers
what the first answer was (a posted one its document, a pending one its discrepancies with
their current statuses); another request under the same ``client_ref`` is 409
``idempotency_conflict``. Two identical requests at once meet on the unique constraint: the
loser reads the winner's request back and answers it as a replay.

Locks: creating the request takes none (the unique index queues identical ones); the posting
locks what the write path locks; approval locks the requests (``lock_correction_requests``,
rank 54) before the discrepancies (55) and the quants the posting takes (80).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import ApplicationError, NotFound, ValidationFailed
from discrepancies.judgement import ONE, STORE_DROP_LIMIT, Judgement, Policies
from discrepancies.locks import lock_correction_requests
from discrepancies.models import (
    UNDECIDED,
    ArchivedDiscrepancy,
    CorrectionRequest,
    CorrectionStatus,
    Discrepancy,
    DiscrepancyFields,
    DocumentType,
    Kind,
    Severity,
    Source,
    Status,
)
from discrepancies.services.decisions import SourceHandler
from discrepancies.services.record import (
    MAX_VALUE,
    Finding,
    discrepancies_record,
    findings_judge,
)
from inventory.catalog.resolver import Problems
from inventory.exceptions import IdempotencyConflict, InsufficientStock
from inventory.models import (
    Batch,
    DocumentKind,
    Organization,
    RefType,
    ShortfallOutcome,
    StockDocument,
    StockQuant,
    Store,
)
from inventory.stock import documents
from inventory.stock import write_path as stock
from inventory.stock.shortfalls import shortfalls_record
from inventory.tenancy.capabilities import Action

ZERO = Decimal("0")
#: The types an adjustment may name (a write-off's type says it: damage, waste, expiry).
ADJUSTMENT_TYPES = (Kind.COUNT, Kind.DAMAGE, Kind.THEFT, Kind.DATA_ERROR, Kind.OTHER)
WRITE_OFF_KINDS = {"damage": Kind.DAMAGE, "waste": Kind.OTHER, "expiry": Kind.EXPIRY}
#: What approving a line posts carries this source (enforcement leaves approved corrections be).
APPROVAL_SOURCE = "approval"
#: The client_ref of what approving a discrepancy's line posts (``discrepancy-<id>``): reserved,
#: so that no request takes it first and makes the approval a 409 ``idempotency_conflict``.
APPROVAL_CLIENT_REF_PREFIX = "discrepancy-"


@dataclass
class CorrectionAnswer:
    """What a correction request came to: posted at once (``document``), or pending with its
    discrepancies; ``created`` is False for a replay of the ``client_ref``.

    ``request`` is None only for a replay of a document recorded before corrections were
    requests (its ``client_ref`` already names a stock document and no request)."""

    request: CorrectionRequest | None
    document: StockDocument | None
    discrepancies: list[DiscrepancyFields] = field(default_factory=list)
    created: bool = True

    @property
    def posted(self) -> bool:
        return self.request is None or self.request.status == CorrectionStatus.POSTED

    @property
    def most_severe(self) -> DiscrepancyFields | None:
        """The line whose discrepancy is most severe (the first such line on a tie)."""
        if not self.discrepancies:
            return None
        return max(self.discrepancies, key=lambda d: (d.severity_rank, -d.document_line))


@dataclass(frozen=True)
class _Line:
    """One resolved line, with what judging it found at its place."""

    resolved: stock.ReceiveLine
    batch: Batch | None  # the named lot, when it exists
    expected: Decimal  # at its place once the request's earlier lines are applied
    available: Decimal  # what a negative line may take (ordinary stock there, before the request)
    store_on_hand: Decimal  # the product's at the store once the earlier lines are applied
    unit_cost: Decimal
    place_before: Decimal  # at its place before the request (what the request is judged by)
    store_before: Decimal  # the product's at the store before the request


class _AlreadyDocumented(Exception):
    """The client_ref names a stock document recorded before corrections were requests."""

    def __init__(self, document: StockDocument):
        self.document = document


# --- the request ----------------------------------------------------------------------------


def correction_request(
    *,
    org: Organization,
    store: Store,
    kind: str,
    lines: Sequence[documents.AdjustmentLineInput | documents.WriteOffLineInput],
    client_ref: str,
    reason: str,
    write_off_type: str = "",
    discrepancy_type: str = "",
    occurred_at: datetime.datetime | None = None,
    source_ref: str = "",
    tenant,
    actor,
) -> CorrectionAnswer:
    """Ask for an adjustment (``kind`` ``adjustment``: signed lines, an optional
    ``discrepancy_type``) or a write-off (``write_off``: positive lines and a
    ``write_off_type``). Posts at once within policy (and for a person who may approve it),
    else records the request and its discrepancies and posts nothing (see the module).

    ``tenant`` is the person's membership (``TenantContext``); None is a trusted internal
    caller, treated as one who may approve. Raises ``ValidationFailed`` for bad input (nothing
    written), ``IdempotencyConflict`` for a reused ``client_ref``, ``InsufficientStock`` when a
    line takes more than there is (the attempt is kept as a shortfall, as the documents keep it).
    """
    lines = list(lines)
    discrepancy_type = _check_request(kind, reason, write_off_type, discrepancy_type, client_ref)
    if kind == DocumentKind.ADJUSTMENT:
        resolved = documents.adjustment_lines(
            org=org, store=store, lines=lines, occurred_at=occurred_at
        )
    else:
        resolved = documents.write_off_lines(
            org=org, store=store, lines=lines, occurred_at=occurred_at
        )
    digest = _digest(
        {
            "store": store.pk,
            "kind": kind,
            "reason": reason,
            "type": write_off_type or discrepancy_type,
            "occurred_at": occurred_at,
            "source_ref": source_ref,
            "lines": [_line_fingerprint(ln) for ln in resolved],
        }
    )
    existing = CorrectionRequest.objects.filter(org=org, kind=kind, client_ref=client_ref).first()
    if existing is not None:
        return _replay(org, existing, digest)

    judged = _lines_judged(org, store, resolved)
    line_kind = WRITE_OFF_KINDS[write_off_type] if write_off_type else discrepancy_type
    expired_only = line_kind == Kind.EXPIRY and _of_expired_stock(org, store, judged)
    findings = [
        Finding(
            store_id=store.pk,
            product_id=ln.resolved.product.pk,
            category=ln.resolved.product.category,
            expected=ln.expected,
            actual=ln.expected + ln.resolved.quantity,
            unit_cost=ln.unit_cost,
            source=Source.AD_HOC,
            document_type=DocumentType.CORRECTION,
            document_line=ln.resolved.line,
            location_id=ln.resolved.location.pk,
            batch_id=ln.batch.pk if ln.batch else None,
            kind=line_kind,
            corrective=not expired_only,
            store_on_hand=ln.store_on_hand,
            source_ref=source_ref or client_ref,
            reason=reason,
        )
        for ln in judged
    ]
    too_large = {
        f"lines.{f.document_line - 1}.quantity": [
            f"Worth {abs(f.variance * f.unit_cost):f} at cost: at most {MAX_VALUE} a line."
        ]
        for f in findings
        if not f.value_fits
    }
    if too_large:
        raise ValidationFailed("A line is worth too much to record.", fields=too_large)
    judgements = _judged_together(org, findings, judged)
    post_now = expired_only or _may_post_at_once(tenant, judgements)
    if not post_now:
        _refuse_what_cannot_be_posted(org, store, kind, write_off_type, judged, client_ref, actor)
    user = actor if getattr(actor, "pk", None) else None
    try:
        with transaction.atomic():
            request = CorrectionRequest.objects.create(
                org=org,
                store=store,
                kind=kind,
                client_ref=client_ref,
                request_hash=digest,
                status=CorrectionStatus.POSTED if post_now else CorrectionStatus.PENDING,
                reason=reason,
                write_off_type=write_off_type,
                source_ref=source_ref,
                occurred_at=occurred_at,
                lines=[_line_json(ln, line_kind) for ln in judged],
                created_by=user,
            )
            findings = [replace(f, document_id=request.pk) for f in findings]
            if not post_now:
                recorded = discrepancies_record(
                    org=org, findings=findings, actor=user, judgements=judgements
                )
                return CorrectionAnswer(request, None, _loaded(org, recorded))
            document, created = _post(
                org=org,
                store=store,
                kind=kind,
                lines=lines,
                client_ref=client_ref,
                reason=reason,
                write_off_type=write_off_type,
                occurred_at=occurred_at,
                source="api",
                source_ref=source_ref,
                actor=actor,
            )
            if not created:
                raise _AlreadyDocumented(document)
            request.document_id = document.pk
            request.save(update_fields=["document_id"])
            posted = _posted_by_line(document)
            findings = [
                replace(
                    f,
                    status=Status.ADJUSTED if j.within_policy else Status.NEW,
                    ledger_ref=(posted[f.document_line][0], document.pk, f.document_line),
                    posted_quantity=posted[f.document_line][1],
                )
                for f, j in zip(findings, judgements, strict=True)
            ]
            recorded = discrepancies_record(
                org=org, findings=findings, actor=user, judgements=judgements
            )
            return CorrectionAnswer(request, document, recorded)
    except IntegrityError:
        existing = CorrectionRequest.objects.filter(
            org=org, kind=kind, client_ref=client_ref
        ).first()
        if existing is None:
            raise
        return _replay(org, existing, digest)
    except _AlreadyDocumented as replayed:
        return CorrectionAnswer(None, replayed.document, created=False)
    except InsufficientStock as exc:
        # The document service kept the refused attempt inside this transaction, which rolled
        # back with it: keep it again now, in its own, as it would have.
        shortfalls_record(
            org=org,
            store=store,
            shortfalls=exc.shortfalls,
            outcome=ShortfallOutcome.BLOCKED,
            ref_type=_ref_type(kind, write_off_type),
            ref_id=None,
            client_ref=client_ref,
            occurred_at=occurred_at or timezone.now(),
            actor=user,
        )
        raise


def _check_request(
    kind: str, reason: str, write_off_type: str, discrepancy_type: str, client_ref: str
) -> str:
    """The request's own fields, before its lines (as the document services check them);
    returns the adjustment's discrepancy type (OTHER unless named)."""
    problems = Problems()
    if client_ref.startswith(APPROVAL_CLIENT_REF_PREFIX):
        problems.add(
            "client_ref", f"'{APPROVAL_CLIENT_REF_PREFIX}…' is reserved for approvals.", "invalid"
        )
    if kind not in (DocumentKind.ADJUSTMENT, DocumentKind.WRITE_OFF):
        raise ValueError(f"not a correction: {kind}")
    if kind == DocumentKind.WRITE_OFF:
        if write_off_type not in WRITE_OFF_KINDS:
            problems.add("type", f"One of {', '.join(WRITE_OFF_KINDS)}.", "invalid")
    elif discrepancy_type and discrepancy_type not in ADJUSTMENT_TYPES:
        problems.add("type", f"One of {', '.join(ADJUSTMENT_TYPES)}.", "invalid")
    if not (reason or "").strip():
        problems.add("reason", "Say why.", "invalid")
    what = "A write-off needs a type and a reason." if kind == DocumentKind.WRITE_OFF else None
    problems.raise_if_any(what or "An adjustment needs a reason.")
    return "" if kind == DocumentKind.WRITE_OFF else (discrepancy_type or Kind.OTHER)


def _judged_together(
    org: Organization, findings: Sequence[Finding], lines: Sequence[_Line]
) -> list[Judgement]:
    """Each line judged with the request's other lines that correct the same place in the
    same direction (ten lines of -2 at one place are one correction of -20, and each line
    carries that judgement), and a product's shortages across the store judged together by
    the 20% rule: a request split into small lines is within policy only when the whole is.
    Judged by what the places and the store held before the request. One read of the
    policies."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for n, f in enumerate(findings):
        groups[(f.location_id, f.product_id, f.variance < 0)].append(n)
    combined: list[Finding] = []
    for indexes in groups.values():
        expected = max(lines[n].place_before for n in indexes)
        variance = sum((findings[n].variance for n in indexes), ZERO)
        # the dearest line's cost: a mix of lots is never judged cheaper than it may be
        cost = max(findings[n].unit_cost for n in indexes)
        combined.append(
            replace(
                findings[indexes[0]],
                expected=expected,
                actual=expected + variance,
                unit_cost=cost,
                store_on_hand=lines[indexes[0]].store_before,
            )
        )
    judged: dict[int, Judgement] = {}
    whole = findings_judge(org=org, findings=combined, policies=Policies(org))
    for judgement, indexes in zip(whole, groups.values(), strict=True):
        for n in indexes:
            judged[n] = judgement
    taken: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for f in findings:
        if f.variance < 0:
            taken[f.product_id] -= f.variance
    for n, f in enumerate(findings):
        j, store = judged[n], lines[n].store_before
        if f.variance >= 0:
            continue
        drop = taken[f.product_id] / store if store > 0 else ONE
        if drop > STORE_DROP_LIMIT:
            severity = Severity.MEDIUM if j.severity == Severity.LOW else j.severity
            judged[n] = replace(j, within_policy=False, severity=severity, store_drop=drop)
    return [judged[n] for n in range(len(findings))]


def _may_post_at_once(tenant, judgements: Sequence[Judgement]) -> bool:
    """Every line within policy, and the person may approve it: a manager up to the escalation
    threshold (a within-policy line escalates only by its value), an admin above it."""
    if not all(j.within_policy for j in judgements):
        return False
    if tenant is None:
        return True
    needed = (
        Action.APPROVE_ABOVE_THRESHOLD
        if any(j.escalated for j in judgements)
        else Action.VARIANCE_APPROVE
    )
    return tenant.can(needed)


def _lines_judged(org: Organization, store: Store, resolved: list[stock.ReceiveLine]) -> list:
    """What the records hold where each line corrects (two queries for the whole request):
    the product's quants at the store, and the lots the lines name."""
    product_ids = sorted({ln.product.pk for ln in resolved})
    at_place: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    ordinary: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    in_batch: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    in_store: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for product_id, location_id, batch_id, quantity, unallocated in StockQuant.objects.filter(
        org=org, store=store, product_id__in=product_ids
    ).values_list("product_id", "location_id", "batch_id", "quantity", "unallocated"):
        at_place[(location_id, product_id)] += quantity
        if not unallocated:
            ordinary[(location_id, product_id)] += quantity
        in_batch[(location_id, batch_id)] += quantity
        in_store[product_id] += quantity
    named = [Q(pk=ln.batch_id) for ln in resolved if ln.batch_id]
    named += [
        Q(product_id=ln.product.pk, lot_code=ln.lot_code.strip())
        for ln in resolved
        if ln.batch_id is None and ln.lot_code.strip()
    ]
    batches = (
        list(Batch.objects.filter(org=org, unallocated_store__isnull=True).filter(_any(named)))
        if named
        else []
    )
    by_id = {b.pk: b for b in batches}
    by_lot = {(b.product_id, b.lot_code): b for b in batches}
    out = []
    wrong_expiry: dict[str, list[str]] = {}
    # what the request's earlier lines change: each line records what its place held before it
    changed_place: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    changed_batch: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    changed_store: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for ln in resolved:
        batch = by_id.get(ln.batch_id) if ln.batch_id else None
        if batch is None and ln.lot_code.strip():
            batch = by_lot.get((ln.product.pk, ln.lot_code.strip()))
        if (
            batch is not None
            and ln.quantity > 0
            and ln.expiry_date
            and batch.expiry_date is not None
            and batch.expiry_date != ln.expiry_date
        ):
            # What the write path would refuse on posting, refused before anything waits
            # for approval: one lot has one expiry date.
            wrong_expiry[f"lines.{ln.line - 1}.expiry_date"] = [
                f"Lot {batch.lot_code} of {ln.product.sku} expires on "
                f"{batch.expiry_date.isoformat()}, not {ln.expiry_date}."
            ]
        place = (ln.location.pk, ln.product.pk)
        if batch is not None:
            lot = (ln.location.pk, batch.pk)
            before, changed = in_batch[lot], changed_batch[lot]
            available = before
        else:
            before, changed = at_place[place], changed_place[place]
            available = ordinary[place]
        cost = (
            batch.unit_cost
            if batch is not None
            else ln.unit_cost
            if ln.unit_cost is not None
            else ln.product.default_cost
            if ln.product.default_cost is not None
            else ZERO
        )
        store = in_store[ln.product.pk]
        out.append(
            _Line(
                ln,
                batch,
                expected=before + changed,
                available=available,
                store_on_hand=store + changed_store[ln.product.pk],
                unit_cost=Decimal(cost),
                place_before=before,
                store_before=store,
            )
        )
        changed_place[place] += ln.quantity
        if batch is not None:
            changed_batch[(ln.location.pk, batch.pk)] += ln.quantity
        changed_store[ln.product.pk] += ln.quantity
    if wrong_expiry:
        raise ValidationFailed(
            "A lot has one expiry date.", code="lot_expiry_mismatch", fields=wrong_expiry
        )
    return out


def _of_expired_stock(org: Organization, store: Store, judged: list[_Line]) -> bool:
    """Does every line take only stock whose lot expired before the store's today — a named
    lot that has, and no more than it holds at the place; a line without a lot, no more than
    the expired stock at its place (the write-off takes the earliest expiry first)? Lines at
    one place add up. One query."""
    today = stock.local_date(store, timezone.now())
    at_place: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    in_lot: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    for product_id, location_id, batch_id, quantity in StockQuant.objects.filter(
        org=org,
        store=store,
        product_id__in=sorted({ln.resolved.product.pk for ln in judged}),
        unallocated=False,
        quantity__gt=0,
        batch__expiry_date__lt=today,
    ).values_list("product_id", "location_id", "batch_id", "quantity"):
        at_place[(location_id, product_id)] += quantity
        in_lot[(location_id, batch_id)] += quantity
    for ln in judged:
        taken = -ln.resolved.quantity
        place = (ln.resolved.location.pk, ln.resolved.product.pk)
        at_place[place] -= taken
        if at_place[place] < 0:
            return False
        if ln.batch is not None:
            lot = (ln.resolved.location.pk, ln.batch.pk)
            in_lot[lot] -= taken
            if in_lot[lot] < 0:
                return False
    return True


def _any(conditions: list[Q]) -> Q:
    combined = Q()
    for condition in conditions:
        combined |= condition
    return combined


def _refuse_what_cannot_be_posted(
    org, store, kind, write_off_type, judged: list[_Line], client_ref, actor
) -> None:
    """A request that takes more than there is could never be approved: refuse it now with the
    write path's own answer (409 ``insufficient_stock``, every short line), and keep the
    attempt, as a refused document is kept."""
    # Lines taking from one place take in turn: each is short of what the earlier ones left.
    taken: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    short = []
    for ln in judged:
        if ln.resolved.quantity >= 0:
            continue
        place = (ln.resolved.location.pk, ln.resolved.product.pk, ln.batch.pk if ln.batch else None)
        left = ln.available - taken[place]
        taken[place] -= ln.resolved.quantity
        if -ln.resolved.quantity > left:
            short.append(
                stock.Shortfall(
                    ln.resolved.line,
                    ln.resolved.product,
                    ln.resolved.location.pk,
                    -ln.resolved.quantity,
                    max(left, ZERO),
                )
            )
    if not short:
        return
    ref_type = _ref_type(kind, write_off_type)
    error = InsufficientStock(lines=[s.as_dict() for s in short], shortfalls=short)
    stock.record_failure(ref_type, error.code)
    shortfalls_record(
        org=org,
        store=store,
        shortfalls=short,
        outcome=ShortfallOutcome.BLOCKED,
        ref_type=ref_type,
        ref_id=None,
        client_ref=client_ref,
        occurred_at=timezone.now(),
        actor=actor if getattr(actor, "pk", None) else None,
    )
    raise error


def _ref_type(kind: str, write_off_type: str) -> str:
    if kind == DocumentKind.WRITE_OFF:
        return documents.WRITE_OFF_REF_TYPES[write_off_type]
    return RefType.ADJUSTMENT


def _post(*, org, store, kind, lines, write_off_type, **common) -> tuple[StockDocument, bool]:
    """Post through the stock documents (the write path, its idempotency and its answer)."""
    if kind == DocumentKind.ADJUSTMENT:
        return documents.adjustment_record(org=org, store=store, lines=lines, **common)
    return documents.write_off_record(
        org=org, store=store, lines=lines, write_off_type=write_off_type, **common
    )


def _posted_by_line(document: StockDocument) -> dict[int, tuple[str, Decimal]]:
    """Each line's ledger ref type and the quantity its rows posted, from the stored answer."""
    posted: dict[int, tuple[str, Decimal]] = {}
    for row in document.result["rows"]:
        ref_type, quantity = posted.get(row["line"], (row["ref_type"], ZERO))
        posted[row["line"]] = (ref_type, quantity + Decimal(row["quantity"]))
    return posted


def _line_fingerprint(ln: stock.ReceiveLine) -> list:
    return [
        ln.line,
        ln.product.pk,
        ln.location.pk,
        ln.quantity,
        ln.lot_code,
        ln.expiry_date,
        ln.unit_cost,
        ln.batch_id,
    ]


def _normalised(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def _digest(payload: dict) -> str:
    """SHA-256 of the request as the service understood it (resolved ids, normalised numbers)."""
    text = json.dumps(_normalised(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _line_json(ln: _Line, line_kind: str) -> dict:
    """What approving the line posts (the request's ``lines``)."""
    r = ln.resolved
    return {
        "line": r.line,
        "product": r.product.pk,
        "location": r.location.pk,
        "batch": ln.batch.pk if ln.batch is not None else None,
        "quantity": stock.fmt(r.quantity),
        "lot_code": r.lot_code,
        "expiry_date": r.expiry_date.isoformat() if r.expiry_date else None,
        "unit_cost": None if r.unit_cost is None else stock.fmt(r.unit_cost),
        "type": line_kind,
    }


def _loaded(org: Organization, discrepancies: Sequence[DiscrepancyFields]) -> list:
    """The request's discrepancies with what their answer shows (store, place, people), in
    line order; archived ones (closed long ago) are read from the archive."""
    related = ("store", "location", "product", "batch", "created_by", "reviewed_by", "decided_by")
    ids = [d.pk for d in discrepancies]
    found: list[DiscrepancyFields] = list(
        Discrepancy.objects.filter(org=org, pk__in=ids).select_related(*related)
    )
    if len(found) < len(ids):
        found += ArchivedDiscrepancy.objects.filter(
            org=org, pk__in=set(ids) - {d.pk for d in found}
        ).select_related(*related)
    return sorted(found, key=lambda d: d.document_line)


def _replay(org: Organization, request: CorrectionRequest, digest: str) -> CorrectionAnswer:
    """The first answer again: the posted document, or the pending request's discrepancies as
    they are now. A different request under the same client_ref is a conflict."""
    if request.request_hash != digest:
        raise IdempotencyConflict(
            fields={"client_ref": ["Already used for a different request."]},
            client_ref=request.client_ref,
        )
    if request.status == CorrectionStatus.POSTED:
        document = StockDocument.objects.get(org=org, pk=request.document_id)
        return CorrectionAnswer(request, document, created=False)
    return CorrectionAnswer(
        request, None, correction_discrepancies(org=org, request=request), False
    )


def correction_discrepancies(
    *, org: Organization, request: CorrectionRequest
) -> list[DiscrepancyFields]:
    """A request's discrepancies, one per line, in line order (archived ones included)."""
    live = list(
        Discrepancy.objects.filter(
            org=org, document_type=DocumentType.CORRECTION, document_id=request.pk
        ).only("id")
    )
    archived = list(
        ArchivedDiscrepancy.objects.filter(
            org=org, document_type=DocumentType.CORRECTION, document_id=request.pk
        ).only("id")
    )
    return _loaded(org, live + archived)


# --- approving a request's lines ------------------------------------------------------------


@dataclass
class _Requests:
    org: Organization
    by_id: dict[int, CorrectionRequest]


def _lock(org: Organization, discrepancies: list[Discrepancy]) -> _Requests:
    return _Requests(
        org,
        lock_correction_requests(org=org, ids={d.document_id for d in discrepancies}),
    )


def _refuse(state: _Requests, d: Discrepancy) -> ApplicationError | None:
    request = state.by_id.get(d.document_id) if d.document_id is not None else None
    if request is None or _request_line(request, d.document_line) is None:
        return NotFound("The correction request of this discrepancy is gone.")
    return None


def _request_line(request: CorrectionRequest, number: int) -> dict | None:
    return next((ln for ln in request.lines if ln["line"] == number), None)


def _post_line(state: _Requests, d: Discrepancy, actor) -> StockDocument:
    """Post one approved line as its own stock document (``discrepancy-<id>``: posting it
    twice is a replay of the first). The document service checks the line's rules again (a
    product archived since is refused) and raises ``InsufficientStock`` when the stock is gone;
    its own savepoint leaves nothing of a refused line behind."""
    request = state.by_id[d.document_id]
    line = _request_line(request, d.document_line)
    assert line is not None  # _refuse checked
    quantity = Decimal(line["quantity"])
    expiry = datetime.date.fromisoformat(line["expiry_date"]) if line["expiry_date"] else None
    cost = Decimal(line["unit_cost"]) if line["unit_cost"] is not None else None
    common: dict[str, Any] = {
        "client_ref": f"{APPROVAL_CLIENT_REF_PREFIX}{d.pk}",
        "reason": request.reason,
        "occurred_at": None,  # the correction happens when it is approved
        "source": APPROVAL_SOURCE,
        "source_ref": request.source_ref or request.client_ref,
        "actor": actor,
    }
    if request.kind == DocumentKind.ADJUSTMENT:
        adjustment = documents.AdjustmentLineInput(
            d.product,
            line["location"],
            quantity,
            line["lot_code"] if quantity > 0 else "",
            expiry,
            cost,
            batch=line["batch"] if quantity < 0 else None,
        )
        document, _ = documents.adjustment_record(
            org=state.org, store=request.store, lines=[adjustment], **common
        )
    else:
        write_off = documents.WriteOffLineInput(
            d.product, line["location"], -quantity, batch=line["batch"]
        )
        document, _ = documents.write_off_record(
            org=state.org,
            store=request.store,
            lines=[write_off],
            write_off_type=request.write_off_type,
            **common,
        )
    return document


def _approved(state: _Requests, discrepancies: list[Discrepancy], actor):
    """Post each approved line and mark its discrepancy ADJUSTED with its ledger rows (on the
    instances: ``discrepancies_decide`` saves them). A line that can no longer be posted is
    refused, not half-posted: it stays undecided and is listed with its error."""
    now = timezone.now()
    refused: list[tuple[int, ApplicationError]] = []
    for d in discrepancies:
        try:
            document = _post_line(state, d, actor)
        except ApplicationError as error:
            refused.append((d.pk, error))
            continue
        ref_type, quantity = _posted_by_line(document)[1]
        d.status, d.adjusted_at = Status.ADJUSTED, now
        d.ledger_ref_type, d.ledger_ref_id, d.ledger_ref_line = ref_type, document.pk, 1
        d.posted_quantity = quantity
    refused_ids = {pk for pk, _ in refused}
    _settle(state, [d for d in discrepancies if d.pk not in refused_ids])
    return refused


def _rejected(state: _Requests, discrepancies: list[Discrepancy], actor) -> None:
    _settle(state, discrepancies)


def _settle(state: _Requests, decided: list[Discrepancy]) -> None:
    """A request whose every line is decided is ``decided`` (one read, one update)."""
    if not decided:
        return
    request_ids = {d.document_id for d in decided}
    waiting = set(
        Discrepancy.objects.filter(
            org=state.org,
            document_type=DocumentType.CORRECTION,
            document_id__in=sorted(request_ids),
            status__in=UNDECIDED,
        )
        .exclude(pk__in=[d.pk for d in decided])
        .values_list("document_id", flat=True)
    )
    done = [
        state.by_id[pk]
        for pk in sorted(request_ids - waiting)
        if state.by_id[pk].status == CorrectionStatus.PENDING
    ]
    for request in done:
        request.status = CorrectionStatus.DECIDED
    CorrectionRequest.objects.filter(org=state.org, pk__in=[r.pk for r in done]).update(
        status=CorrectionStatus.DECIDED
    )


#: How a correction request's discrepancies are decided (registered by ``discrepancies.hooks``).
CORRECTION_HANDLER = SourceHandler(
    lock=_lock, refuse=_refuse, approved=_approved, rejected=_rejected
)
