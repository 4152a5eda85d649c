"""Shapes of tenancy answers that views build as dicts, for the OpenAPI description only (the
organisation, stores, locations, people and tokens answer their model serializers)."""

from __future__ import annotations

from rest_framework import serializers

from inventory.models import Role
from inventory.tenancy.capabilities import Action


class MyOrganizationSerializer(serializers.Serializer):
    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(read_only=True, choices=Role.choices)


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True, help_text="Full name; may be empty.")
    organization = serializers.CharField(
        read_only=True, help_text="Slug of the organisation this request acts for."
    )
    role = serializers.ChoiceField(read_only=True, choices=Role.choices)
    stores = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        allow_null=True,
        help_text="Store ids the membership is limited to; null: every store.",
    )
    capabilities = serializers.ListField(
        child=serializers.ChoiceField(choices=Action.choices),
        read_only=True,
        help_text="What the role may do (inventory/tenancy/capabilities.py), sorted.",
    )
    organizations = MyOrganizationSerializer(
        many=True, read_only=True, help_text="Every organisation you are an active member of."
    )
    token = serializers.CharField(
        read_only=True, allow_null=True, help_text="Name of the API token used; null otherwise."
    )
