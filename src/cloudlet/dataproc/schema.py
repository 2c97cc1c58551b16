"""The request bodies of the Dataproc v1 API, checked by type at the boundary. Pure: no IO.

Each function takes a parsed JSON object (the gateway's body door, core/bodies.py, has bounded
and parsed it) and returns what the service keeps, or raises 400 naming the field, what is
wrong with it and how to write it. Names follow Google's documented rules:

- Cluster: https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.clusters
  (clusterName: a lowercase letter, then up to 50 lowercase letters, digits or hyphens, not
  ending in a hyphen; at most 32 labels, keys `[\\p{Ll}\\p{Lo}][\\p{Ll}\\p{Lo}\\p{N}_-]{0,62}`,
  values `[\\p{Ll}\\p{Lo}\\p{N}_-]{0,63}`).
- SubmitJobRequest and Job: https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.jobs/submit
  (jobId: letters, digits, underscores, hyphens, at most 100; requestId the same, at most 40).

Fields Google documents but cloudlet does not use (diskConfig, machineTypeUri, ...) are ignored,
as before; the ones it does use must have their documented type. Every string that reaches a
process's argument list or a properties file is free of control characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from cloudlet.core.bodies import Fields
from cloudlet.core.errors import InvalidArgument

__all__ = [
    "MAX_WORKERS",
    "ClusterSpec",
    "JobSpec",
    "cluster_spec",
    "job_spec",
    "parse_memory",
    "validate_cluster_name",
    "validate_region",
    "validate_request_id",
]

MAX_WORKERS = 16  # workers of one managed cluster, on one machine
MAX_CORES = 64
MAX_LABELS = 32
MAX_ARGS = 1000
MAX_TEXT = 4096  # one argument, property or URI
_CLUSTER_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,49}[a-z0-9])?")
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_REGION = re.compile(r"[a-z][a-z0-9-]{0,62}")
_MEMORY = re.compile(r"(\d{1,7})([mMgG])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME_RULE = (
    "it must start with a lowercase letter, hold only lowercase letters, digits and hyphens, "
    "end with a letter or digit, and be at most 51 characters long (such as c1 or my-cluster)"
)


def _shown(value: str) -> str:
    """A client's value, cut short and quoted: a hostile value is not echoed whole."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


def validate_cluster_name(name: str, where: str = "clusterName") -> str:
    """Google's rule: a lowercase letter, then up to 50 lowercase letters, digits or hyphens,
    not ending in a hyphen."""
    if not _CLUSTER_NAME.fullmatch(name):
        raise InvalidArgument(f"Invalid value for field '{where}' {_shown(name)}: {_NAME_RULE}.")
    return name


def validate_request_id(value: str | None, where: str = "requestId") -> None:
    """A requestId (a body field or a query parameter): letters, digits, underscores and
    hyphens, at most 40 characters."""
    if value is not None and not _REQUEST_ID.fullmatch(value):
        raise InvalidArgument(
            f"Invalid value for {where} {_shown(value)}: use letters, digits, underscores and "
            "hyphens, at most 40 characters (such as a UUID without braces)."
        )


def validate_region(region: str) -> str:
    """A region as Dataproc names them (us-central1, europe-west4, global); `-` (every region)
    only lists."""
    if not _REGION.fullmatch(region):
        raise InvalidArgument(
            f"Invalid region {_shown(region)}: give a region such as us-central1 (lowercase "
            "letters, digits and hyphens, at most 63 characters)."
        )
    return region


def parse_memory(value: str, where: str = "spark:spark.worker.memory") -> str:
    """A worker's memory as Spark writes it (512m, 2g)."""
    match = _MEMORY.fullmatch(value.strip())
    if not match or int(match.group(1)) <= 0:
        raise InvalidArgument(
            f"Invalid value for property '{where}' {_shown(value)}: write it as 512m or 2g."
        )
    return f"{int(match.group(1))}{match.group(2).lower()}"


def _plain(value: str, where: str) -> str:
    """A string bound for a process's argv or a properties file: no control characters."""
    if len(value) > MAX_TEXT:
        raise InvalidArgument(
            f"Invalid value for field '{where}': {len(value):,} characters; the limit is "
            f"{MAX_TEXT:,}."
        )
    if _CONTROL.search(value):
        raise InvalidArgument(
            f"Invalid value for field '{where}': it holds a control character (such as a "
            "newline or NUL); remove it."
        )
    return value


def _label_char(char: str, *, first: bool) -> bool:
    kind = unicodedata.category(char)
    if kind in ("Ll", "Lo"):
        return True
    return not first and (kind.startswith("N") or char in "_-")


