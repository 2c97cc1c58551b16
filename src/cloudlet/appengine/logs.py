"""Reading an app's logs: the router's request log and each instance's stdout/stderr.

Entries carry Cloud Logging's severities. As on App Engine's second-generation runtimes, a line
an app writes to stdout is INFO and one written to stderr is ERROR; a request is INFO, WARNING
(4xx) or ERROR (5xx); the supervisor's own notes are NOTICE.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cloudlet.core.errors import InvalidArgument

__all__ = ["SEVERITIES", "log_entry", "read_entries"]

SEVERITIES = (
    "DEFAULT",
    "DEBUG",
    "INFO",
    "NOTICE",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "ALERT",
    "EMERGENCY",
)
_TAIL_BYTES = 512 * 1024


def _tail_lines(path: Path) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - _TAIL_BYTES))
            data = f.read().decode(errors="replace")
    except OSError:
        return []
    lines = data.splitlines()
    return lines[1:] if size > _TAIL_BYTES else lines


def _request_entries(root: Path) -> list[dict[str, Any]]:
    out = []
    for line in _tail_lines(root / "requests.jsonl"):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        status = int(r.get("status", 0))
        severity = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
        text = f'{r["method"]} {r["path"]} {status} {r["latencyMs"]}ms "{r.get("userAgent", "")}"'
        out.append(
            {
                "time": r["time"],
                "logName": "request_log",
                "severity": severity,
                "service": r["service"],
                "version": r["version"],
                "instance": r["instance"],
                "text": text,
                "httpRequest": r,
            }
        )
    return out


def _app_entries(root: Path, service: str | None, version: str | None) -> list[dict[str, Any]]:
    out = []
    for path in sorted(root.glob("*/*/*.log")):
        version_id, service_id = path.parent.name, path.parent.parent.name
        if (service and service_id != service) or (version and version_id != version):
            continue
        for line in _tail_lines(path):
            stamp, _, rest = line.partition(" ")
            stream, _, text = rest.partition(" ")
            severity = {"stdout": "INFO", "stderr": "ERROR"}.get(stream, "NOTICE")
            out.append(
                {
                    "time": stamp,
                    "logName": stream,
                    "severity": severity,
                    "service": service_id,
                    "version": version_id,
                    "instance": path.stem,
                    "text": text,
                }
            )
    return out


def read_entries(
    logs_root: Path,
    *,
    service: str | None = None,
    version: str | None = None,
    severity: str | None = None,
    after: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The newest `limit` entries (oldest first), filtered; `after` is an exclusive time."""
    minimum = 0
    if severity:
        if severity.upper() not in SEVERITIES:
            raise InvalidArgument(
                f"Invalid severity [{severity}]: use one of {', '.join(SEVERITIES)}."
            )
        minimum = SEVERITIES.index(severity.upper())
    entries = [
        e
        for e in _request_entries(logs_root) + _app_entries(logs_root, service, version)
        if (not service or e["service"] == service)
        and (not version or e["version"] == version)
        and SEVERITIES.index(e["severity"]) >= minimum
        and (after is None or e["time"] > after)
    ]
    entries.sort(key=lambda e: e["time"])
    return entries[-limit:] if limit else entries


# Where App Engine's second-generation runtimes log each stream (Cloud Logging log ids).
_LOG_IDS = {
    "request_log": "appengine.googleapis.com/request_log",
    "stdout": "stdout",
    "stderr": "stderr",
}


def log_entry(project: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Cloud Logging's LogEntry for one of read_entries' entries, as App Engine writes it: a
    `gae_app` resource, and a RequestLog protoPayload for a request
    (https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry). Pure."""
    log_id = _LOG_IDS.get(entry["logName"], "appengine.googleapis.com/varlog/system")
    identity = f"{entry['logName']}|{entry['instance']}|{entry['time']}|{entry['text']}"
    out: dict[str, Any] = {
        "logName": f"projects/{project}/logs/{quote(log_id, safe='')}",
        "resource": {
            "type": "gae_app",
            "labels": {
                "project_id": project,
                "module_id": entry["service"],
                "version_id": entry["version"],
                "zone": "local",
            },
        },
        "timestamp": entry["time"],
        "receiveTimestamp": entry["time"],
        "severity": entry["severity"],
        "insertId": hashlib.sha1(identity.encode()).hexdigest()[:20],
        "labels": {"appengine.googleapis.com/instance_name": entry["instance"]},
    }
    request = entry.get("httpRequest")
    if request is None:
        out["textPayload"] = entry["text"]
        return out
    path = request["path"] + (f"?{request['query']}" if request.get("query") else "")
    latency = f"{float(request.get('latencyMs', 0)) / 1000:.6f}s"
    out["httpRequest"] = {
        "requestMethod": request["method"],
        "requestUrl": path,
        "status": request["status"],
        "latency": latency,
        "userAgent": request.get("userAgent", ""),
        "remoteIp": request.get("ip", ""),
    }
    out["protoPayload"] = {
        "@type": "type.googleapis.com/google.appengine.logging.v1.RequestLog",
        "appId": project,
        "moduleId": entry["service"],
        "versionId": entry["version"],
        "instanceId": entry["instance"],
        "method": request["method"],
        "resource": path,
        "httpVersion": "HTTP/1.1",
        "status": request["status"],
        "latency": latency,
        "ip": request.get("ip", ""),
        "userAgent": request.get("userAgent", ""),
        "startTime": entry["time"],
        "endTime": entry["time"],
    }
    return out
