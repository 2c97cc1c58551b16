"""Cloud Storage benchmark: cloudlet's gateway against gcp-storage-emulator and a plain file copy.

    uv run python bench/storage.py             # 1 GiB object, 10,000 objects, 2 GiB memory run
    uv run python bench/storage.py --size-mib 64 --objects 500 --rss-size-mib 0     # quick

All through the real google-cloud-storage client (default transfer settings: a resumable upload
in 100 MiB chunks, a streamed download with checksum validation). Everything binds 127.0.0.1;
the emulator and the gateway are child processes of this script and are stopped at the end.
The emulator slows quadratically with its object count (it rewrites its metadata on every
write), so its listing is measured on --emulator-objects objects and compared per object.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from cloudlet.testing import Gateway, free_port

MiB = 1024 * 1024


def client_for(url: str, project: str) -> storage.Client:
    return storage.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=url),
    )


class RssSampler:
    """Peak RSS of one process, sampled every 50 ms in a thread.

    The process alone: the gateway's Beam Job API child (Dataflow's, idle here) and any
    App Engine instances are separate processes with their own memory.
    """

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def make_file(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as f:
        for _ in range(size // MiB):
            f.write(block)
        f.write(block[: size % MiB])


def plain_copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    with dst.open("rb+") as f:
        os.fsync(f.fileno())


def start_emulator(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    exe = Path(sys.executable).parent / "gcp-storage-emulator"
    log = (work / "emulator.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "-q"],
        cwd=work,
        env={**os.environ, "STORAGE_BASE": str(work)},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/storage/v1/b?project=x", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gcp-storage-emulator did not start")


def start_null_server(work: Path, size: int) -> tuple[subprocess.Popen[bytes], str]:
    """bench/null_gcs.py: the client's own ceiling (stores nothing, serves zeros)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("null_gcs.py")), str(port), str(size)],
        stdout=subprocess.PIPE,
        stderr=(work / "null.log").open("wb"),
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        proc.kill()
        raise SystemExit("bench/null_gcs.py did not start")
    return proc, f"http://127.0.0.1:{port}"


def transfer(
    client: storage.Client, bucket: str, src: Path, dst: Path, pid: int
) -> dict[str, float]:
    blob = client.bucket(bucket).blob("big.bin")
    size = src.stat().st_size
    idle = psutil.Process(pid).memory_info().rss
    with RssSampler(pid) as rss:
        up = timed(lambda: blob.upload_from_filename(str(src)))
        down = timed(lambda: blob.download_to_filename(str(dst)))
    if dst.stat().st_size != size:
        raise SystemExit("download size mismatch")
    return {"up": size / MiB / up, "down": size / MiB / down, "rss": rss.peak / MiB,
            "idle": idle / MiB}  # fmt: skip


