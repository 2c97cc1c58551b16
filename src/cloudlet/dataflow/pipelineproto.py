"""Read the parts of a Beam pipeline proto the gateway needs, without Beam. Pure.

The gateway never imports `apache_beam` (docs/gateway.md): Beam is an extra, heavy to load,
and only a job's executor needs it. What the gateway reads of a submitted pipeline, its named
transforms (for the job's steps) and its environments' staged dependencies, is a handful of
fields of `beam_runner_api.proto`; this module decodes them from the protobuf wire format
(https://protobuf.dev/programming-guides/encoding/) and skips every other field, as protobuf
itself skips unknown fields. The field numbers are Beam's, from
https://github.com/apache/beam/blob/master/model/pipeline/src/main/proto/org/apache/beam/model/pipeline/v1/beam_runner_api.proto

The objects it returns have the attribute names of Beam's generated classes, so code that walks
a pipeline (dataflow/steps.py, dataflow/artifacts.py) takes either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "ArtifactInformation",
    "Components",
    "DisplayData",
    "Environment",
    "FunctionSpec",
    "PTransform",
    "Pipeline",
    "ProtoError",
    "parse_pipeline",
    "string_field",
]


class ProtoError(ValueError):
    """The bytes are not a protobuf message of the expected shape."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtoError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint too long")


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of each field: bytes for length-delimited fields, an
    int for varints; fixed32/fixed64 values are skipped as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtoError("truncated field")
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 1:
            pos += 8
            if pos > len(data):
                raise ProtoError("truncated fixed64")
        elif wire == 5:
            pos += 4
            if pos > len(data):
                raise ProtoError("truncated fixed32")
        else:  # groups (3, 4) are not used by Beam's protos
            raise ProtoError(f"unsupported wire type {wire}")


def _text(value: bytes | int) -> str:
    if not isinstance(value, bytes):
        raise ProtoError("a string field holds a varint")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise ProtoError("a string field is not UTF-8") from None


def _bytes(value: bytes | int) -> bytes:
    if not isinstance(value, bytes):
        raise ProtoError("a message field holds a varint")
    return value


def _map_entry(value: bytes | int) -> tuple[str, bytes]:
    """A map<string, X> entry: key = 1, value = 2 (the value's raw bytes)."""
    key, raw = "", b""
    for number, _wire, v in _fields(_bytes(value)):
        if number == 1:
            key = _text(v)
        elif number == 2:
            raw = _bytes(v)
    return key, raw


def string_field(data: bytes, number: int) -> str:
    """The last value of string field `number` of a message (proto3: the last one wins), or ""
    (ArtifactFilePayload.path = 1, ArtifactUrlPayload.url = 1,
    ArtifactStagingToRolePayload.staged_name = 1)."""
    found = ""
    for n, _wire, value in _fields(data):
        if n == number:
            found = _text(value)
    return found


@dataclass
class FunctionSpec:
    urn: str = ""  # 1


@dataclass
class DisplayData:
    urn: str = ""  # 1
    payload: bytes = b""  # 2 (for beam:display_data:labelled:v1, a LabelledPayload)


@dataclass
class PTransform:
    unique_name: str = ""  # 5
    spec: FunctionSpec = field(default_factory=FunctionSpec)  # 1
    subtransforms: list[str] = field(default_factory=list)  # 2
    inputs: dict[str, str] = field(default_factory=dict)  # 3
    outputs: dict[str, str] = field(default_factory=dict)  # 4
    display_data: list[DisplayData] = field(default_factory=list)  # 6


@dataclass
class ArtifactInformation:
    type_urn: str = ""  # 1
    type_payload: bytes = b""  # 2
    role_urn: str = ""  # 3
    role_payload: bytes = b""  # 4


@dataclass
class Environment:
    urn: str = ""  # 2
    dependencies: list[ArtifactInformation] = field(default_factory=list)  # 6


@dataclass
class Components:
    transforms: dict[str, PTransform] = field(default_factory=dict)  # 1
    environments: dict[str, Environment] = field(default_factory=dict)  # 5


@dataclass
class Pipeline:
    components: Components = field(default_factory=Components)  # 1
    root_transform_ids: list[str] = field(default_factory=list)  # 2


def _transform(data: bytes) -> PTransform:
    t = PTransform()
    for number, _wire, value in _fields(data):
        if number == 5:
            t.unique_name = _text(value)
        elif number == 1:
            t.spec = FunctionSpec(string_field(_bytes(value), 1))
        elif number == 2:
            t.subtransforms.append(_text(value))
        elif number in (3, 4):
            key, raw = _map_entry(value)
            (t.inputs if number == 3 else t.outputs)[key] = _text(raw)
        elif number == 6:
            item = _bytes(value)
            payload = b""
            for n, _w, v in _fields(item):
                if n == 2:
                    payload = _bytes(v)
            t.display_data.append(DisplayData(string_field(item, 1), payload))
    return t


def _artifact(data: bytes) -> ArtifactInformation:
    a = ArtifactInformation()
    for number, _wire, value in _fields(data):
        if number == 1:
            a.type_urn = _text(value)
        elif number == 2:
            a.type_payload = _bytes(value)
        elif number == 3:
            a.role_urn = _text(value)
        elif number == 4:
            a.role_payload = _bytes(value)
    return a


def _environment(data: bytes) -> Environment:
    env = Environment()
    for number, _wire, value in _fields(data):
        if number == 2:
            env.urn = _text(value)
        elif number == 6:
            env.dependencies.append(_artifact(_bytes(value)))
    return env


def _components(data: bytes) -> Components:
    c = Components()
    for number, _wire, value in _fields(data):
        if number == 1:
            key, raw = _map_entry(value)
            c.transforms[key] = _transform(raw)
        elif number == 5:
            key, raw = _map_entry(value)
            c.environments[key] = _environment(raw)
    return c


def parse_pipeline(data: bytes) -> Pipeline:
    """The transforms, roots and environments of a serialized `beam_runner_api.Pipeline`;
    raises ProtoError (a ValueError) when `data` is not one."""
    p = Pipeline()
    for number, _wire, value in _fields(data):
        if number == 1:
            p.components = _components(_bytes(value))
        elif number == 2:
            p.root_transform_ids.append(_text(value))
    return p
