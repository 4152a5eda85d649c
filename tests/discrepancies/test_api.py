"""The discrepancy API: list, detail (source document, ledger rows, timeline), review, approve,
reject and bulk decisions — every endpoint by role, by tenant, with bad input and bad
transitions; a count's shortage approved through the API is posted exactly once."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from counts.models import VarianceRow
from counts.services import passes as P
from counts.services import sessions as S
from discrepancies.models import (
    ArchivedDiscrepancy,
    Discrepancy,
    DocumentType,
    Kind,
    Source,
    Status,
    VariancePolicy,
)
from discrepancies.services.record import Finding, discrepancies_record
from inventory.models import AuditEvent, RefType, Role, StockLedger
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.response_schema import AnswerChecker
from tests.stock_helpers import assert_invariants, loc, on_hand, receive

D = Decimal
V, OP, M, A = Role.VIEWER, Role.OPERATOR, Role.MANAGER, Role.ADMIN
ROLES = [V, OP, M, A]
BASE = "/api/v1/discrepancies"


# --- building discrepancies through the real services -------------------------------------------


def record(
    org,
    store,
    product,
    *,
    expected="10",
    actual="8",
    cost="1",
    actor=None,
    source=Source.INVARIANT,
    kind=Kind.DATA_ERROR,
    document_type=DocumentType.INVARIANT_CHECK,
    document_id=None,
    corrective=False,
    **extra,
) -> Discrepancy:
    """One discrepancy recorded by ``discrepancies_record`` (informational by default: an
    invariant mismatch, whose approval acknowledges it)."""
    finding = Finding(
        store_id=store.pk,
        product_id=product.pk,
        category=product.category,
        expected=D(expected),
        actual=D(actual),
        unit_cost=D(cost),
        source=source,
        kind=kind,
        document_type=document_type,
        document_id=document_id,
        corrective=corrective,
        **extra,
    )
    with transaction.atomic():
        (d,) = discrepancies_record(org=org, findings=[finding], actor=actor)
    return d


def hours_ago(n: int = 1) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(hours=n)


def reconciled_count(org, store, product, *, have=10, counted=5, reconciler=None, clerk=None):
    """A count of ``product`` at ``store``'s SF that found ``counted`` of ``have``, reconciled by
    ``reconciler``: its variance row is a discrepancy (source CYCLE_COUNT)."""
    reconciler = reconciler or MembershipFactory(org=org, role=M).user
    clerk = clerk or MembershipFactory(org=org, role=OP).user
    receive(org, store, product, have, cost=1, occurred_at=hours_ago(2))
    session = S.session_start(
        org=org,
        actor=reconciler,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=reconciler),
    )
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=clerk)
    P.lines_add(org=org, count_pass=count_pass, actor=clerk, entries=[P.Entry(product, D(counted))])
    P.pass_submit(org=org, count_pass=count_pass, actor=clerk)
    S.session_submit(org=org, session=session, actor=reconciler)
    S.session_reconcile(org=org, session=session, actor=reconciler)
    row = VarianceRow.objects.get(session=session, product=product)
    return session, Discrepancy.objects.get(pk=row.discrepancy_id)


@pytest.fixture
def policy(org):
    """2 units or 0%: a 5-unit shortage of 10 is MEDIUM (a manager decides), 50 of 100
    CRITICAL (an admin)."""
    return VariancePolicy.objects.create(org=org, category="", units=2, percent=0)


def call(client: APIClient, method: str, path: str, body=None):
    return (
        getattr(client, method)(path, body, format="json")
        if body is not None
        else getattr(client, method)(path)
    )


def refused(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert field in body["fields"], body
    return body


def written() -> dict:
    """What a refused request must not change."""
    return {
        "discrepancies": sorted(
            Discrepancy.objects.values_list("id", "status", "reviewed_by", "decided_by")
        ),
        "events": AuditEvent.objects.count(),
        "ledger": StockLedger.objects.count(),
        "rows": sorted(VarianceRow.objects.values_list("id", "status")),
    }


# --- a world for every endpoint -----------------------------------------------------------------


def build_world(org, tag: str = "") -> dict:
    """One discrepancy for each route to act on, recorded by someone who is none of the
    callers under test (so no caller is refused as its creator)."""
    VariancePolicy.objects.get_or_create(org=org, category="", defaults={"units": 2, "percent": 0})
    boss = MembershipFactory(org=org, role=M).user
    store = StoreFactory(org=org, code=f"W{tag}")
    product = ProductFactory(org=org, sku=f"WORLD{tag}", default_cost=D("1.00"))
    ids = {
        name: record(org, store, product, actor=boss).pk
        for name in ("review", "approve", "reject", "detail", "bulk")
    }
    return {**ids, "store": store.pk, "product": product.pk}


# (method, path, body, least role, success status)
ENDPOINTS = [
    ("get", "", None, M, 200),
    ("get", "?status=NEW&severity=LOW,MEDIUM&store={store}&product={product}", None, M, 200),
    ("get", "/{detail}", None, M, 200),
    ("post", "/{review}/review", {"notes": "looking"}, M, 200),
    ("post", "/{approve}/approve", {"notes": "fine"}, M, 200),
    ("post", "/{reject}/reject", {"notes": "miscount"}, M, 200),
    ("post", "/bulk", {"action": "approve", "ids": ["{bulk}"]}, M, 200),
    ("get", "/policies", None, M, 200),
    ("get", "/analytics?from=2026-01-01&to=2026-12-31", None, M, 200),
]
DETAIL_ENDPOINTS = [e for e in ENDPOINTS if e[1].startswith("/{")]


def fill(template, ids: dict):
    if template is None:
        return None
    if isinstance(template, str):
        value = template.format(**ids)
        return int(value) if template.startswith("{") and value.isdigit() else value
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, ids) for v in template]
    return template


def endpoint_id(endpoint) -> str:
    return f"{endpoint[0].upper()} {endpoint[1] or '/'}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_endpoint_answers_by_role(endpoint, role, org, client_for):
    method, path, body, least_role, success = endpoint
    ids = build_world(org)
    client = client_for(role)
    before = written()
    response = call(client, method, BASE + fill(path, ids), fill(body, ids))
    if Role(role).rank >= Role(least_role).rank:
        assert response.status_code == success, response.content
    else:
        refused(response, 403, "permission_denied")
        assert written() == before


@pytest.mark.parametrize("endpoint", DETAIL_ENDPOINTS, ids=endpoint_id)
def test_endpoint_with_another_orgs_ids_answers_404_and_changes_nothing(
    endpoint, org, other_org, client_for
):
    method, path, body, *_ = endpoint
    build_world(org)
    theirs = build_world(other_org, tag="X")
    admin = client_for(A)
    before = written()
    response = call(admin, method, BASE + fill(path, theirs), fill(body, theirs))
    assert response.status_code == 404, response.content
    assert response.json() == {"code": "not_found", "detail": "Not found.", "fields": {}}
    assert written() == before


@pytest.mark.parametrize("endpoint", DETAIL_ENDPOINTS, ids=endpoint_id)
def test_endpoint_with_a_missing_or_huge_id_answers_404(endpoint, org, client_for):
    method, path, body, *_ = endpoint
    ours = build_world(org)
    for missing in (987654, 2**63, 10**30):
        ids = {k: (missing if isinstance(v, int) else v) for k, v in ours.items()}
        response = call(client_for(A), method, BASE + fill(path, ids), fill(body, ours))
        refused(response, 404, "not_found")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_endpoint_refuses_anonymous_callers(endpoint, org):
    method, path, body, *_ = endpoint
    ids = build_world(org)
    before = written()
    response = call(APIClient(), method, BASE + fill(path, ids), fill(body, ids))
    refused(response, 401, "not_authenticated")
    assert written() == before


def test_routes_answer_with_and_without_a_trailing_slash(org, client_for):
    ids = build_world(org)
    manager = client_for(M)
    for path in ("", "/", f"/{ids['detail']}", f"/{ids['detail']}/", "/policies", "/policies/"):
        assert manager.get(BASE + path).status_code == 200, path
    response = manager.post(f"{BASE}/{ids['review']}/review/", {}, format="json")
    assert response.status_code == 200, response.content


def test_the_api_root_lists_the_discrepancy_resources(client_for):
    index = client_for(V).get("/api/v1/").json()
    assert index["discrepancies"].endswith("/api/v1/discrepancies")
    assert index["discrepancies/policies"].endswith("/api/v1/discrepancies/policies")
    assert index["discrepancies/analytics"].endswith("/api/v1/discrepancies/analytics")


# --- the list -----------------------------------------------------------------------------------


def listed(client, query: str = "") -> list[int]:
    response = client.get(f"{BASE}?page_size=500{'&' + query if query else ''}")
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def mixed(org, store, policy):
    """Discrepancies of every kind the filters tell apart, in two stores."""
    second = StoreFactory(org=org, code="S2")
    flower = ProductFactory(org=org, sku="FLOWER-1", name="Blue Dream", default_cost=D("2"))
    gummy = ProductFactory(org=org, sku="GUM-7", name="Sour Gummies", classification="Edibles")
    recorder = MembershipFactory(org=org, role=M).user
    rows = {
        "small": record(org, store, flower, expected="10", actual="9", actor=recorder),
        "big": record(org, store, flower, expected="100", actual="50", actor=recorder),
        "gummy": record(
            org,
            second,
            gummy,
            expected="4",
            actual="9",
            actor=recorder,
            source=Source.POS_SHORTFALL,
            kind=Kind.THEFT,
            document_type=DocumentType.SHORTFALL,
            source_ref="till-42",
            reason="oversold at close",
        ),
    }
    old = rows["small"]
    Discrepancy.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=40)
    )
    return {**rows, "second": second, "flower": flower, "gummy_product": gummy}


def test_list_filters(org, store, mixed, client_for):
    manager = client_for(M)
    small, big, gummy = mixed["small"].pk, mixed["big"].pk, mixed["gummy"].pk
    assert listed(manager) == [gummy, big, small]  # newest first
    assert listed(manager, f"store={mixed['second'].pk}") == [gummy]
    assert listed(manager, f"product={mixed['flower'].pk}") == [big, small]
    assert listed(manager, "source=POS_SHORTFALL") == [gummy]
    assert listed(manager, "type=THEFT") == [gummy]
    assert listed(manager, "type=THEFT,DATA_ERROR") == [gummy, big, small]
    assert listed(manager, "severity=CRITICAL") == [big]
    assert listed(manager, "severity=CRITICAL&severity=LOW") == [big, small]
    assert listed(manager, "search=dream") == [big, small]
    assert listed(manager, "search=GUM-") == [gummy]
    assert listed(manager, "search=till-4") == [gummy]
    assert listed(manager, "search=oversold") == [gummy]
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert listed(manager, f"created_from={since}") == [gummy, big]
    assert listed(manager, f"created_to={since}") == [small]
    assert listed(manager, "ordering=-abs_value") == [big, gummy, small]
    assert listed(manager, "ordering=-severity") == [big, gummy, small]


def test_list_status_and_open_filters(org, store, mixed, client_for):
    manager, admin = client_for(M), client_for(A)
    small, big, gummy = mixed["small"].pk, mixed["big"].pk, mixed["gummy"].pk
    assert (
        admin.post(f"{BASE}/{big}/reject", {"notes": "recounted"}, format="json").status_code == 200
    )
    assert manager.post(f"{BASE}/{small}/review", {}, format="json").status_code == 200
    assert listed(manager, "status=REJECTED") == [big]
    assert listed(manager, "status=NEW,UNDER_REVIEW") == [gummy, small]
    assert listed(manager, "open=true") == [gummy, small]
    assert listed(manager, "open=false") == [big]


def test_list_answers_as_documented(org, store, mixed, client_for):
    checker = AnswerChecker.served()
    manager = client_for(M)
    body = checker.check(manager.get(f"{BASE}?page_size=2"), "/api/v1/discrepancies/")
    assert body["count"] == 3 and len(body["results"]) == 2
    row = next(r for r in body["results"] if r["id"] == mixed["gummy"].pk)
    assert row["sku"] == "GUM-7" and row["store"] == mixed["second"].pk
    assert (row["expected"], row["actual"], row["variance"]) == ("4.0000", "9.0000", "5.0000")
    assert row["type"] == "THEFT" and row["source"] == "POS_SHORTFALL" and row["open"] is True
    assert row["created_at"].endswith("Z")


@pytest.mark.parametrize(
    "query,field",
    [
        ("status=DONE", "status.0"),
        ("severity=huge", "severity.0"),
        ("type=COUNT,NOPE", "type.1"),
        ("source=cycle_count", "source.0"),
        ("store=abc", "store"),
        ("store=0", "store"),
        ("product=-1", "product"),
        ("created_from=yesterday", "created_from"),
        ("created_from=0001-01-01T00:00:00Z", "created_from"),
        ("created_from=2026-02-01T00:00:00Z&created_to=2026-01-01T00:00:00Z", "created_to"),
        ("open=maybe", "open"),
        ("archived=perhaps", "archived"),
        ("ordering=sku", "ordering"),
        ("search=a%00b", "search"),
    ],
)
def test_list_refuses_bad_filters_naming_the_field(org, client_for, query, field):
    refused(client_for(M).get(f"{BASE}?{query}"), 400, "invalid", field)


@pytest.mark.parametrize(
    "path",
    [
        "?colour=red",
        "?status=NEW&stauts=NEW",
        "/{detail}?verbose=1",
        "/policies?category=x",
        "/analytics?from=2026-01-01&to=2026-01-31&month=1",
    ],
)
def test_unknown_query_parameters_are_refused(org, client_for, path):
    ids = build_world(org)
    body = refused(client_for(M).get(BASE + fill(path, ids)), 400, "unknown_parameter")
    assert body["fields"]


def test_another_orgs_or_a_forbidden_store_filter_answers_404(org, other_org, store, client_for):
    theirs = build_world(other_org, tag="X")
    mine = StoreFactory(org=org, code="MINE")
    limited = client_for(M, stores=[mine])
    refused(client_for(M).get(f"{BASE}?store={theirs['store']}"), 404, "not_found")
    refused(client_for(M).get(f"{BASE}?product={theirs['product']}"), 404, "not_found")
    refused(limited.get(f"{BASE}?store={store.pk}"), 404, "not_found")
    assert limited.get(f"{BASE}?store={mine.pk}").status_code == 200


def test_lists_show_only_the_callers_organisation(org, other_org, client_for):
    ours = build_world(org)
    build_world(other_org, tag="X")
    ids = set(listed(client_for(A)))
    assert ids == {ours[k] for k in ("review", "approve", "reject", "detail", "bulk")}


def test_a_store_limited_manager_sees_and_decides_only_its_stores(org, store, mixed, client_for):
    limited = client_for(M, stores=[store])
    assert set(listed(limited)) == {mixed["small"].pk, mixed["big"].pk}
    gummy = mixed["gummy"].pk
    before = written()
    refused(limited.get(f"{BASE}/{gummy}"), 404, "not_found")
    refused(limited.post(f"{BASE}/{gummy}/approve", {}, format="json"), 404, "not_found")
    refused(limited.post(f"{BASE}/{gummy}/review", {}, format="json"), 404, "not_found")
    body = limited.post(f"{BASE}/bulk", {"action": "reject", "ids": [gummy]}, format="json").json()
    assert body["refused"] == [
        {"id": gummy, "code": "not_found", "detail": "Not found.", "fields": {}}
    ]
    assert written() == before


def _count_queries(client, path) -> int:
    client.get(path)  # the token's last use is written once a minute: not on the measured one
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(queries)


def test_list_queries_do_not_grow_with_rows(org, store, policy, client_for):
    manager = client_for(M)
    recorder = MembershipFactory(org=org, role=M).user
    product = ProductFactory(org=org, sku="Q")
    for _ in range(2):
        record(org, store, product, actor=recorder)
    few = _count_queries(manager, f"{BASE}?page_size=100")
    for n in range(20):
        other = ProductFactory(org=org, sku=f"Q{n}")
        d = record(org, StoreFactory(org=org, code=f"Q{n}"), other, actor=recorder)
        manager.post(f"{BASE}/{d.pk}/review", {}, format="json")
    assert _count_queries(manager, f"{BASE}?page_size=100") == few


def test_detail_queries_do_not_grow_with_its_timeline(org, store, policy, client_for):
    admin = client_for(A)
    product = ProductFactory(org=org, sku="T")
    d = record(org, store, product, actor=MembershipFactory(org=org, role=M).user)
    first = _count_queries(admin, f"{BASE}/{d.pk}")
    for client in (client_for(M), client_for(M), client_for(A)):
        client.post(f"{BASE}/{d.pk}/review", {}, format="json")
    admin.post(f"{BASE}/{d.pk}/approve", {"notes": "seen"}, format="json")
    assert len(admin.get(f"{BASE}/{d.pk}").json()["timeline"]) == 5
    assert _count_queries(admin, f"{BASE}/{d.pk}") == first


# --- the detail ---------------------------------------------------------------------------------


def test_detail_shows_the_count_document_ledger_rows_and_timeline(org, store, policy, client_for):
    checker = AnswerChecker.served()
    product = ProductFactory(org=org, sku="CNT", default_cost=D("1"))
    reconciler = MembershipFactory(org=org, role=M).user
    session, d = reconciled_count(org, store, product, reconciler=reconciler)
    manager = client_for(M)
    path = "/api/v1/discrepancies/{id}/"
    body = checker.check(manager.get(f"{BASE}/{d.pk}"), path)
    assert body["source"] == "CYCLE_COUNT" and body["type"] == "COUNT"
    assert (body["expected"], body["actual"], body["variance"], body["value"]) == (
        "10.0000",
        "5.0000",
        "-5.0000",
        "-5.0000",
    )
    document = body["source_document"]
    assert document["type"] == "count_variance" and document["id"] == d.document_id
    assert document["details"]["session"] == session.pk
    assert document["details"]["variance_row"] == d.document_id
    assert document["details"]["location_code"] == "SF"
    assert document["details"]["status"] == "pending"
    assert body["ledger_rows"] == [] and body["ledger_ref"] is None
    assert [e["event"] for e in body["timeline"]] == ["recorded"]
    assert body["timeline"][0]["actor"]["id"] == reconciler.pk
    assert body["timeline"][0]["after"]["status"] == "NEW"

    # approved through the API with set_counted, finalised: ADJUSTED with its ledger rows
    approved = manager.post(
        f"{BASE}/{d.pk}/approve", {"notes": "shelf was empty", "mode": "set_counted"}, format="json"
    )
    checker.check(approved, "/api/v1/discrepancies/{id}/approve/")
    assert approved.json()["status"] == "APPROVED"
    assert approved.json()["correction_mode"] == "set_counted"
    S.session_finalize(org=org, session=session, actor=reconciler)
    body = checker.check(manager.get(f"{BASE}/{d.pk}"), path)
    assert body["status"] == "ADJUSTED" and body["open"] is False
    assert body["ledger_ref"] == {
        "ref_type": "COUNT_RECONCILE",
        "ref_id": session.pk,
        "ref_line": 1,
    }
    assert [r["qty_delta"] for r in body["ledger_rows"]] == ["-5.0000"]
    assert body["source_document"]["details"]["mode"] == "set_counted"
    events = [
        (e["event"], e["before"].get("status"), e["after"].get("status")) for e in body["timeline"]
    ]
    assert events == [
        ("recorded", None, "NEW"),
        ("approved", "NEW", "APPROVED"),
        ("adjusted", "APPROVED", "ADJUSTED"),
    ]
    assert body["timeline"][1]["notes"] == "shelf was empty"
    assert body["timeline"][1]["actor"]["email"] == manager.user.email
    assert on_hand(product) == 5
    assert_invariants()


def test_detail_of_a_shortfall_shows_the_shortfall(org, store, client_for):
    from inventory.models import ShortfallOutcome, StockShortfall

    product = ProductFactory(org=org, sku="SHORT")
    shortfall = StockShortfall.objects.create(
        org=org,
        store=store,
        location=loc(store, "SF"),
        product=product,
        requested=D("3"),
        available=D("1"),
        outcome=ShortfallOutcome.choices[0][0],
        ref_type=RefType.SALE,
        ref_id=77,
        client_ref="till-9",
        occurred_at=timezone.now(),
    )
    d = record(
        org,
        store,
        product,
        expected="1",
        actual="-2",
        source=Source.POS_SHORTFALL,
        document_type=DocumentType.SHORTFALL,
        document_id=shortfall.pk,
    )
    details = client_for(M).get(f"{BASE}/{d.pk}").json()["source_document"]["details"]
    assert details["requested"] == "3.0000" and details["available"] == "1.0000"
    assert (details["ref_type"], details["ref_id"], details["client_ref"]) == ("SALE", 77, "till-9")


def test_an_archived_discrepancy_is_read_by_id_but_not_listed(org, store, client_for):
    product = ProductFactory(org=org, sku="OLD")
    d = record(org, store, product, actor=MembershipFactory(org=org, role=M).user)
    admin = client_for(A)
    assert admin.post(f"{BASE}/{d.pk}/reject", {"notes": "noise"}, format="json").status_code == 200
    archive(d.pk)
    assert d.pk not in listed(admin)
    assert listed(admin, "archived=true") == [d.pk]
    body = AnswerChecker.served().check(admin.get(f"{BASE}/{d.pk}"), "/api/v1/discrepancies/{id}/")
    assert body["archived"] is True and body["status"] == "REJECTED"
    assert [e["event"] for e in body["timeline"]] == ["recorded", "rejected", "archived"]
    before = written()
    refused(admin.post(f"{BASE}/{d.pk}/approve", {}, format="json"), 409, "invalid_state")
    assert written() == before


def archive(pk: int) -> ArchivedDiscrepancy:
    """Move one closed discrepancy to the archive as ``archive_discrepancies`` does (same id,
    same columns), for the readers' tests."""
    d = Discrepancy.objects.get(pk=pk)
    columns = {
        f.attname: getattr(d, f.attname)
        for f in Discrepancy._meta.concrete_fields
        if f.attname != "id"
    }
    with transaction.atomic():
        archived = ArchivedDiscrepancy.objects.create(id=d.pk, **columns)
        Discrepancy.objects.filter(pk=pk).delete()
    return archived


