"""The audit trail: every changing service records one event (who, which device token, what,
before and after, the request id) in its own transaction; admins read it at ``/api/v1/audit``
and in the admin. The counts' steps are covered in ``tests/counts/test_counts_audit.py``."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Max
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from core.errors import Conflict
from inventory.audit.selectors import audit_event_list, audit_event_timeline
from inventory.audit.services import (
    audit_diff,
    audit_record,
    audit_record_many,
    audit_snapshot,
    json_safe,
)
from inventory.catalog import services as catalog
from inventory.models import (
    ApiToken,
    AuditAction,
    AuditEvent,
    Location,
    Membership,
    Role,
    Store,
)
from inventory.tenancy import services as org_services
from inventory.tenancy import tokens
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.response_schema import AnswerChecker

URL = "/api/v1/audit"
RID = "req-audit-42"
A = AuditAction
PASSWORD = "correct horse battery"


def last_id() -> int:
    return AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0


def events_after(start: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(pk__gt=start).order_by("id"))


def only_event(start: int) -> AuditEvent:
    new = events_after(start)
    assert len(new) == 1, [(e.action, e.object_type, e.object_id) for e in new]
    return new[0]


def token_of(client: APIClient) -> ApiToken:
    """The token the client signs its requests with (its person's first)."""
    return ApiToken.objects.filter(user=client.user).order_by("pk").first()


# --- every audited write, through the API ------------------------------------------------------


class World:
    """What the write cases act on: an admin's token client, a store, a member, a product."""

    def __init__(self, org, client_for):
        self.org = org
        self.client = client_for(Role.ADMIN)
        self.store = StoreFactory(org=org, code="S1", name="First")
        self.sf = Location.objects.get(store=self.store, code="SF")
        self.member = MembershipFactory(org=org, role=Role.OPERATOR)
        self.product = ProductFactory(org=org, sku="P-1", name="Gummies")
        self.other_token, _ = tokens.api_token_create(org=org, user=self.member.user, name="T9")


@pytest.fixture
def world(org, client_for):
    return World(org, client_for)


def _org_patch(w):
    return "patch", "/api/v1/org", {"escalation_threshold": "750.00"}


def _store_post(w):
    return "post", "/api/v1/stores", {"code": "S9", "name": "Ninth"}


def _store_patch(w):
    return "patch", f"/api/v1/stores/{w.store.pk}", {"name": "Renamed"}


def _location_post(w):
    body = {"store": w.store.pk, "code": "VLT", "name": "Vault", "kind": "vault"}
    return "post", "/api/v1/locations", body


def _location_patch(w):
    return "patch", f"/api/v1/locations/{w.sf.pk}", {"sellable": False}


def _membership_post(w):
    return "post", "/api/v1/memberships", {"email": "new@acme.example", "role": "viewer"}


def _membership_patch(w):
    return "patch", f"/api/v1/memberships/{w.member.pk}", {"role": "manager"}


def _membership_delete(w):
    tokens.api_token_revoke(token=w.other_token)  # so the removal revokes nothing more
    return "delete", f"/api/v1/memberships/{w.member.pk}", None


def _token_post(w):
    return "post", "/api/v1/tokens", {"name": "Tablet 2"}


def _token_revoke(w):
    return "post", f"/api/v1/tokens/{w.other_token.pk}/revoke", {}


def _product_post(w):
    return "post", "/api/v1/products", {"sku": "NEW-1", "name": "New one", "unit": "each"}


def _product_patch(w):
    return "patch", f"/api/v1/products/{w.product.pk}", {"name": "Sour gummies"}


def _product_delete(w):
    return "delete", f"/api/v1/products/{w.product.pk}", None


def _products_bulk(w):
    rows = [{"sku": "B-1", "name": "Bulk one"}, {"sku": "P-1", "name": "Gummies v2"}]
    return "post", "/api/v1/products/bulk", {"products": rows}


def _classification_post(w):
    body = {"classification": "Rosin", "category": "Extracts", "subcategory": "Rosin"}
    return "post", "/api/v1/classifications", body


# request, action, the object (model, id getter), expected before, expected after (subset)
WRITES = {
    "org settings": (
        _org_patch,
        A.ORG_SETTINGS_CHANGED,
        lambda w, body: ("inventory.organization", w.org.pk, None),
        {"escalation_threshold": "500.00"},
        {"escalation_threshold": "750.00"},
    ),
    "store create": (
        _store_post,
        A.STORE_CREATED,
        lambda w, body: ("inventory.store", body["id"], body["id"]),
        {},
        {
            "code": "S9",
            "name": "Ninth",
            "time_zone": "UTC",
            "is_active": True,
            "locations": ["SF", "BR"],
        },
    ),
    "store update": (
        _store_patch,
        A.STORE_UPDATED,
        lambda w, body: ("inventory.store", w.store.pk, w.store.pk),
        {"name": "First"},
        {"name": "Renamed"},
    ),
    "location create": (
        _location_post,
        A.LOCATION_CREATED,
        lambda w, body: ("inventory.location", body["id"], w.store.pk),
        {},
        {"store": "<store>", "code": "VLT", "name": "Vault", "kind": "vault"},
    ),
    "location update": (
        _location_patch,
        A.LOCATION_UPDATED,
        lambda w, body: ("inventory.location", w.sf.pk, w.store.pk),
        {"sellable": True},
        {"sellable": False},
    ),
    "membership create": (
        _membership_post,
        A.MEMBERSHIP_CREATED,
        lambda w, body: ("inventory.membership", body["id"], None),
        {},
        {"email": "new@acme.example", "role": "viewer", "is_active": True, "stores": []},
    ),
    "membership role": (
        _membership_patch,
        A.MEMBERSHIP_ROLE_CHANGED,
        lambda w, body: ("inventory.membership", w.member.pk, None),
        {"role": "operator"},
        {"role": "manager"},
    ),
    "membership removal": (
        _membership_delete,
        A.MEMBERSHIP_DEACTIVATED,
        lambda w, body: ("inventory.membership", w.member.pk, None),
        {"is_active": True},
        {"is_active": False},
    ),
    "token issue": (
        _token_post,
        A.TOKEN_ISSUED,
        lambda w, body: ("inventory.apitoken", body["id"], None),
        {},
        {"name": "Tablet 2", "user": "<caller>"},
    ),
    "token revoke": (
        _token_revoke,
        A.TOKEN_REVOKED,
        lambda w, body: ("inventory.apitoken", w.other_token.pk, None),
        {"revoked_at": None},
        {},
    ),
    "product create": (
        _product_post,
        A.PRODUCT_CREATED,
        lambda w, body: ("inventory.product", body["id"], None),
        {},
        {"sku": "NEW-1", "name": "New one", "unit": "each"},
    ),
    "product update": (
        _product_patch,
        A.PRODUCT_UPDATED,
        lambda w, body: ("inventory.product", w.product.pk, None),
        {"name": "Gummies"},
        {"name": "Sour gummies"},
    ),
    "product archive": (
        _product_delete,
        A.PRODUCT_ARCHIVED,
        lambda w, body: ("inventory.product", w.product.pk, None),
        {"is_active": True},
        {"is_active": False},
    ),
    "product import": (
        _products_bulk,
        A.PRODUCTS_BULK_UPSERTED,
        lambda w, body: ("inventory.product", None, None),
        {},
        {"created": 1, "updated": 1, "updated_ids": "<product>"},
    ),
    "classification": (
        _classification_post,
        A.CLASSIFICATION_SAVED,
        lambda w, body: ("inventory.classificationmapping", body["id"], None),
        {},
        {"classification": "Rosin", "category": "Extracts", "subcategory": "Rosin"},
    ),
}


@pytest.mark.parametrize("case", WRITES, ids=list(WRITES))
def test_each_audited_write_records_one_event_with_person_token_and_request(world, case):
    make_request, action, target, before, after = WRITES[case]
    method, url, body = make_request(world)
    start = last_id()
    client = world.client
    call = getattr(client, method)
    response = (
        call(url, HTTP_X_REQUEST_ID=RID)
        if body is None
        else call(url, body, format="json", HTTP_X_REQUEST_ID=RID)
    )
    assert response.status_code in (200, 201, 204), response.content
    assert response["X-Request-ID"] == RID
    answer = response.json() if response.content else {}
    event = only_event(start)
    object_type, object_id, store_id = target(world, answer)
    assert (event.action, event.object_type, event.object_id) == (action, object_type, object_id)
    assert event.store_id == store_id
    assert (event.org_id, event.actor_id, event.token_id) == (
        world.org.pk,
        client.user.pk,
        token_of(client).pk,
    )
    assert event.request_id == RID
    placeholders = {
        "<store>": world.store.pk,
        "<caller>": client.user.pk,
        "<product>": [world.product.pk],
    }
    expected_after = {
        k: placeholders.get(v, v) if isinstance(v, str) else v for k, v in after.items()
    }
    assert {k: event.after.get(k) for k in expected_after} == expected_after
    assert event.before == before
    assert abs(event.occurred_at - timezone.now()) < datetime.timedelta(minutes=1)


def test_a_revocation_records_the_moment_in_utc_with_z(world):
    start = last_id()
    tokens.api_token_revoke(token=world.other_token, actor=world.client.user)
    event = only_event(start)
    world.other_token.refresh_from_db()
    assert event.after == {"revoked_at": json_safe(world.other_token.revoked_at)}
    assert event.after["revoked_at"].endswith("Z")


def test_an_issued_token_is_recorded_without_its_key(org, client_for):
    client = client_for(Role.ADMIN)
    start = last_id()
    body = client.post("/api/v1/tokens", {"name": "Tablet 5"}, format="json").json()
    event = only_event(start)
    assert body["key"] not in str(event.after) and body["key"][:8] == event.after["prefix"]
    assert ApiToken.objects.get(pk=body["id"]).key_digest not in str(event.after)


def test_removing_a_member_with_tokens_also_records_their_revocation(world):
    start = last_id()
    response = world.client.delete(f"/api/v1/memberships/{world.member.pk}")
    assert response.status_code == 204
    removal, revocation = events_after(start)
    assert removal.action == A.MEMBERSHIP_DEACTIVATED
    assert (revocation.action, revocation.object_type, revocation.object_id) == (
        A.TOKENS_REVOKED_FOR_MEMBER,
        "auth.user",
        world.member.user_id,
    )
    assert revocation.after == {"revoked": 1}
    assert revocation.actor_id == removal.actor_id == world.client.user.pk


def test_a_store_change_records_old_and_new_store_lists(org, store, other_store):
    second = StoreFactory(org=org, code="S2")
    membership = MembershipFactory(org=org, role=Role.OPERATOR, stores=[store])
    admin = MembershipFactory(org=org, role=Role.ADMIN).user
    start = last_id()
    org_services.membership_update(
        org=org, membership=membership, changes={"stores": [second, store]}, actor=admin
    )
    event = only_event(start)
    assert event.action == A.MEMBERSHIP_UPDATED
    assert event.before == {"stores": [store.pk]}
    assert event.after == {"stores": sorted([store.pk, second.pk])}


def test_re_adding_a_removed_member_is_a_reactivation(org):
    admin = MembershipFactory(org=org, role=Role.ADMIN).user
    membership = org_services.membership_create(
        org=org, email="back@acme.example", role=Role.OPERATOR, actor=admin
    )
    org_services.membership_update(
        org=org, membership=membership, changes={"is_active": False}, actor=admin
    )
    start = last_id()
    org_services.membership_create(
        org=org, email="back@acme.example", role=Role.MANAGER, actor=admin
    )
    event = only_event(start)
    assert event.action == A.MEMBERSHIP_REACTIVATED
    assert event.before == {"role": "operator", "is_active": False}
    assert {k: event.after[k] for k in ("role", "is_active")} == {
        "role": "manager",
        "is_active": True,
    }


def test_device_sign_in_records_the_person_issuing_their_own_token(org):
    member = MembershipFactory(org=org, role=Role.OPERATOR)
    start = last_id()
    response = APIClient().post(
        "/api/v1/auth/token",
        {"email": member.user.email, "password": PASSWORD, "device": "Till 1"},
        format="json",
        HTTP_X_REQUEST_ID=RID,
    )
    assert response.status_code == 201, response.content
    event = only_event(start)
    assert (event.action, event.actor_id, event.token_id) == (A.TOKEN_ISSUED, member.user_id, None)
    assert event.request_id == RID


def test_logout_records_the_revocation_of_the_calling_token(org, client_for):
    client = client_for(Role.VIEWER)
    token = token_of(client)
    start = last_id()
    assert client.post("/api/v1/auth/logout").status_code == 204
    event = only_event(start)
    assert (event.action, event.object_id, event.actor_id, event.token_id) == (
        A.TOKEN_REVOKED,
        token.pk,
        client.user.pk,
        token.pk,
    )


def test_system_changes_record_no_person_no_token_no_request(org):
    start = last_id()
    store = org_services.store_create(org=org, code="SYS", name="By command")
    event = only_event(start)
    assert (event.action, event.actor_id, event.token_id, event.request_id) == (
        A.STORE_CREATED,
        None,
        None,
        "",
    )
    assert event.store_id == store.pk


def test_creating_an_organisation_is_recorded_in_it(db):
    start = last_id()
    org = org_services.org_create(slug="newco", name="New Co", negative_stock_mode="warn")
    event = only_event(start)
    assert (event.org_id, event.action, event.object_id) == (org.pk, A.ORG_CREATED, org.pk)
    assert event.after == {
        "slug": "newco",
        "name": "New Co",
        "time_zone": "UTC",
        "negative_stock_mode": "warn",
    }


def test_a_change_that_changes_nothing_records_nothing(org, store):
    admin = MembershipFactory(org=org, role=Role.ADMIN).user
    product = ProductFactory(org=org, name="Same")
    start = last_id()
    org_services.store_update(org=org, store=store, changes={"name": store.name}, actor=admin)
    org_services.org_update_settings(
        org=org, changes={"escalation_threshold": Decimal("500")}, actor=admin
    )
    catalog.product_update(org=org, product=product, data={"name": "Same"}, actor=admin)
    tokens.api_tokens_revoke_for_member(org=org, user=admin, actor=admin)  # holds none
    assert events_after(start) == []


def test_refused_changes_record_nothing(org, store, client_for):
    admin = client_for(Role.ADMIN)
    ProductFactory(org=org, sku="TAKEN")
    start = last_id()
    refused = [
        admin.post("/api/v1/stores", {"code": "S1", "name": "Twin"}, format="json"),
        admin.post("/api/v1/products", {"sku": "TAKEN", "name": "Twin"}, format="json"),
        admin.delete(f"/api/v1/memberships/{admin.membership.pk}"),  # the last admin
        admin.post(
            "/api/v1/products/bulk",
            {"products": [{"sku": "OK-1", "name": "fine"}, {"sku": "OK-1", "name": "again"}]},
            format="json",
        ),
    ]
    assert [r.status_code for r in refused] == [409, 409, 409, 400]
    with pytest.raises(Conflict):
        catalog.product_create(org=org, data={"sku": "TAKEN", "name": "x"}, actor=admin.user)
    assert events_after(start) == []


def test_a_change_rolled_back_by_its_caller_leaves_no_event(org, store):
    admin = MembershipFactory(org=org, role=Role.ADMIN).user
    start = last_id()
    with pytest.raises(RuntimeError), transaction.atomic():
        org_services.store_update(org=org, store=store, changes={"name": "Gone"}, actor=admin)
        assert len(events_after(start)) == 1  # written in the caller's transaction...
        raise RuntimeError("the caller fails afterwards")
    assert events_after(start) == []  # ...and gone with it
    store.refresh_from_db()
    assert store.name != "Gone"


# --- the helpers -------------------------------------------------------------------------------


def test_json_safe_writes_decimals_as_strings_and_times_in_utc_with_z():
    toronto = datetime.timezone(datetime.timedelta(hours=-5))
    moment = datetime.datetime(2026, 11, 30, 13, 5, tzinfo=toronto)
    assert json_safe(
        {
            "cost": Decimal("2.5000"),
            "at": moment,
            "day": datetime.date(2027, 1, 2),
            "ids": {3, 1},
            "nested": [Decimal("1"), None, True],
            "role": Role.ADMIN,
        }
    ) == {
        "cost": "2.5000",
        "at": "2026-11-30T18:05:00Z",
        "day": "2027-01-02",
        "ids": [1, 3],
        "nested": ["1", None, True],
        "role": "admin",
    }


def test_diff_keeps_only_changed_fields_and_equal_decimals_are_equal(org, store):
    before = audit_snapshot(org, ["escalation_threshold", "name", "time_zone"])
    org.escalation_threshold = Decimal("500")  # 500.00 in the database: the same value
    org.name = "Renamed"
    assert audit_diff(before, audit_snapshot(org, before)) == (
        {"name": "Acme Cannabis"},
        {"name": "Renamed"},
    )
    location = Location.objects.get(store=store, code="SF")
    assert audit_snapshot(location, ["store", "stores", "nope"]) == {"store": store.pk}


def test_timeline_reads_one_objects_events_oldest_first(org, store):
    admin = MembershipFactory(org=org, role=Role.ADMIN).user
    for name in ("One", "Two", "Three"):
        org_services.store_update(org=org, store=store, changes={"name": name}, actor=admin)
    StoreFactory(org=org, code="OTHER")
    timeline = list(audit_event_timeline(org=org, obj=store))
    assert [e.action for e in timeline] == [A.STORE_CREATED] + [A.STORE_UPDATED] * 3
    assert [e.after.get("name") for e in timeline[1:]] == ["One", "Two", "Three"]


def test_audit_record_takes_a_row_by_model_and_id(org):
    with transaction.atomic():
        event = audit_record(
            org=org.pk,
            action="tokens.revoked_for_member",
            obj=(Membership, 77),
            after={"revoked": 2},
            actor=None,
        )
    assert (event.object_type, event.object_id, event.org_id) == (
        "inventory.membership",
        77,
        org.pk,
    )


# --- GET /api/v1/audit -------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.MANAGER, Role.ADMIN])
def test_only_admins_read_the_audit_trail(org, client_for, role):
    response = client_for(role).get(URL)
    if role == Role.ADMIN:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"


def test_the_trail_is_listed_in_the_api_root(admin_client):
    assert admin_client.get("/api/v1/").json()["audit"].endswith("/api/v1/audit")


def test_another_organisations_events_are_never_listed(org, other_org, client_for):
    StoreFactory(org=other_org, code="THEIRS")
    rival = client_for(Role.ADMIN, organisation=other_org)
    StoreFactory(org=org, code="MINE")
    mine = client_for(Role.ADMIN)
    listed = mine.get(URL, {"page_size": 1000}).json()["results"]
    assert listed and {e["id"] for e in listed} == set(
        AuditEvent.objects.filter(org=org).values_list("id", flat=True)
    )
    theirs = rival.get(URL, {"page_size": 1000}).json()["results"]
    assert not {e["id"] for e in listed} & {e["id"] for e in theirs}
    assert mine.get(URL, {"store": Store.objects.get(code="THEIRS").pk}).status_code == 404


def test_an_event_is_answered_with_every_field(world):
    world.client.patch(
        f"/api/v1/stores/{world.store.pk}",
        {"name": "Renamed"},
        format="json",
        HTTP_X_REQUEST_ID=RID,
    )
    event = AuditEvent.objects.filter(action=A.STORE_UPDATED).get()
    body = world.client.get(URL, {"action": "store.updated"}).json()
    assert body["results"] == [
        {
            "id": event.pk,
            "occurred_at": json_safe(event.occurred_at),
            "action": "store.updated",
            "object_type": "inventory.store",
            "object_id": world.store.pk,
            "store": world.store.pk,
            "actor": world.client.user.pk,
            "actor_email": world.client.user.email,
            "token": token_of(world.client).pk,
            "token_name": "test device",
            "before": {"name": "First"},
            "after": {"name": "Renamed"},
            "request_id": RID,
        }
    ]
    assert body["results"][0]["occurred_at"].endswith("Z")
    assert set(body) == {"next", "previous", "results"}


def test_the_answer_is_exactly_the_documented_one(world):
    """Events of every kind (a bulk one without an object, the system's without a person or
    token) validate strictly against ``/api/schema/``, first page and next."""
    world.client.post(
        "/api/v1/products/bulk", {"products": [{"sku": "B-1", "name": "b"}]}, format="json"
    )
    world.client.patch(f"/api/v1/stores/{world.store.pk}", {"name": "R"}, format="json")
    checker = AnswerChecker.served()
    first = world.client.get(URL, {"page_size": 3})
    body = checker.check(first, "/api/v1/audit/")
    assert body["next"] and len(body["results"]) == 3
    checker.check(world.client.get(body["next"]), "/api/v1/audit/")
    everything = checker.check(world.client.get(URL, {"page_size": 1000}), "/api/v1/audit/")
    kinds = {(e["object_id"] is None, e["actor"] is None) for e in everything["results"]}
    assert {(True, False), (False, True), (False, False)} <= kinds


def test_filters_narrow_the_trail(world):
    w = world
    manager = MembershipFactory(org=w.org, role=Role.MANAGER).user
    catalog.product_update(org=w.org, product=w.product, data={"name": "By M"}, actor=manager)
    org_services.store_update(org=w.org, store=w.store, changes={"name": "S"}, actor=manager)
    second = StoreFactory(org=w.org, code="S2")
    AuditEvent.objects.filter(action=A.PRODUCT_CREATED).update(
        occurred_at=timezone.now() - datetime.timedelta(days=3)
    )

    def ids(**params) -> list[int]:
        response = w.client.get(URL, {"page_size": 1000, **params})
        assert response.status_code == 200, response.content
        return [e["id"] for e in response.json()["results"]]

    def expected(**lookup) -> list[int]:
        rows = AuditEvent.objects.filter(org=w.org, **lookup).order_by("-id")
        return list(rows.values_list("id", flat=True))

    assert ids(action="product.updated") == expected(action=A.PRODUCT_UPDATED) != []
    assert ids(object_type="inventory.product", object_id=w.product.pk) == expected(
        object_type="inventory.product", object_id=w.product.pk
    )
    assert len(ids(object_type="inventory.product", object_id=w.product.pk)) == 2
    assert ids(actor=manager.pk) == expected(actor=manager) != []
    assert ids(store=second.pk) == expected(store=second) != []
    yesterday = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert ids(occurred_to=yesterday) == expected(action=A.PRODUCT_CREATED)
    assert ids(occurred_from=yesterday, action="product.created") == []


def test_the_trail_pages_by_cursor_newest_first(org, store, client_for):
    client = client_for(Role.ADMIN)
    admin = client.user
    for n in range(5):
        org_services.store_update(org=org, store=store, changes={"name": f"N{n}"}, actor=admin)
    seen, url, params = [], URL, {"page_size": 2, "action": "store.updated"}
    while url:
        body = client.get(url, params).json()
        seen += [e["after"]["name"] for e in body["results"]]
        url, params = body["next"], None
    assert seen == ["N4", "N3", "N2", "N1", "N0"]


@pytest.mark.parametrize(
    "params, field, code",
    [
        ({"cursor": "not-a-cursor"}, "cursor", "invalid"),
        ({"cursor": "cD1hYmM="}, "cursor", "invalid"),  # position "abc"
        ({"action": "store.exploded"}, "action", "invalid"),
        ({"object_type": "inventory.store", "object_id": "seven"}, "object_id", "invalid"),
        ({"object_id": "7"}, "object_id", "invalid"),
        ({"actor": "0"}, "actor", "invalid"),
        ({"store": "-1"}, "store", "invalid"),
        ({"occurred_from": "yesterday"}, "occurred_from", "invalid"),
        ({"occurred_from": "1999-12-31T00:00:00Z"}, "occurred_from", "invalid"),
        (
            {"occurred_from": "2026-02-02T00:00:00Z", "occurred_to": "2026-02-01T00:00:00Z"},
            "occurred_to",
            "invalid",
        ),
        ({"object_type": "inventory.store\u200b"}, "object_type", "invalid"),
        ({"user": "1"}, "user", "unknown_parameter"),
    ],
)
def test_bad_query_values_are_400_naming_the_field(admin_client, params, field, code):
    response = admin_client.get(URL, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code and field in body["fields"], body


def test_a_store_limited_admin_reads_its_stores_and_organisation_wide_events(
    org, store, client_for
):
    other = StoreFactory(org=org, code="S2")
    limited = client_for(Role.ADMIN, stores=[store])
    admin = MembershipFactory(org=org, role=Role.ADMIN).user
    org_services.store_update(org=org, store=other, changes={"name": "Hidden"}, actor=admin)
    org_services.store_update(org=org, store=store, changes={"name": "Shown"}, actor=admin)
    listed = limited.get(URL, {"page_size": 1000}).json()["results"]
    assert {e["store"] for e in listed} == {store.pk, None}
    assert {e["after"].get("name") for e in listed if e["action"] == "store.updated"} == {"Shown"}
    assert any(e["action"] == "token.issued" for e in listed)  # organisation-wide
    assert limited.get(URL, {"store": other.pk}).status_code == 404
    assert limited.get(URL, {"store": store.pk}).status_code == 200


def test_listing_costs_the_same_queries_for_3_or_60_events(org, store, client_for):
    client = client_for(Role.ADMIN)
    client.get(URL)  # the token's last-use stamp, once a minute

    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(URL, {"page_size": 100})
        assert response.status_code == 200
        return len(queries)

    few = cost()
    admin = client.user
    for n in range(20):
        org_services.store_update(org=org, store=store, changes={"name": f"N{n}"}, actor=admin)
        ProductFactory(org=org)  # no actor: the system
        tokens.api_token_create(org=org, user=admin, name=f"T{n}", actor=admin)
    assert AuditEvent.objects.filter(org=org).count() > 60
    # token, membership, its stores, one page of events with their person and token
    assert cost() == few == 4


# --- the admin ---------------------------------------------------------------------------------


def _admin_site_client(membership) -> Client:
    membership.user.set_password(PASSWORD)
    membership.user.save()
    client = Client()
    client.force_login(membership.user)
    return client


def test_admin_shows_the_trail_read_only_to_admins(org, store):
    admin = MembershipFactory(org=org, role=Role.ADMIN)
    org_services.store_update(org=org, store=store, changes={"name": "Seen"}, actor=admin.user)
    event = AuditEvent.objects.get(action=A.STORE_UPDATED)
    client = _admin_site_client(admin)
    listing = client.get("/admin/inventory/auditevent/")
    assert listing.status_code == 200 and "store.updated" in listing.content.decode()
    found = client.get("/admin/inventory/auditevent/", {"q": str(store.pk)}).content.decode()
    assert f"/admin/inventory/auditevent/{event.pk}/change/" in found
    assert client.get("/admin/inventory/auditevent/", {"q": "not-a-number"}).status_code == 200
    detail = client.get(f"/admin/inventory/auditevent/{event.pk}/change/")
    assert detail.status_code == 200 and "Seen" in detail.content.decode()
    change = client.post(f"/admin/inventory/auditevent/{event.pk}/change/", {"action": "x"})
    assert change.status_code == 403
    assert client.get("/admin/inventory/auditevent/add/").status_code == 403
    assert client.post(f"/admin/inventory/auditevent/{event.pk}/delete/").status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == A.STORE_UPDATED


def test_admin_trail_is_not_for_managers(org):
    client = _admin_site_client(MembershipFactory(org=org, role=Role.MANAGER))
    assert client.get("/admin/inventory/auditevent/").status_code == 403


def test_admin_trail_of_a_store_limited_admin(org, store):
    other = StoreFactory(org=org, code="S2")
    limited = MembershipFactory(org=org, role=Role.ADMIN, stores=[store])
    org_services.store_update(org=org, store=other, changes={"name": "Hidden"}, actor=None)
    hidden = AuditEvent.objects.get(action=A.STORE_UPDATED)
    client = _admin_site_client(limited)
    assert client.get(f"/admin/inventory/auditevent/{hidden.pk}/change/").status_code == 302


def test_selector_limits_a_store_limited_reader(org, store):
    other = StoreFactory(org=org, code="S2")
    events = audit_event_list(org=org, store_ids=frozenset({store.pk}))
    stores = set(events.values_list("store_id", flat=True))
    assert other.pk not in stores and stores == {store.pk, None}


@pytest.mark.parametrize("n", [3, 250])
def test_many_events_in_one_statement_read_as_one_at_a_time(org, n):
    """Below and above the size from which audit_record_many sends arrays: the same rows."""
    store = StoreFactory(org=org)
    actor = MembershipFactory(org=org).user
    products = [ProductFactory(org=org) for _ in range(n)]
    start = last_id()
    with CaptureQueriesContext(connection) as queries:
        audit_record_many(
            org=org,
            action=AuditAction.PRODUCT_UPDATED,
            changes=[
                (p, {"qty": Decimal("1.5"), "at": timezone.now()}, {"name": f"n{i}"}, store)
                for i, p in enumerate(products)
            ],
            actor=actor,
        )
    assert len(queries) == 1
    events = events_after(start)
    assert [e.object_id for e in events] == [p.pk for p in products]
    first = events[0]
    assert (first.object_type, first.store_id, first.actor_id, first.token_id) == (
        "inventory.product",
        store.pk,
        actor.pk,
        None,
    )
    assert first.action == AuditAction.PRODUCT_UPDATED
    assert first.before["qty"] == "1.5" and first.before["at"].endswith("Z")
    assert [e.after for e in events] == [{"name": f"n{i}"} for i in range(n)]
    assert len({e.occurred_at for e in events}) == 1
    assert AuditEvent._meta.db_table == "inventory_auditevent"  # the array INSERT names it
