"""Admin for an organisation's managers and admins; every ModelAdmin here is tenant-scoped.

Permissions come from the capability matrix, not Django's per-model permissions: viewing needs
``admin.site`` (manager and above), changing needs each admin's ``edit_capability``.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from inventory.models import (
    ApiToken,
    AuditEvent,
    Batch,
    ClassificationMapping,
    Location,
    Membership,
    MembershipStore,
    Organization,
    Product,
    ProductBarcode,
    Sale,
    StockDocument,
    StockLedger,
    StockQuant,
    StockShortfall,
    Store,
)
from inventory.tenancy import tokens as token_services
from inventory.tenancy.capabilities import Action


def _can(request, action: Action) -> bool:
    if request.user.is_superuser:
        return True
    tenant = getattr(request, "tenant", None)
    return tenant is not None and tenant.can(action)


def _limited_stores(request) -> frozenset[int] | None:
    """The stores a store-limited membership may see; None when it sees them all."""
    if request.user.is_superuser:
        return None
    tenant = getattr(request, "tenant", None)
    return tenant.store_ids if tenant is not None else None


class TenantAdminMixin:
    """Scope, org assignment and capability checks shared by every tenant ModelAdmin.

    The organisation scope comes from ``AdminTenantMiddleware``; ``store_field`` (the lookup
    from the model to its store, e.g. ``"store"`` or ``"session__store"``) limits a
    store-limited membership to its stores, as the API does. Org-wide records (products,
    batches, the classification map) have none.
    """

    edit_capability: Action = Action.CATALOG_EDIT
    view_capability: Action = Action.ADMIN_SITE
    store_field: str | None = None

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        stores = _limited_stores(request)
        if stores is not None and self.store_field:
            rows = rows.filter(**{f"{self.store_field}__in": sorted(stores)})
        return rows

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Store and location pickers offer only the stores the membership may use."""
        stores = _limited_stores(request)
        if stores is not None and db_field.related_model is Store:
            kwargs["queryset"] = Store.objects.filter(pk__in=sorted(stores))
        elif stores is not None and db_field.related_model is Location:
            kwargs["queryset"] = Location.objects.filter(store_id__in=sorted(stores))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request):
        return _can(request, self.view_capability)

    def has_view_permission(self, request, obj=None):
        return _can(request, self.view_capability)

    def has_add_permission(self, request, *args):
        return _can(request, self.edit_capability)

    def has_change_permission(self, request, obj=None):
        return _can(request, self.edit_capability)

    def has_delete_permission(self, request, obj=None):
        return False  # archive with is_active instead: history must stay explainable

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.user.is_superuser:
            columns.append("org")
        return columns

    def save_model(self, request, obj, form, change):
        if not change:
            org = getattr(request, "admin_org", None)
            if org is None:
                raise PermissionDenied("Choose an organisation first (/admin/org/<slug>/).")
            obj.org = org
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        for instance in formset.save(commit=False):
            if instance.org_id is None:
                instance.org = form.instance.org
            instance.save()
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()


class TenantInlineMixin:
    edit_capability: Action = Action.CATALOG_EDIT

    def has_view_permission(self, request, obj=None):
        return _can(request, Action.ADMIN_SITE)

    def has_add_permission(self, request, obj=None):
        return _can(request, self.edit_capability)

    def has_change_permission(self, request, obj=None):
        return _can(request, self.edit_capability)

    def has_delete_permission(self, request, obj=None):
        return _can(request, self.edit_capability)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "negative_stock_mode", "discrepancy_enforcement"]
    search_fields = ["name", "slug"]

    def get_queryset(self, request):
        orgs = super().get_queryset(request)
        if request.user.is_superuser:
            return orgs
        tenant = getattr(request, "tenant", None)
        return orgs.filter(pk=tenant.org.pk) if tenant else orgs.none()

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["slug"]

    def has_module_permission(self, request):
        return _can(request, Action.ADMIN_SITE)

    def has_view_permission(self, request, obj=None):
        return _can(request, Action.ADMIN_SITE)

    def has_change_permission(self, request, obj=None):
        return _can(request, Action.ORG_SETTINGS_EDIT)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False


class LocationInline(TenantInlineMixin, admin.TabularInline):
    model = Location
    edit_capability = Action.STORE_MANAGE
    extra = 0
    fields = ["code", "name", "kind", "sellable", "sort_order", "is_active"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Store)
class StoreAdmin(TenantAdminMixin, admin.ModelAdmin):
    edit_capability = Action.STORE_MANAGE
    store_field = "pk"
    list_display = ["code", "name", "time_zone", "cova_location_id", "is_active"]
    search_fields = ["code", "name"]
    inlines = [LocationInline]


@admin.register(Location)
class LocationAdmin(TenantAdminMixin, admin.ModelAdmin):
    edit_capability = Action.STORE_MANAGE
    store_field = "store"
    list_display = ["code", "name", "store", "kind", "sellable", "sort_order", "is_active"]
    list_filter = ["kind", "sellable", "is_active"]
    list_select_related = ["store"]
    search_fields = ["code", "name"]


class MembershipStoreInline(TenantInlineMixin, admin.TabularInline):
    model = MembershipStore
    edit_capability = Action.MEMBERSHIP_MANAGE
    extra = 0
    verbose_name = "limited to store"
    verbose_name_plural = "limited to stores (none: every store)"


