"""Judging a correction against its category's policy: within or not, severity, escalation.

Pure arithmetic (no database) except where the organisation's policies are read."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from discrepancies.judgement import DEFAULT_ALLOWANCE, Allowance, Policies, judge
from discrepancies.models import Severity
from tests.factories import VariancePolicyFactory

D = Decimal
THRESHOLD = D("500")


def judged(variance, expected, *, value=0, on_hand=None, allowance=DEFAULT_ALLOWANCE):
    return judge(
        allowance,
        variance=D(variance),
        expected=D(expected),
        value=D(value),
        threshold=THRESHOLD,
        store_on_hand=None if on_hand is None else D(on_hand),
    )


@pytest.mark.parametrize(
    "variance,expected,on_hand,within,severity",
    [
        ("0", "10", "10", True, Severity.LOW),
        ("-2", "100", "100", True, Severity.LOW),  # 2% of 100 = 2 units allowed
        ("-3", "100", "100", False, Severity.MEDIUM),  # 1.5× the allowance
        ("-1", "10", "10", True, Severity.LOW),  # 1 unit allowed; 10% of the store
        ("-1", "4", "4", False, Severity.MEDIUM),  # 25% of the store's stock: never within
        ("-1", "4", "40", True, Severity.LOW),  # the same at a store holding 40
        ("+5", "0", None, False, Severity.HIGH),  # found 5 where none were expected
        ("-7", "100", "100", False, Severity.HIGH),  # 3.5× the allowance
        ("-25", "100", "100", False, Severity.CRITICAL),  # 12.5×
    ],
)
def test_units_percent_and_the_store_drop(variance, expected, on_hand, within, severity):
    result = judged(variance, expected, on_hand=on_hand)
    assert (result.within_policy, result.severity) == (within, severity)


def test_a_product_with_no_cost_is_judged_by_its_units():
    result = judged("-500", "1000", value="0", on_hand="1000")
    assert result.severity == Severity.CRITICAL and result.escalated
    assert not result.within_policy


def test_a_value_allowance_limits_and_measures_too():
    allowance = Allowance(units=D("1"), percent=D("2"), value=D("50"))
    # 3 of 1000 is within the units (20 allowed) but worth 300 at cost: 6× the value allowed
    result = judged("-3", "1000", value="-300", on_hand="1000", allowance=allowance)
    assert (result.within_policy, result.severity) == (False, Severity.HIGH)
    assert judged("-3", "1000", value="-40", on_hand="1000", allowance=allowance).within_policy


def test_zero_tolerance_makes_one_unit_low_but_not_within():
    result = judged("-1", "50", on_hand="50", allowance=Allowance(D("0"), D("0")))
    assert (result.within_policy, result.severity) == (False, Severity.LOW)


def test_escalation_is_severity_or_value_above_the_threshold():
    cheap_but_serious = judged("-50", "100", value="-5", on_hand="100")
    assert cheap_but_serious.severity == Severity.CRITICAL and cheap_but_serious.escalated
    small_but_dear = judged("-1", "100", value="-600", on_hand="100")
    assert small_but_dear.severity == Severity.LOW and small_but_dear.escalated
    assert not judged("-1", "100", value="-500", on_hand="100").escalated  # not above


def test_a_correction_at_a_store_with_nothing_is_a_full_drop():
    assert judged("-1", "0", on_hand="0").store_drop == 1
    assert not judged("-1", "0", on_hand="0").within_policy


quantities = st.decimals(min_value=0, max_value=10_000, places=2)


@given(
    expected=quantities,
    first=quantities,
    more=quantities,
    units=st.decimals(min_value=0, max_value=20, places=1),
    percent=st.decimals(min_value=0, max_value=100, places=1),
    negative=st.booleans(),
)
def test_severity_never_falls_as_the_difference_grows(
    expected, first, more, units, percent, negative
):
    allowance = Allowance(units, percent)
    sign = -1 if negative else 1
    on_hand = expected + 10

    def result(size):
        return judge(
            allowance,
            variance=sign * size,
            expected=expected,
            value=D("0"),
            threshold=THRESHOLD,
            store_on_hand=on_hand,
        )

    small, large = result(first), result(first + more)
    assert Severity(small.severity).rank <= Severity(large.severity).rank
    if small.within_policy or small.ratio <= 1:
        assert small.severity in (Severity.LOW, Severity.MEDIUM)
    if small.within_policy:
        assert small.ratio <= 1 or first == 0


def test_policies_fall_back_from_category_to_default_to_platform(org):
    assert Policies(org).for_category("Flower") == DEFAULT_ALLOWANCE
    VariancePolicyFactory(org=org, category="", units=3, percent=1)
    VariancePolicyFactory(org=org, category="Flower", units=0, percent=D("1.5"), value=100)
    policies = Policies(org)
    assert policies.for_category("Flower") == Allowance(D("0"), D("1.5"), D("100"))
    assert policies.for_category("Edibles") == Allowance(D("3"), D("1"), None)
    assert policies.for_category("") == Allowance(D("3"), D("1"), None)