def _labels(fields: Fields, key: str = "labels") -> dict[str, str]:
    """Labels by Google's rules for Dataproc resources."""
    found = fields.strings(key) or {}
    if len(found) > MAX_LABELS:
        raise InvalidArgument(
            f"Invalid value for field '{fields.path(key)}': {len(found)} labels; at most "
            f"{MAX_LABELS} are allowed."
        )
    out: dict[str, str] = {}
    for name, value in found.items():
        assert value is not None  # strings() keeps nulls only when asked
        good_key = 0 < len(name) <= 63 and all(
            _label_char(c, first=i == 0) for i, c in enumerate(name)
        )
        good_value = len(value) <= 63 and all(_label_char(c, first=False) for c in value)
        if not (good_key and good_value):
            raise InvalidArgument(
                f"Invalid label {_shown(name)}={_shown(value)} in '{fields.path(key)}': keys "
                "start with a lowercase letter and hold 1-63 lowercase letters, digits, "
                "underscores and hyphens; values hold up to 63 of them (such as env=dev)."
            )
        out[name] = value
    return out


def _project_matches(fields: Fields, key: str, project: str) -> None:
    given = fields.text(key, max_len=100)
    if given and given != project:
        raise InvalidArgument(
            f"Invalid value for field '{fields.path(key)}' {_shown(given)}: it must match the "
            f"request's project ({project}), or be left out."
        )


def _master_url(value: str, where: str) -> str:
    """spark://HOST:PORT, or 400."""
    _plain(value, where)
    try:
        parsed = urlparse(value)
        port = parsed.port
    except ValueError:  # a bad IPv6 literal, a port out of range
        port = None
        parsed = None
    if parsed is None or parsed.scheme != "spark" or not parsed.hostname or not port:
        raise InvalidArgument(
            f"Invalid value for property '{where}' {_shown(value)}: write the master URL as "
            "spark://HOST:PORT (such as spark://10.0.0.5:7077)."
        )
    return value


def _int_property(properties: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = properties.get(key)
    if raw is None:
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit() and len(text) < 10 and low <= int(text) <= high):
        raise InvalidArgument(
            f"Invalid value for property '{key}' {_shown(raw)}: give a whole number from "
            f"{low} to {high}."
        )
    return int(text)


# -- clusters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterSpec:
    """clusters.create: what a new cluster is made with."""

    name: str
    num_workers: int = 2
    worker_cores: int = 1
    worker_memory: str = "1g"
    master_url: str | None = None  # an existing master to register, instead of starting one
    labels: dict[str, str] = field(default_factory=dict)


def cluster_spec(body: dict[str, Any], project: str) -> ClusterSpec:
    """A Cluster body. Sizes come from Google's fields where they exist
    (config.workerConfig.numInstances) and from config.softwareConfig.properties
    (`spark:spark.worker.cores`, `spark:spark.worker.memory`, and cloudlet's
    `cloudlet:spark.master` to register an existing master)."""
    fields = Fields(body)
    name = fields.text("clusterName", max_len=100)
    if not name:
        raise InvalidArgument(
            "Required field: clusterName. Name the cluster (such as c1 or my-cluster)."
        )
    validate_cluster_name(name)
    _project_matches(fields, "projectId", project)
    labels = _labels(fields)
    config = fields.obj("config") or Fields({}, "config")
    worker = config.obj("workerConfig") or Fields({}, "config.workerConfig")
    config.obj("masterConfig")  # its type only: a cluster has one master
    software = config.obj("softwareConfig") or Fields({}, "config.softwareConfig")
    software.text("imageVersion", max_len=100)  # its type only: the installed Spark runs
    properties = {k: v for k, v in (software.strings("properties") or {}).items() if v is not None}
    for key, value in properties.items():
        _plain(key, f"{software.path('properties')} key")
        _plain(value, software.path(f"properties.{key}"))
    workers = worker.integer("numInstances")
    workers = 2 if workers is None else workers
    if not 0 <= workers <= MAX_WORKERS:
        raise InvalidArgument(
            f"Invalid value for field '{worker.path('numInstances')}': {workers}; give 0 to "
            f"{MAX_WORKERS} workers on one machine."
        )
    master = properties.get("cloudlet:spark.master")
    return ClusterSpec(
        name=name,
        num_workers=workers if master is None else 0,
        worker_cores=_int_property(properties, "spark:spark.worker.cores", 1, 1, MAX_CORES),
        worker_memory=parse_memory(properties.get("spark:spark.worker.memory", "1g")),
        master_url=None if master is None else _master_url(master, "cloudlet:spark.master"),
        labels=labels,
    )


