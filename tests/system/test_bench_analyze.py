"""The benchmarks measure PostgreSQL with the statistics a busy workspace has (bench/common.py `analyze`): the
ANALYZE must outlive its connection (statistics written in a transaction that is rolled back are lost)."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from bench.common import analyze, make_store, seed_connected
from tests.support.databases import create_database, drop_database

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"), reason="PostgreSQL's statistics")
def test_analyze_leaves_the_planner_its_statistics():
    url = create_database(TEST_DATABASE_URL)
    try:
        store = make_store(url)
        try:
            seed_connected(store, [f"U{i:04d}" for i in range(50)], tz="UTC")
            analyze(store)
        finally:
            store.close()
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                stats = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = 'people'"
                ).scalar()
        finally:
            engine.dispose()
        assert stats, "ANALYZE ran, but its statistics were rolled back"
    finally:
        drop_database(TEST_DATABASE_URL, url)
