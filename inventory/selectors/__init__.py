"""Reads: querysets, lookups and reports, always for an explicit organisation."""

from inventory.catalog.selectors import LookupResult, product_list, product_lookup

__all__ = ["LookupResult", "product_list", "product_lookup"]
