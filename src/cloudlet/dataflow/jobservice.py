"""The Beam Job API on gRPC, so `--runner PortableRunner --job_endpoint localhost:PORT` works.

https://github.com/apache/beam/blob/master/model/job-management/src/main/proto/org/apache/beam/model/job_management/v1/beam_job_api.proto
Artifact staging reuses Beam's own ArtifactStagingService (staging.py). The job service is
ours: jobs go into the same store as the Dataflow REST API's, through its functions
(service.py; jobproto.py converts its rows to Beam's messages), GetJobMetrics reports live
element counts, and Cancel stops the job's processes (Beam's local job service does neither).

PortableRunner opens the job's state and message streams on the preparation id before it calls
Run (portable_runner.py, JobServiceHandle.run). A refused job must therefore leave no stream
open when the driver learns of the refusal: if the end of a stream reaches the driver while its
interpreter is finalizing, gRPC's channel thread (a daemon) can be frozen inside the call's lock,
and the main thread then blocks forever in _Rendezvous.__del__ taking that lock. So checks that
need no artifacts run at Prepare, before any stream exists, and a Run that still fails ends the
preparation's streams with its error before it answers. For the same reason a job's message
stream ends after its state streams: PortableRunner stops reading the state stream at the
terminal state and waits for the message stream to end, then exits.

Nothing here waits for a poll when it need not: `notify` (the gateway's notification pipe,
runtime.py) pokes the gateway's job supervisor when Run has stored a job or Cancel a request,
and `changed()` (the supervisor's news, through the same pipes) wakes the state and message
streams, which otherwise look at the store every `dataflow_poll_interval` seconds (a setting).
"""

from __future__ import annotations

import getpass
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc  # type: ignore[import-untyped]

from cloudlet.core.authz import project_resource
from cloudlet.core.db import Database, utcnow
from cloudlet.core.errors import CloudletError
from cloudlet.core.paths import DataDir
from cloudlet.core.settings import Settings
from cloudlet.dataflow import service
from cloudlet.dataflow.jobauth import authorize_job, caller, visible_jobs
from cloudlet.dataflow.jobproto import (
    beam_state,
    beam_version,
    message_response,
    metrics_response,
    options_dict,
    portable_job_name,
    state_response,
)
from cloudlet.dataflow.models import Job
from cloudlet.dataflow.staging import ArtifactStaging
from cloudlet.dataflow.states import JobState

__all__ = ["JobApiServer"]

logger = logging.getLogger(__name__)

_POLL = 0.5
# How long a refused Run waits for the streams opened on its preparation to end first.
_STREAMS_END_TIMEOUT = 10.0
# Refusals remembered, so that a stream opened just after its Run failed gets the same error.
_REFUSALS_KEPT = 256
_DEFAULT_PROJECT = "local-project"
_DEFAULT_REGION = "us-central1"


@dataclass
class _Prepared:
    pipeline: Any
    options: dict[str, Any]
    name: str
    # Streams opened on the preparation id and not ended yet (their RPCs, not their handlers).
    streams: int = 0
    # Set when Run has settled: the job is in the store, or `refusal` says why it is not.
    settled: threading.Event = field(default_factory=threading.Event)
    refusal: tuple[Any, str] | None = None
    prepared_at: float = field(default_factory=time.monotonic)
    running: bool = False  # Run has it: never dropped as abandoned


def _fail(context: Any, code: Any, message: str) -> NoReturn:
    context.abort(code, message)  # raises
    raise AssertionError("unreachable")


