"""A figure set in one process (the Celery worker's nightly check) reaches every web process's
``/metrics``: it is kept in the database, not in the memory of the process that set it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from inventory.metrics import stock_out_of_sync_items

ROOT = Path(__file__).resolve().parents[2]


def scrape() -> str:
    return Client().get("/metrics").content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_gauge_set_by_another_process_is_served_here_once_per_series():
    # given: another process (as a worker would) sets the org's figure, twice
    database = connection.settings_dict
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )
    script = (
        "import django; django.setup();"
        "from inventory.metrics import stock_out_of_sync_items as g;"
        "g.set(5, org='acme', scope='all'); g.set(3, org='acme', scope='all')"
    )
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=60)

    # then: this process serves the last value, in one series without a pid label
    lines = [line for line in scrape().splitlines() if line.startswith("stock_out_of_sync_items{")]
    assert lines == ['stock_out_of_sync_items{org="acme",scope="all"} 3.0']


@pytest.mark.django_db
def test_series_are_kept_per_label_set_and_labels_are_checked():
    stock_out_of_sync_items.set(2, org="acme", scope="all")
    stock_out_of_sync_items.set(0, org="acme", scope="S1")
    assert stock_out_of_sync_items.value(org="acme", scope="all") == 2
    assert stock_out_of_sync_items.value(org="acme", scope="S1") == 0
    assert 'stock_out_of_sync_items{org="acme",scope="S1"} 0.0' in scrape()
    with pytest.raises(ValueError):
        stock_out_of_sync_items.set(1, org="acme")


def test_registering_the_collector_runs_no_query(django_assert_num_queries, db):
    from prometheus_client import CollectorRegistry

    from inventory.metrics import PublishedCollector

    with django_assert_num_queries(0):
        CollectorRegistry().register(PublishedCollector())
