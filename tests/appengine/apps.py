"""Small App Engine apps the tests deploy (the seed's Flask time service and friends)."""

from __future__ import annotations

from pathlib import Path

# One requirements text for every app, so a gateway builds its venv once and reuses it.
REQUIREMENTS = "Flask>=3,<4\n"

MAIN = """
import os
import sys
from datetime import date, datetime

from flask import Flask, request

if os.environ.get("CRASH_MARKER") and os.path.exists(os.environ["CRASH_MARKER"]):
    raise RuntimeError("crash marker present")

app = Flask(__name__)


@app.route("/")
def welcome():
    return os.environ.get("GREETING", "Welcome Python Geek! Use appropriate URI for date and time")


@app.route("/date")
def today():
    return "{date:" + date.today().strftime("%B %d, %Y") + "}"


@app.route("/time")
def time():
    return "{time:" + datetime.now().strftime("%H:%M:%S") + "}"


@app.route("/env")
def env():
    print("env was requested", flush=True)
    keys = [k for k in os.environ if k.startswith(("GAE_", "GOOGLE_", "PORT", "STORAGE_", "GREETING", "API_"))]
    out = {k: os.environ[k] for k in keys}
    out["headers"] = {k: v for k, v in request.headers.items()}
    return out


@app.route("/echo", methods=["POST"])
def echo():
    return request.get_data()


@app.route("/slow")
def slow():
    import time as t
    t.sleep(float(request.args.get("s", "1")))
    return "slept"


@app.route("/api/<path:rest>")
def api(rest):
    return f"{os.environ['GAE_SERVICE']}:{rest}"


@app.route("/cronhit")
def cronhit():
    flag = request.headers.get("X-Appengine-Cron", "absent")
    print(f"cron hit: {flag}", flush=True)
    return flag


HOARD = []


@app.route("/eat")
def eat():
    HOARD.append(b"x" * (int(request.args["mb"]) << 20))  # resident, not lazily mapped
    return "ate"


@app.route("/crash")
def crash():
    sys.stdout.flush()
    os._exit(3)
"""


def write_app(
    root: Path,
    app_yaml: str = "runtime: python311\n",
    main: str = MAIN,
    requirements: str = REQUIREMENTS,
    extra: dict[str, str] | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.yaml").write_text(app_yaml)
    (root / "main.py").write_text(main)
    (root / "requirements.txt").write_text(requirements)
    for name, text in (extra or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root
