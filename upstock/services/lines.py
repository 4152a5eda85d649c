"""What staff do with a run's lines: pull (done, or a scan), skip, or an exception.

**A pull** moves the quantity from the back room to the run's floor through the stock write
path (``documents.move_record``, ``source="upstock"``: never held back by discrepancy
enforcement), taking unexpired lots earliest expiry first across the store's upstock sources
(a named lot — a GS1 scan's, or ``batch`` — only that lot). More than the back room has is 409
``insufficient_stock`` (requested, available, and how much is there but expired); nothing is
written. Every pull is kept (``UpstockPull``) under the device's ``client_ref``: the same done
or scan again answers the line as it is and posts nothing. ``done`` settles a pending line
with what was pulled; scans add to a line (each scan one pull), so a line can be scanned a
unit at a time.

**An exception** says why a line was not (fully) pulled. ``missing`` or ``damaged`` with a
quantity records a correction of the back room (``correction_request``, source ``AD_HOC``):
with an operator's membership it waits, as a discrepancy, for a manager; nothing moves
before that.

Every service locks the run (rank 56) then the line (57): two staff settling one line at
once meet there, and the second sees what the first did; a completed or abandoned run's lines
no longer change (409 ``run_not_in_progress``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import ApplicationError, NotFound, ValidationFailed
from discrepancies.models import Kind
from discrepancies.services.corrections import correction_request
from inventory.audit.services import audit_diff, audit_record, audit_snapshot
from inventory.catalog.resolver import Problems, check_quantities, lots_resolve, product_lookup
from inventory.exceptions import IdempotencyConflict, InsufficientStock
from inventory.models import AuditAction, Batch, Location, StockQuant
from inventory.stock import documents
from inventory.stock.write_path import fefo_key, fmt, is_expired, local_date
from upstock.exceptions import LineDecided, NotOnRun, RunNotInProgress, WrongProduct
from upstock.locks import lock_line, lock_run
from upstock.models import (
    ExceptionReason,
    LineStatus,
    RunStatus,
    UpstockLine,
    UpstockPull,
    UpstockRun,
)

ZERO = Decimal("0")
AUDITED = ("status", "pulled", "exception_reason", "exception_quantity", "note")
#: Exceptions that say stock is not where the records put it: with a quantity they record a
#: correction of the back room for a manager.
CORRECTIVE = {ExceptionReason.MISSING: Kind.OTHER, ExceptionReason.DAMAGED: Kind.DAMAGE}


def _person(actor):
    return (
        actor if getattr(actor, "pk", None) and getattr(actor, "is_authenticated", True) else None
    )


def _locked(org, run_id: int, line_id: int) -> tuple[UpstockRun, UpstockLine]:
    """The run then the line, locked (the lock order); the run must be in progress."""
    try:
        run = lock_run(org=org, run_id=run_id)
        line = lock_line(org=org, line_id=line_id)
    except (UpstockRun.DoesNotExist, UpstockLine.DoesNotExist) as exc:
        raise NotFound() from exc
    if line.run_id != run.pk:
        raise NotFound()
    if run.status != RunStatus.IN_PROGRESS:
        raise RunNotInProgress(run_status=run.status)
    line.run = run
    return run, line


def _save(org, line: UpstockLine, before: dict, action, actor) -> UpstockLine:
    line.updated_by = _person(actor)
    line.updated_at = timezone.now()
    line.save()
    before_values, after_values = audit_diff(before, audit_snapshot(line, AUDITED))
    audit_record(
        org=org,
        action=action,
        obj=line,
        before={**before_values, "run": line.run_id},
        after={**after_values, "product": line.product_id},
        store=line.run.store_id,
        actor=actor,
    )
    return line


def _check_quantity(line: UpstockLine, quantity, name: str) -> None:
    problems = Problems()

    class _Named:  # check_quantities reads ``product`` of each line
        product = line.product

    if not isinstance(quantity, Decimal) or not quantity.is_finite():
        problems.add(name, "A number.", "invalid")
    else:
        check_quantities(
            named=[_Named()],
            quantities=[quantity],
            problems=problems,
            prefix="",
            field_name=name,
            minimum=ZERO,
        )
    problems.raise_if_any("Not a quantity this line can take.")


def _move_client_ref(line: UpstockLine, client_ref: str) -> str:
    ref = f"upstock-{line.pk}-{client_ref}"
    return ref if len(ref) <= 128 else f"upstock-{hashlib.sha256(ref.encode()).hexdigest()}"


def _replayed(org, line: UpstockLine, client_ref: str, quantity: Decimal) -> bool:
    """Whether ``client_ref`` already pulled for this line (then nothing is posted again);
    409 ``idempotency_conflict`` when it pulled another quantity."""
    pull = UpstockPull.objects.filter(org=org, line=line, client_ref=client_ref).first()
    if pull is None:
        return False
    if pull.quantity != quantity:
        raise IdempotencyConflict(
            fields={"client_ref": [f"Already used to pull {fmt(pull.quantity)}."]}
        )
    return True


def _pieces(
    org, run: UpstockRun, line: UpstockLine, quantity: Decimal, batch: Batch | None
) -> list[tuple[int, int, Decimal]]:
    """(source location, batch, quantity) to take, unexpired lots earliest expiry first across
    the store's upstock sources; 409 ``insufficient_stock`` when they hold less."""
    sources = {
        loc.pk: loc.sort_order
        for loc in Location.objects.filter(
            org=org, store_id=run.store_id, upstock_source=True, is_active=True
        ).exclude(pk=run.location_id)
    }
    quants = list(
        StockQuant.objects.filter(
            org=org,
            location_id__in=list(sources),
            product_id=line.product_id,
            unallocated=False,
            quantity__gt=0,
        )
        .filter(Q(batch=batch) if batch is not None else Q())
        .select_related("batch")
    )
    today = local_date(run.store, timezone.now())
    usable = [q for q in quants if not is_expired(q.batch, today)]
    expired = sum((q.quantity for q in quants if is_expired(q.batch, today)), ZERO)
    available = sum((q.quantity for q in usable), ZERO)
    if quantity > available:
        raise InsufficientStock(
            f"The back room has {fmt(available)} of {line.product.sku}"
            + (f" in lot {batch.lot_code or batch.pk}" if batch is not None else "")
            + ".",
            lines=[
                {
                    "line": line.pk,
                    "product": line.product_id,
                    "sku": line.product.sku,
                    "location": line.source_location_id,
                    "requested": fmt(quantity),
                    "available": fmt(available),
                    "expired": fmt(expired),
                }
            ],
        )
    pieces = []
    need = quantity
    for quant in sorted(usable, key=lambda q: fefo_key(q, sources)):
        if need <= 0:
            break
        take = min(need, quant.quantity)
        pieces.append((quant.location_id, quant.batch_id, take))
        need -= take
    return pieces


