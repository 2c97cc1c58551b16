"""`cron.yaml`: scheduled GET requests to an app. Pure: parsing and next-run times.

https://cloud.google.com/appengine/docs/standard/scheduling-jobs-with-cron-yaml. Supported
schedules are the interval form (`every 5 minutes`, `every 2 hours`, `every 30 mins`) and the
daily and weekly forms (`every day 09:00`, `every monday,friday 17:30`), in UTC or the job's
`timezone`. Other forms are refused with a message, so a file never silently does less.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from cloudlet.appengine.yamlwalk import AppYamlError, Problem, compose_yaml
from cloudlet.core.bodies import Fields

__all__ = ["CronJob", "next_run", "parse_cron_yaml", "parse_schedule"]

_INTERVAL = re.compile(r"^every (\d+) (minutes|mins|minute|min|hours|hour)$")
_TIMED = re.compile(r"^every ([a-z,]+) (\d{1,2}):(\d{2})$")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FIELDS = ("url", "schedule", "description", "target", "timezone", "retry_parameters")


@dataclass(frozen=True)
class CronJob:
    url: str
    schedule: str
    description: str = ""
    target: str = "default"
    timezone: str = "UTC"

    def resource(self) -> dict[str, str]:
        return {
            "url": self.url,
            "schedule": self.schedule,
            "description": self.description,
            "target": self.target,
            "timezone": self.timezone,
        }

    @property
    def job_id(self) -> str:
        """Its Cloud Scheduler job id: stable, from what the job is."""
        key = "|".join(self.resource().values())
        return "cron-" + hashlib.sha1(key.encode()).hexdigest()[:16]

    def scheduler_job(self, parent: str) -> dict[str, Any]:
        """The Cloud Scheduler Job that `gcloud app deploy cron.yaml` makes of it, under
        `parent` (projects/P/locations/L): https://cloud.google.com/scheduler/docs/reference/
        rest/v1/projects.locations.jobs#Job. Pure."""
        job: dict[str, Any] = {
            "name": f"{parent}/jobs/{self.job_id}",
            "appEngineHttpTarget": {
                "httpMethod": "GET",
                "relativeUri": self.url,
                "appEngineRouting": {"service": self.target},
            },
            "schedule": self.schedule,
            "timeZone": self.timezone,
            "state": "ENABLED",
            "legacyAppEngineCron": True,
        }
        if self.description:
            job["description"] = self.description
        return job

    @classmethod
    def from_scheduler_job(cls, job: dict[str, Any]) -> CronJob:
        """The cron job a Cloud Scheduler Job with an App Engine target describes."""
        fields = Fields(job)  # a value of the wrong type is a 400 naming the field
        target = fields.obj("appEngineHttpTarget") or Fields({}, "appEngineHttpTarget")
        uri = target.text("relativeUri")
        if not uri:
            raise ValueError("cloudlet runs only jobs with an appEngineHttpTarget.relativeUri")
        if (target.text("httpMethod") or "GET").upper() not in ("GET", "HTTP_METHOD_UNSPECIFIED"):
            raise ValueError("App Engine cron jobs are GET requests")
        routing = target.obj("appEngineRouting") or Fields({})
        return cls(
            url=uri,
            schedule=fields.text("schedule") or "",
            description=fields.text("description") or "",
            target=routing.text("service") or routing.text("version") or "default",
            timezone=fields.text("timeZone") or "UTC",
        )


