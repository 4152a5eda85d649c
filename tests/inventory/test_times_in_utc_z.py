"""Every time the API writes is ISO 8601 in UTC with ``Z``: one format for clients to parse."""

from __future__ import annotations

import datetime
import re

from core.isotime import iso
from counts.services import passes as P
from counts.services import sessions as S
from tests.factories import MembershipFactory, ProductFactory
from tests.stock_helpers import loc, receive

TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(Z|[+-]\d\d:\d\d)")


def test_iso_writes_utc_with_z():
    edmonton = datetime.timezone(datetime.timedelta(hours=-7))
    moment = datetime.datetime(2026, 11, 30, 10, 0, tzinfo=edmonton)
    assert iso(moment) == "2026-11-30T17:00:00Z"
    assert iso(datetime.date(2026, 11, 30)) == "2026-11-30"
    assert iso(None) is None


def test_every_read_writes_times_with_z(org, store, client_for):
    manager = client_for("manager")
    product = ProductFactory(org=org, sku="TZ-1")
    receive(org, store, product, 10, lot="TZ-LOT")
    sale = manager.post(
        "/api/v1/sales",
        {
            "store": store.pk,
            "client_ref": "tz-sale",
            "occurred_at": "2026-11-29T03:00:00-07:00",
            "lines": [{"sku": "TZ-1", "quantity": "2"}],
        },
        format="json",
    ).json()
    manager.post(
        f"/api/v1/sales/{sale['id']}/refunds",
        {"client_ref": "tz-refund", "lines": [{"line": 1, "quantity": "1"}]},
        format="json",
    )
    manager.post(f"/api/v1/sales/{sale['id']}/void", {}, format="json")
    people = MembershipFactory(org=org, role="manager").user
    session = S.session_start(
        org=org,
        actor=people,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=people),
    )
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=people)
    P.lines_add(org=org, count_pass=count_pass, actor=people, entries=[P.Entry(product, 9)])
    P.pass_submit(org=org, count_pass=count_pass, actor=people)

    seen = []
    for path in [
        "/api/v1/sales",
        f"/api/v1/sales/{sale['id']}",
        "/api/v1/ledger/",
        "/api/v1/ledger/?format=csv",
        f"/api/v1/stock/{product.pk}/batches",
        f"/api/v1/counts/sessions/{session.pk}",
        f"/api/v1/counts/sessions/{session.pk}/variance",
        f"/api/v1/counts/passes/{count_pass.pk}",
        "/api/v1/stock/reconciliation",
    ]:
        response = manager.get(path)
        assert response.status_code == 200, path
        body = b"".join(response.streaming_content) if response.streaming else response.content
        offsets = {match.group(1) for match in TIME.finditer(body)}
        seen.append(path)
        assert offsets <= {b"Z"}, (path, offsets)
    assert sale["occurred_at"] == "2026-11-29T10:00:00Z"
