"""What both benchmarks need before they measure: a throwaway database and production-like
settings. Each bench drops and recreates its own database, so the name must end in ``bench``."""

from __future__ import annotations

import os
import warnings
from urllib.parse import urlsplit, urlunsplit


def bench_url(default_name: str) -> str:
    """DATABASE_URL pointed at a database whose name ends in ``bench`` (it gets dropped):
    the given one when it does, else ``default_name`` on the same server."""
    parts = urlsplit(
        os.environ.get("DATABASE_URL") or f"postgres://postgres@127.0.0.1:5432/{default_name}"
    )
    name = parts.path.lstrip("/")
    if not name.endswith("bench"):
        print(f"note: using database '{default_name}', not '{name}' (the bench drops it)")
        parts = parts._replace(path=f"/{default_name}")
    return urlunsplit(parts)


def configure_environment(url: str) -> None:
    """Settings as production runs them: DEBUG off (no query log kept per connection)."""
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Mail is rendered and sent to memory, not printed: the default console backend wrote the
    # serious-discrepancy notices (two mails of 500 rows each) into the bench's output.
    os.environ.setdefault("EMAIL_URL", "memorymail://")
    # WhiteNoise notes that collectstatic never ran; irrelevant here.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)


def psycopg_url(url: str, dbname: str | None = None) -> str:
    parts = urlsplit(url)
    if dbname is not None:
        parts = parts._replace(path=f"/{dbname}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def _maintenance(url: str, statements: list[str]) -> None:
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(psycopg_url(url, "postgres"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(sql.SQL(statement).format(sql.Identifier(name)))


def recreate_database(url: str) -> str:
    _maintenance(url, ["DROP DATABASE IF EXISTS {} WITH (FORCE)", "CREATE DATABASE {}"])
    return urlsplit(url).path.lstrip("/")


def drop_database(url: str) -> None:
    _maintenance(url, ["DROP DATABASE IF EXISTS {} WITH (FORCE)"])