# --- decisions ----------------------------------------------------------------------------------


def test_approving_a_rejected_one_is_409_and_changes_nothing(org, store, policy, client_for):
    d = record(org, store, ProductFactory(org=org), actor=MembershipFactory(org=org, role=M).user)
    manager, other = client_for(M), client_for(M)
    assert manager.post(f"{BASE}/{d.pk}/reject", {"notes": "no"}, format="json").status_code == 200
    before = written()
    for verb in ("approve", "review"):
        body = refused(
            manager.post(f"{BASE}/{d.pk}/{verb}", {}, format="json"), 409, "invalid_state"
        )
        assert body["fields"] == {"status": ["REJECTED"]}
    refused(other.post(f"{BASE}/{d.pk}/reject", {}, format="json"), 409, "invalid_state")
    assert written() == before


def test_repeating_ones_own_decision_answers_the_row_unchanged(org, store, policy, client_for):
    d = record(org, store, ProductFactory(org=org), actor=MembershipFactory(org=org, role=M).user)
    manager = client_for(M)
    first = manager.post(f"{BASE}/{d.pk}/approve", {"notes": "ok"}, format="json")
    events = AuditEvent.objects.count()
    again = manager.post(f"{BASE}/{d.pk}/approve", {"notes": "ok"}, format="json")
    assert again.status_code == 200 and again.json() == first.json()
    assert AuditEvent.objects.count() == events


