"""Receipts, moves, adjustments and write-offs: stock documents a device may retry.

Each is one transaction that records a ``StockDocument`` (idempotent on ``client_ref``) and
calls the write path once for all its lines.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.isotime import business_time_problem, iso
from inventory.catalog.resolver import (
    Item,
    Problems,
    check_quantities,
    items_resolve,
    locations_resolve,
    lots_resolve,
)
from inventory.exceptions import InsufficientStock
from inventory.models import (
    DocumentKind,
    Location,
    Organization,
    RefType,
    ShortfallOutcome,
    StockDocument,
    Store,
)
from inventory.stock import write_path as stock
from inventory.stock.idempotency import check_replay, request_hash
from inventory.stock.policy import may_override, override_check
from inventory.stock.shortfalls import shortfalls_record

WRITE_OFF_REF_TYPES = {"damage": RefType.DAMAGE, "waste": RefType.WASTE, "expiry": RefType.EXPIRY}


def _document_result(document: StockDocument, outcome: stock.Outcome) -> dict:
    """The document's answer, stored for replays. ``warnings``: what the stock policies said
    of it (e.g. a held product moved in enforcement mode ``warn``, or a manager's override)."""
    return {
        "id": document.pk,
        "kind": document.kind,
        "store": document.store_id,
        "client_ref": document.client_ref,
        "reason": document.reason,
        "type": document.write_off_type or None,
        "source_ref": document.source_ref,
        "occurred_at": iso(document.occurred_at),
        "rows": [
            {
                "line": r.ref_line,
                "ref_type": r.ref_type,
                "product": r.product_id,
                "location": r.location_id,
                "batch": r.batch_id,
                "quantity": stock.fmt(r.qty_delta),
                "unit_cost": stock.fmt(r.unit_cost),
                "reason": r.reason,
            }
            for r in outcome.rows
        ],
        "warnings": [warning.as_dict() for warning in outcome.warnings],
    }


def _record(
    *,
    org: Organization,
    store: Store,
    kind: str,
    client_ref: str,
    payload: dict,
    occurred_at: datetime.datetime | None,
    reason: str,
    actor,
    source: str,
    source_ref: str,
    post: Callable[[stock.Posting], stock.Outcome],
    write_off_type: str = "",
    failure_ref_type: str,
    override_reason: str = "",
    may_override: bool = False,
) -> tuple[StockDocument, bool]:
    digest = request_hash(
        {
            **payload,
            "store": store,
            "kind": kind,
            "reason": reason,
            "occurred_at": occurred_at,
            "type": write_off_type,
            "source_ref": source_ref,
        }
    )
    occurred_at = occurred_at or timezone.now()
    existing = StockDocument.objects.filter(org=org, kind=kind, client_ref=client_ref).first()
    if existing is not None:
        return check_replay(existing, digest), False
    user = actor if getattr(actor, "pk", None) else None
    try:
        with transaction.atomic():
            document = StockDocument.objects.create(
                org=org,
                store=store,
                kind=kind,
                client_ref=client_ref,
                request_hash=digest,
                reason=reason,
                write_off_type=write_off_type,
                source=source,
                source_ref=source_ref,
                occurred_at=occurred_at,
                created_by=user,
            )
            outcome = post(
                stock.Posting(
                    org,
                    store,
                    document.pk,
                    occurred_at,
                    user,
                    source,
                    source_ref,
                    override_reason,
                    may_override,
                )
            )
            document.result = _document_result(document, outcome)
            document.save(update_fields=["result"])
    except InsufficientStock as exc:
        stock.record_failure(failure_ref_type, exc.code)
        shortfalls_record(
            org=org,
            store=store,
            shortfalls=exc.shortfalls,
            outcome=ShortfallOutcome.BLOCKED,
            ref_type=failure_ref_type,
            ref_id=None,
            client_ref=client_ref,
            occurred_at=occurred_at,
            actor=user,
        )
        raise
    except IntegrityError:
        existing = StockDocument.objects.filter(org=org, kind=kind, client_ref=client_ref).first()
        if existing is None:
            raise
        return check_replay(existing, digest), False
    return document, True


def _fingerprint(lines) -> list:
    return [sorted(vars(ln).items()) for ln in lines]


# --- what a device sends ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptLineInput:
    """Stock received into a lot (``lot_code``; else one the scan named; else a new lot)."""

    product: Item
    location: Location | int
    quantity: Decimal
    lot_code: str = ""
    expiry_date: datetime.date | None = None
    unit_cost: Decimal | None = None


@dataclass(frozen=True)
class MoveLineInput:
    """Stock moved between two rooms of the store, earliest expiry first or from one lot."""

    product: Item
    from_location: Location | int
    to_location: Location | int
    quantity: Decimal
    lot_code: str = ""
    batch: int | None = None  # an internal caller may name the batch itself


@dataclass(frozen=True)
class AdjustmentLineInput:
    """A signed correction: + goes to the named lot (a new one needs its expiry if the product
    tracks expiry), else the newest lot there; − takes from the named lot, else FEFO."""

    product: Item
    location: Location | int
    quantity: Decimal
    lot_code: str = ""
    expiry_date: datetime.date | None = None
    unit_cost: Decimal | None = None
    batch: int | None = None  # an internal caller may name the batch itself


@dataclass(frozen=True)
class WriteOffLineInput:
    """Damaged, wasted or expired stock taken out (a positive quantity)."""

    product: Item
    location: Location | int
    quantity: Decimal
    lot_code: str = ""
    batch: int | None = None  # an internal caller may name the batch itself


# --- the rules of a document, checked for the whole request -------------------------------------


class _Check:
    """One document's lines being checked: products, quantities, rooms and lots resolved for
    every line at once, every problem collected (``Problems``) and raised together."""

    def __init__(self, org: Organization, store: Store, lines: list, occurred_at):
        self.org, self.store, self.lines = org, store, lines
        self.problems = Problems()
        if not lines:
            self.problems.add("lines", "At least one line.", "invalid")
        if store.org_id != org.pk:
            self.problems.add("store", "Not a store of this organisation.", "unknown_store")
        if occurred_at is not None:
            wrong = business_time_problem(occurred_at)
            if wrong:
                self.problems.add("occurred_at", wrong, "invalid")
        self.named = items_resolve(
            org=org, items=[ln.product for ln in lines], problems=self.problems
        )

    def quantities(self, *, minimum: Decimal | None, allow_negative: bool = False) -> None:
        check_quantities(
            named=self.named,
            quantities=[ln.quantity for ln in self.lines],
            problems=self.problems,
            minimum=None if allow_negative else minimum,
        )

    def locations(self, *fields: str) -> dict[str, Location]:
        return locations_resolve(
            store=self.store,
            problems=self.problems,
            named={
                f"lines.{i}.{name}": getattr(ln, name)
                for i, ln in enumerate(self.lines)
                for name in fields
            },
        )

    def lots(self, must_exist: Callable[[int], bool] = lambda index: True) -> list:
        return lots_resolve(
            org=self.org,
            named=self.named,
            problems=self.problems,
            lot_codes=[ln.lot_code for ln in self.lines],
            must_exist=must_exist,
            batch_ids=[getattr(ln, "batch", None) for ln in self.lines],
        )

    def lot_code(self, index: int) -> str:
        return self.lines[index].lot_code.strip() or self.named[index].lot_code

    def expiry(self, index: int, *, needed: bool, why: str) -> datetime.date | None:
        """The line's expiry date (else its scan's); ``expiry_required`` when ``needed`` for a
        product that tracks expiry and neither gives one (a pack marked "no expiry" is fine);
        a date outside the business calendar is ``invalid``."""
        line, named = self.lines[index], self.named[index]
        expiry = getattr(line, "expiry_date", None) or named.expiry_date
        where = f"lines.{index}.expiry_date"
        if expiry is not None and not (EARLIEST_EXPIRY <= expiry <= LATEST_EXPIRY):
            self.problems.add(where, f"Between {EARLIEST_EXPIRY} and {LATEST_EXPIRY}.", "invalid")
        product = named.product
        if (
            needed
            and expiry is None
            and not named.no_expiry
            and product is not None
            and (product.tracks_expiry)
        ):
            self.problems.add(where, f"{product.sku} tracks expiry: {why}", "expiry_required")
        return expiry

    def cost(self, index: int) -> Decimal | None:
        cost = getattr(self.lines[index], "unit_cost", None)
        if cost is not None and cost < 0:
            self.problems.add(f"lines.{index}.unit_cost", "Must not be negative.", "invalid")
        return cost

    def done(self) -> None:
        self.problems.raise_if_any("Some lines cannot be used.")


EARLIEST_EXPIRY = datetime.date(2000, 1, 1)
LATEST_EXPIRY = datetime.date(9000, 12, 31)


def receipt_lines(
    *, org, store, lines: list[ReceiptLineInput], occurred_at=None
) -> list[stock.ReceiveLine]:
    """A receipt's rules: known, active products; positive quantities, whole ones for unit
    products; active rooms of the store; an expiry date for every lot of a product that tracks
    expiry (``expiry_required``); costs not below zero."""
    check = _Check(org, store, lines, occurred_at)
    check.quantities(minimum=Decimal("0"))
    rooms = check.locations("location")
    out = []
    for i, ln in enumerate(lines):
        expiry = check.expiry(i, needed=True, why="give the lot's expiry date.")
        cost = check.cost(i)
        out.append(
            stock.ReceiveLine(
                i + 1,
                check.named[i].product,
                rooms.get(f"lines.{i}.location"),
                ln.quantity,
                check.lot_code(i),
                expiry,
                cost,
            )
        )
    check.done()
    return out


def move_lines(*, org, store, lines: list[MoveLineInput], occurred_at=None) -> list[stock.MoveLine]:
    """A move's rules: known, active products; positive quantities, whole for unit products;
    two different active rooms of the store; a named lot must exist (``unknown_lot``)."""
    check = _Check(org, store, lines, occurred_at)
    check.quantities(minimum=Decimal("0"))
    rooms = check.locations("from_location", "to_location")
    lots = check.lots()
    out = []
    for i, ln in enumerate(lines):
        source, target = rooms.get(f"lines.{i}.from_location"), rooms.get(f"lines.{i}.to_location")
        if source is not None and source == target:
            check.problems.add(
                f"lines.{i}.to_location", "Must differ from from_location.", "invalid"
            )
        out.append(
            stock.MoveLine(
                i + 1,
                check.named[i].product,
                source,
                target,
                ln.quantity,
                lots[i].pk if lots[i] else None,
            )
        )
    check.done()
    return out


def adjustment_lines(
    *, org, store, lines: list[AdjustmentLineInput], occurred_at=None
) -> list[stock.ReceiveLine]:
    """An adjustment's rules: known, active products; a signed quantity, not zero, whole for
    unit products; active rooms of the store; a negative line's lot must exist, a positive
    line's new lot of an expiry-tracked product needs its expiry (``expiry_required``)."""
    check = _Check(org, store, lines, occurred_at)
    check.quantities(minimum=None, allow_negative=True)
    rooms = check.locations("location")
    lots = check.lots(must_exist=lambda index: lines[index].quantity < 0)
    out = []
    for i, ln in enumerate(lines):
        new_lot = ln.quantity > 0 and bool(check.lot_code(i)) and lots[i] is None
        expiry = check.expiry(i, needed=new_lot, why="a new lot needs its expiry date.")
        cost = check.cost(i)
        out.append(
            stock.ReceiveLine(
                i + 1,
                check.named[i].product,
                rooms.get(f"lines.{i}.location"),
                ln.quantity,
                check.lot_code(i) if ln.quantity > 0 else "",
                expiry,
                cost,
                batch_id=lots[i].pk if ln.quantity < 0 and lots[i] else None,
            )
        )
    check.done()
    return out


def write_off_lines(
    *, org, store, lines: list[WriteOffLineInput], occurred_at=None
) -> list[stock.ReceiveLine]:
    """A write-off's rules: known, active products; positive quantities, whole for unit
    products; active rooms of the store; a named lot must exist. The lines come back negative,
    as the write path takes them."""
    check = _Check(org, store, lines, occurred_at)
    check.quantities(minimum=Decimal("0"))
    rooms = check.locations("location")
    lots = check.lots()
    out = [
        stock.ReceiveLine(
            i + 1,
            check.named[i].product,
            rooms.get(f"lines.{i}.location"),
            -ln.quantity,
            batch_id=lots[i].pk if lots[i] else None,
        )
        for i, ln in enumerate(lines)
    ]
    check.done()
    return out


# --- the documents ------------------------------------------------------------------------------


def receipt_record(
    *,
    org: Organization,
    store: Store,
    lines: list[ReceiptLineInput],
    client_ref: str,
    occurred_at=None,
    reason: str = "",
    source: str = "api",
    source_ref: str = "",
    ref_type: str = RefType.RECEIPT,
    actor=None,
):
    """Receive stock into lots (found by lot code, or new); settles unallocated shortfalls.
    Every rule of ``receipt_lines`` is checked first, for all lines at once."""
    resolved = receipt_lines(org=org, store=store, lines=lines, occurred_at=occurred_at)
    return _record(
        org=org,
        store=store,
        kind=DocumentKind.RECEIPT,
        client_ref=client_ref,
        payload={"lines": _fingerprint(resolved), "ref_type": ref_type},
        occurred_at=occurred_at,
        reason=reason,
        actor=actor,
        source=source,
        source_ref=source_ref,
        post=lambda posting: stock.receive(
            posting=posting, lines=resolved, ref_type=ref_type, reason=reason
        ),
        failure_ref_type=ref_type,
    )


def move_record(
    *,
    org: Organization,
    store: Store,
    lines: list[MoveLineInput],
    client_ref: str,
    occurred_at=None,
    reason: str = "",
    source: str = "api",
    source_ref: str = "",
    actor=None,
    override_reason: str = "",
    tenant=None,
):
    """Move stock between rooms of the store (``move_lines`` checks every line first).

    Moving a product held at the store (an open HIGH or CRITICAL discrepancy) is judged by the
    organisation's enforcement mode (``discrepancies.enforcement``): the answer's ``warnings``
    say so, or in ``block`` mode it is refused (409 ``open_discrepancy``) unless
    ``override_reason`` comes from a manager or admin of the store (``tenant``). An upstock
    pull (``source="upstock"``) is never judged."""
    override_reason = override_check(override_reason)
    resolved = move_lines(org=org, store=store, lines=lines, occurred_at=occurred_at)
    return _record(
        org=org,
        store=store,
        kind=DocumentKind.MOVE,
        client_ref=client_ref,
        payload={"lines": _fingerprint(resolved)},
        occurred_at=occurred_at,
        reason=reason,
        actor=actor,
        source=source,
        source_ref=source_ref,
        post=lambda posting: stock.move(posting=posting, lines=resolved, reason=reason),
        failure_ref_type=RefType.MOVE_OUT,
        override_reason=override_reason,
        may_override=bool(override_reason) and may_override(tenant, store),
    )


def adjustment_record(
    *,
    org: Organization,
    store: Store,
    lines: list[AdjustmentLineInput],
    client_ref: str,
    reason: str,
    occurred_at=None,
    source: str = "api",
    source_ref: str = "",
    actor=None,
):
    """Signed corrections at locations; the reason is required and kept on every row."""
    problems = Problems()
    if not (reason or "").strip():
        problems.add("reason", "Say why.", "invalid")
    problems.raise_if_any("An adjustment needs a reason.")
    resolved = adjustment_lines(org=org, store=store, lines=lines, occurred_at=occurred_at)
    return _record(
        org=org,
        store=store,
        kind=DocumentKind.ADJUSTMENT,
        client_ref=client_ref,
        payload={"lines": _fingerprint(resolved)},
        occurred_at=occurred_at,
        reason=reason,
        actor=actor,
        source=source,
        source_ref=source_ref,
        post=lambda posting: stock.adjust(posting=posting, lines=resolved, reason=reason),
        failure_ref_type=RefType.ADJUSTMENT,
    )


def write_off_record(
    *,
    org: Organization,
    store: Store,
    lines: list[WriteOffLineInput],
    write_off_type: str,
    client_ref: str,
    reason: str,
    occurred_at=None,
    source: str = "api",
    source_ref: str = "",
    actor=None,
):
    """Remove damaged, wasted or expired stock (positive quantities; expired lots included)."""
    problems = Problems()
    if write_off_type not in WRITE_OFF_REF_TYPES:
        problems.add("type", f"One of {', '.join(WRITE_OFF_REF_TYPES)}.", "invalid")
    if not (reason or "").strip():
        problems.add("reason", "Say why.", "invalid")
    problems.raise_if_any("A write-off needs a type and a reason.")
    ref_type = WRITE_OFF_REF_TYPES[write_off_type]
    resolved = write_off_lines(org=org, store=store, lines=lines, occurred_at=occurred_at)
    return _record(
        org=org,
        store=store,
        kind=DocumentKind.WRITE_OFF,
        client_ref=client_ref,
        payload={"lines": _fingerprint(resolved)},
        occurred_at=occurred_at,
        reason=reason,
        actor=actor,
        source=source,
        source_ref=source_ref,
        write_off_type=write_off_type,
        post=lambda posting: stock.adjust(
            posting=posting, lines=resolved, ref_type=ref_type, reason=reason
        ),
        failure_ref_type=ref_type,
    )
