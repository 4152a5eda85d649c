"""The admin site for an organisation's own managers and admins.

A person may use it when their membership's role allows ``admin.site`` (manager and above); the
``AdminTenantMiddleware`` has put the request inside that organisation's scope, so every list and
form shows only its rows. Platform superusers see every organisation and pick the one new rows
belong to at ``/admin/org/<slug>/``.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.shortcuts import redirect
from django.urls import path

from inventory.tenancy.capabilities import Action
from inventory.tenancy.middleware import ADMIN_ORG_SESSION_KEY, resolve_admin_tenant


class MemberAuthenticationForm(AdminAuthenticationForm):
    """Admin sign-in for members with an admin-capable role, not only Django staff."""

    def confirm_login_allowed(self, user):
        if not user.is_active:
            raise forms.ValidationError(self.error_messages["inactive"], code="inactive")
        if not (user.is_superuser or resolve_admin_tenant(user, None) is not None):
            raise forms.ValidationError(
                "This account has no manager or admin role in any organisation.", code="invalid"
            )


class TenantAdminSite(admin.AdminSite):
    site_header = "Inventory administration"
    site_title = "Inventory"
    index_title = "Your organisation"
    login_form = MemberAuthenticationForm

    def has_permission(self, request):
        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        if user.is_superuser:
            return True
        tenant = getattr(request, "tenant", None)
        return tenant is not None and tenant.can(Action.ADMIN_SITE)

    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"{tenant.org.name} — inventory"
        return context

    def get_urls(self):
        return [
            path("org/<slug:slug>/", self.admin_view(self.switch_org), name="switch_org"),
            *super().get_urls(),
        ]

    def switch_org(self, request, slug):
        from django_scopes import scopes_disabled

        from inventory.models import Organization

        with scopes_disabled():
            org = Organization.objects.filter(slug=slug).first()
        allowed = org is not None and (
            request.user.is_superuser
            or resolve_admin_tenant(request.user, org.pk) is not None
            and resolve_admin_tenant(request.user, org.pk).org.pk == org.pk
        )
        if not allowed:
            messages.error(request, "You have no admin access to that organisation.")
        else:
            request.session[ADMIN_ORG_SESSION_KEY] = org.pk
            messages.success(request, f"Working in {org.name}.")
        return redirect("admin:index")
