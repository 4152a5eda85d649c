"""Counts in the admin: read-only. Counting, approving and finalising go through the API, whose
services enforce the state machine, the approval rules and the stock write path."""

from django.contrib import admin

from counts.models import CountLine, CountPass, CountSession, UnresolvedScan, VarianceRow
from inventory.admin_base import ReadOnlyAdminMixin


class PassInline(admin.TabularInline):
    model = CountPass
    extra = 0
    can_delete = False
    fields = [
        "location",
        "category",
        "subcategory",
        "status",
        "started_by",
        "started_at",
        "submitted_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CountSession)
class CountSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    store_field = "store"
    list_display = [
        "id",
        "store",
        "scope",
        "blind",
        "status",
        "created_by",
        "started_at",
        "closed_at",
    ]
    list_filter = ["status", "scope", "blind"]
    list_select_related = ["store", "created_by"]
    inlines = [PassInline]


@admin.register(CountLine)
class CountLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    store_field = "count_pass__session__store"
    list_display = [
        "id",
        "count_pass",
        "product",
        "lot_code",
        "quantity",
        "confidence",
        "captured_by",
        "device_id",
        "captured_at",
    ]
    list_select_related = ["product", "captured_by"]
    search_fields = ["product__sku", "raw_scan", "lot_code"]


@admin.register(VarianceRow)
class VarianceRowAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    store_field = "session__store"
    list_display = [
        "id",
        "session",
        "location",
        "product",
        "expected",
        "counted",
        "variance",
        "value",
        "status",
        "mode",
        "reason",
        "decided_by",
        "posted_quantity",
        "unposted_quantity",
    ]
    list_filter = ["status", "mode"]
    list_select_related = ["location", "product", "decided_by"]
    search_fields = ["product__sku"]


@admin.register(UnresolvedScan)
class UnresolvedScanAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    store_field = "count_pass__session__store"
    list_display = [
        "id",
        "count_pass",
        "raw_scan",
        "quantity",
        "captured_by",
        "captured_at",
        "resolved_at",
    ]
    list_select_related = ["captured_by"]
