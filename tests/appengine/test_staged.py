"""staged.py: the Version body gcloud app deploy sends, checked before anything is deployed."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from cloudlet.appengine.source import DeployLimits
from cloudlet.appengine.staged import gather, pick_descriptor, staged_files
from cloudlet.core.errors import InvalidArgument

URL = "https://storage.googleapis.com/staging.p-1.appspot.com/"


def _version(files: dict[str, Any]) -> dict[str, Any]:
    return {"id": "v1", "deployment": {"files": files}}


def test_files_name_their_objects() -> None:
    files = staged_files(_version({
        "main.py": {"sourceUrl": URL + "abc", "sha1Sum": "a" * 40},
        "static/x y.css": {"sourceUrl": "gs://b/o%20p"},
    }))  # fmt: skip
    assert [(f.path, f.bucket, f.name, f.sha1) for f in files] == [
        ("main.py", "staging.p-1.appspot.com", "abc", "a" * 40),
        ("static/x y.css", "b", "o p", ""),
    ]


@pytest.mark.parametrize(("files", "problem"), [
    ({}, "no deployment.files"),
    ({"../etc/passwd": {"sourceUrl": URL + "x"}}, "Unsafe file path"),
    ({"/abs": {"sourceUrl": URL + "x"}}, "Unsafe file path"),
    ({"main.py": {}}, "has no sourceUrl"),
    ({"main.py": {"sourceUrl": "https://example.com/b/o"}}, "Unsupported sourceUrl"),
    ({"main.py": {"sourceUrl": URL}}, "names no bucket and object"),
    ({"main.py": {"sourceUrl": URL + "x", "sha1Sum": "nope"}}, "is not a SHA-1"),
])  # fmt: skip
def test_bad_files_are_refused_with_the_reason(files: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        staged_files(_version(files))


def test_the_descriptor_is_the_services_app_yaml() -> None:
    texts = {
        "app.yaml": "runtime: python311\n",
        "api.yaml": "runtime: python311\nservice: api\n",
        "dispatch.yaml": "dispatch: []\n",
        "conf/app.yaml": "runtime: python311\n",
        "data.yaml": "rows: 3\n",
    }
    assert pick_descriptor(texts, "default", texts.__getitem__) == "app.yaml"
    assert pick_descriptor(texts, "api", texts.__getitem__) == "api.yaml"
    with pytest.raises(InvalidArgument, match="None of the uploaded files"):
        pick_descriptor(texts, "worker", texts.__getitem__)
    both = {"a.yaml": "runtime: python311\n", "b.yaml": "runtime: python312\n"}
    with pytest.raises(InvalidArgument, match=r"a\.yaml, b\.yaml"):
        pick_descriptor(both, "default", both.__getitem__)


def test_gather_checks_each_files_sha1(tmp_path: Path) -> None:
    blobs = {("b", "1"): b"print('hi')\n", ("b", "2"): b"Flask\n"}
    good = {"main.py": {"sourceUrl": "gs://b/1",
                        "sha1Sum": hashlib.sha1(blobs[("b", "1")]).hexdigest()},
            "requirements.txt": {"sourceUrl": "gs://b/2"}}  # fmt: skip

    def open_object(bucket: str, name: str) -> io.BytesIO:
        return io.BytesIO(blobs[(bucket, name)])

    archive = tmp_path / "src.tar"
    gather(staged_files(_version(good)), open_object, archive, DeployLimits())
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["main.py", "requirements.txt"]
        assert tar.extractfile("main.py").read() == blobs[("b", "1")]  # type: ignore[union-attr]
    bad = {"main.py": {"sourceUrl": "gs://b/2", "sha1Sum": "0" * 40}}
    with pytest.raises(InvalidArgument, match="does not match its sha1Sum"):
        gather(staged_files(_version(bad)), open_object, tmp_path / "bad.tar", DeployLimits())


def test_gather_refuses_what_app_engine_would_not_deploy(tmp_path: Path) -> None:
    blobs = {("b", "1"): b"print('hi')\n", ("b", "2"): b"Flask\n"}
    files = {"main.py": {"sourceUrl": "gs://b/1"}, "requirements.txt": {"sourceUrl": "gs://b/2"}}
    staged = staged_files(_version(files))

    def open_object(bucket: str, name: str) -> io.BytesIO:
        return io.BytesIO(blobs[(bucket, name)])

    with pytest.raises(InvalidArgument, match=r"main\.py.*maximum allowed size of \[4\]"):
        gather(staged, open_object, tmp_path / "a.tar", DeployLimits(max_file_bytes=4))
    with pytest.raises(InvalidArgument, match="more than 15 bytes"):
        gather(staged, open_object, tmp_path / "b.tar", DeployLimits(max_total_bytes=15))
    with pytest.raises(InvalidArgument, match="limited to 1 files"):
        gather(staged, open_object, tmp_path / "c.tar", DeployLimits(max_files=1))
