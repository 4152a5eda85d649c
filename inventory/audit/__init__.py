"""The audit trail: ``services.audit_record`` writes one event per change, ``selectors`` read
them (the API's ``GET /api/v1/audit``, the admin, timelines of one object)."""
