"""The gateway's Beam-free reader of pipeline protos agrees with Beam's own (pure)."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2

from cloudlet.dataflow.artifacts import ARTIFACT_ROLE_STAGING_TO, staged_artifacts
from cloudlet.dataflow.paths import relative_file_paths
from cloudlet.dataflow.pipelineproto import ProtoError, parse_pipeline
from cloudlet.dataflow.steps import steps_from_pipeline


def _proto() -> beam_runner_api_pb2.Pipeline:
    p = beam.Pipeline(runner="FnApiRunner")
    words = (
        p | "Create lines" >> beam.Create(["a b", "c"]) | "Split words" >> beam.FlatMap(str.split)
    )
    _ = (words, words) | "Both" >> beam.Flatten() | "Count" >> beam.combiners.Count.PerElement()
    proto = p.to_runner_api()
    env = next(iter(proto.components.environments.values()))
    for name, urn, payload in [
        ("requirements.txt", common_urns.artifact_types.FILE.urn,
         beam_runner_api_pb2.ArtifactFilePayload(path="gs://b/staging/requirements.txt")),
        ("pkg-1.0.tar.gz", common_urns.artifact_types.URL.urn,
         beam_runner_api_pb2.ArtifactUrlPayload(url="https://x/pkg-1.0.tar.gz", sha256="ab")),
    ]:  # fmt: skip
        env.dependencies.add(
            type_urn=urn,
            type_payload=payload.SerializeToString(),
            role_urn=ARTIFACT_ROLE_STAGING_TO,
            role_payload=beam_runner_api_pb2.ArtifactStagingToRolePayload(
                staged_name=name
            ).SerializeToString(),
        )
    return proto


def test_steps_and_artifacts_match_beams_own_parse() -> None:
    proto = _proto()
    ours = parse_pipeline(proto.SerializeToString())
    assert ours.root_transform_ids == list(proto.root_transform_ids)
    assert steps_from_pipeline(ours) == steps_from_pipeline(proto)
    assert staged_artifacts(ours) == staged_artifacts(proto)
    assert ("requirements.txt", common_urns.artifact_types.FILE.urn,
            "gs://b/staging/requirements.txt") in staged_artifacts(ours)  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [b"\x0a\x05ab", b"\x0a", b"\x80", b"\x0b", b"\x00\x01", b"\x12\x02\xff\xfe", b"\xff" * 12],
)
def test_bytes_that_are_not_a_pipeline_raise_proto_error(data: bytes) -> None:
    with pytest.raises(ProtoError):
        parse_pipeline(data)


def test_relative_file_paths_read_the_same_from_both_parses() -> None:
    p = beam.Pipeline(runner="FnApiRunner")
    lines = p | beam.io.ReadFromText("sample1.txt", validate=False)
    lines | beam.io.WriteToText("out", ".txt")  # type: ignore[no-untyped-call]
    lines | "Abs" >> beam.io.WriteToText("/tmp/x/out")  # type: ignore[no-untyped-call]
    lines | "Gcs" >> beam.io.WriteToText("gs://b/out")  # type: ignore[no-untyped-call]
    proto = p.to_runner_api()
    ours = relative_file_paths(parse_pipeline(proto.SerializeToString()))
    assert ours == relative_file_paths(proto)
    assert [path for _, path in ours] == ["sample1.txt", "out.txt"]
