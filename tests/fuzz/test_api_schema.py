"""Schema fuzzing: Schemathesis sends generated requests for every operation of the OpenAPI
description (``/api/schema/``) to the WSGI application, in-process, as an admin, a manager, an
operator and a viewer, and checks that no answer is a server error and that every answer's
status code and body are the ones the description documents — and that no documented query
parameter is refused as unknown.

How it stays deterministic and bounded: Hypothesis runs derandomized (a fixed seed derived from
each test), 20 requests per operation and role (the ``FUZZ_EXAMPLES`` environment variable
raises it for a longer local run), no shrinking, no example database. A failing check does not
stop the run: every (role, operation, check) that failed is listed at the end with the request
that showed it.

What it runs against: one seeded organisation per role (two stores, their rooms, products with
barcodes, lots, expiry dates and stock, a sale, a count in progress with an open pass, a
reconciled count with variance rows, an unresolved scan, the four members and their tokens),
inside the test's transaction, so the writes the fuzzer makes stay there. Path parameters, and
the ids that request bodies and filters name (``store``, ``location``, ``product``, ``sku``...),
are drawn from the seeded objects plus one id that exists nowhere, so requests reach real
objects and the 404 path alike; everything else is what Schemathesis generates from the schema.

Excluded on purpose — self-inflicted changes that would end the run's own session rather than
exercise the API (each is covered by its own tests in tests/inventory/test_api_access.py,
test_api_inputs.py and test_tokens.py):

- ``POST /auth/logout`` revokes the very token the fuzzer signs with;
- ``POST /tokens/{id}/revoke`` is never given the caller's own token id;
- ``PATCH``/``PUT``/``DELETE /memberships/{id}`` are never given the caller's own membership
  (an admin demoting or deactivating itself would turn the rest of its run into 403s);
- ``POST /auth/token`` signs in with generated credentials only (every attempt is refused).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import os
import time
from collections import defaultdict
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from inventory.models import (
    ApiToken,
    ClassificationMapping,
    Location,
    Membership,
    Product,
    Role,
    Sale,
)
from inventory.tenancy.tokens import api_token_create
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    ProductFactory,
    StoreFactory,
    make_gtin,
)
from tests.stock_helpers import receive

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

ROLES = [Role.ADMIN, Role.MANAGER, Role.OPERATOR, Role.VIEWER]
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
MISSING_ID = 987654321
EXCLUDED_OPERATIONS = {("POST", "/api/v1/auth/logout/")}
COUNTS = "/api/v1/counts"


def fuzz_examples() -> int:
    return int(os.environ.get("FUZZ_EXAMPLES") or 20)


# --- the seeded organisation -------------------------------------------------------------------


def seed(role: str) -> dict:
    """An organisation with something of everything; the caller is a member with ``role``."""
    org = OrganizationFactory(slug=f"fuzz-{role}", name="Fuzz Retail", time_zone="America/Toronto")
    north = StoreFactory(org=org, code="N1", time_zone="America/Toronto")
    south = StoreFactory(org=org, code="S1", time_zone="America/Vancouver")
    people = {r: MembershipFactory(org=org, role=r) for r in ROLES}
    caller = people[role]
    tokens = {
        r: api_token_create(org=org, user=m.user, name=f"{r} tablet") for r, m in people.items()
    }
    admin = APIClient()
    admin.credentials(HTTP_AUTHORIZATION=f"Token {tokens[Role.ADMIN][1]}")

    today = datetime.date.today()
    products = [
        ProductFactory(
            org=org,
            sku="FZ-EACH",
            unit="each",
            reorder_point=Decimal("5"),
            reorder_qty=Decimal("10"),
            barcodes=[{"code": make_gtin(7001)}],
        ),
        ProductFactory(
            org=org,
            sku="FZ-GRAM",
            unit="g",
            tracks_expiry=True,
            barcodes=[{"code": make_gtin(7002)}],
        ),
        ProductFactory(
            org=org, sku="FZ-ML", unit="ml", barcodes=[{"code": "SUP-77", "kind": "supplier"}]
        ),
        ProductFactory(org=org, sku="FZ-NONE", unit="each"),
    ]
    for store in (north, south):
        receive(org, store, products[0], 40, cost=2)
        receive(
            org,
            store,
            products[1],
            25,
            lot="LOT-A",
            expiry=today + datetime.timedelta(20),
            cost=Decimal("1.5"),
        )
        receive(
            org,
            store,
            products[1],
            5,
            lot="LOT-OLD",
            expiry=today - datetime.timedelta(3),
            cost=1,
            location="BR",
        )
        receive(org, store, products[2], 12, cost=3, location="BR")

    def ok(response, *statuses):
        assert response.status_code in (statuses or (200, 201)), response.content
        return response.json()

    sale = ok(
        admin.post(
            "/api/v1/sales",
            {
                "store": north.pk,
                "client_ref": "fz-sale",
                "lines": [
                    {"sku": "FZ-EACH", "quantity": "2"},
                    {"sku": "FZ-GRAM", "quantity": "1.5"},
                ],
            },
            format="json",
        )
    )
    # a reconciled count with variance rows
    done = ok(
        admin.post(f"{COUNTS}/sessions", {"store": south.pk, "scope": "FULL_STORE"}, format="json")
    )
    ok(admin.post(f"{COUNTS}/sessions/{done['id']}/start"))
    south_floor = Location.objects.get(store=south, code="SF")
    done_pass = ok(
        admin.post(
            f"{COUNTS}/sessions/{done['id']}/passes", {"location": south_floor.pk}, format="json"
        )
    )
    ok(
        admin.post(
            f"{COUNTS}/passes/{done_pass['id']}/lines",
            {"sku": "FZ-EACH", "quantity": "37"},
            format="json",
        )
    )
    ok(admin.post(f"{COUNTS}/passes/{done_pass['id']}/submit"))
    ok(admin.post(f"{COUNTS}/sessions/{done['id']}/submit"))
    ok(admin.post(f"{COUNTS}/sessions/{done['id']}/reconcile"))
    # a count in progress with an open pass, a line and an unresolved scan
    live = ok(
        admin.post(
            f"{COUNTS}/sessions",
            {"store": north.pk, "scope": "FULL_STORE", "blind": True},
            format="json",
        )
    )
    ok(admin.post(f"{COUNTS}/sessions/{live['id']}/start"))
    north_floor = Location.objects.get(store=north, code="SF")
    live_pass = ok(
        admin.post(
            f"{COUNTS}/sessions/{live['id']}/passes", {"location": north_floor.pk}, format="json"
        )
    )
    line = ok(
        admin.post(
            f"{COUNTS}/passes/{live_pass['id']}/lines",
            {"sku": "FZ-EACH", "quantity": "3"},
            format="json",
        )
    )
    ok(
        admin.post(
            f"{COUNTS}/passes/{live_pass['id']}/lines",
            {"barcode": "NO-SUCH-CODE", "quantity": "1"},
            format="json",
        ),
        404,
    )

    from counts.models import CountPass, CountSession, UnresolvedScan, VarianceRow

    own_token = tokens[role][0].pk
    ids = {
        "store": [north.pk, south.pk],
        "location": list(Location.objects.filter(org=org).values_list("pk", flat=True)),
        "product": [p.pk for p in products],
        "membership": [m.pk for m in Membership.objects.filter(org=org)],
        "classification": list(
            ClassificationMapping.objects.filter(org=org).values_list("pk", flat=True)[:3]
        ),
        "token": list(ApiToken.objects.filter(org=org).values_list("pk", flat=True)),
        "sale": [sale["id"]],
        "session": list(CountSession.objects.filter(org=org).values_list("pk", flat=True)),
        "pass": list(CountPass.objects.filter(org=org).values_list("pk", flat=True)),
        "line": [line["id"]],
        "unresolved": list(UnresolvedScan.objects.filter(org=org).values_list("pk", flat=True)),
        "row": list(VarianceRow.objects.filter(org=org).values_list("pk", flat=True)),
        "sku": [p.sku for p in products],
        "barcode": [
            make_gtin(7001),
            "0" + make_gtin(7002),
            "SUP-77",
            f"01{make_gtin(7002).zfill(14)}10LOT-A",
        ],
        "sale_line": [1, 2],
    }
    assert Sale.objects.filter(org=org).exists() and all(ids.values()), ids
    return {
        "org": org,
        "ids": ids,
        "key": tokens[role][1],
        "own_token": own_token,
        "own_membership": caller.pk,
        "products": Product.objects.filter(org=org),
    }


# --- the schema, with ids drawn from the seeded organisation --------------------------------


#: path prefix -> the kind of id its ``{id}`` names
PATH_IDS = [
    ("/api/v1/stores/", "store"),
    ("/api/v1/locations/", "location"),
    ("/api/v1/memberships/", "membership"),
    ("/api/v1/products/", "product"),
    ("/api/v1/classifications/", "classification"),
    ("/api/v1/tokens/", "token"),
    ("/api/v1/sales/", "sale"),
    ("/api/v1/stock/", "product"),
    (f"{COUNTS}/sessions/", "session"),
    (f"{COUNTS}/passes/", "pass"),
    (f"{COUNTS}/lines/", "line"),
    (f"{COUNTS}/unresolved/", "unresolved"),
]
#: request-body properties and query parameters that name seeded objects
NAMED_IDS = {
    "store": "store",
    "location": "location",
    "from_location": "location",
    "to_location": "location",
    "product": "product",
    "recount_of": "pass",
    "stores": "store",
    "scope_locations": "location",
    "sku": "sku",
    "batch": None,
    "barcode": "barcode",
    "line": "sale_line",
}
#: pools of text rather than ids, and the value that names nothing
TEXT_POOLS = {"sku": "NO-SUCH-SKU", "barcode": "NO-SUCH-CODE"}


def pinned(values: list, *, missing=MISSING_ID) -> dict:
    return {"enum": [*values, missing] if missing is not None else list(values)}


def pin_schema(raw: dict, world: dict) -> dict:
    """A copy of the OpenAPI description whose ids are the seeded organisation's."""
    schema = copy.deepcopy(raw)
    ids = world["ids"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                name, where = parameter["name"], parameter["in"]
                kind = None
                if where == "path":
                    kind = (
                        "row"
                        if name == "row"
                        else next((k for prefix, k in PATH_IDS if path.startswith(prefix)), None)
                    )
                elif where == "query" and NAMED_IDS.get(name):
                    kind = NAMED_IDS[name]
                if kind is None:
                    continue
                values = list(ids[kind])
                if kind == "token" and path.endswith("/revoke/"):
                    values.remove(world["own_token"])
                if kind == "membership" and method in ("patch", "put", "delete"):
                    values.remove(world["own_membership"])
                spec = parameter.get("schema", {})
                if spec.get("type") == "string":  # e.g. {row}: a string of digits
                    values = [str(value) for value in values]
                    spec = {"type": "string", **pinned(values, missing=str(MISSING_ID))}
                parameter["schema"] = {**spec, **pinned(values)} if "enum" not in spec else spec
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        if not name.endswith("Request"):
            continue
        for prop, spec in component.get("properties", {}).items():
            kind = NAMED_IDS.get(prop)
            if not kind or spec.get("readOnly"):
                continue
            if spec.get("type") == "array" and "items" in spec:
                spec["items"] = {**spec["items"], **pinned(ids[kind], missing=None)}
            elif spec.get("type") == "integer" and kind not in TEXT_POOLS:
                spec.update(pinned(ids[kind]))
            elif spec.get("type") == "string" and kind in TEXT_POOLS:
                spec.update(pinned(ids[kind], missing=TEXT_POOLS[kind]))
    return schema


@pytest.fixture(scope="module")
def raw_schema():
    return SchemaGenerator().get_schema(request=None, public=True)


@contextlib.contextmanager
def connection_kept_open():
    """Django's per-request connection housekeeping off, as its test client does around each
    request (which also means: after any test-client request, it is back on): closing the
    connection at the end of a request would end the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# --- the run ------------------------------------------------------------------------------------


def documented_query_refused(response, documented: set[str]) -> set[str]:
    """Documented query parameters the API answered ``unknown_parameter`` for: the base derives
    the names it accepts from what views declare, so a view that reads a parameter by hand
    without declaring it would refuse its own documentation."""
    if response.status_code != 400:
        return set()
    body = response.json()
    return (
        set(body.get("fields", {})) & documented
        if body.get("code") == "unknown_parameter"
        else set()
    )


def fuzz_operation(
    operation, headers: dict, examples: int, failures: dict, counts: dict, documented: set[str]
):
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case):
        savepoint = transaction.savepoint()
        response = case.call(headers=headers)
        counts[label][response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Failure, FailureGroup) as exc:
            # the first example of each distinct failure, with the request to reproduce it
            titles = [e.title for e in getattr(exc, "exceptions", [exc])]
            failures.setdefault((label, *sorted(titles)), str(exc))
        refused = documented_query_refused(response, documented)
        if refused:
            failures.setdefault(
                (label, "documented parameter refused"),
                f"{sorted(refused)} answered unknown_parameter: {case.query}",
            )
        if response.status_code >= 500:
            transaction.savepoint_rollback(savepoint)  # a broken transaction would taint the rest
        else:
            transaction.savepoint_commit(savepoint)

    run()


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_documented(role, raw_schema):
    from config.wsgi import application

    examples = fuzz_examples()
    world = seed(role)
    pinned_schema = pin_schema(raw_schema, world)
    schema = schemathesis.openapi.from_dict(pinned_schema)
    schema.app = application
    headers = {"Authorization": f"Token {world['key']}"}
    failures: dict = {}
    counts: dict = defaultdict(lambda: defaultdict(int))
    started = time.monotonic()
    operations = 0
    # deletes (archiving products, deactivating members) last, so the writes before them
    # still find the seeded catalog
    ordered = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda op: (op.method.upper() == "DELETE", op.path, op.method),
    )
    with connection_kept_open():
        for operation in ordered:
            if (operation.method.upper(), operation.path) in EXCLUDED_OPERATIONS:
                continue
            operations += 1
            definition = pinned_schema["paths"][operation.path][operation.method.lower()]
            documented = {p["name"] for p in definition.get("parameters", []) if p["in"] == "query"}
            fuzz_operation(operation, headers, examples, failures, counts, documented)
    if os.environ.get("FUZZ_VERBOSE"):
        for label, by_status in sorted(counts.items()):
            print(f"  {label}: {dict(sorted(by_status.items()))}")
    sent = sum(sum(by_status.values()) for by_status in counts.values())
    print(
        f"\n{role}: {operations} operations, {sent} requests, "
        f"{time.monotonic() - started:.1f}s, {len(failures)} failing checks"
    )
    assert not failures, "\n\n".join(
        f"[{role}] {key[0]}\n{text}" for key, text in sorted(failures.items())
    )
