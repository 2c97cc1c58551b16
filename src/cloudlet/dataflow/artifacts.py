"""Which staged artifacts make up a job's dependencies. Pure.

Beam stages a job's dependencies with a `staging_to` role naming each file as the workers see
it: `requirements.txt` for --requirements_file, `workflow.tar.gz` for --setup_file, the
package's own file name for --extra_package, plus files we do not need (the submitting
environment's pip freeze, extra_packages.txt, a pickled main session).
https://beam.apache.org/documentation/sdks/python-pipeline-dependencies/
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["ARTIFACT_ROLE_STAGING_TO", "classify", "staged_artifacts"]

ARTIFACT_ROLE_STAGING_TO = "beam:artifact:role:staging_to:v1"
_FILE = "beam:artifact:type:file:v1"
_URL = "beam:artifact:type:url:v1"
_IGNORED = {
    "submission_environment_dependencies.txt",
    "extra_packages.txt",
    "pickled_main_session",
    "dataflow_python_sdk.tar",
    "dataflow-worker.jar",
}
_PACKAGE_SUFFIXES = (".whl", ".tar.gz", ".tgz", ".zip", ".tar")


def staged_artifacts(pipeline: Any) -> list[tuple[str, str, str]]:
    """(staged name, type urn, location) of every staged dependency of every environment."""
    from apache_beam.portability.api import beam_runner_api_pb2

    seen: dict[str, tuple[str, str, str]] = {}
    for env in pipeline.components.environments.values():
        for dep in env.dependencies:
            if dep.role_urn != ARTIFACT_ROLE_STAGING_TO:
                continue
            name = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                dep.role_payload
            ).staged_name
            if dep.type_urn == _FILE:
                where = beam_runner_api_pb2.ArtifactFilePayload.FromString(dep.type_payload).path
            elif dep.type_urn == _URL:
                where = beam_runner_api_pb2.ArtifactUrlPayload.FromString(dep.type_payload).url
            else:
                continue
            seen.setdefault(name, (name, dep.type_urn, where))
    return list(seen.values())


def classify(names: Iterable[str]) -> tuple[str | None, list[str]]:
    """(the requirements file's staged name or None, the staged names of packages to install)."""
    requirements = None
    packages = []
    for name in names:
        if name in _IGNORED:
            continue
        if name == "requirements.txt":
            requirements = name
        elif name.endswith(_PACKAGE_SUFFIXES):
            packages.append(name)
    return requirements, sorted(packages)
