"""Cloud Logging's entries.list on the gateway (/api/v2/entries:list): its bad input."""

from __future__ import annotations

import httpx

LIST = "/api/v2/entries:list"


def test_entries_list_checks_its_input(api: httpx.Client, project_id: str) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    empty = api.post(LIST, json={"resourceNames": [f"projects/{project_id}"]})
    assert empty.status_code == 200 and empty.json() == {"entries": []}  # no app, no logs yet

    missing = api.post(LIST, json={"resourceNames": ["projects/no-such-proj"]})
    assert missing.status_code == 404 and "no-such-proj" in missing.json()["error"]["message"]
    folder = api.post(LIST, json={"resourceNames": ["folders/123"]})
    assert folder.status_code == 400 and "projects/PROJECT_ID" in folder.json()["error"]["message"]
    bad = api.post(LIST, json={"resourceNames": [f"projects/{project_id}"],
                               "filter": "severity>=LOUD"})  # fmt: skip
    assert bad.status_code == 400 and "Unknown severity [LOUD]" in bad.json()["error"]["message"]
    order = api.post(LIST, json={"resourceNames": [f"projects/{project_id}"],
                                 "orderBy": "severity"})  # fmt: skip
    assert order.status_code == 400
