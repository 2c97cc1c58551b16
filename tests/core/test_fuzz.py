"""A seeded type-confusion fuzzer over every write route: no 5xx, no dropped connection.

Every write route of the REST, IAM, App Engine Admin, Scheduler, Logging, Dataflow v1b3 and
Cloud Storage APIs gets its seed body (tests/core/fuzzing.py) with each field set to wrong
types, nulls, hostile strings, a huge string and a 100,000-deep array, and whole bodies that
are no JSON object. In process (httpx.ASGITransport against the real, started app), so the
thousands of requests take seconds; a small pass against a real gateway subprocess shows
that its keep-alive connection survives the same input.
"""

from __future__ import annotations

import http.client
import random
import uuid
from collections.abc import Iterator

import pytest

from cloudlet.app.gateway import create_app
from cloudlet.core.authz import iter_declared_routes
from cloudlet.core.settings import Settings
from cloudlet.testing import Gateway
from tests.core.fuzzing import SEEDS, Seed, cases, fill_in
from tests.core.inprocess import InProcessGateway

SEED = 20261206
_WRITES = {"POST", "PUT", "PATCH"}


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[InProcessGateway, dict[str, str]]]:
    # dataproc_max_clusters=0: a fuzzed clusters.create that drops the seed's registered
    # master is refused (429) before any Spark process starts; registrations still run.
    with InProcessGateway(
        tmp_path_factory.mktemp("fuzz"), enforce_services=False, dataproc_max_clusters=0
    ) as gw:
        yield gw, _populate(gw)


def _populate(gw: InProcessGateway) -> dict[str, str]:
    """Resources for the routes' path parameters to name, so requests reach the body."""
    tag = uuid.uuid4().hex[:8]
    fill = {
        "project": f"fz-{tag}",
        "policy_project": f"fzp-{tag}",
        "new_project": f"fzn-{tag}",
        "bucket": f"fz-{tag}",
        "policy_bucket": f"fzp-{tag}",
        "new_bucket": f"fzn-{tag}",
        "object": "dir%2Fo.txt",
        "email": f"u-{tag}@cloudlet.localhost",
        "job": "2026-12-06_00_00_00-1",
        "cluster": f"fz-{tag}",
    }
    ok = [
        gw.request("POST", "/api/v1/projects", json={"projectId": fill["project"]}),
        gw.request("POST", "/api/v1/projects", json={"projectId": fill["policy_project"]}),
        gw.request("POST", "/api/v1/apps", json={"id": fill["project"], "locationId": "us-central"}),
        gw.request("POST", "/storage/v1/b", params={"project": fill["project"]},
                   json={"name": fill["bucket"]}),
        gw.request("POST", "/storage/v1/b", params={"project": fill["project"]},
                   json={"name": fill["policy_bucket"]}),
        gw.request("POST", f"/upload/storage/v1/b/{fill['bucket']}/o",
                   params={"uploadType": "media", "name": "dir/o.txt"}, content=b"hello"),
        gw.request("POST", "/api/v1/users",
                   json={"email": fill["email"], "password": "password-0"}),
    ]  # fmt: skip
    account = gw.request("POST", f"/api/v1/projects/{fill['project']}/serviceAccounts",
                         json={"accountId": "fuzz-target"})  # fmt: skip
    ok.append(account)
    assert all(r.status_code == 200 for r in ok), [(r.status_code, r.text[:200]) for r in ok]
    fill["account"] = account.json()["email"]
    return fill


def _write_routes() -> set[str]:
    app = create_app(Settings(data_dir="/nonexistent-fuzz"))  # not started: routes only
    out = set()
    for methods, path, _ in iter_declared_routes(app):
        for method in set(methods.split(",")) & _WRITES:
            out.add(f"{method} {path}")
    return out


def test_every_write_route_has_a_seed() -> None:
    """A new write route must join the fuzzer (tests/core/fuzzing.py SEEDS)."""
    seeded = {s.route for s in SEEDS}
    assert sorted(_write_routes() - seeded) == []
    assert sorted(seeded - _write_routes()) == []


@pytest.mark.parametrize("seed", [pytest.param(s, id=s.id) for s in SEEDS])
def test_no_server_error_on_type_confused_bodies(
    fuzzed: tuple[InProcessGateway, dict[str, str]], seed: Seed
) -> None:
    gw, fill = fuzzed
    rng = random.Random(f"{SEED}:{seed.id}")
    path = fill_in(seed.path, fill)
    query = {k: fill_in(v, fill) for k, v in seed.query.items()}
    failures = []
    sent = 0
    for label, raw in cases(seed, fill, rng):
        try:
            response = gw.request(seed.method, path, params=query, content=raw,
                                  headers={"content-type": seed.content_type})  # fmt: skip
        except Exception as exc:  # the app raised without answering: a dropped connection
            failures.append(f"{label}: {type(exc).__name__}: {exc}"[:300])
            continue
        sent += 1
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:200]}")
    assert not failures, f"{len(failures)} of {sent} failed:\n" + "\n".join(failures[:15])


def test_keep_alive_survives_hostile_bodies_on_a_real_gateway(gateway: Gateway) -> None:
    """A sample of the same input, on one connection of a real gateway: every request is
    answered (no 5xx) and the connection is never closed under the client."""
    rng = random.Random(SEED)
    project = f"fz-ka-{uuid.uuid4().hex[:8]}"
    gw = gateway  # shared: every name here is this test's own
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    conn.request("POST", "/api/v1/projects", body=f'{{"projectId": "{project}"}}'.encode(),
                 headers={"content-type": "application/json"})  # fmt: skip
    assert conn.getresponse().read() and conn.sock is not None
    sock = conn.sock
    fill = {"project": project, "bucket": f"{project}-b", "new_bucket": f"{project}-n",
            "new_project": f"{project}-new", "object": "o", "job": "j", "email": "e@x.y",
            "policy_project": project, "policy_bucket": f"{project}-b",
            "account": f"a@{project}.iam.gserviceaccount.com"}  # fmt: skip
    count = 0
    # Not Dataproc's: on this shared gateway (no dataproc_max_clusters=0) a create could start
    # Spark; the in-process fuzz above covers its routes.
    sample = [s for s in SEEDS if s.body is not None and not s.path.startswith("/v1/projects/")]
    for seed in rng.sample(sample, 5):
        for _label, raw in cases(seed, fill, rng)[:20]:
            query = "&".join(f"{k}={fill_in(v, fill)}" for k, v in seed.query.items())
            target = fill_in(seed.path, fill) + (f"?{query}" if query else "")
            conn.request(seed.method, target, body=raw,
                         headers={"content-type": seed.content_type})  # fmt: skip
            response = conn.getresponse()
            response.read()
            assert response.status < 500, (seed.id, _label, response.status)
            assert conn.sock is sock, f"connection closed after {seed.id} {_label}"
            count += 1
    conn.close()
    assert count >= 80
