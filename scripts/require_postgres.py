"""Exit non-zero, saying plainly what to do, when the PostgreSQL named by DATABASE_URL is down."""

import os
import sys
from urllib.parse import urlparse

import psycopg

url = os.environ.get("DATABASE_URL", "")
parsed = urlparse(url)
if parsed.scheme not in ("postgres", "postgresql", "pgsql"):
    sys.exit(f"Tests run on PostgreSQL only; DATABASE_URL is '{url}'.")
try:
    # Connect to the maintenance database: the test database is created by the test runner.
    with psycopg.connect(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password or None,
        dbname="postgres",
        connect_timeout=5,
    ) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
except psycopg.OperationalError as exc:
    sys.exit(
        f"No PostgreSQL at {parsed.hostname}:{parsed.port or 5432} ({exc}).\n"
        "The tests need one. On Debian/Ubuntu: sudo apt-get install postgresql && "
        "sudo pg_ctlcluster $(ls /etc/postgresql) main start\n"
        "or point DATABASE_URL at a server:\n"
        "  DATABASE_URL=postgres://user:pass@host:5432/db make test"
    )
print(f"PostgreSQL {version} at {parsed.hostname}:{parsed.port or 5432}")
