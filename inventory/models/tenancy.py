"""Organisations (tenants), their stores and locations, memberships with roles, API tokens."""

import datetime
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from inventory.models.base import TenantModel

SLUG_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{1,62}$", "Use 2-63 lower-case letters, digits and hyphens."
)
CODE_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", "Use up to 32 letters, digits, '.', '_' or '-'."
)


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            f"Unknown time zone '{value}' (use an IANA name).", code="invalid_time_zone"
        )


class NegativeStockMode(models.TextChoices):
    BLOCK = "block", "Block: refuse a sale that would go below zero"
    WARN = "warn", "Warn: allow it and answer with warnings"
    RECORD = "record", "Record: allow it silently, recording the shortfall"


class DiscrepancyEnforcement(models.TextChoices):
    RECORD = "record", "Record only"
    WARN = "warn", "Warn"
    BLOCK = "block", "Block"


class Role(models.TextChoices):
    """Roles in increasing order of power; each may do what the ones before it may."""

    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class Organization(models.Model):
    """A tenant: one retail organisation with its own stores, catalog, people and settings."""

    slug = models.SlugField(max_length=63, unique=True, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    negative_stock_mode = models.CharField(
        max_length=8, choices=NegativeStockMode.choices, default=NegativeStockMode.BLOCK
    )
    discrepancy_enforcement = models.CharField(
        max_length=8,
        choices=DiscrepancyEnforcement.choices,
        default=DiscrepancyEnforcement.RECORD,
    )
    # Money value (at cost) above which an approval needs an admin instead of a manager.
    escalation_threshold = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=Decimal("500.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    # Google sign-in is accepted only from these e-mail domains when the list is not empty.
    allowed_email_domains = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Store(TenantModel):
    code = models.CharField(max_length=32, validators=[CODE_VALIDATOR])
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    cova_location_id = models.CharField(max_length=64, blank=True, default="")
    # Other systems' identifiers for this store, e.g. {"metrc_license": "..."}.
    external_ids = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # When the store closes (its own time zone), the days it does not open (0 = Monday …
    # 6 = Sunday) and its holidays (ISO dates): what the nightly jobs (upstock) run after.
    closing_time = models.TimeField(default=datetime.time(22, 0))
    closed_weekdays = models.JSONField(default=list, blank=True)
    holidays = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["org", "code"], name="store_code_unique_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class LocationKind(models.TextChoices):
    SALES_FLOOR = "sales_floor", "Sales floor"
    BACK_ROOM = "back_room", "Back room"
    VAULT = "vault", "Vault"
    RECEIVING = "receiving", "Receiving"
    QUARANTINE = "quarantine", "Quarantine"
    TRANSIT = "transit", "Transit"
    OTHER = "other", "Other"


class Location(TenantModel):
    """A room or area of a store that holds stock. Only ``sellable`` locations feed sales."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="locations")
    code = models.CharField(max_length=32, validators=[CODE_VALIDATOR])
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=LocationKind.choices)
    sellable = models.BooleanField(default=False)
    # Staff pull from it to restock the sales floor at night (back rooms are; a vault is not
    # unless a manager marks it).
    upstock_source = models.BooleanField(default=False)
    sort_order = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["store_id", "sort_order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "store", "code"], name="location_code_unique_per_store"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Membership(TenantModel):
    """A person's role in one organisation, optionally limited to some of its stores."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    # Empty means every store of the organisation.
    stores = models.ManyToManyField(Store, through="MembershipStore", blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "user"], name="membership_unique_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.role} @ {self.org_id}"


class MembershipStore(TenantModel):
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE)
    store = models.ForeignKey(Store, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["org", "membership", "store"], name="membership_store_unique"
            ),
        ]


class ApiToken(TenantModel):
    """A person's API token in one organisation, optionally naming the device that holds it.

    Only a SHA-256 digest of the key is stored: the key itself is shown once, when created.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="Device or purpose, e.g. 'Tablet 3'.")
    prefix = models.CharField(max_length=8, editable=False)
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["org", "user"], name="apitoken_org_user")]

    def __str__(self) -> str:
        return f"{self.prefix}… {self.name}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
