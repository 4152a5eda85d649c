"""factory-boy factories that build state through the same services production uses."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from inventory.catalog import services as catalog_services
from inventory.catalog.barcodes import gtin_check_digit
from inventory.models import Membership, MembershipStore, Organization, Product, Role, Store
from inventory.tenancy import services as org_services


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.Sequence(lambda n: f"Organisation {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return org_services.org_create(**kwargs)


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    org = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"S{n}")
    name = factory.Sequence(lambda n: f"Store {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return org_services.store_create(**kwargs)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership
        skip_postgeneration_save = True

    org = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER

    @factory.post_generation
    def stores(obj, create, extracted, **kwargs):
        for store in extracted or ():
            MembershipStore.objects.create(org=obj.org, membership=obj, store=store)


def make_gtin(n: int, prefix: str = "06") -> str:
    """A valid GTIN-13 (well, 12 digits + check) numbered n: ``0 6xxxxxxxxxx c``."""
    payload = f"{prefix}{n:010d}"[:12]
    return payload + str(gtin_check_digit(payload))


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    org = factory.SubFactory(OrganizationFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    brand = "Test Brand"
    classification = "Dried Flower"
    unit = "each"
    default_cost = factory.Faker("pydecimal", left_digits=2, right_digits=2, positive=True)
    default_price = factory.Faker("pydecimal", left_digits=2, right_digits=2, positive=True)

    @classmethod
    def _create(cls, model_class, *args, barcodes=None, **kwargs):
        org = kwargs.pop("org")
        return catalog_services.product_create(org=org, data=kwargs, barcodes=barcodes)


class VariancePolicyFactory(factory.django.DjangoModelFactory):
    """A category's variance policy ("" = the organisation's default)."""

    class Meta:
        model = "discrepancies.VariancePolicy"

    category = ""
    units = 1
    percent = 2
    value = None
