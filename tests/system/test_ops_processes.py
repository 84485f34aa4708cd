"""The operator's view of real processes: the web process logs where to install and, with OFFHOURS_LOG_FORMAT=json,
writes one JSON object per line; the scheduler process serves /metrics and /readyz on METRICS_PORT."""

from __future__ import annotations

import json
import time

from tests.support.processes import BotProcess, free_port, process_env, processes, write_config
from tests.support.slackhttp import request


def test_the_web_process_logs_json_lines_and_where_to_install(tmp_path, fake_slack):
    port = free_port()
    env = process_env(database_url=f"sqlite:///{tmp_path / 'offhours.db'}", slack_api_url=fake_slack.base_url,
                      config_path=write_config(tmp_path / "config.yaml"), port=port)  # fmt: skip
    env.update(OFFHOURS_LOG_FORMAT="json", OFFHOURS_BASE_URL="https://offhours.example.com")
    log_path = tmp_path / "web.log"
    with processes() as started:
        web = BotProcess("web", env=env, log_path=log_path, port=port).start()
        started.append(web)
        web.wait_healthy()
        assert request(f"{web.url}/readyz").json == {"ok": True}
        assert "offhours_ack_seconds" in request(f"{web.url}/metrics").text
        web.stop()
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
    [install] = [r for r in records if r["message"].startswith("install: open")]
    assert "https://offhours.example.com/slack/install" in install["message"]
    [serving] = [r for r in records if r["message"].startswith("serving ")]
    assert (serving["port"], serving["scheduler"], serving["logger"]) == (str(port), "False", "bot.runtime")


def test_the_scheduler_process_serves_metrics_and_readiness_on_metrics_port(tmp_path, fake_slack):
    metrics_port = free_port()
    env = process_env(database_url=f"sqlite:///{tmp_path / 'offhours.db'}", slack_api_url=fake_slack.base_url,
                      config_path=write_config(tmp_path / "config.yaml", poll_seconds=1), port=free_port())  # fmt: skip
    env.update(METRICS_PORT=str(metrics_port), OFFHOURS_METRICS_TOKEN="scrape-token-7")
    with processes() as started:
        scheduler = BotProcess("scheduler", env=env, log_path=tmp_path / "scheduler.log", port=metrics_port).start()
        started.append(scheduler)
        scheduler.wait_healthy()
        deadline = time.monotonic() + 20
        while request(f"{scheduler.url}/readyz").status != 200:  # ready once the first tick has finished
            assert time.monotonic() < deadline, scheduler.log_tail()
            time.sleep(0.1)
        assert request(f"{scheduler.url}/metrics").status == 401
        scrape = request(f"{scheduler.url}/metrics", headers={"Authorization": "Bearer scrape-token-7"})
        assert scrape.status == 200
        [tick] = [line for line in scrape.text.splitlines()
                  if line.startswith("offhours_scheduler_last_tick_timestamp_seconds ")]  # fmt: skip
        assert abs(float(tick.split()[1]) - time.time()) < 60
        assert 'offhours_pending{kind="recap"} 0.0' in scrape.text