class _JobService:
    """beam_job_api_pb2_grpc.JobServiceServicer over the job store."""

    def __init__(self, server: JobApiServer) -> None:
        self.server = server
        self.prepared: dict[str, _Prepared] = {}
        self.refused: OrderedDict[str, tuple[Any, str]] = OrderedDict()
        self.state_streams: dict[str, int] = {}  # job id → GetStateStream RPCs not ended
        self.lock = threading.Lock()
        self.streams_changed = threading.Condition(self.lock)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _status(exc: CloudletError) -> tuple[Any, str]:
        code = {
            400: grpc.StatusCode.INVALID_ARGUMENT,
            403: grpc.StatusCode.PERMISSION_DENIED,
            404: grpc.StatusCode.NOT_FOUND,
            409: grpc.StatusCode.ALREADY_EXISTS,
        }.get(exc.code, grpc.StatusCode.INTERNAL)
        return code, exc.message

    def _abort(self, context: Any, exc: CloudletError) -> NoReturn:
        _fail(context, *self._status(exc))

    def _no_job(self, job_id: str, context: Any) -> NoReturn:
        with self.lock:
            refusal = self.refused.get(job_id)
        if refusal is not None:  # its Run was refused: say why, not just that it is unknown
            _fail(context, *refusal)
        _fail(context, grpc.StatusCode.NOT_FOUND, f"No job {job_id}.")

    def _check_project(self, options: dict[str, Any]) -> None:
        """As on the REST door: the job's project exists, has the Dataflow API enabled, and
        the caller may create jobs in it (`dataflow.jobs.create`)."""
        if not options.get("project"):
            return  # the local default project of a PortableRunner run without --project
        from cloudlet.iam import authorize
        from cloudlet.projects import require_service

        project = str(options["project"])
        with self.server.db.session() as s:
            require_service(
                s, project, "dataflow.googleapis.com", enforce=self.server.enforce_services
            )
            authorize(s, caller(), "dataflow.jobs.create", project_resource(project))

    def _may(self, job: Job, permission: str, context: Any) -> None:
        """Abort the call unless the caller has `permission` on `job` (as the v1b3 door)."""
        try:
            authorize_job(self.server.db, job, permission)
        except CloudletError as exc:
            self._abort(context, exc)

    def _attach(self, job_id: str, context: Any) -> _Prepared | None:
        """The preparation a stream on `job_id` waits on, if any; counted until the RPC ends."""
        with self.lock:
            prepared = self.prepared.get(job_id)
            if prepared is None:
                return None
            prepared.streams += 1

        def detach() -> None:
            with self.streams_changed:
                prepared.streams -= 1
                self.streams_changed.notify_all()

        # gRPC calls back once the RPC is over, its status handed to the transport.
        if not context.add_callback(detach):
            detach()
        return prepared

    def _count_state_stream(self, job_id: str, context: Any) -> None:
        with self.lock:
            self.state_streams[job_id] = self.state_streams.get(job_id, 0) + 1

        def ended() -> None:
            with self.streams_changed:
                left = self.state_streams.pop(job_id, 1) - 1
                if left:
                    self.state_streams[job_id] = left
                self.streams_changed.notify_all()

        if not context.add_callback(ended):
            ended()

    def _after_state_streams(self, job_id: str, context: Any) -> None:
        """Wait (bounded) until the job's state streams have ended, status sent."""
        deadline = time.monotonic() + _STREAMS_END_TIMEOUT
        with self.streams_changed:
            while self.state_streams.get(job_id) and context.is_active():
                left = deadline - time.monotonic()
                if left <= 0:
                    logger.warning("state streams of job %s did not end in time", job_id)
                    return
                self.streams_changed.wait(min(left, _POLL))

    def _await_run(self, prepared: _Prepared, context: Any) -> bool:
        """Wait for Run; False if the client went away, the refusal's status if it failed."""
        while not prepared.settled.wait(_POLL):
            if not context.is_active():
                return False
        if prepared.refusal is not None:
            _fail(context, *prepared.refusal)
        return True

    def _settle(self, job_id: str, prepared: _Prepared, refusal: tuple[Any, str] | None) -> None:
        """Run is over: streams move on to the stored job, or end with the refusal first."""
        with self.streams_changed:
            self.prepared.pop(job_id, None)
            prepared.refusal = refusal
            prepared.settled.set()
            if refusal is not None:
                self.refused[job_id] = refusal
                while len(self.refused) > _REFUSALS_KEPT:
                    self.refused.popitem(last=False)
            if refusal is not None and not self.streams_changed.wait_for(
                lambda: prepared.streams == 0, timeout=_STREAMS_END_TIMEOUT
            ):
                logger.warning("streams of refused job %s did not end in time", job_id)

    def _drop_abandoned(self) -> None:
        """Forget preparations whose Run never came (their driver was stopped while staging),
        with their staged files, once they are older than the `job_prepare_timeout` setting
        and no stream waits on them."""
        cutoff = time.monotonic() - self.server.prepare_timeout
        with self.lock:
            abandoned = [
                job_id
                for job_id, p in self.prepared.items()
                if p.prepared_at < cutoff and p.streams == 0 and not p.running
            ]
            for job_id in abandoned:
                del self.prepared[job_id]
        for job_id in abandoned:
            logger.info("dropping job %s: prepared but never run", job_id)
            self.server.staging.forget(job_id)

    def _known(self, job_id: str, context: Any) -> Job:
        job = self._job(job_id)
        if job is None:
            self._no_job(job_id, context)
        return job

    def _job(self, job_id: str) -> Job | None:
        with self.server.db.session() as s:
            job = service.find_job(s, job_id)
            if job is not None:
                s.expunge(job)
            return job

    # -- RPCs ----------------------------------------------------------------------------------

    def Prepare(self, request: Any, context: Any) -> Any:
        from apache_beam.portability.api import beam_job_api_pb2, endpoints_pb2

        options = options_dict(request.pipeline_options)
        try:  # refuse now, before PortableRunner opens any stream on the job (see above)
            self._check_project(options)
        except CloudletError as exc:
            self._abort(context, exc)
        job_id = service.new_job_id(utcnow())
        # PortableRunner sends job_name "job" unless --job_name is given; like Dataflow, give
        # unnamed jobs a unique name so that two of them never collide as duplicates.
        given = options.get("job_name") or (request.job_name if request.job_name != "job" else "")
        name = portable_job_name(
            given or f"beamapp-{getpass.getuser()}-{job_id[:19]}-{job_id[-6:]}"
        )
        self._drop_abandoned()
        with self.lock:
            self.prepared[job_id] = _Prepared(request.pipeline, options, name)
        self.server.staging.register(job_id, request.pipeline)
        return beam_job_api_pb2.PrepareJobResponse(
            preparation_id=job_id,
            artifact_staging_endpoint=endpoints_pb2.ApiServiceDescriptor(
                url=f"localhost:{self.server.port}"
            ),
            staging_session_token=job_id,
        )

    def Run(self, request: Any, context: Any) -> Any:
        from apache_beam.portability.api import beam_job_api_pb2

        job_id = request.preparation_id
        with self.lock:
            prepared = self.prepared.get(job_id)
            if prepared is not None:
                prepared.running = True
        if prepared is None:
            _fail(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"No prepared job {job_id}: call Prepare first (PortableRunner does this). A "
                "preparation is dropped when its Run does not come within the "
                "job_prepare_timeout setting (CLOUDLET_JOB_PREPARE_TIMEOUT).",
            )
        refusal: tuple[Any, str] | None = None
        try:
            self._create(job_id, prepared)
        except CloudletError as exc:
            refusal = self._status(exc)
        except Exception as exc:
            logger.exception("Run of prepared job %s failed", job_id)
            refusal = (
                grpc.StatusCode.INTERNAL,
                f"Could not start job {job_id}: {type(exc).__name__}: {exc}. "
                "The Job API's log has the traceback.",
            )
        finally:
            # Only now: streams opened on the preparation id must never see a gap.
            self._settle(job_id, prepared, refusal)
        if refusal is not None:
            self.server.staging.remove(job_id)
            _fail(context, *refusal)
        self.server.notify()  # the gateway's job supervisor (another process) starts it now
        return beam_job_api_pb2.RunJobResponse(job_id=job_id)

    def _create(self, job_id: str, prepared: _Prepared) -> None:
        """Store the prepared job as PENDING, with its staged requirements and packages."""
        pipeline = prepared.pipeline
        requirements, packages = self.server.staging.resolve(job_id, pipeline)
        options = prepared.options
        new = service.NewJob(
            project_id=str(options.get("project") or _DEFAULT_PROJECT),
            location=str(options.get("region") or _DEFAULT_REGION),
            name=prepared.name,
            source="portable",
            pipeline=pipeline.SerializeToString(),
            options=options,
            environment={"jobApi": "beam_job_api", "jobEndpoint": f"localhost:{self.server.port}"},
            sdk_version=str(options.get("beam_version") or beam_version()),
            requirements=requirements,
            packages=packages,
        )
        self._check_project(options)  # again: the API may have been disabled since Prepare
        with self.server.db.session() as s:
            engine = getattr(self.server.settings, "dataflow_engine", None)
            service.create_job(s, self.server.data, new, job_id=job_id, default_engine=engine)

    def GetJobs(self, request: Any, context: Any) -> Any:
        from apache_beam.portability.api import beam_job_api_pb2

        with self.server.db.session() as s:
            jobs = service.all_jobs(s)
        infos = [
            beam_job_api_pb2.JobInfo(
                job_id=j.job_id,
                job_name=j.name,
                state=beam_state(j.state),  # type: ignore[arg-type]
            )
            for j in visible_jobs(self.server.db, jobs)
        ]
        return beam_job_api_pb2.GetJobsResponse(job_info=infos)

    def GetState(self, request: Any, context: Any) -> Any:
        from apache_beam.portability.api import beam_job_api_pb2

        job = self._job(request.job_id)
        if job is None:
            if request.job_id in self.prepared:
                return beam_job_api_pb2.JobStateEvent(state=beam_job_api_pb2.JobState.STOPPED)
            self._no_job(request.job_id, context)
        self._may(job, "dataflow.jobs.get", context)
        event = beam_job_api_pb2.JobStateEvent(state=beam_state(job.state))  # type: ignore[arg-type]
        event.timestamp.FromDatetime(job.state_time.replace(tzinfo=None))
        return event

    def GetPipeline(self, request: Any, context: Any) -> Any:
        from apache_beam.portability.api import beam_job_api_pb2, beam_runner_api_pb2

        job = self._job(request.job_id)
        if job is None:
            _fail(context, grpc.StatusCode.NOT_FOUND, f"No job {request.job_id}.")
        self._may(job, "dataflow.jobs.get", context)
        files = service.job_files(self.server.data, job.job_id)
        return beam_job_api_pb2.GetJobPipelineResponse(
            pipeline=beam_runner_api_pb2.Pipeline.FromString(files.pipeline.read_bytes())
        )

    def Cancel(self, request: Any, context: Any) -> Any:
        from apache_beam.portability.api import beam_job_api_pb2

        try:
            with self.server.db.session() as s:
                job = service.find_job(s, request.job_id)
                if job is None:
                    _fail(context, grpc.StatusCode.NOT_FOUND, f"No job {request.job_id}.")
                authorize_job(self.server.db, job, "dataflow.jobs.cancel")
                service.request_state(s, job, JobState.JOB_STATE_CANCELLED.value)
                state = job.state
        except CloudletError as exc:
            self._abort(context, exc)
        self.server.notify()  # committed: the supervisor stops the job now
        return beam_job_api_pb2.CancelJobResponse(state=beam_state(state))  # type: ignore[arg-type]

    def _states(self, job_id: str, context: Any) -> Iterator[int]:
        """The stored job's beam state on every change, until a terminal state."""
        last = None
        while context.is_active():
            seen = self.server.generation
            job = self._job(job_id)
            if job is None:
                return
            if job.state != last:
                last = job.state
                yield beam_state(job.state)
                if JobState(job.state).terminal:
                    return
            self.server.wait_for_change(seen, self.server.poll)

    def GetStateStream(self, request: Any, context: Any) -> Iterator[Any]:
        from apache_beam.portability.api import beam_job_api_pb2

        def event(state: int) -> Any:
            out = beam_job_api_pb2.JobStateEvent(state=state)  # type: ignore[arg-type]
            out.timestamp.GetCurrentTime()
            return out

        self._count_state_stream(request.job_id, context)
        prepared = self._attach(request.job_id, context)
        if prepared is not None:
            # A prepared job is STOPPED until Run, as in Beam's job services.
            yield event(beam_job_api_pb2.JobState.STOPPED)
            if not self._await_run(prepared, context):
                return
        else:
            self._may(self._known(request.job_id, context), "dataflow.jobs.get", context)
        for state in self._states(request.job_id, context):
            yield event(state)

    def GetMessageStream(self, request: Any, context: Any) -> Iterator[Any]:
        from apache_beam.portability.api import beam_job_api_pb2

        job_id = request.job_id
        prepared = self._attach(job_id, context)
        if prepared is not None:
            if not self._await_run(prepared, context):
                return
        else:
            self._may(self._known(job_id, context), "dataflow.messages.list", context)
        after = 0
        last_state = None
        while context.is_active():
            seen = self.server.generation
            job = self._job(job_id)
            if job is None:
                return
            with self.server.db.session() as s:
                for m in service.messages_after(s, job_id, after):
                    after = m.message_id
                    yield message_response(m)
            if job.state != last_state:
                last_state = job.state
                terminal = JobState(job.state).terminal
                if terminal:  # this stream ends last (see the module's docstring)
                    self._after_state_streams(job_id, context)
                yield beam_job_api_pb2.JobMessagesResponse(state_response=state_response(job.state))
                if terminal:
                    return
            self.server.wait_for_change(seen, self.server.poll)

    def GetJobMetrics(self, request: Any, context: Any) -> Any:
        job = self._job(request.job_id)
        if job is None:
            _fail(context, grpc.StatusCode.NOT_FOUND, f"No job {request.job_id}.")
        return metrics_response(job)

    def DescribePipelineOptions(self, request: Any, context: Any) -> Any:
        from apache_beam.portability.api import beam_job_api_pb2

        return beam_job_api_pb2.DescribePipelineOptionsResponse()