def parse_schedule(schedule: str) -> tuple[str, Any]:
    """("interval", seconds) or ("timed", (weekdays, hour, minute)); ValueError otherwise."""
    text = " ".join(schedule.lower().split())
    match = _INTERVAL.match(text)
    if match:
        count = int(match.group(1))
        if count < 1:
            raise ValueError("the interval must be at least 1")
        unit = 3600 if match.group(2).startswith("hour") else 60
        return "interval", count * unit
    match = _TIMED.match(text)
    if match:
        names = match.group(1).split(",")
        if names == ["day"]:
            days = tuple(range(7))
        elif all(n in _DAYS for n in names):
            days = tuple(sorted(_DAYS.index(n) for n in names))
        else:
            raise ValueError(f"unknown day in '{match.group(1)}'")
        hour, minute = int(match.group(2)), int(match.group(3))
        if hour > 23 or minute > 59:
            raise ValueError("the time must be HH:MM, 00:00 to 23:59")
        return "timed", (days, hour, minute)
    raise ValueError(
        f"schedule [{schedule}] is not a supported form: use `every N minutes|hours`, "
        "`every day HH:MM` or `every monday,friday HH:MM`"
    )


def next_run(job: CronJob, after: datetime) -> datetime:
    """The first run strictly after `after` (an aware datetime)."""
    kind, value = parse_schedule(job.schedule)
    if kind == "interval":
        return after + timedelta(seconds=value)
    days, hour, minute = value
    local = after.astimezone(ZoneInfo(job.timezone))
    for offset in range(8):
        day = local + timedelta(days=offset)
        candidate = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if candidate.weekday() in days and candidate > local:
            return candidate.astimezone(after.tzinfo)
    raise AssertionError("unreachable: a weekly schedule always has a next run")


def parse_cron_yaml(text: str, filename: str = "cron.yaml") -> list[CronJob]:
    problems: list[Problem] = []

    def problem(node: Any, field: str, message: str) -> None:
        problems.append(Problem(filename, node.start_mark.line + 1 if node else 0, field, message))

    root = compose_yaml(text, filename)
    jobs_node = None
    if isinstance(root, MappingNode):
        for key, value in root.value:
            if key.value == "cron":
                jobs_node = value
            else:
                problem(key, str(key.value), "unknown field; cron.yaml has only `cron`")
    if not isinstance(jobs_node, SequenceNode):
        problems.append(Problem(filename, 1, "cron", "must be a list of jobs (url, schedule)"))
        raise AppYamlError(problems)
    jobs = []
    for i, item in enumerate(jobs_node.value):
        where = f"cron[{i}]"
        if not isinstance(item, MappingNode):
            problem(item, where, "must be a mapping with url and schedule")
            continue
        fields: dict[str, str] = {}
        nodes = {}
        for key, value in item.value:
            if key.value not in _FIELDS:
                problem(key, f"{where}.{key.value}", f"unknown field; use {', '.join(_FIELDS)}")
            elif key.value == "retry_parameters":
                continue  # accepted; retries are not made locally
            elif not isinstance(value, ScalarNode) or not value.value:
                problem(value, f"{where}.{key.value}", "must be a non-empty string")
            else:
                fields[key.value], nodes[key.value] = str(value.value), value
        missing = [f for f in ("url", "schedule") if f not in fields]
        if missing:
            problem(item, f"{where}.{missing[0]}", "is required")
            continue
        if not fields["url"].startswith("/"):
            problem(nodes["url"], f"{where}.url", "must be a path starting with /")
            continue
        try:
            parse_schedule(fields["schedule"])
        except ValueError as exc:
            supported = (
                "cloudlet supports `every N minutes`, `every N hours`, `every day HH:MM` and "
                "`every monday,friday HH:MM`"
            )
            problem(
                nodes["schedule"],
                f"{where}.schedule",
                f"'{fields['schedule']}': {exc}. {supported}",
            )
            continue
        zone = fields.get("timezone", "UTC")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            problem(nodes["timezone"], f"{where}.timezone", f"unknown time zone '{zone}'")
            continue
        jobs.append(
            CronJob(
                fields["url"],
                fields["schedule"],
                fields.get("description", ""),
                fields.get("target", "default"),
                zone,
            )
        )
    if problems:
        problems.sort(key=lambda p: p.line)
        raise AppYamlError(problems)
    return jobs