def _pull(
    org,
    run: UpstockRun,
    line: UpstockLine,
    quantity: Decimal,
    client_ref: str,
    batch: Batch | None,
    raw_scan: str,
    actor,
) -> UpstockLine:
    """Post one pull of ``line`` (the caller holds the run's and the line's locks)."""
    pieces = _pieces(org, run, line, quantity, batch)
    document, _ = documents.move_record(
        org=org,
        store=run.store,
        lines=[
            documents.MoveLineInput(
                product=line.product,
                from_location=source,
                to_location=run.location,
                quantity=take,
                batch=batch_id,
            )
            for source, batch_id, take in pieces
        ],
        client_ref=_move_client_ref(line, client_ref),
        reason=f"Upstock run #{run.pk}",
        source="upstock",
        source_ref=f"upstock-run-{run.pk}",
        actor=_person(actor),
    )
    UpstockPull.objects.create(
        org=org,
        line=line,
        client_ref=client_ref,
        quantity=quantity,
        raw_scan=raw_scan,
        document_id=document.pk,
        actor=_person(actor),
    )
    before = audit_snapshot(line, AUDITED)
    line.pulled = (line.pulled or ZERO) + quantity
    line.status = LineStatus.DONE
    line.exception_reason, line.exception_quantity = "", None
    line.move_document_id = document.pk
    return _save(org, line, before, AuditAction.UPSTOCK_LINE_PULLED, actor)


def _check_client_ref(client_ref: str) -> str:
    client_ref = (client_ref or "").strip()
    if not client_ref or len(client_ref) > 128:
        raise ValidationFailed(fields={"client_ref": ["Required, at most 128 characters."]})
    return client_ref


