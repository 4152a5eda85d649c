"""Policies the write path consults before stock moves: how another app takes part in every
sale, move, transfer and correction without inventory importing it.

The discrepancy app's enforcement modes (record only → warn → block) are the first user: a
policy sees what is about to be posted — its kind, its document, every row it plans, and the
shortfalls it would book — and either lets it through, answers warnings (a ``warn`` mode: the
document posts and says why it is suspicious), or refuses by raising an ``ApplicationError``
(a ``block`` mode: nothing is posted, the caller's transaction rolls back).

A policy is registered once, at start-up (``AppConfig.ready``), and runs inside the write
path's transaction, after the quants are locked and before anything is written, so what it
reads is what will be changed. With no policy registered the write path pays nothing.

What a policy usually needs comes with the posting, read by statements the write path runs
anyway: which (store, product) pairs of the planned rows are held (``StockHold``, read by the
quant lock), the organisation's enforcement mode (from the organisation the caller already
has), the posting's source and a manager's override. Only a pair the lock saw no quant of (a
product sold without any stock at that store) is left for the policy to look up
(``unseen``; ``inventory.stock.holds.held_pairs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from core.errors import ValidationFailed
from inventory.tenancy.capabilities import Action

if TYPE_CHECKING:
    from inventory.models import Store
    from inventory.tenancy.scope import TenantContext


class PlannedRow(NamedTuple):
    """One ledger row the write path is about to write (a named tuple: a count plans
    thousands, and a frozen dataclass costs several times as much to build)."""

    store_id: int
    location_id: int
    product_id: int
    batch_id: int
    qty_delta: Decimal
    ref_line: int
    unallocated: bool
    ref_type: str = ""


@dataclass(frozen=True)
class PlannedPosting:
    """What a write-path call is about to post, for the policies to judge."""

    org_id: int
    store_id: int
    kind: str  # "sale", "move", "transfer", "receipt", "adjustment", "count", "reversal"
    ref_type: str  # the first row's ref type (e.g. SALE, MOVE_OUT, ADJUSTMENT)
    ref_id: int
    user_id: int | None
    rows: tuple[PlannedRow, ...]
    #: (line, product id, requested, available) of lines short of stock that are booked anyway
    shortfalls: tuple[tuple[int, int, Decimal, Decimal], ...] = ()
    #: the posting's source ("pos", "api", "upstock", "void", "refund", ...)
    source: str = ""
    #: the organisation's discrepancy enforcement mode ("record", "warn", "block")
    enforcement: str = ""
    #: (store id, product id) pairs of the planned rows that are held (read by the quant lock)
    held: frozenset[tuple[int, int]] = frozenset()
    #: (store id, product id) pairs of the planned rows the lock saw no quant of: whether they
    #: are held is unknown (``inventory.stock.holds.held_pairs`` answers, one query)
    unseen: frozenset[tuple[int, int]] = frozenset()
    #: why the caller asks to post despite a hold, and whether they may (a manager or admin of
    #: the store: the document's service checked the capability); ``user_id`` is who asks
    override_reason: str = ""
    may_override: bool = False


@dataclass(frozen=True)
class PolicyWarning:
    """Something a policy wants the caller to know; the posting goes ahead."""

    code: str
    detail: str
    line: int | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"code": self.code, "line": self.line, "detail": self.detail, **self.extra}


#: A policy: judge a planned posting; return warnings, or raise an ApplicationError to refuse.
Policy = Callable[[PlannedPosting], list[PolicyWarning]]
#: Each policy with the kinds of posting it judges (None: every kind).
_policies: dict[Policy, frozenset[str] | None] = {}


def register_stock_policy(policy: Policy, kinds: Iterable[str] | None = None) -> None:
    """Consult ``policy`` before every stock posting of ``kinds`` ("sale", "move", …; all of
    them when None). A policy that names its kinds costs the others nothing: a count's
    5,000-row posting is not planned row by row for a policy that judges only sales and moves.
    Registering again replaces the kinds (``ready`` may run twice)."""
    _policies[policy] = frozenset(kinds) if kinds is not None else None


def unregister_stock_policy(policy: Policy) -> None:
    _policies.pop(policy, None)


def has_policies(kind: str | None = None) -> bool:
    """Whether any policy judges postings of ``kind`` (of any kind, when None)."""
    return any(kinds is None or kind is None or kind in kinds for kinds in _policies.values())


def consult(posting: PlannedPosting) -> list[PolicyWarning]:
    """The warnings of every registered policy that judges ``posting``'s kind (a refusal
    propagates)."""
    warnings: list[PolicyWarning] = []
    for policy, kinds in list(_policies.items()):
        if kinds is None or posting.kind in kinds:
            warnings += policy(posting)
    return warnings


# --- what a document's service passes on: a manager's override ----------------------------------

#: An override's reason is kept in the audit trail's event: text of at most this many characters.
OVERRIDE_REASON_MAX = 255


def override_check(override_reason: str | None) -> str:
    """A hold override's reason, trimmed; longer than 255 characters is ``invalid``."""
    reason = (override_reason or "").strip()
    if len(reason) > OVERRIDE_REASON_MAX:
        raise ValidationFailed(
            fields={"override_reason": [f"At most {OVERRIDE_REASON_MAX} characters."]}
        )
    return reason


def may_override(tenant: TenantContext | None, store: Store) -> bool:
    """Whether the caller may post despite a hold: a manager or admin (who may decide
    discrepancies) of ``store``. Without a membership (a job, a command) nobody may; an
    operator's till never may."""
    return (
        tenant is not None
        and tenant.can(Action.VARIANCE_APPROVE)
        and tenant.may_use_store(store.pk)
    )