def populate_and_list(client: storage.Client, bucket: str, count: int) -> dict[str, float]:
    b = client.bucket(bucket)
    names = [f"list/{i:06d}" for i in range(count)]

    def put(name: str) -> None:
        b.blob(name).upload_from_string(b"x")

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, names))
    created = count / (time.perf_counter() - start)
    listed = 0

    def run() -> None:
        nonlocal listed
        listed = sum(1 for _ in client.list_blobs(b, prefix="list/"))

    seconds = timed(run)
    if listed != count:
        print(f"  (listing returned {listed} of {count})")
    return {"create_per_s": created, "list_s": seconds, "list_per_s": listed / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="Object size for throughput.")
    parser.add_argument("--objects", type=int, default=10000, help="Objects for the listing.")
    parser.add_argument(
        "--emulator-objects",
        type=int,
        default=1000,
        help="Objects for the emulator's listing (it slows quadratically).",
    )
    parser.add_argument(
        "--rss-size-mib",
        type=int,
        default=2048,
        help="Object size for the gateway memory run (0 skips it).",
    )
    parser.add_argument("--dir", default=None, help="Work dir (default: a temp dir).")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cloudlet-bench-", dir=args.dir))
    print(f"# Cloud Storage benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    ram = psutil.virtual_memory().total / 2**30
    print(
        f"# {platform.node()}: {os.cpu_count()} cores, {ram:.0f} GiB RAM, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    src = work / "source.bin"
    make_file(src, args.size_mib * MiB)
    results: dict[str, dict[str, float]] = {}

    copy_s = timed(lambda: plain_copy(src, work / "copy.bin"))
    (work / "copy.bin").unlink()
    copy_rate = args.size_mib / copy_s
    print(f"plain file copy + fsync: {copy_rate:.0f} MiB/s")

    null_proc, null_url = start_null_server(work, args.size_mib * MiB)
    print(f"null server (the client's ceiling): {args.size_mib} MiB upload + download ...",
          flush=True)  # fmt: skip
    try:
        results["ceiling"] = transfer(client_for(null_url, "bench"), "bench", src,
                                      work / "down-null.bin", null_proc.pid)  # fmt: skip
        (work / "down-null.bin").unlink()
    finally:
        null_proc.kill()
        null_proc.wait()

    gw = Gateway.start(work / "cloudlet")
    (work / "emulator").mkdir()
    emu_proc, emu_url = start_emulator(work / "emulator")
    try:
        project = "bench-" + uuid.uuid4().hex[:8]
        httpx.post(f"{gw.url}/api/v1/projects", json={"projectId": project}).raise_for_status()
        ours = client_for(gw.url, project)
        theirs = client_for(emu_url, project)
        ours.create_bucket("bench")
        theirs.create_bucket("bench")
        assert gw.proc is not None
        for label, client, pid in (
            ("cloudlet", ours, gw.proc.pid),
            ("emulator", theirs, emu_proc.pid),
        ):
            print(f"{label}: {args.size_mib} MiB upload + download ...", flush=True)
            results[label] = transfer(client, "bench", src, work / f"down-{label}.bin", pid)
            (work / f"down-{label}.bin").unlink()
            client.bucket("bench").blob("big.bin").delete()
        print(f"cloudlet: creating and listing {args.objects} objects ...", flush=True)
        results["cloudlet"].update(populate_and_list(ours, "bench", args.objects))
        print(f"emulator: creating and listing {args.emulator_objects} objects ...", flush=True)
        results["emulator"].update(populate_and_list(theirs, "bench", args.emulator_objects))
        if args.rss_size_mib:
            print(
                f"cloudlet: {args.rss_size_mib} MiB upload + download, sampling RSS ...", flush=True
            )
            big = work / "rss.bin"
            src.unlink()
            make_file(big, args.rss_size_mib * MiB)
            results["memory"] = transfer(ours, "bench", big, work / "rss-down.bin", gw.proc.pid)
    finally:
        emu_proc.kill()
        emu_proc.wait()
        gw.close()
        shutil.rmtree(work, ignore_errors=True)

    report(args, results, copy_rate)


def report(args: argparse.Namespace, results: dict[str, dict[str, float]], copy: float) -> None:
    c, e, n = results["cloudlet"], results["emulator"], results["ceiling"]
    x = "\u00d7"  # the multiplication sign
    rows = [
        ("upload MiB/s", c["up"], e["up"], copy, n["up"]),
        ("download MiB/s", c["down"], e["down"], copy, n["down"]),
        ("small uploads /s (8 threads)", c["create_per_s"], e["create_per_s"], None, None),
        ("objects listed /s", c["list_per_s"], e["list_per_s"], None, None),
    ]
    print()
    print("| measure | cloudlet | gcp-storage-emulator | cloudlet / emulator | cloudlet / copy "
          "| client ceiling (null server) | cloudlet / ceiling |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, ours, theirs, peer, ceiling in rows:
        vs_copy = f"{ours / peer:.2f}{x}" if peer else ""
        top = f"{ceiling:.0f} | {ours / ceiling:.2f}{x}" if ceiling else " | "
        print(f"| {name} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f}{x} | {vs_copy} "
              f"| {top} |")  # fmt: skip
    print(
        f"| peak RSS, {args.size_mib} MiB up+down (MiB) | {c['rss']:.0f} "
        f"(idle {c['idle']:.0f}) | {e['rss']:.0f} (idle {e['idle']:.0f}) | | |"
    )
    print(
        f"| objects in the listing | {args.objects} ({c['list_s']:.2f} s) | "
        f"{args.emulator_objects} ({e['list_s']:.2f} s) | | |"
    )
    print(f"| plain file copy + fsync MiB/s | | | | {copy:.0f} | | |")
    if "memory" in results:
        m = results["memory"]
        print(
            f"| gateway RSS, {args.rss_size_mib} MiB up+down | peak {m['rss']:.0f} MiB, idle "
            f"{m['idle']:.0f} MiB (up {m['up']:.0f} MiB/s, down {m['down']:.0f} MiB/s) | | | |"
        )


if __name__ == "__main__":
    main()