def test_an_escalated_one_needs_an_admin(org, store, policy, client_for):
    product = ProductFactory(org=org, sku="BIG")
    d = record(
        org,
        store,
        product,
        expected="100",
        actual="50",
        actor=MembershipFactory(org=org, role=M).user,
    )
    assert d.severity == "CRITICAL"
    manager, admin = client_for(M), client_for(A)
    before = written()
    body = refused(
        manager.post(f"{BASE}/{d.pk}/approve", {}, format="json"), 403, "escalation_required"
    )
    assert body["detail"]
    refused(manager.post(f"{BASE}/{d.pk}/reject", {}, format="json"), 403, "escalation_required")
    assert written() == before
    assert admin.post(f"{BASE}/{d.pk}/approve", {}, format="json").json()["status"] == "APPROVED"


def test_nobody_decides_their_own(org, store, policy, client_for):
    manager = client_for(M)
    d = record(org, store, ProductFactory(org=org), actor=manager.user)
    before = written()
    refused(manager.post(f"{BASE}/{d.pk}/approve", {}, format="json"), 403, "self_approval")
    refused(manager.post(f"{BASE}/{d.pk}/reject", {}, format="json"), 403, "self_approval")
    assert written() == before


def test_the_reconciler_does_not_decide_the_counts_variance(org, store, policy, client_for):
    manager = client_for(M)
    _, d = reconciled_count(org, store, ProductFactory(org=org, sku="R"), reconciler=manager.user)
    refused(manager.post(f"{BASE}/{d.pk}/approve", {}, format="json"), 403, "self_approval")


