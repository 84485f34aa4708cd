"""`python -m bot hours`: JSON on success, exit status 2 and one message on stderr for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli_hours import main

REPO = Path(__file__).resolve().parents[2]
BASE = ["--spec", "mon-fri 9-17:30", "--tz", "Europe/Rome"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict | None, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out.strip() else None), err


def test_subprocess_prints_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "hours", *BASE, "--at", "2026-03-28T20:00:00+00:00", "--off", "2026-12-24"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "at": "2026-03-28T21:00:00+01:00",
        "working": False,
        "next_start": "2026-03-30T09:00:00+02:00",
        "next_end": "2026-03-30T17:30:00+02:00",
        "off_since": "2026-03-27T17:30:00+01:00",
        "back_at": "2026-03-30T09:00:00+02:00",
        "spec": "Mon–Fri 09:00–17:30",
        "tz": "Europe/Rome",
        "days_off": ["2026-12-24"],
    }


def test_subprocess_bad_zone_exits_2_without_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "hours", "--spec", "mon-fri 9-17", "--tz", "Europe/Romee"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "did you mean Europe/Rome?" in done.stderr
    assert "Traceback" not in done.stderr


def test_working_instant(capsys: pytest.CaptureFixture[str]) -> None:
    status, result, _ = run(capsys, *BASE, "--at", "2026-03-30T10:00:00+02:00")
    assert status == 0
    assert result["working"] is True
    assert result["off_since"] is None and result["back_at"] is None
    assert result["next_end"] == "2026-03-30T17:30:00+02:00"
    assert result["next_start"] == "2026-03-31T09:00:00+02:00"


def test_repeatable_days_off_and_canonical_output(capsys: pytest.CaptureFixture[str]) -> None:
    status, result, _ = run(
        capsys,
        "--spec", "Weekdays 9-12, 13-17:30",
        "--tz", "europe/rome",
        "--at", "2026-12-23T18:00:00Z",
        "--off", "2026-12-24..2027-01-02",
        "--off", "2027-01-04 → 2027-01-06",
    )  # fmt: skip
    assert status == 0
    assert result["spec"] == "Mon–Fri 09:00–12:00, 13:00–17:30"
    assert result["tz"] == "Europe/Rome"
    assert result["days_off"] == ["2026-12-24 → 2027-01-02", "2027-01-04 → 2027-01-06"]
    assert (result["off_since"], result["back_at"]) == ("2026-12-23T17:30:00+01:00", "2027-01-07T09:00:00+01:00")


def test_at_defaults_to_now(capsys: pytest.CaptureFixture[str]) -> None:
    status, result, _ = run(capsys, *BASE)
    assert status == 0
    assert isinstance(result["working"], bool)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--spec", "mon-fri 25:00-17", "--tz", "Europe/Rome"], "25:00 is not a time"),
        (["--spec", "mon-fri 9-17", "--tz", "Mars/Base"], "is not a time zone"),
        ([*BASE, "--at", "2026-03-28T20:00:00"], "has no UTC offset"),
        ([*BASE, "--at", "yesterday"], "is not an ISO 8601 instant"),
        ([*BASE, "--off", "2026-02-30"], "is not a date"),
        (["--tz", "Europe/Rome"], "required: --spec"),
        ([*BASE, "--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_input_exits_2_with_a_message(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    status, result, err = run(capsys, *argv)
    assert status == 2
    assert result is None
    assert message in err
    assert "Traceback" not in err


def test_subprocess_with_holidays_across_the_year_boundary() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "hours", "--spec", "mon-fri 9-17:30", "--tz", "Europe/London",
         "--holidays", "gb-sct", "--at", "2026-12-31T18:00:00+00:00"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    # 1 January, and 2 January (a Saturday) observed on Monday the 4th: back on Tuesday.
    assert answer["back_at"] == "2027-01-05T09:00:00+00:00"
    assert answer["holidays"] == "GB-SCT"
    assert answer["next_holidays"] == [
        {"date": "2027-01-01", "name": "New Year's Day"},
        {"date": "2027-01-02", "name": "New Year Holiday"},
        {"date": "2027-01-04", "name": "New Year Holiday (observed)"},
    ]


def test_holidays_observed_across_the_dst_change(capsys: pytest.CaptureFixture[str]) -> None:
    status, answer, _ = run(
        capsys, "--spec", "mon-fri 9-17:30", "--tz", "America/New_York", "--holidays", "US",
        "--at", "2026-07-02T22:00:00+00:00",
    )  # fmt: skip
    assert status == 0
    assert answer["back_at"] == "2026-07-06T09:00:00-04:00"  # Friday 3 July: Independence Day (observed)
    assert answer["next_holidays"][0] == {"date": "2026-07-03", "name": "Independence Day (observed)"}
    status, answer, _ = run(capsys, *BASE, "--holidays", "DE-BY", "--at", "2027-03-25T18:00:00+01:00")
    assert status == 0
    assert answer["back_at"] == "2027-03-30T09:00:00+02:00"  # Good Friday, the spring-forward Sunday, Easter Monday


def test_an_unknown_holidays_code_exits_2_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    status, answer, err = run(capsys, *BASE, "--holidays", "germany")
    assert (status, answer) == (2, None)
    assert "did you mean DE?" in err


def test_days_off_the_wrong_way_round_are_named_as_typed_with_the_fix(capsys) -> None:
    status, _, err = run(capsys, *BASE, "--off", "2027-01-02..2026-12-24")
    assert status == 2
    assert "2027-01-02..2026-12-24 ends before it starts" in err
    assert "write the earlier date first: 2026-12-24..2027-01-02" in err


def test_an_at_beyond_the_supported_years_names_the_option(capsys) -> None:
    status, _, err = run(capsys, *BASE, "--at", "9999-12-31T00:00:00+00:00")
    assert status == 2
    assert err.startswith("error: --at '9999-12-31T00:00:00+00:00' must fall between the years 1900 and 9000")
    assert "now" not in err  # an internal name means nothing to the person typing
