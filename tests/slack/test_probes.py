"""/readyz: 200 only when the database answers, its schema is the newest migration and, in a process running the
scheduler, the scheduler has ticked recently; otherwise 503 with a short JSON reason. /healthz stays liveness."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk import WebClient

from bot.config import Config
from bot.slack.app import create_app
from bot.storage import ops
from bot.storage.store import Store
from bot.workers.replies import ReplySender
from bot.workers.scheduler import RECAP_JOB_ID, start_scheduler
from tests.support.helpers import RunningServer
from tests.support.slackhttp import request


def test_ready_when_the_database_answers_at_the_newest_schema(server):
    response = request(f"{server.url}/readyz")
    assert response.status == 200
    assert response.json == {"ok": True}
    assert ops.head_revision() == "0014"  # re-pointed at merge: the newest migration, whatever its number


def test_not_ready_when_the_database_does_not_answer(settings, fake_slack, clock, tmp_path):
    unreachable = Store(f"sqlite:///{tmp_path / 'no-such-dir' / 'offhours.db'}")
    app = create_app(Config(), unreachable, settings=settings, client=WebClient(base_url=fake_slack.base_url),
                     clock=clock)  # fmt: skip
    running = RunningServer(app)
    try:
        response = request(f"{running.url}/readyz")
    finally:
        running.close()
        unreachable.close()
    assert response.status == 503
    assert response.json == {"ok": False, "reason": "database_unreachable"}


@contextmanager
def schema_at(store: Store, revision: str) -> Iterator[None]:
    """The shared test database's alembic_version set back to `revision` for a while, as an old deploy left it."""
    with store.engine.begin() as conn:
        newest = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": newest})


def test_not_ready_while_the_schema_is_behind_the_newest_migration(server, store):
    with schema_at(store, "0001"):
        response = request(f"{server.url}/readyz")
        health = request(f"{server.url}/healthz")
    assert response.status == 503
    newest = ops.head_revision()  # the one literal is in test_ready_when_the_database_answers
    assert response.json == {"ok": False, "reason": "schema_outdated", "revision": "0001", "newest": newest}
    assert health.status == 200  # alive all the same: a restart would not help, a migration does
    assert request(f"{server.url}/readyz").status == 200


def test_a_process_running_the_scheduler_is_ready_only_while_it_ticks(server, offhours, store, clock):
    services = offhours.services
    # This process runs the scheduler from now on (not started).
    scheduler = start_scheduler(services, replies=ReplySender(services), start=False)
    jobs = {job.id: job for job, _store, _replace in scheduler._pending_jobs}
    assert request(f"{server.url}/readyz").status == 200  # just started: the first tick is on its way

    clock.advance(seconds=91)  # three 30-second polls without a tick
    stale = request(f"{server.url}/readyz")
    assert stale.status == 503
    assert stale.json == {"ok": False, "reason": "scheduler_stale", "last_tick_s": 91}

    jobs[RECAP_JOB_ID].func()  # one tick, as APScheduler runs it
    assert request(f"{server.url}/readyz").status == 200
    assert ops.last_ticks(store.engine) == {"scheduler": clock()}  # for `python -m bot status`
    [family] = [f for f in text_string_to_metric_families(request(f"{server.url}/metrics").text)
                if f.name == "offhours_scheduler_last_tick_timestamp_seconds"]  # fmt: skip
    assert family.samples[0].value == clock().timestamp()


def test_a_web_process_without_the_scheduler_does_not_wait_for_ticks(server, clock):
    clock.advance(days=2)
    assert request(f"{server.url}/readyz").status == 200
    assert "offhours_scheduler_last_tick_timestamp_seconds" not in request(f"{server.url}/metrics").text


def test_probes_answer_get_and_head_only(server):
    assert request(f"{server.url}/readyz", method="HEAD").status == 200
    assert request(f"{server.url}/readyz", method="POST", body=b"").status == 404
