"""Deploys from Google's own `gcloud app deploy`: versions.create with the source staged in
Cloud Storage.

gcloud uploads each file of the source to the application's code bucket
(`staging.PROJECT.appspot.com`), named by its SHA-1, and then calls versions.create with a
Version whose `deployment.files` maps each path to its `sourceUrl` and `sha1Sum`
(https://cloud.google.com/appengine/docs/admin-api/reference/rest/v1/apps.services.versions#Deployment).
It answers with an Operation, which gcloud polls until the version is up, and then moves the
traffic itself (services.patch) unless told `--no-promote`.

cloudlet gathers those files into the same archive that `cloudlet app deploy` uploads, and
deploys the version from the app.yaml among them. Both front doors build and run a version the
same way, and the settings gcloud derived from app.yaml are not read twice.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import yaml

from cloudlet.appengine.source import DeployLimits
from cloudlet.core.bodies import Fields
from cloudlet.core.errors import InvalidArgument

__all__ = ["MAX_FILES", "StagedFile", "gather", "pick_descriptor", "staged_files"]

MAX_FILES = 10_000  # App Engine's limit on the files of a version
# Top-level files that are configuration of other kinds, never a service's app.yaml.
_NOT_SERVICES = {"dispatch.yaml", "cron.yaml", "index.yaml", "queue.yaml", "dos.yaml"}
_STORAGE_HOSTS = ("storage.googleapis.com", "storage.cloud.google.com")


@dataclass(frozen=True)
class StagedFile:
    path: str  # in the source, such as main.py or static/style.css
    bucket: str
    name: str  # the object
    sha1: str


def _object_of(url: str) -> tuple[str, str]:
    """(bucket, object) of a staged file's `sourceUrl`: https://storage.googleapis.com/B/O or
    gs://B/O."""
    parts = urlsplit(url)
    if parts.scheme == "gs":
        bucket, name = parts.netloc, parts.path.lstrip("/")
    elif parts.scheme in ("http", "https") and parts.netloc in _STORAGE_HOSTS:
        bucket, _, name = parts.path.lstrip("/").partition("/")
    else:
        raise InvalidArgument(
            f"Unsupported sourceUrl [{url}]: stage the file in Cloud Storage and give "
            "https://storage.googleapis.com/BUCKET/OBJECT."
        )
    if not bucket or not name:
        raise InvalidArgument(f"The sourceUrl [{url}] names no bucket and object.")
    return unquote(bucket), unquote(name)


def staged_files(version: dict[str, Any]) -> list[StagedFile]:
    """The files of a Version's `deployment.files`, checked. Pure."""
    deployment = Fields(version).obj("deployment") or Fields({})  # wrong types: 400
    found = deployment.obj("files")
    files = dict(found.data) if found is not None else {}
    if not files:
        if deployment.data.get("zip") or deployment.data.get("container"):
            raise InvalidArgument(
                "Only deployment.files is supported (the form gcloud app deploy sends); "
                "deployment.zip and deployment.container are not."
            )
        raise InvalidArgument("The version has no deployment.files: nothing to deploy.")
    if len(files) > MAX_FILES:
        raise InvalidArgument(
            f"The version has {len(files)} files; App Engine allows {MAX_FILES}. "
            "List the rest in .gcloudignore."
        )
    out = []
    for path, info in sorted(files.items()):
        pure = PurePosixPath(path)
        if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
            raise InvalidArgument(f"Unsafe file path in deployment.files: [{path}].")
        if not isinstance(info, dict):
            raise InvalidArgument(f"deployment.files[{path}] must be an object with a sourceUrl.")
        entry = Fields(info, f"deployment.files[{path}]")
        source = entry.text("sourceUrl")
        if not source:
            raise InvalidArgument(f"deployment.files[{path}] has no sourceUrl.")
        sha1 = (entry.text("sha1Sum") or "").lower()
        if sha1 and not re.fullmatch(r"[0-9a-f]{40}", sha1):
            raise InvalidArgument(f"deployment.files[{path}].sha1Sum [{sha1}] is not a SHA-1.")
        bucket, name = _object_of(source)
        out.append(StagedFile(path, bucket, name, sha1))
    return out


def pick_descriptor(paths: Iterable[str], service: str, read: Callable[[str], str]) -> str:
    """Which uploaded file is the service's app.yaml. gcloud does not say, so: the top-level
    YAML files with a `runtime` whose service (`service`, `module`, else default) is `service`,
    app.yaml first."""
    candidates = sorted(
        p
        for p in paths
        if "/" not in p and p.endswith((".yaml", ".yml")) and p not in _NOT_SERVICES
    )
    matching = []
    for path in candidates:
        try:
            doc = yaml.safe_load(read(path))
        except yaml.YAMLError:
            if path == "app.yaml":
                return path  # its own parse error is reported, with the line, by the deploy
            continue
        if not isinstance(doc, dict) or "runtime" not in doc:
            continue
        if str(doc.get("service") or doc.get("module") or "default") == service:
            matching.append(path)
    if "app.yaml" in matching or len(matching) == 1:
        return "app.yaml" if "app.yaml" in matching else matching[0]
    if not matching:
        raise InvalidArgument(
            f"None of the uploaded files is an app.yaml for service [{service}] (a top-level "
            "YAML file with `runtime:`); keep it out of .gcloudignore."
        )
    raise InvalidArgument(
        f"Several uploaded files are app.yaml files for service [{service}]: "
        f"{', '.join(matching)}. Deploy from a directory with one."
    )


def gather(
    files: list[StagedFile],
    open_object: Callable[[str, str], BinaryIO],
    archive: Path,
    limits: DeployLimits,
) -> None:
    """Write the staged files, read with `open_object(bucket, name)` and checked against their
    SHA-1, into the tar `archive` that a deploy unpacks. A file over `limits.max_file_bytes`,
    or more than `limits.max_total_bytes` in all, is refused after reading one byte past the
    limit, never more."""
    if len(files) > limits.max_files:
        raise InvalidArgument(
            f"This deployment has too many files. New versions are limited to "
            f"{limits.max_files} files (deploy_max_files); list the rest in .gcloudignore."
        )
    total = 0
    with tarfile.open(archive, "w") as tar:
        for staged in files:
            with open_object(staged.bucket, staged.name) as source:
                data = source.read(limits.max_file_bytes + 1)
            if len(data) > limits.max_file_bytes:
                raise InvalidArgument(
                    f"Cannot deploy file [{staged.path}], which is larger than the maximum "
                    f"allowed size of [{limits.max_file_bytes}] (deploy_max_file_bytes); list "
                    "it in .gcloudignore."
                )
            total += len(data)
            if total > limits.max_total_bytes:
                raise InvalidArgument(
                    f"The staged files hold more than {limits.max_total_bytes} bytes "
                    "(deploy_max_total_bytes); list large files in .gcloudignore."
                )
            if staged.sha1 and hashlib.sha1(data).hexdigest() != staged.sha1:
                raise InvalidArgument(
                    f"gs://{staged.bucket}/{staged.name}, staged for [{staged.path}], does not "
                    f"match its sha1Sum [{staged.sha1}]: upload it again."
                )
            info = tarfile.TarInfo(staged.path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
