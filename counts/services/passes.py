"""Passes and their lines: what tablets do while counting.

Any operator may add lines to an open pass. A scan of a product already on the pass (same
package) adds to its line; every scan is also kept as a ``CountScan`` (who, which device, when)
and a ``client_line_id`` makes a replay from an offline tablet a no-op. Lines are upserted with
one statement that adds the quantity, so two tablets scanning into one pass lose nothing.
"""

from __future__ import annotations

import datetime
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal

from django.db import DataError, connection, transaction
from django.utils import timezone

from core.errors import ValidationFailed
from counts.exceptions import OutOfScope, PassNotOpen, ScopeInUse, WrongState
from counts.locks import lock_pass, lock_store, lock_unresolved_scan
from counts.models import (
    ACTIVE_STATUSES,
    CountLine,
    CountPass,
    CountScan,
    CountSession,
    PassStatus,
    SessionStatus,
    UnresolvedScan,
)
from inventory.audit.services import audit_diff, audit_record, audit_snapshot
from inventory.catalog.resolver import (
    Item,
    ItemRef,
    Problems,
    items_resolve,
    lots_resolve,
)
from inventory.catalog.resolver import (
    check_quantities as check_line_quantities,
)
from inventory.models import AuditAction, Batch, Location, Organization, Product, Unit


def _scopes_overlap(a_category: str, a_sub: str, b_category: str, b_sub: str) -> bool:
    """Two passes of one location overlap unless they name different categories/subcategories."""
    if not a_category or not b_category:
        return True
    if a_category.lower() != b_category.lower():
        return False
    return not a_sub or not b_sub or a_sub.lower() == b_sub.lower()


def _in_session_scope(
    session: CountSession, location: Location, category: str, subcategory: str
) -> bool:
    if session.scope_locations and location.pk not in session.scope_locations:
        return False
    if not session.scope_categories:
        return True
    if not category:
        return False  # a category-scoped session is counted category by category
    return any(
        category.lower() == (s.get("category") or "").lower()
        and (not s.get("subcategory") or subcategory.lower() == s["subcategory"].lower())
        for s in session.scope_categories
    )


def pass_create(
    *,
    org: Organization,
    session: CountSession,
    location: Location,
    category: str = "",
    subcategory: str = "",
    device_id: str = "",
    scan_mode: str = "scanner",
    recount_of: CountPass | None = None,
    actor,
) -> CountPass:
    """Open a pass on one location (optionally one category) of an in-progress session.

    Refuses (409 ``scope_in_use``) when an open pass of another active session counts the same
    location and an overlapping category: the same shrink would otherwise be booked twice. The
    store row is locked so two sessions cannot both pass that check at once.
    """
    category, subcategory = category.strip(), subcategory.strip()
    if subcategory and not category:
        raise ValidationFailed(fields={"category": ["Name the category of the subcategory."]})
    with transaction.atomic():
        lock_store(org=org, store_id=session.store_id)
        session = CountSession.objects.get(pk=session.pk)
        if session.status != SessionStatus.IN_PROGRESS:
            raise WrongState(
                "Passes are opened in an in-progress session.", code="session_not_in_progress"
            )
        if location.store_id != session.store_id:
            raise ValidationFailed(
                fields={"location": ["Not a location of this store."]}, code="unknown_location"
            )
        if not _in_session_scope(session, location, category, subcategory):
            raise OutOfScope(fields={"location": ["Outside the session's scope."]})
        if recount_of is not None:
            recount_of = CountPass.objects.get(pk=recount_of.pk)
        if recount_of is not None and (
            recount_of.session_id != session.pk
            or recount_of.location_id != location.pk
            or recount_of.status != PassStatus.SUBMITTED
        ):
            raise ValidationFailed(
                fields={"recount_of": ["Recount a submitted pass of this session and location."]}
            )
        others = CountPass.objects.filter(
            location=location,
            status__in=[PassStatus.IN_PROGRESS, PassStatus.SUBMITTED],
            session__status__in=ACTIVE_STATUSES,
        ).exclude(session=session)
        for other in others:
            if _scopes_overlap(category, subcategory, other.category, other.subcategory):
                raise ScopeInUse(
                    fields={
                        "location": [
                            f"Session {other.session_id} is counting this (pass {other.pk})."
                        ]
                    },
                    session=other.session_id,
                    count_pass=other.pk,
                )
        count_pass = CountPass.objects.create(
            org=org,
            session=session,
            location=location,
            category=category,
            subcategory=subcategory,
            device_id=device_id,
            scan_mode=scan_mode,
            recount_of=recount_of,
            started_by=actor,
        )
        audit_record(
            org=org,
            action=AuditAction.COUNT_PASS_CREATED,
            obj=count_pass,
            after=audit_snapshot(count_pass, PASS_AUDITED_FIELDS),
            store=session.store_id,
            actor=actor,
        )
        return count_pass


