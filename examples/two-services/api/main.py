"""The api service: JSON under /api/ (dispatch.yaml routes those paths here)."""

from __future__ import annotations

import os

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/api/hello")
def hello():
    name = request.args.get("name", "world")
    return jsonify(message=f"Hello, {name}!", service=os.environ.get("GAE_SERVICE", "local"))


@app.get("/api/version")
def version():
    return jsonify(service=os.environ.get("GAE_SERVICE"), version=os.environ.get("GAE_VERSION"))
