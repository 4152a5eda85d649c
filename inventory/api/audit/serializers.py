"""Shapes of the audit trail's query string and answer. Field checks only."""

from __future__ import annotations

from rest_framework import serializers

from core import fields as f
from inventory.models import AuditAction


def _id(**kwargs):
    return serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, **kwargs)


class AuditQuery(serializers.Serializer):
    """``GET /api/v1/audit`` filters: exact matches (each meets an index) and a time range."""

    action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
    object_type = f.CharField(
        kind=f.IDENTIFIER,
        required=False,
        max_length=100,
        help_text="A model label, e.g. `inventory.membership` or `counts.countsession`.",
    )
    object_id = _id(help_text="With object_type: the events of one row.")
    actor = _id(help_text="The person's user id.")
    store = _id()
    occurred_from = f.BusinessMomentField(required=False, help_text="Inclusive.")
    occurred_to = f.BusinessMomentField(required=False, help_text="Exclusive.")

    def validate(self, attrs):
        # Every table numbers its rows on its own: an id alone names several objects.
        if attrs.get("object_id") is not None and not attrs.get("object_type"):
            raise serializers.ValidationError(
                {
                    "object_id": [
                        "Give object_type with object_id: each kind of object has its own ids."
                    ]
                }
            )
        if (
            attrs.get("occurred_from") is not None
            and attrs.get("occurred_to") is not None
            and attrs["occurred_to"] < attrs["occurred_from"]
        ):
            raise serializers.ValidationError(
                {"occurred_to": ["Must not be before occurred_from."]}
            )
        return attrs


class AuditEventSerializer(serializers.Serializer):
    """One recorded change. ``before`` and ``after`` hold only the fields that changed (a
    creation has no ``before``); decimals are strings, times UTC with ``Z``, related rows ids."""

    id = serializers.IntegerField(read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    action = serializers.ChoiceField(choices=AuditAction.choices, read_only=True)
    object_type = serializers.CharField(read_only=True)
    object_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="None for a bulk change (ids in `after`)."
    )
    store = serializers.IntegerField(
        source="store_id", read_only=True, allow_null=True, help_text="None: organisation-wide."
    )
    actor = serializers.IntegerField(
        source="actor_id", read_only=True, allow_null=True, help_text="None: the system."
    )
    actor_email = serializers.EmailField(source="actor.email", read_only=True, allow_null=True)
    token = serializers.IntegerField(
        source="token_id",
        read_only=True,
        allow_null=True,
        help_text="The API token (device) the request used; None for the admin and sessions.",
    )
    token_name = serializers.CharField(source="token.name", read_only=True, allow_null=True)
    before = serializers.DictField(read_only=True)
    after = serializers.DictField(read_only=True)
    request_id = serializers.CharField(read_only=True)
