"""The gateway's memory under the storage growth attacks of issue 14 stays flat.

Measured as the issue measured it: the RSS of a real gateway subprocess (VmRSS in
/proc/PID/status) before, during (its peak as sampled between requests and body chunks) and
after each attack. Nothing here is timed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudlet.testing import Gateway

MB = 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Probe:
    """RSS of one process: its start, and the peak of every sample since."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = self.peak = rss(pid)

    def sample(self) -> None:
        self.peak = max(self.peak, rss(self.pid))

    def report(self, name: str) -> tuple[float, float]:
        grown, after = (self.peak - self.start) / MB, (rss(self.pid) - self.start) / MB
        print(
            f"{name}: start {self.start / MB:.1f} MB, peak +{grown:.1f} MB, after {after:+.1f} MB"
        )
        return grown, after


def _random_ids(client: httpx.Client, bucket: str, probe: Probe, count: int) -> None:
    rng = random.Random(14)
    for index in range(count):
        upload_id = rng.randbytes(16 * 1024).hex()  # 32 KB
        response = client.put(
            f"/upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "resumable", "upload_id": upload_id},
            content=b"x",
        )
        assert response.status_code == 404
        if index % 100 == 0:
            probe.sample()


def _huge_body(client: httpx.Client, url: str, probe: Probe, size: int) -> int | None:
    """POST `size` bytes of JSON-ish whitespace; the status, or None if the gateway closed the
    connection while the body was still being sent (after answering 413)."""

    def chunks() -> Iterator[bytes]:
        block = b" " * MB
        for index in range(size // MB):
            if index % 8 == 0:
                probe.sample()
            yield block

    try:
        return client.post(url, content=chunks(), headers={"content-type": "application/json"}
                           ).status_code  # fmt: skip
    except httpx.TransportError:
        return None
    finally:
        probe.sample()


@pytest.mark.slow
def test_storage_growth_attacks_leave_memory_flat(tmp_path: Path) -> None:
    with Gateway.start(tmp_path / "cloudlet") as gw, httpx.Client(
        base_url=gw.url, timeout=120
    ) as client:  # fmt: skip
        assert gw.proc is not None
        project = "p-memprobe01"
        client.post("/api/v1/projects", json={"projectId": project}).raise_for_status()
        client.post(
            "/storage/v1/b", params={"project": project}, json={"name": "memprobe"}
        ).raise_for_status()
        _random_ids(client, "memprobe", Probe(gw.proc.pid), 200)  # warm up: imports, caches
        results = {}
        probe = Probe(gw.proc.pid)
        _random_ids(client, "memprobe", probe, 3000)
        results["3,000 random 32 KB upload ids"] = probe.report("random upload ids")
        probe = Probe(gw.proc.pid)
        status = _huge_body(
            client, "/upload/storage/v1/b/memprobe/o?uploadType=resumable&name=x", probe, 300 * MB
        )
        assert status in (413, None), status
        results["300 MB to a resumable start"] = probe.report("300 MB resumable start")
        probe = Probe(gw.proc.pid)
        status = _huge_body(client, f"/storage/v1/b?project={project}", probe, 300 * MB)
        assert status in (413, None), status
        results["300 MB to bucket insert"] = probe.report("300 MB bucket insert")
        assert client.get("/storage/v1/b/memprobe").status_code == 200  # still serving
        for name, (grown, after) in results.items():
            assert grown < 20, f"{name}: RSS grew {grown:.1f} MB"
            assert after < 10, f"{name}: RSS stayed {after:.1f} MB above its start"
