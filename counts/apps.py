from django.apps import AppConfig


class CountsConfig(AppConfig):
    name = "counts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Stock under an open blind count is hidden from the reads of operators and viewers;
        # inventory asks through its visibility hook (it imports no other app).
        from counts.selectors import blind_zones
        from inventory.reports.visibility import register_hidden_stock

        register_hidden_stock(blind_zones)

        # A count's out-of-policy variance rows are discrepancies: deciding one decides the row.
        from counts.services.approvals import COUNT_VARIANCE
        from discrepancies.models import DocumentType
        from discrepancies.services.decisions import register_source_handler

        register_source_handler(DocumentType.COUNT_VARIANCE, COUNT_VARIANCE)

        # ... and the discrepancy's detail shows the count's row as its source document.
        from counts.selectors import variance_row_document
        from discrepancies.selectors import register_source_document

        register_source_document(DocumentType.COUNT_VARIANCE, variance_row_document)
