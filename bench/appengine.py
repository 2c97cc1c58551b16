"""App Engine router benchmark: wrk against gunicorn directly, through cloudlet's router, and
through nginx to the same gunicorn, all in one run; plus deploy times.

    uv run python bench/appengine.py [--duration 10] [--connections 50]

Needs `wrk` (Debian: apt-get install wrk); nginx (apt-get install nginx-light) is optional.
Everything binds 127.0.0.1 and every load run stops by itself after --duration seconds.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import httpx

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
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if host:
        args[1:1] = ["-H", f"Host: {host}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert p50 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": float(p50.group(1)) * scale,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def deploy(api: httpx.Client, project: str, src: Path, version: str) -> float:
    archive, _ = pack_source(src)
    started = time.perf_counter()
    build = api.post(f"/api/v1/apps/{project}/services/default/versions",
                     params={"version": version}, content=archive).json()  # fmt: skip
    while True:
        state = api.get(f"/api/v1/apps/{project}/builds/{build['id']}").json()
        if state["done"]:
            break
        time.sleep(0.05)
    if state["status"] != "SUCCESS":
        raise SystemExit(f"deploy failed: {state['error']}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "app"
        src.mkdir()
        (src / "app.yaml").write_text(APP_YAML)
        (src / "main.py").write_text(MAIN)
        (src / "requirements.txt").write_text("Flask>=3,<4\ngunicorn\n")
        with Gateway.start(tmp / "gw") as gw, httpx.Client(base_url=gw.url, timeout=120) as api:
            project = "bench-" + uuid.uuid4().hex[:8]
            api.post("/api/v1/projects", json={"projectId": project}).raise_for_status()
            api.post("/api/v1/apps", json={"id": project, "locationId": "us-central"})
            api.post(f"/api/v1/projects/{project}/services/cloudbuild.googleapis.com:enable")
            cold = deploy(api, project, src, "v1")
            warm = deploy(api, project, src, "v2")
            path = f"/api/v1/apps/{project}/services/default/versions/v2/instances"
            port = api.get(path).json()["instances"][0]["port"]
            host = f"{project}.localhost"
            results = {"direct": wrk(f"http://127.0.0.1:{port}/time", opts.duration,
                                     opts.connections)}  # fmt: skip
            results["router"] = wrk(f"{gw.url}/time", opts.duration, opts.connections, host)
            if shutil.which("nginx"):
                ngx_port = free_port()
                conf = tmp / "nginx.conf"
                conf.write_text(NGINX_CONF.format(dir=tmp, upstream=port, port=ngx_port))
                quiet = subprocess.DEVNULL
                ngx = subprocess.Popen(
                    ["nginx", "-c", str(conf), "-g", "daemon off;"], stdout=quiet, stderr=quiet
                )
                try:
                    time.sleep(1)
                    results["nginx"] = wrk(f"http://127.0.0.1:{ngx_port}/time", opts.duration,
                                           opts.connections)  # fmt: skip
                finally:
                    ngx.terminate()
                    ngx.wait(10)
    base = results["direct"]
    print(f"# {time.strftime('%Y-%m-%d')} on {platform.node()} ({platform.machine()}, "
          f"Python {sys.version.split()[0]}), wrk -t2 -c{opts.connections} -d{opts.duration}s "
          "against Flask /time on gunicorn -w 2 (sync)")  # fmt: skip
    print("| path | req/s | p50 ms | ratio to direct | p50 added ms |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['rps'] / base['rps']:.2f}x | "
              f"{r['p50_ms'] - base['p50_ms']:+.2f} |")  # fmt: skip
        if r["non2xx"] or r["socket_errors"]:
            print(f"  ({name}: {r['non2xx']:.0f} non-2xx responses, socket errors present)")
    print()
    print(
        textwrap.dedent(f"""\
        deploy to serving: first {cold:.1f}s (venv built; uv's download cache warm),
        second {warm:.1f}s (same requirements: venv reused)""")
    )


if __name__ == "__main__":
    main()