def test_a_lone_admin_approves_their_own_with_a_note(db, client_for):
    from tests.factories import OrganizationFactory

    lone = OrganizationFactory(slug="lone", name="Lone Shop")
    store = StoreFactory(org=lone, code="L1")
    admin = client_for(A, organisation=lone)
    d = record(lone, store, ProductFactory(org=lone), actor=admin.user)
    before = written()
    body = refused(
        admin.post(f"{BASE}/{d.pk}/approve", {"notes": "  "}, format="json"),
        400,
        "note_required",
        "notes",
    )
    assert written() == before
    answer = admin.post(
        f"{BASE}/{d.pk}/approve", {"notes": "I am the only one here"}, format="json"
    ).json()
    assert answer["status"] == "APPROVED" and answer["self_approved"] is True
    timeline = admin.get(f"{BASE}/{d.pk}").json()["timeline"]
    assert timeline[-1]["event"] == "approved" and timeline[-1]["self_approved"] is True
    assert body["code"] == "note_required"


@pytest.mark.parametrize(
    "verb,body,field",
    [
        ("approve", {"mode": "sideways"}, "mode"),
        ("approve", {"notes": "bad\u0000note"}, "notes"),
        ("approve", {"notes": "x" * 2001}, "notes"),
        ("reject", {"notes": ["not", "text"]}, "notes"),
        ("review", {"notes": 5 * "\u0007"}, "notes"),
    ],
)
def test_a_bad_decision_body_is_400_naming_the_field(org, client_for, verb, body, field):
    ids = build_world(org)
    admin = client_for(A)
    before = written()
    refused(admin.post(f"{BASE}/{ids[verb]}/{verb}", body, format="json"), 400, "invalid", field)
    assert written() == before


