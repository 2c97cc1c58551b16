"""App Engine router benchmark: wrk against gunicorn directly, through cloudlet's router, through
nginx, and through a bare Python relay (bench/relay_floor.py) to the same gunicorn, all in one
run; plus deploy times.

    uv run python bench/appengine.py [--duration 10] [--connections 50] [--repeat 3]

Throughput is measured at 50 connections (every path saturates the 2 gunicorn workers); the
latency a proxy adds is measured with one connection, where queueing does not hide it. The CPU
the proxy process spends per request (the gateway's, nginx's workers') explains the ratios on
a machine whose cores the proxy shares with gunicorn and wrk.

Needs `wrk` (Debian: apt-get install wrk); nginx (apt-get install nginx-light) is optional.
Everything binds 127.0.0.1 and every load run stops by itself after --duration seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil
from uv import find_uv_bin

from cloudlet.appengine.source import pack_source
from cloudlet.testing import Gateway, free_port

APP_YAML = """\
runtime: python311
entrypoint: gunicorn -b :$PORT -w 2 main:app
manual_scaling:
  instances: 1
"""
MAIN = """\
from datetime import datetime
from flask import Flask
app = Flask(__name__)

@app.route('/time')
def time():
    return "{time:" + datetime.now().strftime("%H:%M:%S") + '}'
"""
NGINX_CONF = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream app {{ server 127.0.0.1:{upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


def wrk(url: str, seconds: int, connections: int, host: str | None = None) -> dict[str, float]:
    threads = min(2, connections)
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if host:
        args[1:1] = ["-H", f"Host: {host}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert p50 is not None and total is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": float(total.group(1)),
        "p50_ms": float(p50.group(1)) * scale,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def measured(
    procs: list[psutil.Process], url: str, seconds: int, connections: int, host: str | None = None
) -> dict[str, float]:
    """wrk's figures plus the CPU the proxy process(es) spent per request."""
    before = cpu_seconds(procs)
    result = wrk(url, seconds, connections, host)
    result["cpu_us"] = (cpu_seconds(procs) - before) / max(result["requests"], 1) * 1e6
    return result


def deploy(api: httpx.Client, project: str, src: Path, version: str) -> tuple[float, str]:
    """Seconds from the upload to an answering instance, and when each build step began."""
    archive, _ = pack_source(src)
    started = time.perf_counter()
    build = api.post(f"/api/v1/apps/{project}/services/default/versions",
                     params={"version": version}, content=archive).json()  # fmt: skip
    offset, steps = 0, {}
    while True:
        state = api.get(f"/api/v1/apps/{project}/builds/{build['id']}",
                        params={"offset": offset}).json()  # fmt: skip
        offset = state["nextOffset"]
        for line in state["log"].splitlines():
            step = re.match(r"Step #(\d+)", line)
            if step and step.group(1) not in steps:
                steps[step.group(1)] = time.perf_counter() - started
        if state["done"]:
            break
        time.sleep(0.05)
    if state["status"] != "SUCCESS":
        raise SystemExit(f"deploy failed: {state['error']}")
    phases = ", ".join(f"step {k} at {v:.1f}s" for k, v in sorted(steps.items()))
    return time.perf_counter() - started, phases


def uv_alone(requirements: Path, where: Path) -> float:
    """`uv venv` + `uv pip install -r` by hand: the floor under a deploy that builds a venv."""
    uv = find_uv_bin()
    started = time.perf_counter()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, "--no-python-downloads",
                    str(where)], check=True)  # fmt: skip
    subprocess.run([uv, "pip", "install", "-q", "--python", str(where / "bin" / "python"),
                    "-r", str(requirements)], check=True)  # fmt: skip
    return time.perf_counter() - started