PASS_AUDITED_FIELDS = (
    "session",
    "location",
    "category",
    "subcategory",
    "device_id",
    "scan_mode",
    "recount_of",
)


def _audit_pass_step(*, org, count_pass: CountPass, action: AuditAction, old_status, actor):
    """A pass moved from ``old_status`` to its status now (the time is the event's)."""
    audit_record(
        org=org,
        action=action,
        obj=count_pass,
        before={"status": old_status},
        after={"status": count_pass.status},
        store=count_pass.session.store_id,
        actor=actor,
    )


def pass_submit(*, org: Organization, count_pass: CountPass, actor) -> CountPass:
    with transaction.atomic():
        count_pass = lock_pass(org=org, pass_id=count_pass.pk)
        if count_pass.status == PassStatus.SUBMITTED:
            return count_pass  # a retried submit
        if count_pass.status != PassStatus.IN_PROGRESS:
            raise WrongState("Only an in-progress pass can be submitted.")
        old_status = count_pass.status
        count_pass.status, count_pass.submitted_at = PassStatus.SUBMITTED, timezone.now()
        count_pass.save(update_fields=["status", "submitted_at"])
        _audit_pass_step(
            org=org,
            count_pass=count_pass,
            action=AuditAction.COUNT_PASS_SUBMITTED,
            old_status=old_status,
            actor=actor,
        )
    return count_pass


def pass_void(*, org: Organization, count_pass: CountPass, actor) -> CountPass:
    with transaction.atomic():
        count_pass = lock_pass(org=org, pass_id=count_pass.pk)
        if count_pass.status == PassStatus.VOIDED:
            return count_pass
        if count_pass.session.status not in (SessionStatus.IN_PROGRESS, SessionStatus.SUBMITTED):
            raise WrongState("Passes of a reconciled or closed session stay as they are.")
        old_status = count_pass.status
        count_pass.status, count_pass.voided_at = PassStatus.VOIDED, timezone.now()
        count_pass.save(update_fields=["status", "voided_at"])
        _audit_pass_step(
            org=org,
            count_pass=count_pass,
            action=AuditAction.COUNT_PASS_VOIDED,
            old_status=old_status,
            actor=actor,
        )
    return count_pass


@dataclass
class Entry:
    """One scan or typed entry: a product and a quantity, maybe a lot, as sent by a device."""

    product: Product
    quantity: Decimal
    lot_code: str = ""
    batch: Batch | None = None
    raw_scan: str = ""
    client_line_id: str = ""
    captured_at: datetime.datetime | None = None
    confidence: str = "scanned"
    notes: str = ""


def clamp_capture_time(
    count_pass: CountPass, moment: datetime.datetime | None, now: datetime.datetime
) -> datetime.datetime:
    """Device clocks drift: keep a capture time inside the pass window and never in the future."""
    moment = moment or now
    return min(max(moment, count_pass.started_at), now)


MAX_QUANTITY = Decimal("1000000000")


def check_quantities(entries: list[Entry | None]) -> None:
    """Whole numbers for unit products, within range; ``None`` entries (unknown scans) keep
    their place so errors name the request's own line numbers."""
    errors = {}
    for index, entry in enumerate(entries):
        if entry is None:
            continue
        if entry.quantity < 0 or entry.quantity > MAX_QUANTITY:
            errors[f"lines.{index}.quantity"] = [f"Must be between 0 and {MAX_QUANTITY}."]
        elif entry.product.unit == Unit.EACH and entry.quantity % 1 != 0:
            errors[f"lines.{index}.quantity"] = [
                f"{entry.product.sku} is counted in units: use a whole number."
            ]
    if errors:
        raise ValidationFailed("Bad quantities.", code="invalid_quantity", fields=errors)


