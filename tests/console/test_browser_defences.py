"""A web page in Chromium against the gateway: what another site, and user content, cannot do.

The attacker is a page on another origin (a tiny http.server on another loopback port). The
gateway runs in `local` mode, where a request without credentials is the local owner: only the
browser defences (core/guard.py) stand between that page and the cloud.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from cloudlet.testing import Gateway, free_port
from tests.console.conftest import Tab


@pytest.fixture
def cloud(api: httpx.Client, project_id: str) -> dict[str, str]:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    bucket = f"{project_id}-data"
    api.post("/storage/v1/b", params={"project": project_id},
             json={"name": bucket}).raise_for_status()  # fmt: skip
    for name in ("victim.txt", "console-delete.txt"):
        _put(api, bucket, name, b"keep me\n", "text/plain")
    return {"project": project_id, "bucket": bucket}


def _put(api: httpx.Client, bucket: str, name: str, data: bytes, ctype: str) -> None:
    api.post(f"/upload/storage/v1/b/{bucket}/o", params={"uploadType": "media", "name": name},
             content=data, headers={"content-type": ctype}).raise_for_status()  # fmt: skip


@pytest.fixture
def attacker() -> Iterator[dict[str, Any]]:
    """Another origin: http://127.0.0.1:OTHER_PORT/ serves whatever page the test sets."""
    site: dict[str, Any] = {"page": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = site["page"].encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site["url"] = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# Each attempt is what a page can send: simple requests (no-cors: no preflight, any of the three
# form content types), preflighted ones (DELETE, PUT, PATCH), and a form post.
_ATTACK = """
<!doctype html><title>cute cats</title>
<iframe name="sink" hidden></iframe>
<form id="form" method="post" target="sink" enctype="text/plain"
      action="GW/api/v1/projects"><input name='{"projectId":"p-evil-form","x":"' value='"}'></form>
<script>
(async () => {
  const gw = "GW", p = "PROJECT", b = "BUCKET";
  const simple = [
    [`${gw}/api/v1/apps/${p}/services/default/versions?promote=true`, "text/plain"],
    [`${gw}/api/v1/apps/${p}/services/default/versions?promote=true`, "application/octet-stream"],
    [`${gw}/upload/storage/v1/b/${b}/o?uploadType=media&name=dropped.txt`, "text/plain"],
    [`${gw}/upload/storage/v1/b/${b}/o?uploadType=media&name=dropped.txt`,
     "application/x-www-form-urlencoded"],
    [`${gw}/upload/storage/v1/b/${b}/o?uploadType=multipart`, "multipart/form-data; boundary=x"],
    [`${gw}/api/v1/projects`, "text/plain"],
    [`${gw}/api/v1/apps/${p}/cron/0:run`, "text/plain"],
  ];
  for (const [url, type] of simple) {
    await fetch(url, {method: "POST", mode: "no-cors", headers: {"content-type": type},
                      body: '{"projectId": "p-evil-fetch"}'}).catch(() => {});
  }
  const preflighted = [
    ["DELETE", `${gw}/storage/v1/b/${b}/o/victim.txt`],
    ["PUT", `${gw}/v1b3/projects/${p}/locations/us-central1/jobs/j1`],
    ["PATCH", `${gw}/api/v1/apps/${p}/services/default?updateMask=split`],
    ["DELETE", `${gw}/api/v1/projects/${p}`],
  ];
  for (const [method, url] of preflighted) {
    await fetch(url, {method, headers: {"content-type": "application/json"},
                      body: '{"requestedState": "JOB_STATE_CANCELLED"}'}).catch(() => {});
  }
  document.getElementById("form").submit();
  window.attacked = true;
})();
</script>
"""


def test_another_origin_cannot_change_anything(
    gateway: Gateway, tab: Tab, api: httpx.Client, attacker: dict[str, Any],
    cloud: dict[str, str],
) -> None:  # fmt: skip
    page = tab.page
    attacker["page"] = (_ATTACK.replace("GW", gateway.url).replace("PROJECT", cloud["project"])
                        .replace("BUCKET", cloud["bucket"]))  # fmt: skip
    seen: list[tuple[str, str, int]] = []
    page.on("response", lambda r: seen.append((r.request.method, r.url, r.status))
            if r.url.startswith(gateway.url) else None)  # fmt: skip
    with page.expect_response(lambda r: r.url.endswith("/api/v1/projects")
                              and r.request.resource_type == "document"):  # fmt: skip
        page.goto(attacker["url"])
        page.wait_for_function("window.attacked === true")
    posts = [s for s in seen if s[0] == "POST"]
    assert len(posts) == 8, seen  # seven fetches and the form: every one answered ...
    assert {status for _, _, status in seen if _ != "OPTIONS"} == {403}, seen  # ... refused
    # And nothing changed.
    bucket = cloud["bucket"]
    assert api.get(f"/storage/v1/b/{bucket}/o/victim.txt").status_code == 200
    assert api.get(f"/storage/v1/b/{bucket}/o/dropped.txt").status_code == 404
    assert api.get(f"/api/v1/projects/{cloud['project']}").json()["lifecycleState"] == "ACTIVE"
    for made in ("p-evil-fetch", "p-evil-form"):
        assert api.get(f"/api/v1/projects/{made}").status_code in (403, 404)
    assert api.get(f"/api/v1/apps/{cloud['project']}/services").status_code == 404


def test_the_console_still_acts_on_its_own_origin(
    gateway: Gateway, tab: Tab, api: httpx.Client, cloud: dict[str, str]
) -> None:
    page = tab.page
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)  # fmt: skip
    project, bucket = cloud["project"], cloud["bucket"]
    for path in ("/console", f"/console/projects/{project}",
                 f"/console/projects/{project}/storage", f"/console/projects/{project}/iam",
                 f"/console/projects/{project}/dataflow"):  # fmt: skip
        page.goto(gateway.url + path)
        page.wait_for_function("window.cloudlet !== undefined && window.htmx !== undefined")
    page.goto(f"{gateway.url}/console/projects/{project}/storage/b/{bucket}")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.get_by_role("button", name="Delete console-delete.txt").click()
    assert deleted.value.status == 204
    assert api.get(f"/storage/v1/b/{bucket}/o/console-delete.txt").status_code == 404
    assert violations == []


