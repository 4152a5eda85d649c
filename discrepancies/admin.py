"""Discrepancies in the admin: where managers approve.

Nothing of a discrepancy is edited by hand. The list filters and searches; the detail page
shows the numbers, the source document, the correction's ledger rows and the timeline (the
same selectors as the API). Approve, reject and review — from the list for a selection, or
from a discrepancy's page for one — ask for a note (and, approving a count's, its posting
mode) on an intermediate page, then call ``discrepancies_decide``: the rules are the
service's, and each refused row is shown with why. A store-limited manager sees and decides
the discrepancies of their stores only.

Variance policies are edited here by admins and saved through their service (its checks, its
audit trail).
"""

from __future__ import annotations

from collections import defaultdict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core import text
from core.errors import ApplicationError
from discrepancies import selectors
from discrepancies.models import (
    UNDECIDED,
    ArchivedDiscrepancy,
    CorrectionMode,
    Discrepancy,
    VariancePolicy,
)
from discrepancies.services.decisions import Decision, discrepancies_decide
from discrepancies.services.policies import variance_policy_delete, variance_policy_save
from inventory.admin_base import (
    StoreListFilter,
    TenantAdminMixin,
    adopt,
    can,
    changed,
)
from inventory.tenancy.capabilities import Action

VERBS = {"approve": "Approve", "reject": "Reject", "review": "Take under review"}
PAST = {"approve": "approved", "reject": "rejected", "review": "taken under review"}
#: How many rows of a selection its note page lists (all of them are decided).
SHOWN = 200


class DecisionForm(forms.Form):
    notes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Why. Required when an admin approves their own discrepancy.",
    )
    mode = forms.ChoiceField(
        required=False,
        choices=[("", "As recorded")] + list(CorrectionMode.choices),
        help_text="A count's discrepancy: how its correction posts at finalise.",
    )

    def clean_notes(self):
        try:
            return text.clean(self.cleaned_data["notes"], text.TEXT).strip()
        except text.TextRefused as exc:
            raise forms.ValidationError(str(exc)) from None


def _table(headers: list[str], rows: list[list]) -> str:
    if not rows:
        return format_html("<p>{}</p>", "—")
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((c if c is not None else "",) for c in r)),)
            for r in rows
        ),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


class DiscrepancyDetailMixin:
    """The read-only detail page of a live or archived discrepancy."""

    store_field = "store"
    view_capability = Action.DISCREPANCY_VIEW
    # what a manager sorts the queue by first; the long names last (the table scrolls)
    list_display = [
        "id",
        "severity",
        "status",
        "variance",
        "value",
        "store_code",
        "product",
        "source",
        "kind",
        "created_at",
        "decided_by",
        "self_approved",
    ]
    list_filter = ["status", "severity", "source", "kind", StoreListFilter]
    list_select_related = ["store", "product", "decided_by"]
    search_fields = ["product__sku", "product__name", "source_ref", "reason"]
    date_hierarchy = "created_at"
    fieldsets = [
        ("Where", {"fields": ["store", "location", "product", "batch"]}),
        (
            "What",
            {
                "fields": [
                    "source",
                    "kind",
                    "status",
                    "severity",
                    "expected",
                    "actual",
                    "variance",
                    "unit_cost",
                    "value",
                    "store_on_hand",
                    "reason",
                ]
            },
        ),
        (
            "Judgement",
            {"fields": ["within_policy", "escalated", "corrective", "correction_mode"]},
        ),
        (
            "Decisions",
            {
                "fields": [
                    "created_by",
                    "created_at",
                    "reviewed_by",
                    "reviewed_at",
                    "decided_by",
                    "decided_at",
                    "self_approved",
                    "resolution_notes",
                    "adjusted_at",
                    "posted_quantity",
                ]
            },
        ),
        ("Source document", {"fields": ["source_document"]}),
        ("Correction: ledger rows", {"fields": ["ledger_rows"]}),
        ("Timeline", {"fields": ["timeline"]}),
    ]

    @admin.display(description="store", ordering="store__code")
    def store_code(self, obj):
        return obj.store.code

    def get_readonly_fields(self, request, obj=None):
        return [name for _, options in self.fieldsets for name in options["fields"]]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _detail(self, obj) -> selectors.DiscrepancyDetail:
        cached = getattr(obj, "_admin_detail", None)
        if cached is None:
            cached = selectors.discrepancy_detail(org=obj.org, discrepancy=obj)
            obj._admin_detail = cached
        return cached

    @admin.display(description="Source document")
    def source_document(self, obj):
        document = self._detail(obj).source_document
        rows = [
            ["type", document["type"]],
            ["id", document["id"]],
            ["line", document["line"]],
            ["source_ref", document["source_ref"]],
            *[[key, value] for key, value in document["details"].items()],
        ]
        return _table(["", ""], rows)

    @admin.display(description="Ledger rows")
    def ledger_rows(self, obj):
        rows = [
            [
                row.pk,
                row.occurred_at,
                row.ref_type,
                row.ref_id,
                row.ref_line,
                row.location.code,
                row.batch.lot_code,
                row.qty_delta,
                row.unit_cost,
            ]
            for row in self._detail(obj).ledger_rows
        ]
        headers = ["id", "occurred", "ref", "ref id", "line", "location", "lot", "qty", "unit cost"]
        return _table(headers, rows)

    @admin.display(description="Timeline")
    def timeline(self, obj):
        rows = [
            [
                entry.at,
                entry.event + (" (self-approved)" if entry.self_approved else ""),
                entry.actor.email if entry.actor else "system",
                ", ".join(f"{k}: {v}" for k, v in entry.before.items()),
                ", ".join(f"{k}: {v}" for k, v in entry.after.items() if k != "notes"),
                entry.notes,
            ]
            for entry in self._detail(obj).timeline
        ]
        return _table(["when", "what", "who", "before", "after", "notes"], rows)