def median_spread(values: list[float], fmt: str) -> str:
    if len(values) == 1:
        return format(values[0], fmt)
    return (f"{format(statistics.median(values), fmt)} "
            f"({format(min(values), fmt)}..{format(max(values), fmt)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per throughput run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--latency-duration", type=int, default=5,
                        help="seconds per one-connection latency run")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="rounds of all paths")
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    load_before = os.getloadavg()
    rounds: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "app"
        src.mkdir()
        (src / "app.yaml").write_text(APP_YAML)
        (src / "main.py").write_text(MAIN)
        (src / "requirements.txt").write_text("Flask>=3,<4\ngunicorn\n")
        uv_floor = uv_alone(src / "requirements.txt", tmp / "uv-alone")
        with Gateway.start(tmp / "gw") as gw, httpx.Client(base_url=gw.url, timeout=120) as api:
            project = "bench-" + uuid.uuid4().hex[:8]
            api.post("/api/v1/projects", json={"projectId": project}).raise_for_status()
            api.post("/api/v1/apps", json={"id": project, "locationId": "us-central"})
            api.post(f"/api/v1/projects/{project}/services/cloudbuild.googleapis.com:enable")
            cold, cold_steps = deploy(api, project, src, "v1")
            warm, warm_steps = deploy(api, project, src, "v2")
            path = f"/api/v1/apps/{project}/services/default/versions/v2/instances"
            port = api.get(path).json()["instances"][0]["port"]
            host = f"{project}.localhost"
            assert gw.proc is not None
            gateway = [psutil.Process(gw.proc.pid)]
            ngx: subprocess.Popen[bytes] | None = None
            nginx: list[psutil.Process] = []
            ngx_port = free_port()
            if shutil.which("nginx"):
                conf = tmp / "nginx.conf"
                conf.write_text(NGINX_CONF.format(dir=tmp, upstream=port, port=ngx_port))
                quiet = subprocess.DEVNULL
                ngx = subprocess.Popen(
                    ["nginx", "-c", str(conf), "-g", "daemon off;"], stdout=quiet, stderr=quiet
                )
                time.sleep(1)
                nginx = [psutil.Process(ngx.pid), *psutil.Process(ngx.pid).children()]
            floor_port = free_port()
            floor = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("relay_floor.py")),
                 str(floor_port), str(port)]
            )  # fmt: skip
            time.sleep(1)
            try:
                paths: list[tuple[str, str, str | None, list[psutil.Process]]] = [
                    ("direct", f"http://127.0.0.1:{port}/time", None, []),
                    ("router", f"{gw.url}/time", host, gateway),
                    ("python floor", f"http://127.0.0.1:{floor_port}/time", None,
                     [psutil.Process(floor.pid)]),
                ]  # fmt: skip
                if ngx is not None:
                    paths.append(("nginx", f"http://127.0.0.1:{ngx_port}/time", None, nginx))
                for _ in range(opts.repeat):
                    this: dict[str, dict[str, float]] = {}
                    for name, url, host_header, procs in paths:
                        this[name] = measured(procs, url, opts.duration, opts.connections,
                                              host_header)  # fmt: skip
                    for name, url, host_header, _procs in paths:
                        one = wrk(url, opts.latency_duration, 1, host_header)
                        this[name]["p50_1conn_ms"] = one["p50_ms"]
                    rounds.append(this)
            finally:
                floor.terminate()
                floor.wait(10)
                if ngx is not None:
                    ngx.terminate()
                    ngx.wait(10)
    load_after = os.getloadavg()
    names = list(rounds[0])
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()} ({os.cpu_count()} CPUs, "
          f"{platform.machine()}, Python {sys.version.split()[0]}); load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")  # fmt: skip
    print(f"# Flask /time on gunicorn -w 2 (sync); wrk -t2 -c{opts.connections} "
          f"-d{opts.duration}s for throughput, wrk -t1 -c1 -d{opts.latency_duration}s for "
          f"latency; {opts.repeat} rounds, median (min..max)")  # fmt: skip
    print("| path | req/s | ratio to direct | p50 ms at c50 | p50 ms, 1 connection | "
          "added p50 ms, 1 connection | proxy CPU µs/request |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name in names:
        rps = [r[name]["rps"] for r in rounds]
        ratio = [r[name]["rps"] / r["direct"]["rps"] for r in rounds]
        p50 = [r[name]["p50_ms"] for r in rounds]
        single = [r[name]["p50_1conn_ms"] for r in rounds]
        added = [r[name]["p50_1conn_ms"] - r["direct"]["p50_1conn_ms"] for r in rounds]
        cpu = [r[name]["cpu_us"] for r in rounds]
        print(f"| {name} | {median_spread(rps, '.0f')} | {median_spread(ratio, '.2f')} | "
              f"{median_spread(p50, '.1f')} | {median_spread(single, '.2f')} | "
              f"{median_spread(added, '+.2f') if name != 'direct' else '—'} | "
              f"{median_spread(cpu, '.0f') if name != 'direct' else '—'} |")  # fmt: skip
        bad = sum(r[name]["non2xx"] for r in rounds)
        if bad or any(r[name]["socket_errors"] for r in rounds):
            print(f"  ({name}: {bad:.0f} non-2xx responses; socket errors present)")
    print()
    print(f"deploy to serving: first {cold:.1f}s (venv built; uv's download cache warm; "
          f"{cold_steps}), second {warm:.1f}s (same requirements: venv reused; {warm_steps}); "
          f"uv venv + uv pip install of the same requirements by hand: "
          f"{uv_floor:.1f}s")  # fmt: skip


if __name__ == "__main__":
    main()