# --- bulk ---------------------------------------------------------------------------------------


def test_bulk_decides_what_it_may_and_lists_each_refusal(org, other_org, store, policy, client_for):
    recorder = MembershipFactory(org=org, role=M).user
    product = ProductFactory(org=org, sku="BULK")
    manager = client_for(M)
    fine = [record(org, store, product, actor=recorder).pk for _ in range(3)]
    escalated = record(org, store, product, expected="100", actual="40", actor=recorder).pk
    rejected = record(org, store, product, actor=recorder).pk
    client_for(A).post(f"{BASE}/{rejected}/reject", {}, format="json")
    own = record(org, store, product, actor=manager.user).pk
    theirs = build_world(other_org, tag="X")["approve"]
    ids = [fine[0], escalated, rejected, own, theirs, 999999, fine[1], fine[2], fine[1]]
    response = manager.post(
        f"{BASE}/bulk", {"action": "approve", "ids": ids, "notes": "weekly review"}, format="json"
    )
    body = AnswerChecker.served().check(response, "/api/v1/discrepancies/bulk/")
    assert body["decided"] == [{"id": pk, "status": "APPROVED"} for pk in fine]
    assert [(r["id"], r["code"]) for r in body["refused"]] == [
        (escalated, "escalation_required"),
        (rejected, "invalid_state"),
        (own, "self_approval"),
        (theirs, "not_found"),
        (999999, "not_found"),
    ]
    assert body["unchanged"] == []
    assert set(Discrepancy.objects.filter(status="APPROVED").values_list("pk", flat=True)) == set(
        fine
    )
    assert Discrepancy.objects.get(pk=escalated).status == "NEW"
    assert Discrepancy.objects.get(pk=fine[0]).resolution_notes == "weekly review"
    again = manager.post(f"{BASE}/bulk", {"action": "approve", "ids": fine}, format="json").json()
    assert again["unchanged"] == body["decided"] and again["decided"] == []