@admin.register(Discrepancy)
class DiscrepancyAdmin(DiscrepancyDetailMixin, TenantAdminMixin, admin.ModelAdmin):
    actions = ["approve_selected", "reject_selected", "review_selected"]
    change_form_template = "admin/discrepancies/discrepancy/change_form.html"

    def get_urls(self):
        return [
            path(
                "<int:object_id>/decide/<str:verb>/",
                self.admin_site.admin_view(self.decide_view),
                name="discrepancies_discrepancy_decide",
            ),
            *super().get_urls(),
        ]

    def has_decide_permission(self, request):
        return can(request, Action.VARIANCE_APPROVE)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if (
            self.has_decide_permission(request)
            and object_id
            and object_id.isdigit()
            # a closed one has nothing left to decide: no buttons that could only be refused
            and self.get_queryset(request).filter(pk=object_id, status__in=UNDECIDED).exists()
        ):
            extra_context["decide_links"] = [
                (
                    verb,
                    label,
                    reverse("admin:discrepancies_discrepancy_decide", args=[object_id, verb]),
                )
                for verb, label in VERBS.items()
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    # --- deciding ---------------------------------------------------------------------------

    def _decide(self, request, ids: list[int], verb: str, form: DecisionForm) -> None:
        """Call the service for ``ids`` and report what it did, each refusal with its reason."""
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            self.message_user(
                request, "Deciding needs a membership in this organisation.", messages.ERROR
            )
            return
        decision = Decision(
            verb, notes=form.cleaned_data["notes"], mode=form.cleaned_data["mode"] or None
        )
        try:
            outcome = discrepancies_decide(
                org=tenant.org, ids=ids, decision=decision, tenant=tenant, actor=request.user
            )
        except ApplicationError as exc:
            details = "; ".join(f"{f}: {', '.join(m)}" for f, m in exc.fields.items())
            self.message_user(request, f"{exc.message} {details}".strip(), messages.ERROR)
            return
        if outcome.decided:
            listed = ", ".join(f"#{d.pk}" for d in outcome.decided)
            self.message_user(
                request,
                f"{len(outcome.decided)} {PAST[verb]}: {listed}.",
                messages.SUCCESS,
            )
        if outcome.unchanged:
            listed = ", ".join(f"#{d.pk}" for d in outcome.unchanged)
            self.message_user(request, f"Already {PAST[verb]} by you: {listed}.", messages.INFO)
        refused: dict[tuple[str, str], list[int]] = defaultdict(list)
        for refusal in outcome.refusals():
            refused[(refusal["code"], refusal["detail"])].append(refusal["id"])
        for (code, detail), pks in refused.items():
            listed = ", ".join(f"#{pk}" for pk in sorted(pks))
            self.message_user(
                request, f"Not {PAST[verb]} ({code}): {listed} — {detail}", messages.ERROR
            )

    def _decision_page(self, request, verb: str, rows, form: DecisionForm, *, action=None, ids=()):
        count = len(ids) if action else len(rows)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{VERBS[verb]}: {count} discrepanc{'y' if count == 1 else 'ies'}",
            "ids": ids,
            "more": count - len(rows),
            "opts": self.model._meta,
            "verb": verb,
            "label": VERBS[verb],
            "rows": rows,
            "form": form,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/discrepancies/discrepancy/decide.html", context)

    def _selection_action(self, request, queryset, verb: str):
        """A list action: the note page first, then the decision on the rows still visible."""
        form = DecisionForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            self._decide(request, list(queryset.values_list("pk", flat=True)), verb, form)
            return None  # back to the list, with the messages
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        rows = list(queryset.select_related("store", "product").order_by("pk")[:SHOWN])
        return self._decision_page(request, verb, rows, form, action=f"{verb}_selected", ids=ids)

    @admin.action(description="Approve selected discrepancies", permissions=["decide"])
    def approve_selected(self, request, queryset):
        return self._selection_action(request, queryset, "approve")

    @admin.action(description="Reject selected discrepancies", permissions=["decide"])
    def reject_selected(self, request, queryset):
        return self._selection_action(request, queryset, "reject")

    @admin.action(description="Take selected discrepancies under review", permissions=["decide"])
    def review_selected(self, request, queryset):
        return self._selection_action(request, queryset, "review")

    def decide_view(self, request, object_id: int, verb: str):
        """One discrepancy's decision, from its page."""
        if verb not in VERBS or not self.has_decide_permission(request):
            raise PermissionDenied
        found = self.get_queryset(request).filter(pk=object_id).first()
        change_url = reverse("admin:discrepancies_discrepancy_changelist")
        if found is None:
            self.message_user(request, f"Discrepancy #{object_id} does not exist.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        form = DecisionForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            self._decide(request, [found.pk], verb, form)
            return HttpResponseRedirect(
                reverse("admin:discrepancies_discrepancy_change", args=[found.pk])
            )
        return self._decision_page(request, verb, [found], form)


@admin.register(ArchivedDiscrepancy)
class ArchivedDiscrepancyAdmin(DiscrepancyDetailMixin, TenantAdminMixin, admin.ModelAdmin):
    """Closed discrepancies past the retention window: read-only, same ids, same timeline."""

    list_display = [*DiscrepancyDetailMixin.list_display, "archived_at"]


@admin.register(VariancePolicy)
class VariancePolicyAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Per category (blank: the default). Read by managers, set by admins."""

    view_capability = Action.DISCREPANCY_VIEW
    edit_capability = Action.ORG_SETTINGS_EDIT
    list_display = ["category_label", "units", "percent", "value", "updated_at"]
    fields = ["category", "units", "percent", "value"]
    search_fields = ["category"]

    @admin.display(description="category", ordering="category")
    def category_label(self, obj):
        return obj.category or "(default)"

    def has_delete_permission(self, request, obj=None):
        return can(request, self.edit_capability)

    def save_through_services(self, request, obj, form, change):
        data = changed(form, self.fields) if change else dict(form.cleaned_data)
        data = {k: v for k, v in data.items() if k in self.fields}
        original = VariancePolicy.objects.get(pk=obj.pk) if change else None
        return variance_policy_save(
            org=original.org if change else self.admin_org(request),
            policy=original,
            data=data,
            actor=request.user,
        )

    def save_model(self, request, obj, form, change):
        adopt(obj, self.save_through_services(request, obj, form, change))

    def delete_model(self, request, obj):
        variance_policy_delete(org=obj.org, policy=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for policy in queryset:
            variance_policy_delete(org=policy.org, policy=policy, actor=request.user)
