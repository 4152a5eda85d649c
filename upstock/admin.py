"""Upstock in the admin: par levels are edited here by managers and saved through the baseline
services (their rules — a sales floor of the store, a product or a category, never both — and
their audit trail); runs are shown read-only with their lines, since a pull moves stock and
goes through the API's services. A store-limited manager sees and edits their stores only."""

from __future__ import annotations

from django.contrib import admin

from inventory.admin_base import (
    ReadOnlyAdminMixin,
    StoreListFilter,
    TenantAdminMixin,
    adopt,
    can,
    changed,
)
from inventory.tenancy.capabilities import Action
from upstock.models import Baseline, UpstockLine, UpstockRun
from upstock.services import baselines as baseline_services


@admin.register(Baseline)
class BaselineAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Par levels: read by managers, edited by them (``par_level.edit``), one at a time; a
    whole floor at once is the CSV import of the API."""

    edit_capability = Action.PAR_LEVEL_EDIT
    store_field = "store"
    list_display = [
        "id",
        "store",
        "location",
        "product",
        "category",
        "subcategory",
        "par_qty",
        "min_pull",
        "updated_by",
        "updated_at",
    ]
    list_filter = [StoreListFilter, "category"]
    list_select_related = ["store", "location", "product", "updated_by"]
    search_fields = ["product__sku", "product__name", "category", "subcategory"]
    fields = ["store", "location", "product", "category", "subcategory", "par_qty", "min_pull"]
    autocomplete_fields = ["product"]
    #: what an edit may change; what the par level is for stays (delete and add another)
    editable = ("par_qty", "min_pull")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["store", "location", "product", "category", "subcategory"]

    def has_delete_permission(self, request, obj=None):
        return can(request, self.edit_capability)

    def save_through_services(self, request, obj, form, change):
        if change:
            return baseline_services.baseline_update(
                org=obj.org,
                baseline=Baseline.objects.get(pk=obj.pk),
                changes=changed(form, self.editable),
                actor=request.user,
            )
        data = form.cleaned_data
        return baseline_services.baseline_upsert(
            org=self.admin_org(request),
            store=data["store"],
            location=data["location"],
            product=data.get("product"),
            category=data.get("category") or "",
            subcategory=data.get("subcategory") or "",
            par_qty=data["par_qty"],
            min_pull=data.get("min_pull"),
            actor=request.user,
        )

    def save_model(self, request, obj, form, change):
        adopt(obj, self.save_through_services(request, obj, form, change))

    def delete_model(self, request, obj):
        baseline_services.baseline_delete(org=obj.org, baseline=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for baseline in queryset:
            baseline_services.baseline_delete(
                org=baseline.org, baseline=baseline, actor=request.user
            )


class LineInline(admin.TabularInline):
    model = UpstockLine
    extra = 0
    can_delete = False
    ordering = ["position", "id"]
    fields = [
        "position",
        "product",
        "source_location",
        "sold",
        "floor_on_hand",
        "back_room_available",
        "par_qty",
        "suggested",
        "pulled",
        "status",
        "exception_reason",
        "exception_quantity",
        "note",
        "updated_by",
        "updated_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("product", "source_location", "updated_by")
        )

    def has_view_permission(self, request, obj=None):
        return can(request, Action.ADMIN_SITE)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(UpstockRun)
class UpstockRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Runs and their lines, read-only: pulls move stock, through the API's services."""

    store_field = "store"
    list_display = [
        "id",
        "store",
        "location",
        "category",
        "status",
        "created_by",
        "created_by_job",
        "window_start",
        "window_end",
        "created_at",
        "completed_at",
    ]
    list_filter = [StoreListFilter, "status"]
    list_select_related = ["store", "location", "created_by"]
    date_hierarchy = "created_at"
    inlines = [LineInline]
