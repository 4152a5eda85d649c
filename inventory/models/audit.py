"""The audit trail: who changed what, from which device, in which request.

One row per change made by a service that has no record of its own (settings, stores, people,
tokens, the catalogue, the steps of a count). Stock documents are not audited here: a sale,
refund, receipt, move, adjustment or write-off is its own row plus its ledger rows, which
already say who, when and what; a count's scans carry who and which device. Rows are written
only by ``inventory.audit.services.audit_record`` and never changed or deleted (outside
``org_purge``); the admin and the API only read them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from inventory.models.base import TenantModel


class AuditAction(models.TextChoices):
    """Every action the trail records: stable dotted names (clients filter on them)."""

    ORG_CREATED = "org.created", "Organisation created"
    ORG_SETTINGS_CHANGED = "org.settings_changed", "Organisation settings changed"
    STORE_CREATED = "store.created", "Store created"
    STORE_UPDATED = "store.updated", "Store changed"
    LOCATION_CREATED = "location.created", "Location created"
    LOCATION_UPDATED = "location.updated", "Location changed"
    MEMBERSHIP_CREATED = "membership.created", "Member added"
    MEMBERSHIP_REACTIVATED = "membership.reactivated", "Member re-activated"
    MEMBERSHIP_ROLE_CHANGED = "membership.role_changed", "Member's role changed"
    MEMBERSHIP_UPDATED = "membership.updated", "Member's stores changed"
    MEMBERSHIP_DEACTIVATED = "membership.deactivated", "Member deactivated"
    TOKEN_ISSUED = "token.issued", "API token issued"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
    TOKENS_REVOKED_FOR_MEMBER = "tokens.revoked_for_member", "A member's API tokens revoked"
    PRODUCT_CREATED = "product.created", "Product created"
    PRODUCT_UPDATED = "product.updated", "Product changed"
    PRODUCT_ARCHIVED = "product.archived", "Product archived"
    PRODUCTS_BULK_UPSERTED = "products.bulk_upserted", "Products imported"
    CLASSIFICATION_SAVED = "classification.saved", "Classification mapping saved"
    CLASSIFICATION_DELETED = "classification.deleted", "Classification mapping deleted"
    COUNT_SESSION_CREATED = "count.session_created", "Count created"
    COUNT_SESSION_STARTED = "count.session_started", "Count started"
    COUNT_SESSION_SUBMITTED = "count.session_submitted", "Count submitted"
    COUNT_SESSION_RECONCILED = "count.session_reconciled", "Count reconciled"
    COUNT_SESSION_FINALIZED = "count.session_finalized", "Count finalised"
    COUNT_SESSION_CANCELLED = "count.session_cancelled", "Count cancelled"
    COUNT_VARIANCE_APPROVED = "count.variance_approved", "Variance approved"
    COUNT_VARIANCE_REJECTED = "count.variance_rejected", "Variance rejected"
    COUNT_VARIANCE_REASON_SET = "count.variance_reason_set", "Variance reason given"
    COUNT_PASS_CREATED = "count.pass_created", "Count pass opened"
    COUNT_PASS_SUBMITTED = "count.pass_submitted", "Count pass submitted"
    COUNT_PASS_VOIDED = "count.pass_voided", "Count pass voided"
    COUNT_SCAN_RESOLVED = "count.scan_resolved", "Unknown scan mapped to a product"
    COUNT_LINE_CORRECTED = "count.line_corrected", "Count line corrected by hand"
    COUNT_LINE_DELETED = "count.line_deleted", "Count line deleted"
    DISCREPANCY_REVIEWED = "discrepancy.reviewed", "Discrepancy taken under review"
    DISCREPANCY_APPROVED = "discrepancy.approved", "Discrepancy approved"
    DISCREPANCY_REJECTED = "discrepancy.rejected", "Discrepancy rejected"
    DISCREPANCY_ADJUSTED = "discrepancy.adjusted", "Discrepancy's correction posted"
    DISCREPANCIES_ARCHIVED = "discrepancies.archived", "Closed discrepancies archived"
    VARIANCE_POLICY_SAVED = "variance_policy.saved", "Variance policy saved"
    VARIANCE_POLICY_DELETED = "variance_policy.deleted", "Variance policy deleted"
    STOCK_HOLD_OVERRIDDEN = "stock_hold.overridden", "Sale or move of a held product let through"
    UPSTOCK_BASELINE_SAVED = "upstock.baseline_saved", "Par level saved"
    UPSTOCK_BASELINE_DELETED = "upstock.baseline_deleted", "Par level deleted"
    UPSTOCK_BASELINES_IMPORTED = "upstock.baselines_imported", "Par levels imported"
    UPSTOCK_RUN_CREATED = "upstock.run_created", "Upstock run created"
    UPSTOCK_RUN_COMPLETED = "upstock.run_completed", "Upstock run completed"
    UPSTOCK_RUN_ABANDONED = "upstock.run_abandoned", "Upstock run abandoned"
    UPSTOCK_LINE_PULLED = "upstock.line_pulled", "Upstock line pulled"
    UPSTOCK_LINE_SKIPPED = "upstock.line_skipped", "Upstock line skipped"
    UPSTOCK_LINE_EXCEPTION = "upstock.line_exception", "Upstock line exception"


class AuditEvent(TenantModel):
    """One change: the person (None for the system: nightly jobs, commands), the API token the
    request used (None for the admin, sessions and the system), the action, the object it
    changed (``object_type`` is the model label, ``object_id`` its id; no id for a bulk change
    of many rows), the store it belongs to (None for organisation-wide changes), the changed
    fields before and after (JSON-safe: decimals as strings, times in UTC with ``Z``) and the
    request id that the logs carry too."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Tokens are revoked, never deleted: the trail keeps pointing at the device's token.
    token = models.ForeignKey(
        "inventory.ApiToken", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=64, choices=AuditAction.choices)
    object_type = models.CharField(max_length=100)
    object_id = models.BigIntegerField(null=True, blank=True)
    store = models.ForeignKey(
        "inventory.Store", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["org", "id"], name="audit_org_id"),
            models.Index(fields=["org", "object_type", "object_id", "id"], name="audit_org_object"),
            models.Index(fields=["org", "action", "id"], name="audit_org_action"),
            models.Index(fields=["org", "actor", "id"], name="audit_org_actor"),
        ]

    def __str__(self) -> str:
        target = self.object_type
        if self.object_id is not None:
            target += f" #{self.object_id}"
        return f"Audit #{self.pk}: {self.action} on {target}"