def test_bulk_is_one_transaction(org, store, policy, client_for, monkeypatch):
    """A failure after some rows were decided leaves every row as it was."""
    from discrepancies.services import decisions

    recorder = MembershipFactory(org=org, role=M).user
    product = ProductFactory(org=org, sku="TX")
    ids = [record(org, store, product, actor=recorder).pk for _ in range(3)]
    client = client_for(M)
    before = written()

    def broken(**kwargs):
        raise RuntimeError("audit is down")

    monkeypatch.setattr(decisions, "audit_record_many", broken)
    client.raise_request_exception = False
    response = client.post(f"{BASE}/bulk", {"action": "approve", "ids": ids}, format="json")
    assert response.status_code == 500
    assert written() == before


@pytest.mark.parametrize(
    "body,field",
    [
        ({"action": "approve"}, "ids"),
        ({"action": "approve", "ids": []}, "ids"),
        ({"action": "delete", "ids": [1]}, "action"),
        ({"action": "approve", "ids": ["one"]}, "ids.0"),
        ({"action": "approve", "ids": [0]}, "ids.0"),
        ({"action": "approve", "ids": [2**63]}, "ids.0"),
        ({"action": "approve", "ids": list(range(1, 5003))}, "ids"),
        ({"action": "reject", "ids": [1], "mode": "set_counted"}, "mode"),
        ({"action": "approve", "ids": [1], "mode": "both"}, "mode"),
        ({"action": "approve", "ids": [1], "notes": "a\u0000b"}, "notes"),
        ({"ids": [1]}, "action"),
    ],
)
def test_a_bad_bulk_is_refused_whole(org, client_for, body, field):
    build_world(org)
    manager = client_for(M)
    before = written()
    refused(manager.post(f"{BASE}/bulk", body, format="json"), 400, "invalid", field)
    assert written() == before