def _batch(org, line: UpstockLine, batch) -> Batch | None:
    """A lot named by id or by its lot code (``unknown_lot`` when it is not the product's)."""
    if batch in (None, ""):
        return None
    problems = Problems()

    class _Named:
        product = line.product
        lot_code = ""

    is_id = isinstance(batch, int) or (isinstance(batch, str) and batch.isdigit())
    (found,) = lots_resolve(
        org=org,
        named=[_Named()],
        lot_codes=["" if is_id else str(batch)],
        batch_ids=[int(batch)] if is_id else None,
        problems=problems,
        prefix="",
    )
    if found is None and not problems:
        problems.add("batch", "No such lot of this product.", "unknown_lot")
    if problems:
        raise ValidationFailed(
            "No such lot of this product.",
            code="unknown_lot",
            fields={"batch": ["No such lot of this product."]},
        )
    return found


def line_done(
    *, org, line: UpstockLine, pulled: Decimal, client_ref: str, batch=None, actor
) -> UpstockLine:
    """Staff pulled ``pulled`` for the line: posts the move back room → floor (see the
    module) and marks the line done. A pending line (or one generated as ``back_room_short``,
    if stock turned up) only: 409 ``line_decided`` for a line already settled otherwise. The
    same ``client_ref`` again posts nothing and answers the line."""
    client_ref = _check_client_ref(client_ref)
    _check_quantity(line, pulled, "pulled")
    with transaction.atomic():
        run, locked = _locked(org, line.run_id, line.pk)
        if _replayed(org, locked, client_ref, pulled):
            return locked
        short = (
            locked.status == LineStatus.EXCEPTION
            and locked.exception_reason == ExceptionReason.BACK_ROOM_SHORT
            and locked.discrepancy_id is None
        )
        if locked.status != LineStatus.PENDING and not short:
            raise LineDecided(f"The line is {locked.status}.", line_status=locked.status)
        named = _batch(org, locked, batch)
        return _pull(org, run, locked, pulled, client_ref, named, "", actor)


def line_scan(
    *,
    org,
    run: UpstockRun,
    code: str,
    quantity: Decimal,
    client_ref: str,
    actor,
    line: UpstockLine | None = None,
) -> UpstockLine:
    """A pull confirmed by scanning the product: resolves ``code`` with the one resolver
    (404 ``unknown_barcode``; a GS1 carrying a lot pulls that lot); finds the run's line for
    the product (409 ``not_on_run``), or checks it is ``line``'s product (409
    ``wrong_product`` naming the expected one). Adds the pull to the line (each scan one
    pull). The same ``client_ref`` again posts nothing."""
    client_ref = _check_client_ref(client_ref)
    if not (code or "").strip():
        raise ValidationFailed(fields={"code": ["Required."]})
    try:
        found = product_lookup(org=org, barcode=code)
    except ApplicationError as exc:
        # the resolver names its input "barcode"; here the device sent "code"
        exc.fields = {("code" if k == "barcode" else k): v for k, v in exc.fields.items()}
        raise
    product = found.product
    if line is not None:
        if line.run_id != run.pk:
            raise NotFound()
        if line.product_id != product.pk:
            expected = line.product
            raise WrongProduct(
                f"Scanned {product.sku}; this line is {expected.sku} ({expected.name}).",
                fields={"code": [f"Expected {expected.sku}."]},
                expected={"line": line.pk, "product": expected.pk, "sku": expected.sku},
                scanned={"product": product.pk, "sku": product.sku},
            )
        target = line
    else:
        target = (
            UpstockLine.objects.filter(org=org, run=run, product=product)
            .select_related("product")
            .first()
        )
        if target is None:
            raise NotOnRun(
                f"{product.sku} is not on this run.",
                fields={"code": [f"{product.sku} is not on this run."]},
                scanned={"product": product.pk, "sku": product.sku},
            )
    _check_quantity(target, quantity, "quantity")
    with transaction.atomic():
        run, locked = _locked(org, run.pk, target.pk)
        if _replayed(org, locked, client_ref, quantity):
            return locked
        short = (
            locked.status == LineStatus.EXCEPTION
            and locked.exception_reason == ExceptionReason.BACK_ROOM_SHORT
            and locked.discrepancy_id is None
        )
        if locked.status not in (LineStatus.PENDING, LineStatus.DONE) and not short:
            raise LineDecided(f"The line is {locked.status}.", line_status=locked.status)
        named = _batch(org, locked, found.lot) if found.lot else None
        return _pull(org, run, locked, quantity, client_ref, named, code.strip(), actor)


