"""Admin for an organisation's managers and admins; every ModelAdmin here is tenant-scoped.

Permissions come from the capability matrix, not Django's per-model permissions: viewing needs
``admin.site`` (manager and above), changing needs each admin's ``edit_capability``.
"""

import datetime

from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from inventory.admin_base import (
    ReadOnlyAdminMixin,
    ServiceErrorsMixin,
    TenantAdminMixin,
    TenantInlineMixin,
    adopt,
    can,
    changed,
    limited_stores,
    saved_inline,
)
from inventory.catalog import services as catalog_services
from inventory.models import (
    ApiToken,
    AuditEvent,
    Batch,
    ClassificationMapping,
    Location,
    Membership,
    MembershipStore,
    NightlyJobRun,
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
from inventory.tenancy import services as org_services
from inventory.tenancy import tokens as token_services
from inventory.tenancy.capabilities import Action


@admin.register(Organization)
class OrganizationAdmin(ServiceErrorsMixin, admin.ModelAdmin):
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
        return can(request, Action.ADMIN_SITE)

    def has_view_permission(self, request, obj=None):
        return can(request, Action.ADMIN_SITE)

    def has_change_permission(self, request, obj=None):
        return can(request, Action.ORG_SETTINGS_EDIT)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Settings change through ``org_update_settings``; a platform superuser creates an
        organisation through ``org_create`` (its default classification map included)."""
        if change:
            original = Organization.objects.get(pk=obj.pk)
            adopt(
                obj,
                org_services.org_update_settings(
                    org=original, changes=changed(form), actor=request.user
                ),
            )
        else:
            fields = {k: v for k, v in form.cleaned_data.items() if k not in ("slug", "name")}
            adopt(
                obj,
                org_services.org_create(
                    slug=form.cleaned_data["slug"], name=form.cleaned_data["name"], **fields
                ),
            )


def save_locations(request, store: Store, formset) -> None:
    """The store's rooms as edited inline: each new one through ``location_create``, each
    changed one through ``location_update``."""
    org = store.org
    new, edited = [], []
    for form in formset.forms:
        if not form.has_changed() or form in formset.deleted_forms:
            continue
        data = {k: v for k, v in form.cleaned_data.items() if k in LocationInline.fields}
        if form.instance.pk is None:
            new.append(
                org_services.location_create(org=org, store=store, actor=request.user, **data)
            )
        else:
            changes = changed(form, LocationInline.fields)
            location = org_services.location_update(
                org=org, location=form.instance, changes=changes, actor=request.user
            )
            edited.append((location, list(changes)))
    saved_inline(formset, new=new, changed=edited)


class LocationInline(TenantInlineMixin, admin.TabularInline):
    model = Location
    edit_capability = Action.STORE_MANAGE
    extra = 0
    fields = ["code", "name", "kind", "sellable", "upstock_source", "sort_order", "is_active"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Store)
class StoreAdmin(TenantAdminMixin, admin.ModelAdmin):
    edit_capability = Action.STORE_MANAGE
    store_field = "pk"
    list_display = ["code", "name", "time_zone", "cova_location_id", "is_active"]
    search_fields = ["code", "name"]
    inlines = [LocationInline]
    readonly_fields = ["recent_nightly_jobs"]
    #: the schedule nightly jobs follow; store_create / store_update check it
    schedule_help = {
        "closing_time": "Local time the store closes (HH:MM): nightly jobs run after it.",
        "closed_weekdays": "Weekdays it does not open, 0 = Monday … 6 = Sunday, e.g. [6].",
        "holidays": 'Dates it does not open, e.g. ["2026-12-25", "2027-01-01"].',
    }

    #: how far back the change page lists the store's nightly job runs
    nightly_days = 14

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["help_texts"] = {**self.schedule_help, **kwargs.get("help_texts", {})}
        form = super().get_form(request, obj, change, **kwargs)
        # left empty on a new store: store_create's default (22:00)
        form.base_fields["closing_time"].required = False
        return form

    @admin.display(description="nightly jobs (last two weeks)")
    def recent_nightly_jobs(self, obj):
        """What the scheduler ran for the store, newest first, and why a night failed."""
        if obj is None or obj.pk is None:
            return "-"
        since = timezone.localdate() - datetime.timedelta(days=self.nightly_days)
        runs = NightlyJobRun.objects.filter(store=obj, local_date__gte=since).order_by(
            "-local_date", "job"
        )
        if not runs:
            return "None yet."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} {}: {}{}</li>",
                (
                    (
                        run.local_date.isoformat(),
                        run.job,
                        run.get_status_display(),
                        f" - {run.error}" if run.error else "",
                    )
                    for run in runs
                ),
            ),
        )

    def save_through_services(self, request, obj, form, change):
        if change:
            return org_services.store_update(
                org=obj.org,
                store=Store.objects.get(pk=obj.pk),
                changes=changed(form),
                actor=request.user,
            )
        return org_services.store_create(
            org=self.admin_org(request), actor=request.user, **form.cleaned_data
        )

    def save_formset(self, request, form, formset, change):
        save_locations(request, form.instance, formset)


@admin.register(Location)
class LocationAdmin(TenantAdminMixin, admin.ModelAdmin):
    edit_capability = Action.STORE_MANAGE
    store_field = "store"
    list_display = ["code", "name", "store", "kind", "sellable", "sort_order", "is_active"]
    list_filter = ["kind", "sellable", "is_active"]
    list_select_related = ["store"]
    search_fields = ["code", "name"]

    def save_through_services(self, request, obj, form, change):
        if change:
            return org_services.location_update(
                org=obj.org,
                location=Location.objects.get(pk=obj.pk),
                changes=changed(form, LocationInline.fields),
                actor=request.user,
            )
        data = dict(form.cleaned_data)
        store = data.pop("store")
        return org_services.location_create(
            org=self.admin_org(request), store=store, actor=request.user, **data
        )


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

    def get_readonly_fields(self, request, obj=None):
        return ["user"] if obj is not None else []  # a membership never changes person

    def save_through_services(self, request, obj, form, change):
        """Role and active flag through ``membership_update`` (the last-admin rule, tokens
        revoked on deactivation); a new one through ``membership_create``."""
        if change:
            return org_services.membership_update(
                org=obj.org,
                membership=Membership.objects.get(pk=obj.pk),
                changes=changed(form, ("role", "is_active")),
                actor=request.user,
            )
        user = form.cleaned_data["user"]
        return org_services.membership_create(
            org=self.admin_org(request),
            email=user.email,
            role=form.cleaned_data["role"],
            actor=request.user,
        )

    def save_formset(self, request, form, formset, change):
        """The stores the membership is limited to, as one change of its store list."""
        kept = [
            f.cleaned_data["store"]
            for f in formset.forms
            if f.cleaned_data and f.cleaned_data.get("store") and f not in formset.deleted_forms
        ]
        membership = Membership.objects.get(pk=form.instance.pk)
        current = set(membership.stores.values_list("pk", flat=True))
        if {store.pk for store in kept} != current:
            org_services.membership_update(
                org=membership.org,
                membership=membership,
                changes={"stores": kept},
                actor=request.user,
            )
        saved_inline(formset)


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

    def save_model(self, request, obj, form, change):
        """Saved with its barcodes in ``save_related``: one service call for both, so the
        barcodes are checked and normalised as the API's are."""

    def save_related(self, request, form, formsets, change):
        obj = form.instance
        (barcode_formset,) = formsets
        saved_inline(barcode_formset)
        barcodes = None
        if barcode_formset.has_changed() or not change:
            barcodes = [
                {"code": f.cleaned_data["code"], "kind": f.cleaned_data["kind"]}
                for f in barcode_formset.forms
                if f.cleaned_data and f not in barcode_formset.deleted_forms
            ]
        fields = [f for f in form.cleaned_data if f not in ("org",)]
        if change:
            saved = catalog_services.product_update(
                org=obj.org,
                product=Product.objects.get(pk=obj.pk),
                data=changed(form, fields),
                barcodes=barcodes,
                actor=request.user,
            )
        else:
            saved = catalog_services.product_create(
                org=self.admin_org(request),
                data={k: form.cleaned_data[k] for k in fields},
                barcodes=barcodes,
                actor=request.user,
            )
        adopt(obj, saved)


@admin.register(ClassificationMapping)
class ClassificationMappingAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["classification", "category", "subcategory"]
    search_fields = ["classification", "category", "subcategory"]

    def save_through_services(self, request, obj, form, change):
        mapping = ClassificationMapping.objects.get(pk=obj.pk) if change else None
        return catalog_services.classification_save(
            org=obj.org if change else self.admin_org(request),
            mapping=mapping,
            data=dict(form.cleaned_data),
            actor=request.user,
        )


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
        # revoking is the "Revoke selected tokens" action (the service), never a field edit
        return [] if obj is None else ["user", "name", "revoked_at"]

    def save_through_services(self, request, obj, form, change):
        if change:
            return None  # nothing of a token is edited here
        org = self.admin_org(request)
        token, key = token_services.api_token_create(
            org=org,
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            actor=request.user,
        )
        messages.warning(
            request,
            f"Token for {token.user} ({token.name}): {key} — copy it now, it is not shown again.",
        )
        return token

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            token_services.api_token_revoke(token=token, actor=request.user)


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
        stores = limited_stores(request)
        if stores is not None:
            events = events.filter(Q(store__in=sorted(stores)) | Q(store__isnull=True))
        return events
