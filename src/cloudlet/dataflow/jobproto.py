"""The job store's rows as Beam Job API messages, and the Job API's requests as job fields.

No IO: states, pipeline options, job names, messages and metrics converted between the job
store (`service.py`, `models.py`) and the messages of beam_job_api.proto.
https://github.com/apache/beam/blob/master/model/job-management/src/main/proto/org/apache/beam/model/job_management/v1/beam_job_api.proto
"""

from __future__ import annotations

import re
from typing import Any

from cloudlet.dataflow.models import Job, JobMessage
from cloudlet.dataflow.states import JobState, MessageImportance

__all__ = [
    "beam_state",
    "beam_version",
    "message_response",
    "metrics_response",
    "options_dict",
    "portable_job_name",
    "state_response",
]


def beam_state(state: str) -> int:
    """A Dataflow job state as Beam's JobState.Enum."""
    from apache_beam.portability.api import beam_job_api_pb2

    s = beam_job_api_pb2.JobState
    return {
        "JOB_STATE_PENDING": s.STARTING,
        "JOB_STATE_QUEUED": s.STARTING,
        "JOB_STATE_RUNNING": s.RUNNING,
        "JOB_STATE_DONE": s.DONE,
        "JOB_STATE_FAILED": s.FAILED,
        "JOB_STATE_CANCELLED": s.CANCELLED,
        "JOB_STATE_CANCELLING": s.CANCELLING,
        "JOB_STATE_DRAINING": s.DRAINING,
        "JOB_STATE_DRAINED": s.DRAINED,
        "JOB_STATE_UPDATED": s.UPDATED,
        "JOB_STATE_STOPPED": s.STOPPED,
    }.get(state, s.UNSPECIFIED)


def options_dict(struct: Any) -> dict[str, Any]:
    """Portable options (beam:option:NAME:v1 keys) as plain Beam option names."""
    from apache_beam.runners.job import utils

    out = {}
    for key, value in utils.struct_to_dict(struct).items():
        name = key
        if key.startswith("beam:option:") and key.endswith(":v1"):
            name = key[len("beam:option:") : -len(":v1")]
        out[name] = value
    return out


def portable_job_name(raw: str) -> str:
    """Beam's default names (BeamApp-user-1128...) made valid Dataflow job names."""
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = "job-" + name
    return name[:1024].rstrip("-") or "job"


def beam_version() -> str:
    """The installed Beam SDK's version (a job's sdkVersion when its options do not say)."""
    try:
        import apache_beam

        return str(apache_beam.__version__)
    except ImportError:
        return ""


def state_response(state: str) -> Any:
    """A JobStateEvent for a Dataflow state, stamped now."""
    from apache_beam.portability.api import beam_job_api_pb2

    event = beam_job_api_pb2.JobStateEvent(state=beam_state(state))  # type: ignore[arg-type]
    event.timestamp.GetCurrentTime()
    return event


def message_response(message: JobMessage) -> Any:
    """A stored job message as a JobMessagesResponse of GetMessageStream."""
    from apache_beam.portability.api import beam_job_api_pb2

    importance = MessageImportance[message.importance]
    return beam_job_api_pb2.JobMessagesResponse(
        message_response=beam_job_api_pb2.JobMessage(
            message_id=str(message.message_id),
            time=message.time.isoformat(),
            importance=int(importance),  # type: ignore[arg-type]
            message_text=message.text,
        )
    )


def metrics_response(job: Job) -> Any:
    """GetJobMetricsResponse: element counts per PCollection and the user's metrics.

    User metrics are given as the SDK reported them (PTRANSFORM = the step's unique name), so
    PortableRunner's result.metrics().query() keys them by the step the user named, as
    FnApiRunner does in-process. Committed values count finished bundles only.
    """
    from apache_beam.metrics import monitoring_infos
    from apache_beam.portability.api import beam_job_api_pb2

    infos = [
        monitoring_infos.int64_counter(monitoring_infos.ELEMENT_COUNT_URN, int(n), pcollection=p)
        for p, n in sorted((job.counts or {}).items())
    ]
    done = JobState(job.state) is JobState.JOB_STATE_DONE
    attempted, committed = list(infos), list(infos) if done else []
    for item in (job.metrics or {}).get("user") or []:
        pairs = ((attempted, item.get("attempted")), (committed, item.get("committed")))
        for target, value in pairs:
            info = _user_info(item, value)
            if info is not None:
                target.append(info)
    return beam_job_api_pb2.GetJobMetricsResponse(
        metrics=beam_job_api_pb2.MetricResults(attempted=attempted, committed=committed)
    )


def _user_info(item: dict[str, Any], value: Any) -> Any:
    """A user counter or distribution as a MonitoringInfo, or None without a value."""
    from apache_beam.metrics import monitoring_infos
    from apache_beam.metrics.cells import DistributionData

    if value is None:
        return None
    step = str(item.get("step") or "")
    namespace, name = str(item.get("namespace") or ""), str(item.get("name") or "")
    if item.get("kind") == "distribution":
        data = DistributionData(
            int(value["sum"]), int(value["count"]), int(value["min"]), int(value["max"])
        )
        return monitoring_infos.int64_user_distribution(namespace, name, data, ptransform=step)
    return monitoring_infos.int64_user_counter(namespace, name, int(value), ptransform=step)