_EVIL = {
    "evil.html": ("text/html", b"<!doctype html><title>evil</title><script>"
                  b"fetch('/api/v1/projects').then(r => r.text()).then(t => {"
                  b"document.title = 'LEAKED ' + t.length;"
                  b"fetch('/storage/v1/b/BUCKET/o/victim.txt', {method: 'DELETE'}); });"
                  b"</script><img src=x onerror=\"document.title='RAN'\">"),
    "evil.svg": ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg' "
                 b"onload=\"fetch('/api/v1/projects').then(() => document.title='LEAKED')\">"
                 b"<title>evil</title><script>fetch('/api/v1/projects')"
                 b".then(() => { document.title = 'LEAKED'; });</script></svg>"),
}  # fmt: skip


def test_user_content_cannot_act_on_the_api_origin(
    gateway: Gateway, tab: Tab, api: httpx.Client, cloud: dict[str, str]
) -> None:
    bucket = cloud["bucket"]
    page = tab.page
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/" in r.url
            or r.method != "GET" else None)  # fmt: skip
    for name, (ctype, data) in _EVIL.items():
        _put(api, bucket, name, data.replace(b"BUCKET", bucket.encode()), ctype)
        for url in (f"/download/storage/v1/b/{bucket}/o/{name}?alt=media",
                    f"/storage/v1/b/{bucket}/o/{name}?alt=media"):  # fmt: skip
            response = page.goto(gateway.url + url)
            assert response is not None and response.status == 200
            assert response.headers["content-security-policy"].startswith("sandbox")
            assert response.headers["x-content-type-options"] == "nosniff"
            page.wait_for_load_state("load")
            assert "LEAKED" not in page.title() and "RAN" not in page.title()
            assert page.evaluate("self.origin") == "null"  # an opaque origin, not the API's
    assert asked == []
    assert api.get(f"/storage/v1/b/{bucket}/o/victim.txt").status_code == 200
    # Clients still read the bytes as they were written.
    client = storage.Client(project=cloud["project"], credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": gateway.url})  # fmt: skip
    for name, (_, data) in _EVIL.items():
        expected = data.replace(b"BUCKET", bucket.encode())
        assert client.bucket(bucket).blob(name).download_as_bytes() == expected
    assert json.loads(api.get(f"/storage/v1/b/{bucket}/o/evil.html").text)["contentType"] == (
        "text/html"
    )