def lines_add(
    *, org: Organization, count_pass: CountPass, entries: list[Entry], actor, device_id: str = ""
) -> list[tuple[CountLine, bool]]:
    """Add entries to an open pass: repeats add up, replays (same client_line_id) do nothing.

    Returns, per entry, its line and whether this call applied it (False for a replay).
    One transaction, a fixed number of statements however many entries.
    """
    check_quantities(entries)
    now = timezone.now()
    with transaction.atomic():
        count_pass = lock_pass(org=org, pass_id=count_pass.pk)
        if count_pass.status != PassStatus.IN_PROGRESS:
            raise PassNotOpen(fields={"pass": [f"The pass is {count_pass.status}."]})
        ids = [e.client_line_id for e in entries if e.client_line_id]
        seen = (
            {
                s.client_line_id: s.line_id
                for s in CountScan.objects.filter(count_pass=count_pass, client_line_id__in=ids)
            }
            if ids
            else {}
        )
        fresh: list[tuple[int, Entry]] = []
        batch_seen: set[str] = set()
        for index, entry in enumerate(entries):
            if entry.client_line_id and (
                entry.client_line_id in seen or entry.client_line_id in batch_seen
            ):
                continue
            batch_seen.add(entry.client_line_id)
            fresh.append((index, entry))

        totals: dict[tuple[int, str], list] = {}
        for _, entry in fresh:
            key = (entry.product.pk, entry.lot_code.strip())
            at = clamp_capture_time(count_pass, entry.captured_at, now)
            if key in totals:
                totals[key][0] += entry.quantity
                totals[key][1] = min(totals[key][1], at)
            else:
                totals[key] = [entry.quantity, at, entry]
        try:  # no savepoint: the whole transaction rolls back with the error below
            line_ids = _upsert_lines(org, count_pass, totals, actor, device_id, now)
        except DataError as exc:  # repeat scans adding up past what a quantity can hold
            raise ValidationFailed(
                "A line would exceed the largest quantity.",
                code="invalid_quantity",
                fields={"lines": ["Quantity too large."]},
            ) from exc
        CountScan.objects.bulk_create(
            CountScan(
                org=org,
                count_pass=count_pass,
                line_id=line_ids[(e.product.pk, e.lot_code.strip())],
                client_line_id=e.client_line_id,
                raw_scan=e.raw_scan[:200],
                quantity=e.quantity,
                captured_by=actor,
                device_id=device_id,
                captured_at=clamp_capture_time(count_pass, e.captured_at, now),
            )
            for _, e in fresh
        )
        wanted = set(line_ids.values()) | {v for v in seen.values() if v}
        lines = CountLine.objects.in_bulk(wanted)
    applied = {index for index, _ in fresh}
    out = []
    for index, entry in enumerate(entries):
        if index in applied:
            line_id = line_ids[(entry.product.pk, entry.lot_code.strip())]
        else:
            line_id = seen.get(entry.client_line_id) or line_ids.get(
                (entry.product.pk, entry.lot_code.strip())
            )
        out.append((lines.get(line_id), index in applied))
    return out


