#!/usr/bin/env bash
# This release's migrations over the previous release's data. The previous release's own code
# (from git history: `git archive`, no checkout) migrates a fresh database and seeds a small demo
# with its own seed_demo; then this tree's `manage.py migrate` runs on that database, and the
# check fails unless the migrations apply, `reconcile_inventory` finds every quant explained by
# the ledger, the ledger, quants, sales and the other counted tables keep their rows and sums,
# and API reads answer 200 for every organisation. On PostgreSQL (a throwaway database on the
# server of $DATABASE_URL, dropped at the end) and on SQLite (the demo's database; a temporary
# file).
#
#   bash scripts/check_migrations_from_previous_release.sh
#   PREVIOUS_RELEASE=<commit> DEMO_DAYS=3 ENGINES="postgresql sqlite" bash scripts/check_…sh
#
# Bump PREVIOUS_RELEASE when a release ships: it names the commit whose schema and data the
# next release must upgrade. Needs only git history (CI's clone has it) and, for PostgreSQL, the
# server `make test` uses.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

PREVIOUS_RELEASE="${PREVIOUS_RELEASE:-6c86988}"
DEMO_DAYS="${DEMO_DAYS:-3}"
ENGINES="${ENGINES:-postgresql sqlite}"
PY="${PY:-$root/.venv/bin/python}"
SERVER_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/inventory}"
DB_NAME="inv_migcheck_$$"

if ! git cat-file -e "${PREVIOUS_RELEASE}^{commit}" 2>/dev/null; then
  echo "previous release $PREVIOUS_RELEASE is not in this clone's history" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/check-migrations.XXXXXX")
pg_url=$("$PY" -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
  "$SERVER_URL" "$DB_NAME")

# CREATE or DROP DATABASE through the server's maintenance database (no client tools needed).
pg_admin() {
  "$PY" - "$SERVER_URL" "$1" "$DB_NAME" <<'EOF'
import sys
import urllib.parse as u

import psycopg

url, action, name = sys.argv[1:]
admin = u.urlunsplit(u.urlsplit(url)._replace(path="/postgres"))
with psycopg.connect(admin, autocommit=True) as conn:
    if action == "create":
        conn.execute(f'CREATE DATABASE "{name}"')
    else:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
EOF
}

pg_created=""
cleanup() {
  if [ -n "$pg_created" ]; then pg_admin drop || echo "could not drop $DB_NAME" >&2; fi
  rm -rf "$work"
}
trap cleanup EXIT

git archive --format=tar "$PREVIOUS_RELEASE" | tar -xf - -C "$work" --one-top-level=prev
prev="$work/prev"

# The previous release runs on its own pinned runtime: this virtualenv while
# requirements/base.txt is unchanged since then, else a virtualenv of its own.
prev_py="$PY"
if ! git diff --quiet "$PREVIOUS_RELEASE" -- requirements/base.txt; then
  echo "requirements/base.txt changed since $PREVIOUS_RELEASE: a virtualenv for it"
  "$PY" -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet -r "$prev/requirements/base.txt"
  prev_py="$work/venv/bin/python"
fi

# Each engine's environment: base settings, Celery eager, nothing from this shell's database,
# broker or cache settings.
django() {  # django TREE PYTHON ENGINE manage.py-arguments…
  local tree=$1 python=$2 engine=$3
  shift 3
  local target
  if [ "$engine" = postgresql ]; then
    target=(DATABASE_URL="$pg_url")
  else
    target=(SQLITE_PATH="$work/demo.sqlite3")
  fi
  (cd "$tree" && env -u DATABASE_URL -u SQLITE_PATH -u DJANGO_SETTINGS_MODULE \
    -u CELERY_BROKER_URL -u CELERY_RESULT_BACKEND -u CACHE_URL \
    LOG_LEVEL=WARNING "${target[@]}" "$python" manage.py "$@")
}