def line_skip(*, org, line: UpstockLine, note: str = "", actor) -> UpstockLine:
    """Nothing pulled on purpose (a pending line only; skipping a skipped line again answers
    it as it is). 409 ``line_decided`` otherwise."""
    note = (note or "").strip()
    if len(note) > 500:
        raise ValidationFailed(fields={"note": ["At most 500 characters."]})
    with transaction.atomic():
        _run, locked = _locked(org, line.run_id, line.pk)
        if locked.status == LineStatus.SKIPPED:
            return locked
        if locked.status != LineStatus.PENDING:
            raise LineDecided(f"The line is {locked.status}.", line_status=locked.status)
        before = audit_snapshot(locked, AUDITED)
        locked.status = LineStatus.SKIPPED
        locked.note = note
        return _save(org, locked, before, AuditAction.UPSTOCK_LINE_SKIPPED, actor)


def line_exception(
    *,
    org,
    line: UpstockLine,
    reason: str,
    quantity: Decimal | None = None,
    note: str = "",
    tenant,
    actor,
) -> UpstockLine:
    """Why the line was not (fully) pulled: ``back_room_short``, ``already_stocked``,
    ``missing``, ``damaged`` or ``other``, optionally with a quantity. A pending or done line
    (what was pulled stays pulled) or another exception that recorded nothing yet.

    ``missing`` / ``damaged`` with a quantity records a correction of the back room where the
    line's stock was (its ``source_location``): ``correction_request`` with ``tenant`` (an
    operator's waits, as a NEW discrepancy, for a manager; a manager's within policy posts).
    The same exception again answers the line; a line whose exception recorded a discrepancy
    keeps it (409 ``line_decided``)."""
    note = (note or "").strip()
    problems: dict[str, list[str]] = {}
    if reason not in ExceptionReason.values:
        problems["reason"] = [f"One of {', '.join(ExceptionReason.values)}."]
    if len(note) > 500:
        problems["note"] = ["At most 500 characters."]
    if problems:
        raise ValidationFailed(fields=problems)
    if quantity is not None:
        _check_quantity(line, quantity, "quantity")
    with transaction.atomic():
        run, locked = _locked(org, line.run_id, line.pk)
        if (
            locked.status == LineStatus.EXCEPTION
            and locked.exception_reason == reason
            and locked.exception_quantity == quantity
        ):
            return locked  # the same exception again: nothing recorded twice
        if locked.status == LineStatus.SKIPPED or locked.discrepancy_id is not None:
            raise LineDecided(f"The line is {locked.status}.", line_status=locked.status)
        before = audit_snapshot(locked, AUDITED)
        if reason in CORRECTIVE and quantity:
            locked.discrepancy_id = _record_correction(
                org, run, locked, reason, quantity, note, tenant, actor
            )
        locked.status = LineStatus.EXCEPTION
        locked.exception_reason = reason
        locked.exception_quantity = quantity
        locked.note = note
        return _save(org, locked, before, AuditAction.UPSTOCK_LINE_EXCEPTION, actor)


def _record_correction(org, run, line, reason, quantity, note, tenant, actor) -> int | None:
    if line.source_location_id is None:
        raise ValidationFailed(
            "Nothing of it was in the back room: nothing to be missing or damaged.",
            fields={"quantity": ["The back room held none of this product."]},
        )
    answer = correction_request(
        org=org,
        store=run.store,
        kind="adjustment",
        lines=[
            documents.AdjustmentLineInput(
                product=line.product, location=line.source_location_id, quantity=-quantity
            )
        ],
        client_ref=f"upstock-line-{line.pk}",
        reason=f"Upstock run #{run.pk}: {reason} in the back room" + (f" ({note})" if note else ""),
        discrepancy_type=CORRECTIVE[reason],
        source_ref=f"upstock-run-{run.pk}",
        tenant=tenant,
        actor=actor,
    )
    recorded: Sequence = answer.discrepancies
    return recorded[0].pk if recorded else None
