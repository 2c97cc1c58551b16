"""Artifact staging for the Beam Job API: Beam's own ArtifactStagingService, in the data dir.

PortableRunner stages a job's dependencies between Prepare and Run, on the staging token the
job service hands out (the preparation id). The files land under `DataDir.job_staging/<id>`;
at Run the job service resolves them into the pipeline's environments and copies the ones
that make up the job's dependencies (artifacts.py) into the job store.
https://github.com/apache/beam/blob/master/model/job-management/src/main/proto/org/apache/beam/model/job_management/v1/beam_artifact_api.proto
"""

from __future__ import annotations

import contextlib
import shutil
from concurrent import futures
from pathlib import Path
from typing import Any

from cloudlet.dataflow.artifacts import classify, staged_artifacts

__all__ = ["ArtifactStaging"]

# How long Run waits for a job's staged dependencies to be resolved.
_RESOLVE_TIMEOUT = 60.0


class ArtifactStaging:
    """Beam's ArtifactStagingService over `root`, one staging session per prepared job."""

    def __init__(self, root: Path) -> None:
        from apache_beam.runners.portability import artifact_service

        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        handler: Any = artifact_service.BeamFilesystemHandler(str(root))  # type: ignore[no-untyped-call]
        self.service: Any = artifact_service.ArtifactStagingService(handler.file_writer)

    def add_to_server(self, server: Any) -> None:
        """Serve the ArtifactStagingService on a gRPC server."""
        from apache_beam.portability.api import beam_artifact_api_pb2_grpc

        beam_artifact_api_pb2_grpc.add_ArtifactStagingServiceServicer_to_server(  # type: ignore[no-untyped-call]
            self.service, server
        )

    def register(self, job_id: str, pipeline: Any) -> None:
        """Open a staging session for a prepared job, for the dependencies its environments name."""
        from apache_beam.runners.portability.local_job_service import _extract_dependency_sets

        self.service.register_job(
            staging_token=job_id,
            dependency_sets=_extract_dependency_sets(pipeline.components.environments),
        )

    def resolve(self, job_id: str, pipeline: Any) -> tuple[bytes | None, dict[str, bytes]]:
        """Point the pipeline's environments at the staged files, and return what the job
        needs installed: (its requirements file or None, its packages by file name)."""
        from apache_beam.runners.portability.local_job_service import _update_dependency_sets

        try:
            resolved = self.service.resolved_deps(job_id, timeout=_RESOLVE_TIMEOUT)
            _update_dependency_sets(pipeline.components.environments, resolved)
        except futures.TimeoutError:
            pass
        staged = staged_artifacts(pipeline)
        requirements_name, package_names = classify(n for n, _, _ in staged)
        where = {n: loc for n, _, loc in staged}
        requirements = Path(where[requirements_name]).read_bytes() if requirements_name else None
        return requirements, {n: Path(where[n]).read_bytes() for n in package_names}

    def forget(self, job_id: str) -> None:
        """Drop a job's staging session, if still open, and its staged files."""
        # Beam's staging service forgets a job once its dependencies are asked for.
        with contextlib.suppress(KeyError, TimeoutError):
            self.service.resolved_deps(job_id, timeout=0)
        self.remove(job_id)

    def remove(self, job_id: str) -> None:
        """Delete a job's staged files (its dependencies are in the job store by now)."""
        shutil.rmtree(self.root / job_id, ignore_errors=True)
