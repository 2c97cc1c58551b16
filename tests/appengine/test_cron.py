from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cloudlet.appengine.appyaml import AppYamlError
from cloudlet.appengine.cron import CronJob, next_run, parse_cron_yaml, parse_schedule


def test_schedules() -> None:
    assert parse_schedule("every 5 minutes") == ("interval", 300)
    assert parse_schedule("every 2 hours") == ("interval", 7200)
    assert parse_schedule("every day 09:30") == ("timed", (tuple(range(7)), 9, 30))
    assert parse_schedule("every monday,friday 17:00") == ("timed", ((0, 4), 17, 0))
    for bad in ("every 0 minutes", "1st monday of month 09:00", "every blursday 10:00",
                "every day 25:00"):  # fmt: skip
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_next_run() -> None:
    now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # a Saturday
    assert next_run(CronJob("/a", "every 5 minutes"), now) == datetime(2026, 11, 28, 10, 5,
                                                                         tzinfo=UTC)  # fmt: skip
    assert next_run(CronJob("/a", "every day 09:00"), now) == datetime(2026, 11, 29, 9, 0,
                                                                         tzinfo=UTC)  # fmt: skip
    assert next_run(CronJob("/a", "every monday 08:00"), now) == datetime(2026, 11, 30, 8, 0,
                                                                            tzinfo=UTC)  # fmt: skip
    paris = next_run(CronJob("/a", "every day 12:00", timezone="Europe/Paris"), now)
    assert paris == datetime(2026, 11, 28, 11, 0, tzinfo=UTC)


def test_parse_cron_yaml() -> None:
    jobs = parse_cron_yaml(
        "cron:\n- description: daily\n  url: /tasks/a\n  schedule: every 24 hours\n"
        "  target: worker\n  retry_parameters:\n    job_retry_limit: 2\n"
    )
    assert jobs == [CronJob("/tasks/a", "every 24 hours", "daily", "worker")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cron:\n- url: /a\n", "cron.yaml:2: cron[0].schedule: is required"),
        ("cron:\n- url: a\n  schedule: every 5 minutes\n", "must be a path"),
        ("cron:\n- url: /a\n  schedule: every 5 fortnights\n", "cloudlet supports"),
        (
            "cron:\n- url: /a\n  schedule: every 5 minutes\n  timezone: Mars/Olympus\n",
            "unknown time zone",
        ),
        (
            "cron:\n- url: /a\n  schedule: every 5 minutes\n  tagret: x\n",
            "cron[0].tagret: unknown field",
        ),
        ("jobs: []\n", "unknown field"),
    ],
)
def test_invalid_cron_files(text: str, expected: str) -> None:
    with pytest.raises(AppYamlError) as info:
        parse_cron_yaml(text)
    assert expected in info.value.message