class JobApiServer:
    """The gRPC server: Beam's JobService (ours) and ArtifactStagingService (Beam's)."""

    def __init__(
        self,
        db: Database,
        data: DataDir,
        host: str,
        port: int,
        *,
        enforce_services: bool = True,
        prepare_timeout: float = 3600.0,
        settings: Settings | None = None,
        notify: Callable[[], None] | None = None,
    ) -> None:
        # Called (must not block) once a job has been stored or a cancel requested, so that
        # the job supervisor acts at once rather than on its next tick.
        self._notify = notify
        # How long a stream waits for `changed()` before it looks at the store anyway.
        self.poll = float(getattr(settings, "dataflow_poll_interval", _POLL))
        # Bumped by `changed()`; the streams wait on it between their looks at the store.
        self.generation = 0
        self._change = threading.Condition()
        self.settings = settings  # given: calls are authenticated as on HTTP (jobauth.py)
        self.enforce_services = enforce_services
        self.prepare_timeout = prepare_timeout
        self.db = db
        self.data = data
        self.host = host
        self.port = port
        self._server: grpc.Server | None = None
        self._staging: ArtifactStaging | None = None

    def notify(self) -> None:
        if self._notify is not None:
            try:
                self._notify()
            except Exception:  # the supervisor's tick covers a lost notification
                logger.exception("could not notify the job supervisor")

    def changed(self) -> None:
        """A job's state or messages changed in the store: wake every stream to look now."""
        with self._change:
            self.generation += 1
            self._change.notify_all()

    def wait_for_change(self, seen: int, timeout: float) -> None:
        """Return once `changed()` has been called since `generation` was `seen`, or after
        `timeout` seconds."""
        with self._change:
            self._change.wait_for(lambda: self.generation != seen, timeout)

    @property
    def staging(self) -> ArtifactStaging:
        """The artifact staging service (once started)."""
        assert self._staging is not None, "the Job API server is not started"
        return self._staging

    def start(self) -> None:
        from apache_beam.portability.api import beam_job_api_pb2_grpc

        self._staging = ArtifactStaging(self.data.job_staging)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="beam-job-api"),
            # gRPC sets SO_REUSEPORT by default: a second gateway's Job API would then share
            # the port and the kernel would split drivers' connections between the two.
            options=[
                ("grpc.max_receive_message_length", -1),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),
            ],
            interceptors=self._interceptors(),
        )
        # Beam's generated base answers UNIMPLEMENTED for what we do not serve (Drain, ...).
        servicer_type = type(
            "JobService", (_JobService, beam_job_api_pb2_grpc.JobServiceServicer), {}
        )
        beam_job_api_pb2_grpc.add_JobServiceServicer_to_server(  # type: ignore[no-untyped-call]
            servicer_type(self), server
        )
        self.staging.add_to_server(server)
        try:
            bound = server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError:  # what grpcio raises when the address is in use
            bound = 0
        if not bound:
            raise RuntimeError(
                f"cannot bind the Beam Job API to {self.host}:{self.port}: the port is in use "
                "(another cloudlet gateway?). Stop what uses it, or give this gateway another "
                "port with CLOUDLET_GRPC_PORT."
            )
        server.start()
        self._server = server
        logger.info("Beam Job API listening on %s:%s", self.host, self.port)

    def _interceptors(self) -> list[Any]:
        if self.settings is None:
            return []
        from cloudlet.dataflow.jobauth import AuthInterceptor

        return [AuthInterceptor(self.db, self.settings)]

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=1).wait(5)
            self._server = None