# What must not change: row counts of the stock, sales and counts tables, and the sums of the
# ledger and the quants (raw SQL, so the same text runs under either release's models).
SNAPSHOT='
from django.db import connection
tables = {
    "inventory_stockledger": "qty_delta", "inventory_stockquant": "quantity",
    "inventory_sale": None, "inventory_saleline": None, "inventory_refund": None,
    "inventory_stockdocument": None, "inventory_stockshortfall": None, "inventory_batch": None,
    "inventory_product": None, "inventory_organization": None, "inventory_membership": None,
    "counts_countsession": None, "counts_countpass": None, "counts_countline": None,
    "counts_variancerow": None,
}
with connection.cursor() as cursor:
    for table, summed in tables.items():
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        line = f"{table}: {cursor.fetchone()[0]} rows"
        if summed:
            cursor.execute(f"SELECT SUM({summed}) FROM {table}")
            line += f", sum({summed}) = {cursor.fetchone()[0]}"
        print(line)
'

# After the upgrade, with this tree's code: a token for an admin of every organisation (the
# documented create_api_token command) and reads that must answer 200.
READS='
import io
from django.core.management import call_command
from django.test import Client
from inventory.models import Membership, Role
paths = [
    "/api/v1/me", "/api/v1/org", "/api/v1/stores", "/api/v1/products", "/api/v1/stock",
    "/api/v1/stock/summary", "/api/v1/stock/kpis", "/api/v1/stock/reconciliation",
    "/api/v1/ledger", "/api/v1/sales", "/api/v1/counts/sessions",
]
admins = {}
for m in Membership.unscoped.filter(role=Role.ADMIN, is_active=True).select_related("org", "user"):
    admins.setdefault(m.org.slug, m.user.email)
assert admins, "no organisation with an active admin: the previous release seeded nothing?"
failed = []
for slug, email in sorted(admins.items()):
    out = io.StringIO()
    call_command("create_api_token", org=slug, email=email, name="migration check", stdout=out)
    client = Client(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
    for path in paths:
        status = client.get(path).status_code
        print(f"{slug} GET {path}: {status}")
        if status != 200:
            failed.append(f"{slug} {path} {status}")
if failed:
    raise SystemExit("reads that did not answer 200: " + ", ".join(failed))
'

status=0
for engine in $ENGINES; do
  started=$SECONDS
  echo "== $engine: previous release $(git rev-parse --short "$PREVIOUS_RELEASE"), demo of $DEMO_DAYS day(s)"
  if [ "$engine" = postgresql ]; then
    pg_admin drop
    pg_admin create
    pg_created=1
  else
    rm -f "$work/demo.sqlite3"
  fi

  django "$prev" "$prev_py" "$engine" migrate --noinput -v 0
  django "$prev" "$prev_py" "$engine" seed_demo --reset --days "$DEMO_DAYS" >"$work/seed.log" 2>&1 \
    || { cat "$work/seed.log"; exit 1; }
  django "$prev" "$prev_py" "$engine" shell -v 0 -c "$SNAPSHOT" >"$work/before.txt"
  echo "-- seeded by the previous release in $((SECONDS - started))s"

  django "$root" "$PY" "$engine" showmigrations --plan | grep -F '[ ]' || true
  django "$root" "$PY" "$engine" migrate --noinput
  django "$root" "$PY" "$engine" shell -v 0 -c "$SNAPSHOT" >"$work/after.txt"

  if ! diff -u "$work/before.txt" "$work/after.txt"; then
    echo "FAIL ($engine): the migrations changed the data above" >&2
    status=1
  else
    sed 's/^/   /' "$work/after.txt"
  fi
  if ! django "$root" "$PY" "$engine" reconcile_inventory; then
    echo "FAIL ($engine): reconcile_inventory found stock the ledger does not explain" >&2
    status=1
  fi
  if ! django "$root" "$PY" "$engine" shell -v 0 -c "$READS"; then
    echo "FAIL ($engine): API reads after the upgrade" >&2
    status=1
  fi
  echo "-- $engine done in $((SECONDS - started))s"

  if [ "$engine" = postgresql ]; then
    pg_admin drop
    pg_created=""
  fi
done

if [ "$status" -ne 0 ]; then
  echo "migrations from $PREVIOUS_RELEASE: FAILED" >&2
else
  echo "migrations from $PREVIOUS_RELEASE: ok"
fi
exit "$status"
