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

from cloudlet.dataflow.pipelineproto import string_field

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
    """(staged name, type urn, location) of every staged dependency of every environment of
    `pipeline` (a pipelineproto.Pipeline, or Beam's own generated class: the same fields)."""
    seen: dict[str, tuple[str, str, str]] = {}
    for env in pipeline.components.environments.values():
        for dep in env.dependencies:
            if dep.role_urn != ARTIFACT_ROLE_STAGING_TO:
                continue
            # ArtifactStagingToRolePayload.staged_name, ArtifactFilePayload.path and
            # ArtifactUrlPayload.url are each field 1 of their message.
            name = string_field(dep.role_payload, 1)
            if dep.type_urn in (_FILE, _URL):
                where = string_field(dep.type_payload, 1)
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
