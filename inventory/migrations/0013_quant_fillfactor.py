# Quants are rewritten on every sale, receipt and count: room in each page lets an update of
# the quantity skip the table's nine indexes (core.migration_ops.fillfactor).

from django.db import migrations

from core.migration_ops import fillfactor


class Migration(migrations.Migration):
    dependencies = [("inventory", "0012_audit_upstock_actions")]

    operations = [fillfactor("inventory", "stockquant", 80)]