# --- a count's shortage is posted exactly once ---------------------------------------------------


@pytest.mark.parametrize("how", ["approve", "bulk", "count_endpoint"])
def test_a_counts_shortage_approved_through_the_api_posts_once(org, store, policy, client_for, how):
    product = ProductFactory(org=org, sku=f"ONCE-{how}", default_cost=D("1"))
    reconciler = MembershipFactory(org=org, role=M).user
    session, d = reconciled_count(org, store, product, reconciler=reconciler)
    manager = client_for(M)
    for _ in range(2):  # a retried approval posts nothing more
        if how == "approve":
            response = manager.post(f"{BASE}/{d.pk}/approve", {}, format="json")
        elif how == "bulk":
            response = manager.post(
                f"{BASE}/bulk", {"action": "approve", "ids": [d.pk]}, format="json"
            )
        else:
            row = VarianceRow.objects.get(discrepancy_id=d.pk)
            response = manager.post(
                f"/api/v1/counts/sessions/{session.pk}/variance/{row.pk}/approve", {}, format="json"
            )
        assert response.status_code == 200, response.content
    assert StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).count() == 0
    finalise = f"/api/v1/counts/sessions/{session.pk}/finalize"
    assert client_for(M).post(finalise).status_code == 200
    assert client_for(M).post(finalise).status_code == 200  # twice
    rows = StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE, ref_id=session.pk)
    assert [r.qty_delta for r in rows] == [D("-5")]
    d.refresh_from_db()
    assert d.status == Status.ADJUSTED and d.posted_quantity == D("-5")
    assert (d.ledger_ref_type, d.ledger_ref_id) == ("COUNT_RECONCILE", session.pk)
    assert on_hand(product) == 5
    assert_invariants()