def _upsert_lines(
    org, count_pass, totals: dict, actor, device_id: str, now
) -> dict[tuple[int, str], int]:
    """Add each (product, lot) total to its line in one statement; returns the line ids."""
    if not totals:
        return {}
    table = CountLine._meta.db_table
    rows, params = [], []
    for (product_id, lot), (quantity, at, entry) in sorted(totals.items()):
        rows.append("(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
        params += [
            org.pk,
            count_pass.pk,
            product_id,
            entry.batch.pk if entry.batch else None,
            lot,
            entry.raw_scan[:200],
            quantity,
            entry.confidence,
            entry.notes[:500],
            actor.pk,
            device_id,
            at,
            now,
            now,
        ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (org_id, count_pass_id, product_id, batch_id, lot_code,"
            f" raw_scan, quantity, confidence, notes, captured_by_id, device_id, captured_at,"
            f" created_at, updated_at) VALUES {', '.join(rows)}"
            f" ON CONFLICT (org_id, count_pass_id, product_id, lot_code) DO UPDATE SET"
            f" quantity = {table}.quantity + excluded.quantity,"
            f" captured_at = CASE WHEN excluded.captured_at < {table}.captured_at"
            f" THEN excluded.captured_at ELSE {table}.captured_at END,"
            f" updated_at = excluded.updated_at"
            f" RETURNING id, product_id, lot_code",
            params,
        )
        return {(product_id, lot): line_id for line_id, product_id, lot in cursor.fetchall()}


@dataclass(frozen=True)
class ScanInput:
    """One scan or typed entry as a tablet sends it: the product as it names it (an id, an SKU,
    or exactly what the scanner read), a quantity, maybe a lot."""

    product: Item
    quantity: Decimal = Decimal("1")
    lot_code: str = ""
    client_line_id: str = ""
    captured_at: datetime.datetime | None = None
    confidence: str = ""
    notes: str = ""
    device_id: str = ""


@dataclass
class ScansResult:
    #: per scan that named a product, in request order: its line and whether it was applied
    #: (False for a replay)
    lines: list[tuple[CountLine, bool]]
    #: (index in the request, the kept scan) for scans nothing matched
    unresolved: list[tuple[int, UnresolvedScan]]


def scans_add(
    *,
    org: Organization,
    count_pass: CountPass,
    scans: list[ScanInput],
    actor,
    device_id: str = "",
) -> ScansResult:
    """Add what a tablet scanned to an open pass, all of it or nothing.

    Every scan is resolved by the one resolver (``inventory.catalog.resolver``): an SKU or
    stored code, a package tag, a GTIN or GS1 string (its lot is the line's). A readable scan
    nothing matches is kept on the pass for a manager to map (``UnresolvedScan``); every other
    problem — an unknown id or SKU, an unreadable scan, a fractional quantity of a unit product —
    is reported together, naming each line, and nothing is written.
    """
    problems = Problems()
    named = items_resolve(
        org=org,
        items=[scan.product for scan in scans],
        problems=problems,
        keep_unknown_scans=True,
    )
    batches = lots_resolve(
        org=org,
        named=named,
        lot_codes=[scan.lot_code for scan in scans],
        problems=problems,
        must_exist=lambda index: False,
    )
    check_line_quantities(
        named=named,
        quantities=[scan.quantity for scan in scans],
        problems=problems,
        minimum=Decimal("0"),
        allow_zero=True,
        fractional_code="invalid_quantity",
    )
    problems.raise_if_any("Some scans cannot be used.")
    entries, unknown = [], []
    for index, (scan, found, batch) in enumerate(zip(scans, named, batches, strict=True)):
        if found.product is None:
            unknown.append((index, scan))
            continue
        scanned = isinstance(scan.product, ItemRef) and bool(scan.product.barcode)
        entries.append(
            Entry(
                product=found.product,
                quantity=scan.quantity,
                lot_code=scan.lot_code.strip() or found.lot_code,
                batch=batch,
                raw_scan=scan.product.barcode if scanned else "",
                client_line_id=scan.client_line_id,
                captured_at=scan.captured_at,
                confidence=scan.confidence or ("scanned" if scanned else "typed"),
                notes=scan.notes,
            )
        )
    # One transaction for all of it; with no unknown scan, lines_add's own is that one (no
    # savepoint: a bulk from a tablet costs the same statements as before).
    with transaction.atomic() if unknown else nullcontext():
        lines = (
            lines_add(
                org=org, count_pass=count_pass, entries=entries, actor=actor, device_id=device_id
            )
            if entries
            else []
        )
        unresolved = [
            (
                index,
                unresolved_record(
                    org=org,
                    count_pass=count_pass,
                    raw_scan=scan.product.barcode,
                    quantity=scan.quantity,
                    actor=actor,
                    device_id=scan.device_id or device_id,
                    client_line_id=scan.client_line_id,
                    captured_at=scan.captured_at,
                ),
            )
            for index, scan in unknown
        ]
    return ScansResult(lines, unresolved)


def unresolved_record(
    *,
    org: Organization,
    count_pass: CountPass,
    raw_scan: str,
    quantity: Decimal,
    actor,
    device_id: str = "",
    client_line_id: str = "",
    captured_at=None,
) -> UnresolvedScan:
    """Keep a scan nothing matched, so a manager can map it later (its own transaction).
    Only an open pass takes scans, known or not."""
    with transaction.atomic():
        count_pass = lock_pass(org=org, pass_id=count_pass.pk)
        if count_pass.status != PassStatus.IN_PROGRESS:
            raise PassNotOpen(fields={"pass": [f"The pass is {count_pass.status}."]})
        if (
            client_line_id
            and UnresolvedScan.objects.filter(
                count_pass=count_pass, client_line_id=client_line_id
            ).exists()
        ):
            return UnresolvedScan.objects.get(count_pass=count_pass, client_line_id=client_line_id)
        return UnresolvedScan.objects.create(
            org=org,
            count_pass=count_pass,
            raw_scan=raw_scan[:200],
            quantity=quantity,
            client_line_id=client_line_id,
            captured_by=actor,
            device_id=device_id,
            captured_at=clamp_capture_time(count_pass, captured_at, timezone.now()),
        )


def line_update(
    *,
    org: Organization,
    line: CountLine,
    quantity: Decimal | None = None,
    notes: str | None = None,
    actor,
) -> CountLine:
    """Correct a line while its pass is open (the scans stay as they were; the audit trail
    records who corrected what, since a count's number is what shrink is booked from)."""
    with transaction.atomic():
        count_pass = lock_pass(org=org, pass_id=line.count_pass_id)
        if count_pass.status != PassStatus.IN_PROGRESS:
            raise PassNotOpen()
        line = CountLine.objects.select_related("product").get(pk=line.pk)
        old = audit_snapshot(line, ("quantity", "notes"))
        if quantity is not None:
            check_quantities([Entry(line.product, quantity)])
            line.quantity, line.confidence = quantity, "corrected"
        if notes is not None:
            line.notes = notes
        line.save()
        before, after = audit_diff(old, audit_snapshot(line, ("quantity", "notes")))
        if after:
            audit_record(
                org=org,
                action=AuditAction.COUNT_LINE_CORRECTED,
                obj=line,
                before=before,
                after=after,
                store=count_pass.session.store_id,
                actor=actor,
            )
    return line


def line_delete(*, org: Organization, line: CountLine, actor) -> None:
    with transaction.atomic():
        count_pass = lock_pass(org=org, pass_id=line.count_pass_id)
        if count_pass.status != PassStatus.IN_PROGRESS:
            raise PassNotOpen()
        CountScan.objects.filter(line=line).update(line=None)
        audit_record(
            org=org,
            action=AuditAction.COUNT_LINE_DELETED,
            obj=line,
            before=audit_snapshot(line, ("product", "lot_code", "quantity")),
            store=count_pass.session.store_id,
            actor=actor,
        )
        CountLine.objects.filter(pk=line.pk).delete()


def unresolved_resolve(
    *, org: Organization, scan: UnresolvedScan, product: Product, actor
) -> CountLine:
    """A manager maps an unknown scan to a product: it becomes (or adds to) a line. The line's
    scan keeps who scanned it on which device; the audit event records who mapped it."""
    with transaction.atomic():
        scan = lock_unresolved_scan(org=org, scan_id=scan.pk)
        if scan.resolved_at is not None:
            raise WrongState("This scan is already mapped.", code="already_resolved")
        count_pass = CountPass.objects.select_related("session").get(pk=scan.count_pass_id)
        if count_pass.status != PassStatus.IN_PROGRESS:
            raise PassNotOpen()
        ((line, _),) = lines_add(
            org=org,
            count_pass=count_pass,
            actor=scan.captured_by,
            device_id=scan.device_id,
            entries=[
                Entry(
                    product,
                    scan.quantity,
                    raw_scan=scan.raw_scan,
                    captured_at=scan.captured_at,
                    confidence="corrected",
                )
            ],
        )
        scan.resolved_line, scan.resolved_by, scan.resolved_at = line, actor, timezone.now()
        scan.save(update_fields=["resolved_line", "resolved_by", "resolved_at"])
        audit_record(
            org=org,
            action=AuditAction.COUNT_SCAN_RESOLVED,
            obj=scan,
            before={"resolved_line": None},
            after={"resolved_line": line.pk, "product": product.pk, "quantity": scan.quantity},
            store=count_pass.session.store_id,
            actor=actor,
        )
    return line
