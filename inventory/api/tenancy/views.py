"""Organisation, stores, locations, people, tokens and sign-in over HTTP. Thin: parse,
authorise, call a service, serialise."""

from __future__ import annotations

from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ValidationFailed
from inventory.api.base import TenantAPIMixin
from inventory.api.tenancy import responses
from inventory.api.tenancy import serializers as s
from inventory.api.tenancy.filters import (
    ApiTokenFilter,
    LocationFilter,
    MembershipFilter,
    StoreFilter,
)
from inventory.api.tenancy.throttling import LoginAccountThrottle, LoginAddressThrottle
from inventory.models import (
    ApiToken,
    Location,
    Membership,
    Store,
)
from inventory.tenancy import services as org_services
from inventory.tenancy import tokens as token_services
from inventory.tenancy.capabilities import MINIMUM_ROLE, Action


class OrganizationApi(TenantAPIMixin, generics.GenericAPIView):
    """The caller's organisation and its settings (admins change them)."""

    serializer_class = s.OrganizationSerializer
    read_capability = Action.CATALOG_VIEW
    write_capability = Action.ORG_SETTINGS_EDIT

    def get(self, request):
        return Response(self.get_serializer(self.org).data)

    def patch(self, request):
        serializer = self.get_serializer(self.org, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        org = org_services.org_update_settings(
            org=self.org, changes=serializer.validated_data, actor=request.user
        )
        return Response(self.get_serializer(org).data)


class StoreViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Store.objects.none()  # for the schema; requests use get_queryset
    serializer_class = s.StoreSerializer
    read_capability = Action.CATALOG_VIEW
    write_capability = Action.STORE_MANAGE
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name"]
    filterset_class = StoreFilter

    def get_queryset(self):
        stores = Store.objects.prefetch_related("locations").order_by("code")
        if self.tenant.store_ids is not None:
            stores = stores.filter(pk__in=self.tenant.store_ids)
        return stores

    def perform_create(self, serializer):
        serializer.instance = org_services.store_create(
            org=self.org, actor=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = org_services.store_update(
            org=self.org,
            store=serializer.instance,
            changes=serializer.validated_data,
            actor=self.request.user,
        )


class LocationViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Location.objects.none()  # for the schema; requests use get_queryset
    serializer_class = s.LocationSerializer
    read_capability = Action.CATALOG_VIEW
    write_capability = Action.STORE_MANAGE
    filterset_class = LocationFilter
    search_fields = ["code", "name"]

    def get_queryset(self):
        locations = Location.objects.select_related("store").order_by(
            "store__code", "sort_order", "id"
        )
        if self.tenant.store_ids is not None:
            locations = locations.filter(store_id__in=self.tenant.store_ids)
        return locations

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        store = data.pop("store")
        self.check_store(store)
        serializer.instance = org_services.location_create(
            org=self.org, store=store, actor=self.request.user, **data
        )

    def perform_update(self, serializer):
        serializer.instance = org_services.location_update(
            org=self.org,
            location=serializer.instance,
            changes=serializer.validated_data,
            actor=self.request.user,
        )


class MembershipViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """People and their roles. DELETE deactivates (the history of who did what stays)."""

    queryset = Membership.objects.none()  # for the schema; requests use get_queryset
    serializer_class = s.MembershipSerializer
    read_capability = Action.MEMBERSHIP_MANAGE
    write_capability = Action.MEMBERSHIP_MANAGE
    filterset_class = MembershipFilter
    search_fields = ["user__email", "user__first_name", "user__last_name"]

    def get_queryset(self):
        return Membership.objects.select_related("user").prefetch_related("stores").order_by("id")

    def perform_create(self, serializer):
        data = serializer.validated_data
        user = data.get("user", {})
        serializer.instance = org_services.membership_create(
            org=self.org,
            email=user["email"],
            role=data["role"],
            stores=data.get("stores", []),
            first_name=user.get("first_name", ""),
            last_name=user.get("last_name", ""),
            actor=self.request.user,
        )

    def perform_update(self, serializer):
        changes = {k: v for k, v in serializer.validated_data.items() if k != "user"}
        serializer.instance = org_services.membership_update(
            org=self.org,
            membership=serializer.instance,
            changes=changes,
            actor=self.request.user,
        )

    def perform_destroy(self, instance):
        org_services.membership_update(
            org=self.org,
            membership=instance,
            changes={"is_active": False},
            actor=self.request.user,
        )


class ApiTokenViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Your API tokens (admins see and revoke everyone's in the organisation)."""

    queryset = ApiToken.objects.none()  # for the schema; requests use get_queryset
    serializer_class = s.ApiTokenSerializer
    read_capability = Action.STOCK_VIEW
    write_capability = Action.STOCK_VIEW  # anyone manages their own tokens; see get_queryset
    filterset_class = ApiTokenFilter

    def get_queryset(self):
        tokens = ApiToken.objects.select_related("user").order_by("-created_at")
        if not self.tenant.can(Action.TOKEN_MANAGE):
            tokens = tokens.filter(user=self.request.user)
        return tokens

    @extend_schema(request=s.ApiTokenCreateSerializer, responses={201: s.IssuedTokenSerializer})
    def create(self, request):
        serializer = s.ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user
        email = serializer.validated_data.get("email")
        if email and email.lower() != (user.email or "").lower():
            if not self.tenant.can(Action.TOKEN_MANAGE):
                raise PermissionDenied("Only admins issue tokens for other people.")
            membership = (
                Membership.objects.filter(user__email__iexact=email, is_active=True)
                .select_related("user")
                .first()
            )
            if membership is None:
                raise ValidationFailed(
                    fields={"email": ["Not an active member."]}, code="not_a_member"
                )
            user = membership.user
        token, key = token_services.api_token_create(
            org=self.org, user=user, name=serializer.validated_data["name"], actor=request.user
        )
        token.key = key
        return Response(s.IssuedTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.ApiTokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = token_services.api_token_revoke(token=self.get_object(), actor=request.user)
        return Response(self.get_serializer(token).data)


class MeApi(TenantAPIMixin, APIView):
    """Who you are, in which organisation, and what your role lets you do."""

    read_capability = Action.STOCK_VIEW

    @extend_schema(responses={200: responses.MeSerializer})
    def get(self, request):
        tenant = self.tenant
        user = request.user
        others = Membership.unscoped.filter(user=user, is_active=True).select_related("org")
        return Response(
            {
                "id": user.pk,
                "email": user.email,
                "name": user.get_full_name(),
                "organization": tenant.org.slug,
                "role": tenant.role,
                "stores": sorted(tenant.store_ids) if tenant.store_ids is not None else None,
                "capabilities": sorted(a.value for a in MINIMUM_ROLE if tenant.can(a)),
                "organizations": [
                    {"slug": m.org.slug, "name": m.org.name, "role": m.role} for m in others
                ],
                "token": getattr(request.auth, "name", None)
                if isinstance(request.auth, ApiToken)
                else None,
            }
        )


class TokenLoginApi(APIView):
    """Sign a person in on a device; answers a personal device token.

    A shared tablet calls this for each person so that every write records the real person:
    with e-mail and password, or, after a Google sign-in through allauth's headless app flow
    (``/_allauth/app/v1/...``), with that session's ``X-Session-Token`` header.
    """

    authentication_classes = [XSessionTokenAuthentication]
    permission_classes = [AllowAny]
    # Per client address and per account; see inventory.api.throttling.
    throttle_classes = [LoginAddressThrottle, LoginAccountThrottle]

    @extend_schema(request=s.TokenLoginSerializer, responses={201: s.IssuedTokenSerializer})
    def post(self, request):
        signed_in = request.user if request.user.is_authenticated else None
        serializer = s.TokenLoginSerializer(
            data=request.data, context={"signed_in_user": signed_in}
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if signed_in is not None:
            token, key = token_services.api_token_for_signed_in_user(
                user=signed_in, device=data["device"], org_slug=data.get("organization")
            )
        else:
            token, key = token_services.api_token_from_password(
                email=data["email"],
                password=data["password"],
                device=data["device"],
                org_slug=data.get("organization"),
            )
        token.key = key
        return Response(s.IssuedTokenSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenLogoutApi(APIView):
    """Revoke the token this request was made with."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        if isinstance(request.auth, ApiToken):
            token_services.api_token_revoke(token=request.auth, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