@admin.register(Membership)
class MembershipAdmin(TenantAdminMixin, admin.ModelAdmin):
    edit_capability = Action.MEMBERSHIP_MANAGE
    view_capability = Action.MEMBERSHIP_MANAGE  # as in the API: people are the admins' business
    list_display = ["user", "role", "is_active", "created_at"]
    list_filter = ["role", "is_active"]
    list_select_related = ["user"]
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    raw_id_fields = ["user"]
    inlines = [MembershipStoreInline]


class ProductBarcodeInline(TenantInlineMixin, admin.TabularInline):
    model = ProductBarcode
    extra = 0
    fields = ["code", "kind", "gtin14"]
    readonly_fields = ["gtin14"]


@admin.register(Product)
class ProductAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["sku", "name", "brand", "category", "subcategory", "unit", "is_active"]
    list_filter = ["unit", "is_active", "tracks_expiry", "category"]
    search_fields = ["sku", "name", "brand", "=barcodes__code"]
    inlines = [ProductBarcodeInline]

    def save_formset(self, request, form, formset, change):
        from inventory.catalog.barcodes import looks_like_gtin, normalize_gtin

        for instance in formset.save(commit=False):
            if isinstance(instance, ProductBarcode):
                instance.gtin14 = (
                    normalize_gtin(instance.code)
                    if instance.kind == ProductBarcode.Kind.GTIN and looks_like_gtin(instance.code)
                    else None
                )
            if instance.org_id is None:
                instance.org = form.instance.org
            instance.save()
        for obj in formset.deleted_objects:
            obj.delete()


@admin.register(ClassificationMapping)
class ClassificationMappingAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["classification", "category", "subcategory"]
    search_fields = ["classification", "category", "subcategory"]


@admin.register(ApiToken)
class ApiTokenAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Tokens are issued here too; the key is shown once, in the confirmation message."""

    edit_capability = Action.TOKEN_MANAGE
    view_capability = Action.TOKEN_MANAGE  # as in the API: others' tokens are the admins'
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]
    search_fields = ["name", "user__email", "prefix"]
    raw_id_fields = ["user"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        return ["user", "name"] if obj is None else ["user", "name", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["user", "name"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        org = getattr(request, "admin_org", None)
        if org is None:
            raise PermissionDenied("Choose an organisation first (/admin/org/<slug>/).")
        token, key = token_services.api_token_create(
            org=org, user=obj.user, name=obj.name, actor=request.user
        )
        obj.pk, obj.org = token.pk, org
        messages.warning(
            request,
            f"Token for {obj.user} ({obj.name}): {key} — copy it now, it is not shown again.",
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            token_services.api_token_revoke(token=token, actor=request.user)


class ReadOnlyAdminMixin(TenantAdminMixin):
    """Stock records are written only by the stock services: the admin shows, never edits."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StockLedger)
class StockLedgerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    store_field = "store"
    list_display = [
        "id",
        "occurred_at",
        "ref_type",
        "ref_id",
        "ref_line",
        "store",
        "location",
        "product",
        "batch",
        "qty_delta",
        "unit_cost",
        "reason",
        "user",
    ]
    list_filter = ["ref_type"]
    list_select_related = ["store", "location", "product", "batch", "user"]
    search_fields = ["=ref_id", "source_ref", "product__sku", "batch__lot_code"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False  # COUNT(*) over millions of rows is not worth it


@admin.register(StockQuant)
class StockQuantAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    store_field = "store"
    list_display = [
        "id",
        "store",
        "location",
        "product",
        "batch",
        "quantity",
        "unallocated",
        "updated_at",
    ]
    list_filter = ["unallocated"]
    list_select_related = ["store", "location", "product", "batch"]
    search_fields = ["product__sku", "product__name", "batch__lot_code"]


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "product",
        "lot_code",
        "expiry_date",
        "received_at",
        "unit_cost",
        "unallocated_store",
    ]
    list_select_related = ["product", "unallocated_store"]
    search_fields = ["lot_code", "product__sku"]


@admin.register(Sale)
class SaleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    store_field = "store"
    list_display = [
        "id",
        "store",
        "client_ref",
        "source_ref",
        "status",
        "occurred_at",
        "created_by",
    ]
    list_filter = ["status"]
    list_select_related = ["store", "created_by"]
    search_fields = ["client_ref", "source_ref"]


@admin.register(StockDocument)
class StockDocumentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    store_field = "store"
    list_display = ["id", "kind", "store", "client_ref", "reason", "occurred_at", "created_by"]
    list_filter = ["kind"]
    list_select_related = ["store", "created_by"]
    search_fields = ["client_ref", "source_ref", "reason"]


@admin.register(StockShortfall)
class StockShortfallAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    store_field = "store"
    list_display = [
        "id",
        "store",
        "product",
        "requested",
        "available",
        "outcome",
        "ref_type",
        "ref_id",
        "occurred_at",
        "resolved_at",
    ]
    list_filter = ["outcome"]
    list_select_related = ["store", "product"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail, read-only, for admins (``audit.view``). A store-limited admin sees its
    stores' events and the organisation-wide ones (no store), as in ``GET /api/v1/audit``."""

    view_capability = Action.AUDIT_VIEW
    list_display = [
        "id",
        "occurred_at",
        "action",
        "object_type",
        "object_id",
        "store",
        "actor",
        "token",
        "request_id",
    ]
    list_filter = ["action"]
    list_select_related = ["store", "actor", "token"]
    search_fields = ["=object_id", "=request_id"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def get_queryset(self, request):
        events = super().get_queryset(request)
        stores = _limited_stores(request)
        if stores is not None:
            events = events.filter(Q(store__in=sorted(stores)) | Q(store__isnull=True))
        return events
