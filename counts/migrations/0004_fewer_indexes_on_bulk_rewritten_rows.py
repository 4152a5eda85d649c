# The single-column indexes of foreign keys that no read uses, on rows a bulk decision or a
# count's finalisation rewrites by the thousand: dropped alone; and room in each page, so that
# those rewrites, which touch no indexed column any more, skip the indexes (core.migration_ops).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from core.migration_ops import fillfactor, without_fk_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("counts", "0003_variance_row_discrepancy"),
        ("inventory", "0012_audit_upstock_actions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        without_fk_indexes(
            "counts",
            {"variancerow": ["decided_by", "location", "org", "overage_batch", "product"]},
            [
                migrations.AlterField(
                    model_name="variancerow",
                    name="decided_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="variancerow",
                    name="location",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="inventory.location",
                    ),
                ),
                migrations.AlterField(
                    model_name="variancerow",
                    name="org",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="inventory.organization",
                    ),
                ),
                migrations.AlterField(
                    model_name="variancerow",
                    name="overage_batch",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="inventory.batch",
                    ),
                ),
                migrations.AlterField(
                    model_name="variancerow",
                    name="product",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="inventory.product",
                    ),
                ),
            ],
        ),
        fillfactor("counts", "variancerow", 70),
    ]
