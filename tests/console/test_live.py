"""Live streams (SSE) end on their own, so a gateway with an open console tab stops cleanly."""

from __future__ import annotations

import threading

import httpx

from cloudlet.testing import Gateway


def test_an_open_event_stream_ends_when_the_gateway_stops(
    private_gateway: Gateway, project_id: str
) -> None:
    gw = private_gateway
    with httpx.Client(base_url=gw.url, timeout=30) as api:
        api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
        api.post("/api/v1/apps", json={"id": project_id, "locationId": "us-central"})
        api.get(f"/api/v1/apps/{project_id}").raise_for_status()

    received: list[str] = []
    outcome: list[BaseException | None] = []
    opened = threading.Event()

    def listen() -> None:
        url = f"{gw.url}/console/projects/{project_id}/appengine/logs/events"
        try:
            with httpx.stream("GET", url, timeout=60) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                opened.set()
                for line in response.iter_lines():
                    received.append(line)
            outcome.append(None)
        except BaseException as exc:  # reported below, in the test's thread
            outcome.append(exc)
        finally:
            opened.set()

    reader = threading.Thread(target=listen)
    reader.start()
    assert opened.wait(30)
    assert not outcome, outcome  # the stream stays open while the gateway runs

    gw.stop()  # SIGTERM; fails if the gateway hangs or leaves a child behind
    reader.join(30)
    assert not reader.is_alive()
    # The response ended properly (a complete chunked body), not cut off by a forced cancel.
    assert outcome == [None]
    assert received and received[0].startswith("retry:")
    assert "timeout graceful shutdown exceeded" not in gw.log_text()
