"""The default service's code: the cron handler (the pages themselves are static files).

App Engine's cron service sends `X-Appengine-Cron: true`, and strips that header from outside
requests, so a handler can trust it:
https://cloud.google.com/appengine/docs/standard/scheduling-jobs-with-cron-yaml#securing_urls_for_cron
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Flask, abort, jsonify, request

app = Flask(__name__)

# In this instance's memory: enough to show the cron runs (a real app would use a database).
DIGESTS: list[str] = []


@app.get("/tasks/digest")
def digest():
    if request.headers.get("X-Appengine-Cron") != "true":
        abort(403)  # only App Engine's cron may run this
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    DIGESTS.append(stamp)
    print(f"digest built at {stamp} (X-Appengine-Cron: true)", flush=True)
    return jsonify(built=stamp)


@app.get("/tasks/status")
def status():
    return jsonify(
        service=os.environ.get("GAE_SERVICE", "local"),
        digests=len(DIGESTS),
        last=DIGESTS[-1] if DIGESTS else None,
    )
