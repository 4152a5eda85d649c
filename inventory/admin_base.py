"""The admin's shared base: the organisation scope, store limits, capability checks, and
saving through the services.

Every ModelAdmin of every app subclasses these. A change made in the admin goes through the
same service as the API (``save_through_services``), so the same rules hold (the last admin,
GTIN normalisation, taken codes) and the same audit trail records it; a refusal is shown as a
message on the form. Stock records are shown read-only (``ReadOnlyAdminMixin``).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect

from core.errors import ApplicationError
from inventory.models import Location, Store
from inventory.tenancy.capabilities import Action


def can(request, action: Action) -> bool:
    if request.user.is_superuser:
        return True
    tenant = getattr(request, "tenant", None)
    return tenant is not None and tenant.can(action)


def limited_stores(request) -> frozenset[int] | None:
    """The stores a store-limited membership may see; None when it sees them all."""
    if request.user.is_superuser:
        return None
    tenant = getattr(request, "tenant", None)
    return tenant.store_ids if tenant is not None else None


class StoreListFilter(admin.SimpleListFilter):
    """Filter a list by store, offering only the stores the person may see (a store-limited
    manager is not shown the others). For models with a ``store`` foreign key."""

    title = "store"
    parameter_name = "store"

    def lookups(self, request, model_admin):
        stores = Store.objects.order_by("code")
        limited = limited_stores(request)
        if limited is not None:
            stores = stores.filter(pk__in=sorted(limited))
        return [(str(s.pk), f"{s.code} — {s.name}") for s in stores]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(store_id=value) if value and value.isdigit() else queryset


class ServiceErrorsMixin:
    """Shows a rule a service refuses as a message on the form's page."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A rule a service refuses (a taken code, the last admin) is shown on the form's page
        as a message, not a server error; the admin's transaction has rolled back."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            details = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in exc.fields.items())
            self.message_user(request, f"{exc.message} {details}".strip(), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class TenantAdminMixin(ServiceErrorsMixin):
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
        stores = limited_stores(request)
        if stores is not None and self.store_field:
            rows = rows.filter(**{f"{self.store_field}__in": sorted(stores)})
        return rows

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Store and location pickers offer only the stores the membership may use."""
        stores = limited_stores(request)
        if stores is not None and db_field.related_model is Store:
            kwargs["queryset"] = Store.objects.filter(pk__in=sorted(stores))
        elif stores is not None and db_field.related_model is Location:
            kwargs["queryset"] = Location.objects.filter(store_id__in=sorted(stores))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request):
        return can(request, self.view_capability)

    def has_view_permission(self, request, obj=None):
        return can(request, self.view_capability)

    def has_add_permission(self, request, *args):
        return can(request, self.edit_capability)

    def has_change_permission(self, request, obj=None):
        return can(request, self.edit_capability)

    def has_delete_permission(self, request, obj=None):
        return False  # archive with is_active instead: history must stay explainable

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.user.is_superuser:
            columns.append("org")
        return columns

    def admin_org(self, request):
        org = getattr(request, "admin_org", None)
        if org is None:
            raise PermissionDenied("Choose an organisation first (/admin/org/<slug>/).")
        return org

    def save_model(self, request, obj, form, change):
        """Every save goes through the services (their rules, their audit trail): a
        ModelAdmin that may change rows implements ``save_through_services``."""
        saved = self.save_through_services(request, obj, form, change)
        adopt(obj, saved)

    def save_through_services(self, request, obj, form, change):
        raise PermissionDenied(f"{type(obj).__name__} is not changed in the admin.")

    def save_formset(self, request, form, formset, change):
        raise PermissionDenied("Inline rows are saved through the services.")


def adopt(obj, saved) -> None:
    """Make the admin's form instance the row the service saved (its id and fields), so the
    admin's inlines, log entry and redirect see it."""
    if saved is None or saved is obj:
        return
    for field in type(saved)._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


def saved_inline(formset, new=(), changed=(), deleted=()) -> None:
    """What an inline's service calls did, where the admin's change message reads it (Django
    sets these in ``formset.save()``, which the admin no longer calls)."""
    formset.new_objects = list(new)
    formset.changed_objects = list(changed)
    formset.deleted_objects = list(deleted)


def changed(form, fields=None) -> dict:
    """The cleaned values of the fields the admin's form changed (of ``fields``, if given)."""
    return {
        name: form.cleaned_data[name]
        for name in form.changed_data
        if name in form.cleaned_data and (fields is None or name in fields)
    }


class TenantInlineMixin:
    edit_capability: Action = Action.CATALOG_EDIT

    def has_view_permission(self, request, obj=None):
        return can(request, Action.ADMIN_SITE)

    def has_add_permission(self, request, obj=None):
        return can(request, self.edit_capability)

    def has_change_permission(self, request, obj=None):
        return can(request, self.edit_capability)

    def has_delete_permission(self, request, obj=None):
        return can(request, self.edit_capability)


class ReadOnlyAdminMixin(TenantAdminMixin):
    """Stock records are written only by the stock services: the admin shows, never edits."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
