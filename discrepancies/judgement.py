"""Judging a correction against its category's variance policy: within it or not, how severe,
and whether it needs an admin.

One set of measures serves every source (a count's variance row, an ad-hoc adjustment, a POS
shortfall): the units and percent of the expected quantity, and the value at cost. Severity
is how far the largest of them goes past what the policy allows — never value alone, so a
product with no cost is still judged by its units:

    ratio ≤ 1 → LOW, ≤ 3 → MEDIUM, ≤ 10 → HIGH, above → CRITICAL

A correction that takes a product's stock at a store down by more than 20% is never within
policy and at least MEDIUM (the seeds' "obvious invalid moves"). Escalation — an admin must
decide — is severity HIGH or above, or a value above the organisation's threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from discrepancies.models import SERIOUS, Severity, VariancePolicy

ZERO = Decimal("0")
ONE = Decimal("1")
HUNDRED = Decimal("100")
#: A drop of a product's store stock larger than this share is never within policy.
STORE_DROP_LIMIT = Decimal("0.20")
#: (largest ratio, severity), checked in order.
SEVERITY_STEPS = (
    (ONE, Severity.LOW),
    (Decimal("3"), Severity.MEDIUM),
    (Decimal("10"), Severity.HIGH),
)


@dataclass(frozen=True)
class Allowance:
    """What a category's corrections may be without approval (``value`` None: no limit)."""

    units: Decimal
    percent: Decimal
    value: Decimal | None = None

    def as_dict(self) -> dict:
        return {
            "units": str(self.units),
            "percent": str(self.percent),
            "value": None if self.value is None else str(self.value),
        }


#: The platform's default when an organisation has no policy: 1 unit or 2%, whichever is more.
DEFAULT_ALLOWANCE = Allowance(units=ONE, percent=Decimal("2"))


class Policies:
    """An organisation's variance policies, read once (one query) for a whole batch."""

    def __init__(self, org):
        self.by_category = {
            p.category: Allowance(p.units, p.percent, p.value)
            for p in VariancePolicy.objects.filter(org=org)
        }
        self.threshold = org.escalation_threshold

    def for_category(self, category: str) -> Allowance:
        return self.by_category.get(category or "") or self.by_category.get("") or DEFAULT_ALLOWANCE


@dataclass(frozen=True)
class Judgement:
    within_policy: bool
    severity: Severity
    escalated: bool
    ratio: Decimal  # the largest measure ÷ its allowance
    store_drop: Decimal | None  # the share of the store's stock the correction removes


def _severity(ratio: Decimal) -> Severity:
    for limit, severity in SEVERITY_STEPS:
        if ratio <= limit:
            return severity
    return Severity.CRITICAL


def judge(
    allowance: Allowance,
    *,
    variance: Decimal,
    expected: Decimal,
    value: Decimal,
    threshold: Decimal,
    store_on_hand: Decimal | None = None,
) -> Judgement:
    """Judge one correction of ``variance`` units (signed) against ``expected`` at its place,
    worth ``value`` at cost, given the product's stock at the store before it."""
    size = abs(variance)
    quantity_allowed = max(allowance.units, abs(expected) * allowance.percent / HUNDRED)
    store_drop = None
    if variance < 0 and store_on_hand is not None:
        store_drop = size / store_on_hand if store_on_hand > 0 else ONE
    # The ratio's divisor is at least one unit (or one unit of money), so a zero-tolerance
    # category makes a one-unit difference LOW but still not within policy.
    ratio = size / max(quantity_allowed, ONE)
    if allowance.value is not None:
        ratio = max(ratio, abs(value) / max(allowance.value, ONE))
    severity = _severity(ratio)
    drops_too_far = store_drop is not None and store_drop > STORE_DROP_LIMIT
    if drops_too_far and severity == Severity.LOW:
        severity = Severity.MEDIUM
    within = (
        size <= quantity_allowed
        and (allowance.value is None or abs(value) <= allowance.value)
        and not drops_too_far
    )
    return Judgement(
        within_policy=size == 0 or within,
        severity=severity,
        escalated=severity in SERIOUS or abs(value) > threshold,
        ratio=ratio.quantize(Decimal("0.0001")),
        store_drop=store_drop,
    )
