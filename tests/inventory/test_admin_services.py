"""Every admin save goes through the same service as the API: its rules hold, its audit trail
records the change, and a refusal is a message on the form, never a server error."""

from __future__ import annotations

import pytest
from django.test import Client

from inventory.models import (
    AuditEvent,
    ClassificationMapping,
    Location,
    Membership,
    Product,
    ProductBarcode,
    Role,
    Store,
)
from tests.factories import MembershipFactory, make_gtin

PASSWORD = "admin through services 1!"


def signed_in(membership) -> Client:
    membership.user.set_password(PASSWORD)
    membership.user.save()
    client = Client()
    assert client.login(username=membership.user.username, password=PASSWORD)
    return client


@pytest.fixture
def boss(org):
    return MembershipFactory(org=org, role=Role.ADMIN)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_the_last_admin_cannot_be_demoted_in_the_admin(org, boss):
    client = signed_in(boss)
    response = client.post(
        f"/admin/inventory/membership/{boss.pk}/change/",
        {
            "role": "viewer",
            "is_active": "on",
            "membershipstore_set-TOTAL_FORMS": "0",
            "membershipstore_set-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert any("at least one active admin" in m for m in messages_of(response))
    boss.refresh_from_db()
    assert boss.role == Role.ADMIN


def test_a_role_change_in_the_admin_is_audited(org, boss):
    clerk = MembershipFactory(org=org, role=Role.OPERATOR)
    client = signed_in(boss)
    response = client.post(
        f"/admin/inventory/membership/{clerk.pk}/change/",
        {
            "role": "manager",
            "is_active": "on",
            "membershipstore_set-TOTAL_FORMS": "0",
            "membershipstore_set-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    clerk.refresh_from_db()
    assert clerk.role == Role.MANAGER
    event = AuditEvent.objects.get(action="membership.role_changed")
    assert (event.actor, event.object_id, event.after) == (boss.user, clerk.pk, {"role": "manager"})


def product_form(sku, barcodes=(), **extra):
    data = {
        "sku": sku,
        "name": f"Product {sku}",
        "brand": "",
        "classification": "",
        "category": "",
        "subcategory": "",
        "unit": "each",
        "image_url": "",
        "is_active": "on",
        "default_cost": "1",
        "default_price": "2",
        "barcodes-TOTAL_FORMS": str(len(barcodes)),
        "barcodes-INITIAL_FORMS": "0",
    }
    for n, (code, kind) in enumerate(barcodes):
        data[f"barcodes-{n}-code"] = code
        data[f"barcodes-{n}-kind"] = kind
    data.update(extra)
    return data


def test_a_product_and_its_barcodes_are_saved_by_the_catalog_service(org, boss):
    client = signed_in(boss)
    gtin12 = make_gtin(77)[1:]  # the GTIN-12 form of a GTIN-13 with a leading zero
    response = client.post(
        "/admin/inventory/product/add/", product_form("ADMIN-1", [(gtin12, "gtin")])
    )
    assert response.status_code == 302, messages_of(response)
    product = Product.objects.get(sku="ADMIN-1")
    barcode = ProductBarcode.objects.get(product=product)
    assert barcode.gtin14 == "0" + make_gtin(77)  # normalised as the API does
    assert AuditEvent.objects.filter(action="product.created", object_id=product.pk).exists()


def test_a_bad_gtin_in_the_admin_is_refused_with_a_message(org, boss):
    client = signed_in(boss)
    bad = make_gtin(78)[:-1] + str((int(make_gtin(78)[-1]) + 1) % 10)
    response = client.post(
        "/admin/inventory/product/add/", product_form("ADMIN-2", [(bad, "gtin")]), follow=True
    )
    assert response.status_code == 200
    assert messages_of(response)
    assert not Product.objects.filter(sku="ADMIN-2").exists()


def test_a_taken_store_code_is_a_message_not_a_server_error(org, store, boss):
    client = signed_in(boss)
    response = client.post(
        "/admin/inventory/store/add/",
        {
            "code": store.code,
            "name": "Copy",
            "time_zone": "UTC",
            "cova_location_id": "",
            "external_ids": "{}",
            "is_active": "on",
            "locations-TOTAL_FORMS": "0",
            "locations-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert any("taken" in m.lower() for m in messages_of(response))
    assert Store.objects.filter(code=store.code).count() == 1


def test_a_store_made_in_the_admin_gets_its_default_rooms_and_an_event(org, boss):
    client = signed_in(boss)
    response = client.post(
        "/admin/inventory/store/add/",
        {
            "code": "ADM",
            "name": "Admin store",
            "time_zone": "UTC",
            "cova_location_id": "",
            "external_ids": "{}",
            "is_active": "on",
            "locations-TOTAL_FORMS": "1",
            "locations-INITIAL_FORMS": "0",
            "locations-0-code": "VLT",
            "locations-0-name": "Vault",
            "locations-0-kind": "vault",
            "locations-0-sort_order": "30",
            "locations-0-is_active": "on",
        },
    )
    assert response.status_code == 302
    store = Store.objects.get(code="ADM")
    rooms = dict(Location.objects.filter(store=store).values_list("code", "upstock_source"))
    # the back room feeds the floor's nightly upstock; the floor and a new vault do not
    assert rooms == {"SF": False, "BR": True, "VLT": False}
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {
        "store.created",
        "location.created",
    }


def test_a_token_is_revoked_only_by_the_action(org, boss):
    from inventory.tenancy.tokens import api_token_create

    token, _ = api_token_create(org=org, user=boss.user, name="Till")
    client = signed_in(boss)
    page = client.get(f"/admin/inventory/apitoken/{token.pk}/change/")
    assert "revoked_at" not in page.context["adminform"].form.fields


def test_a_classification_deleted_through_the_api_is_audited(org, client_for):
    mapping = ClassificationMapping.objects.filter(org=org).first()
    admin = client_for("admin")
    assert admin.delete(f"/api/v1/classifications/{mapping.pk}").status_code == 204
    event = AuditEvent.objects.get(action="classification.deleted")
    assert event.before["classification"] == mapping.classification
    assert not ClassificationMapping.objects.filter(pk=mapping.pk).exists()


def test_an_existing_member_keeps_their_person(org, boss):
    clerk = MembershipFactory(org=org, role=Role.OPERATOR)
    form = signed_in(boss).get(f"/admin/inventory/membership/{clerk.pk}/change/")
    assert "user" not in form.context["adminform"].form.fields
    assert Membership.objects.get(pk=clerk.pk).user == clerk.user