# -- jobs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """jobs.submit: a PySpark job and where it runs."""

    cluster_name: str
    job_id: str | None  # None: the service makes one
    main: str
    args: list[str]
    python_files: list[str]
    properties: dict[str, str]
    labels: dict[str, str]
    cluster_uuid: str | None = None

    def as_spec(self) -> dict[str, Any]:
        """The job's stored config, as jobs.get shows it."""
        return {
            "pysparkJob": {
                "mainPythonFileUri": self.main,
                "args": list(self.args),
                "pythonFileUris": list(self.python_files),
                "properties": dict(self.properties),
            }
        }


_UNSUPPORTED_FILES = ("jarFileUris", "fileUris", "archiveUris")


def _file_uri(value: str, where: str) -> str:
    _plain(value, where)
    try:
        parsed = urlparse(value)
    except ValueError:
        parsed = None
    ok = parsed is not None and (
        (parsed.scheme == "gs" and parsed.netloc and parsed.path.strip("/"))
        or (
            parsed.scheme == "file"
            and parsed.netloc in ("", "localhost")
            and parsed.path.startswith("/")
        )
    )
    if not ok:
        raise InvalidArgument(
            f"Invalid value for field '{where}' {_shown(value)}: give a gs://BUCKET/OBJECT in "
            "this gateway's Cloud Storage, or a file:// path on the gateway's machine."
        )
    return value


def _texts(fields: Fields, key: str) -> list[str]:
    items = fields.array(key, max_len=MAX_ARGS) or []
    out = []
    for index, item in enumerate(items):
        where = f"{fields.path(key)}[{index}]"
        if not isinstance(item, str):
            raise Fields({}, "").wrong(where, "a string", item)
        out.append(_plain(item, where))
    return out


def job_spec(body: dict[str, Any], project: str) -> JobSpec:
    """A SubmitJobRequest body: {"job": Job, "requestId": ...}. Only PySpark jobs run here."""
    fields = Fields(body)
    validate_request_id(fields.text("requestId", max_len=100))
    job = fields.obj("job")
    if job is None:
        raise InvalidArgument('Required field: job. Send {"job": {"pysparkJob": {...}, ...}}.')
    pyspark = job.obj("pysparkJob")
    if pyspark is None:
        others = sorted(k for k in job.data if k.endswith("Job"))[:5]
        raise InvalidArgument(
            "Only PySpark jobs (job.pysparkJob) run here; got "
            f"{', '.join(map(_shown, others)) or 'no job type'}."
        )
    reference = job.obj("reference") or Fields({}, "job.reference")
    _project_matches(reference, "projectId", project)
    job_id = reference.text("jobId", max_len=200) or None
    if job_id is not None and not _JOB_ID.fullmatch(job_id):
        raise InvalidArgument(
            f"Invalid value for field 'job.reference.jobId' {_shown(job_id)}: use letters, "
            "digits, underscores and hyphens, at most 100 characters."
        )
    placement = job.obj("placement") or Fields({}, "job.placement")
    cluster = placement.text("clusterName", max_len=100)
    if not cluster:
        raise InvalidArgument(
            "Required field: job.placement.clusterName. Name the cluster to run on."
        )
    validate_cluster_name(cluster, "job.placement.clusterName")
    cluster_uuid = placement.text("clusterUuid", max_len=100) or None
    main = pyspark.text("mainPythonFileUri")
    if not main:
        raise InvalidArgument(
            "Required field: job.pysparkJob.mainPythonFileUri (gs://BUCKET/main.py, or a "
            "file:// path on the gateway's machine)."
        )
    _file_uri(main, "job.pysparkJob.mainPythonFileUri")
    python_files = [
        _file_uri(uri, f"job.pysparkJob.pythonFileUris[{i}]")
        for i, uri in enumerate(_texts(pyspark, "pythonFileUris"))
    ]
    for key in _UNSUPPORTED_FILES:
        if _texts(pyspark, key):
            raise InvalidArgument(
                f"job.pysparkJob.{key} is not supported here: ship Python code with "
                "pythonFileUris, and read data from gs:// inside the job."
            )
    properties = {k: v for k, v in (pyspark.strings("properties") or {}).items() if v is not None}
    for key, value in properties.items():
        _plain(key, "job.pysparkJob.properties key")
        _plain(value, pyspark.path(f"properties.{key}"))
        if not key:
            raise InvalidArgument("job.pysparkJob.properties holds an empty key.")
    return JobSpec(
        cluster_name=cluster,
        job_id=job_id,
        main=main,
        args=_texts(pyspark, "args"),
        python_files=python_files,
        properties=properties,
        labels=_labels(job),
        cluster_uuid=cluster_uuid,
    )
