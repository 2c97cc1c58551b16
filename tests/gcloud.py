"""Google's own gcloud (the Cloud SDK), run against a test gateway: a configuration of its own,
an endpoint override, and no credentials, as docs/storage.md and docs/appengine.md tell users."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = ["gcloud_against", "needs_gcloud"]

needs_gcloud = pytest.mark.skipif(
    shutil.which("gcloud") is None, reason="Google Cloud SDK not installed"
)


def gcloud_against(
    config_dir: Path,
    api: str | tuple[str, ...],
    endpoint: str,
    project: str,
    env: dict[str, str] | None = None,
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """A `gcloud ARGS...` runner whose `api` (storage, appengine, ..., or several) is at
    `endpoint`, with more variables from `env`; it fails the test, with gcloud's stderr, when
    gcloud does (unless `check=False`)."""
    apis = (api,) if isinstance(api, str) else api
    full_env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(config_dir),
        **{f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{name.upper()}": endpoint for name in apis},
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_CORE_PROJECT": project,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        **(env or {}),
    }

    def gcloud(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["gcloud", *args], env=full_env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0 or not check, done.stderr
        return done

    return gcloud
