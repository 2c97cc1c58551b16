"""Relative file paths in a pipeline: a job runs in a directory of its own
(DATA_DIR/jobs/ID), not where its submitter stood, so `ReadFromText('sample1.txt')` would read
nothing there and `WriteToText('out')` would write where the user never looks. Dataflow's workers
cannot see the submitter's files either
(https://cloud.google.com/dataflow/docs/guides/specifying-exec-params#python); cloudlet refuses
such a job at once, naming the path and the fix, instead of letting it succeed on nothing.

Beam's file-based sources and sinks (textio, avroio, parquetio, tfrecordio, fileio's
`WriteToFiles` …) publish their path as display data (`file_pattern`, `file_path_prefix`) in
the pipeline proto, which both doors (v1b3 and the Beam Job API) receive. Paths a DoFn opens
itself are not seen.
"""

from __future__ import annotations

from typing import Any

from cloudlet.dataflow.pipelineproto import ProtoError, string_field

__all__ = ["refusal", "relative_file_paths"]

_PATH_KEYS = {"file_pattern", "file_path_prefix", "file_name_prefix"}
_LABELLED = "beam:display_data:labelled:v1"


def _shown(value: str) -> str:
    """The path as the user wrote it: no './', no shard template."""
    value = value.removeprefix("./")
    for template in ("-%(shard_num)05d-of-%(num_shards)05d", "%(shard_num)05d", "%(num_shards)05d"):
        value = value.replace(template, "")
    return value


def relative_file_paths(pipeline: Any) -> list[tuple[str, str]]:
    """(transform name, path) for every relative local path a file source or sink names, in a
    pipeline parsed by pipelineproto (or Beam's own classes: the attribute names are Beam's)."""
    found: dict[str, str] = {}
    for transform in pipeline.components.transforms.values():
        for item in transform.display_data:
            if item.urn != _LABELLED:
                continue
            try:  # LabelledPayload: string_value = 2, key = 6
                key, value = string_field(item.payload, 6), string_field(item.payload, 2)
            except ProtoError:
                continue
            if key not in _PATH_KEYS or not value or "://" in value:
                continue
            if value.startswith(("/", "~")):
                continue
            path = _shown(value)
            # The outermost transform that names it (the shortest name: ReadFromText/Read).
            if path not in found or len(transform.unique_name) < len(found[path]):
                found[path] = transform.unique_name
    return sorted((name, path) for path, name in found.items())


def refusal(paths: list[tuple[str, str]]) -> str:
    """The error for a pipeline with relative paths: what, where it would run, and the fix."""
    named = ", ".join(f"'{path}' ({name})" for name, path in paths)
    example = paths[0][1]
    return (
        f"The pipeline names relative file paths: {named}. A Dataflow job runs in a directory "
        "of its own, not where you started it, so it would not find these files or would "
        f"write where you cannot see them. Use a gs:// path (gs://BUCKET/{example}) or an "
        f"absolute path (for example $PWD/{example}) and resubmit."
    )
