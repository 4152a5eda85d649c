"""Routes of the audit trail. Every route answers with and without a trailing slash."""

from django.urls import re_path

from inventory.api.audit import views

urlpatterns = [
    re_path(r"^audit/?$", views.AuditEventListApi.as_view(), name="audit"),
]
