"""Imports every subsystem's tables so that Base.metadata knows them all (for migrations)."""

from __future__ import annotations

from cloudlet.appengine import models as appengine_models
from cloudlet.dataflow import models as dataflow_models
from cloudlet.iam import models as iam_models
from cloudlet.iam import user_models as iam_user_models
from cloudlet.projects import models as projects_models
from cloudlet.storage import models as storage_models

__all__ = [
    "appengine_models",
    "dataflow_models",
    "iam_models",
    "iam_user_models",
    "projects_models",
    "storage_models",
]
