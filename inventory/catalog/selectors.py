"""Catalog reads: product lists. (What a device names is resolved by ``resolver``.)"""

from __future__ import annotations

from inventory.models import Organization, Product


def product_list(*, org: Organization):
    return Product.objects.filter(org=org).prefetch_related("barcodes")
