"""Predefined IAM roles, with Google's role names and permission names. Pure data, no IO.

Each role lists the permissions of Google's role of the same name that mean something in
cloudlet (the APIs it serves), spelled as Google spells them, so a policy written for Google
Cloud grants the same things here. Google's lists, role by role:

- basic roles: https://cloud.google.com/iam/docs/understanding-roles#basic
- Cloud Storage: https://cloud.google.com/iam/docs/roles-permissions/storage
- Dataflow: https://cloud.google.com/iam/docs/roles-permissions/dataflow
- Dataproc: https://cloud.google.com/iam/docs/roles-permissions/dataproc and
  https://cloud.google.com/dataproc/docs/concepts/iam
- App Engine: https://cloud.google.com/iam/docs/roles-permissions/appengine
- IAM (service accounts): https://cloud.google.com/iam/docs/roles-permissions/iam
- Resource Manager / Service Usage:
  https://cloud.google.com/iam/docs/roles-permissions/resourcemanager,
  https://cloud.google.com/iam/docs/roles-permissions/serviceusage

As on Google Cloud, `roles/editor` has every permission of `roles/viewer` plus the ones that
change resources, except setting IAM policies, deleting the project and minting tokens as a
service account, which `roles/owner` adds. Custom roles are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROLES", "Role", "permissions_of", "role"]


@dataclass(frozen=True)
class Role:
    name: str  # roles/...
    title: str
    description: str
    permissions: frozenset[str]


def _p(*names: str) -> frozenset[str]:
    return frozenset(names)


# -- building blocks (Google's permission names) -------------------------------------------------

_PROJECT_READ = _p(
    "resourcemanager.projects.get",
    "resourcemanager.projects.getIamPolicy",
    "serviceusage.services.get",
    "serviceusage.services.list",
    "serviceusage.operations.get",
    "billing.resourceCosts.get",
)
_PROJECT_WRITE = _p(
    "resourcemanager.projects.update",
    "resourcemanager.projects.createBillingAssignment",
    "resourcemanager.projects.deleteBillingAssignment",
    "serviceusage.services.enable",
    "serviceusage.services.disable",
)
_PROJECT_OWN = _p(
    "resourcemanager.projects.delete",
    "resourcemanager.projects.undelete",
    "resourcemanager.projects.setIamPolicy",
)

_BUCKETS_READ = _p("storage.buckets.get", "storage.buckets.list")
_BUCKETS_WRITE = _p("storage.buckets.create", "storage.buckets.delete", "storage.buckets.update")
_BUCKETS_IAM = _p("storage.buckets.getIamPolicy", "storage.buckets.setIamPolicy")
_OBJECTS_READ = _p("storage.objects.get", "storage.objects.list")
_OBJECTS_WRITE = _p("storage.objects.create", "storage.objects.delete", "storage.objects.update")
_OBJECTS_IAM = _p("storage.objects.getIamPolicy", "storage.objects.setIamPolicy")
_MULTIPART = _p(
    "storage.multipartUploads.abort",
    "storage.multipartUploads.create",
    "storage.multipartUploads.list",
    "storage.multipartUploads.listParts",
)

_DATAFLOW_READ = _p(
    "dataflow.jobs.get",
    "dataflow.jobs.list",
    "dataflow.messages.list",
    "dataflow.metrics.get",
    "dataflow.snapshots.get",
    "dataflow.snapshots.list",
)
_DATAFLOW_WRITE = _p(
    "dataflow.jobs.cancel",
    "dataflow.jobs.create",
    "dataflow.jobs.snapshot",
    "dataflow.jobs.updateContents",
    "dataflow.snapshots.delete",
)
_DATAFLOW_WORKER = _p(
    "dataflow.jobs.get",
    "dataflow.shuffle.read",
    "dataflow.shuffle.write",
    "dataflow.streamingWorkItems.commitWork",
    "dataflow.streamingWorkItems.getData",
    "dataflow.streamingWorkItems.getWork",
    "dataflow.workItems.lease",
    "dataflow.workItems.sendMessage",
    "dataflow.workItems.update",
)

_DATAPROC_READ = _p(
    "dataproc.clusters.get",
    "dataproc.clusters.list",
    "dataproc.jobs.get",
    "dataproc.jobs.list",
    "dataproc.operations.get",
    "dataproc.operations.list",
)
_DATAPROC_WRITE = _p(
    "dataproc.clusters.create",
    "dataproc.clusters.delete",
    "dataproc.clusters.start",
    "dataproc.clusters.stop",
    "dataproc.clusters.update",
    "dataproc.clusters.use",
    "dataproc.jobs.cancel",
    "dataproc.jobs.create",
    "dataproc.jobs.delete",
    "dataproc.jobs.update",
    "dataproc.operations.cancel",
    "dataproc.operations.delete",
)
_DATAPROC_IAM = _p(
    "dataproc.clusters.getIamPolicy",
    "dataproc.clusters.setIamPolicy",
    "dataproc.jobs.getIamPolicy",
    "dataproc.jobs.setIamPolicy",
    "dataproc.operations.getIamPolicy",
    "dataproc.operations.setIamPolicy",
)
# What a cluster's VMs do on Google Cloud (agents, tasks); here: reading and writing the
# jobs' data in Cloud Storage.
_DATAPROC_WORKER = _p(
    "dataproc.agents.create",
    "dataproc.agents.delete",
    "dataproc.agents.get",
    "dataproc.agents.list",
    "dataproc.agents.update",
    "dataproc.tasks.lease",
    "dataproc.tasks.listInvalidatedLeases",
    "dataproc.tasks.reportStatus",
)

_APPENGINE_READ = _p(
    "appengine.applications.get",
    "appengine.instances.get",
    "appengine.instances.list",
    "appengine.operations.get",
    "appengine.operations.list",
    "appengine.services.get",
    "appengine.services.list",
    "appengine.versions.get",
    "appengine.versions.list",
)
_APPENGINE_DEPLOY = _p(
    "appengine.applications.get",
    "appengine.instances.get",
    "appengine.instances.list",
    "appengine.operations.get",
    "appengine.operations.list",
    "appengine.services.get",
    "appengine.services.list",
    "appengine.versions.create",
    "appengine.versions.delete",
    "appengine.versions.get",
    "appengine.versions.list",
)
_APPENGINE_ADMIN = _APPENGINE_READ | _p(
    "appengine.applications.update",
    "appengine.instances.delete",
    "appengine.services.delete",
    "appengine.services.update",
    "appengine.versions.create",
    "appengine.versions.delete",
    "appengine.versions.getFileContents",
    "appengine.versions.update",
)
_LOGGING_READ = _p("logging.logEntries.list", "logging.logs.list")
_SCHEDULER_READ = _p(
    "cloudscheduler.jobs.get",
    "cloudscheduler.jobs.list",
    "cloudscheduler.locations.get",
    "cloudscheduler.locations.list",
)
_SCHEDULER_WRITE = _p(
    "cloudscheduler.jobs.create",
    "cloudscheduler.jobs.delete",
    "cloudscheduler.jobs.enable",
    "cloudscheduler.jobs.pause",
    "cloudscheduler.jobs.run",
    "cloudscheduler.jobs.update",
)

_SA_READ = _p(
    "iam.serviceAccounts.get",
    "iam.serviceAccounts.list",
    "iam.serviceAccountKeys.get",
    "iam.serviceAccountKeys.list",
    "iam.roles.get",
    "iam.roles.list",
)
_SA_ADMIN = _p(
    "iam.serviceAccounts.create",
    "iam.serviceAccounts.delete",
    "iam.serviceAccounts.disable",
    "iam.serviceAccounts.enable",
    "iam.serviceAccounts.get",
    "iam.serviceAccounts.getIamPolicy",
    "iam.serviceAccounts.list",
    "iam.serviceAccounts.setIamPolicy",
    "iam.serviceAccounts.undelete",
    "iam.serviceAccounts.update",
)
_SA_KEYS = _p(
    "iam.serviceAccountKeys.create",
    "iam.serviceAccountKeys.delete",
    "iam.serviceAccountKeys.disable",
    "iam.serviceAccountKeys.enable",
    "iam.serviceAccountKeys.get",
    "iam.serviceAccountKeys.list",
)
_SA_USER = _p(
    "iam.serviceAccounts.actAs",
    "iam.serviceAccounts.get",
    "iam.serviceAccounts.list",
    "resourcemanager.projects.get",
)
_SA_TOKENS = _p(
    "iam.serviceAccounts.get",
    "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.getOpenIdToken",
    "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.signBlob",
    "iam.serviceAccounts.signJwt",
)

_VIEWER = (
    _PROJECT_READ
    | _BUCKETS_READ
    | _OBJECTS_READ
    | _DATAFLOW_READ
    | _DATAPROC_READ
    | _APPENGINE_READ
    | _LOGGING_READ
    | _SCHEDULER_READ
    | _SA_READ
    | _p("storage.buckets.getIamPolicy")
)
# Editors change everything but IAM policies, deletion of the project and the IAM admin verbs
# reserved to owners; on Google Cloud, editors may create service accounts and their keys.
_EDITOR = (
    _VIEWER
    | _PROJECT_WRITE
    | _BUCKETS_WRITE
    | _OBJECTS_WRITE
    | _MULTIPART
    | _DATAFLOW_WRITE
    | _DATAFLOW_WORKER
    | _DATAPROC_WRITE
    | _APPENGINE_ADMIN
    | _p("appengine.applications.create")
    | _SCHEDULER_WRITE
    | _SA_ADMIN - _p("iam.serviceAccounts.setIamPolicy")
    | _SA_KEYS
    | _p("iam.serviceAccounts.actAs")
)
_OWNER = (
    _EDITOR | _PROJECT_OWN | _BUCKETS_IAM | _OBJECTS_IAM | _SA_ADMIN | _SA_TOKENS | _DATAPROC_IAM
)


def _role(name: str, title: str, description: str, permissions: frozenset[str]) -> Role:
    return Role(name, title, description, permissions)


_ALL: tuple[Role, ...] = (
    _role("roles/owner", "Owner", "Full access to most Google Cloud resources.", _OWNER),
    _role(
        "roles/editor",
        "Editor",
        "View, create, update, and delete most Google Cloud resources.",
        _EDITOR,
    ),
    _role("roles/viewer", "Viewer", "View most Google Cloud resources.", _VIEWER),
    _role(
        "roles/browser",
        "Browser",
        "Access to browse GCP resources.",
        _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    # -- Cloud Storage
    _role(
        "roles/storage.admin",
        "Storage Admin",
        "Full control of objects and buckets.",
        _BUCKETS_READ
        | _BUCKETS_WRITE
        | _BUCKETS_IAM
        | _OBJECTS_READ
        | _OBJECTS_WRITE
        | _OBJECTS_IAM
        | _MULTIPART
        | _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    _role(
        "roles/storage.objectAdmin",
        "Storage Object Admin",
        "Full control of objects, including listing, creating, viewing, and deleting objects.",
        _OBJECTS_READ
        | _OBJECTS_WRITE
        | _OBJECTS_IAM
        | _MULTIPART
        | _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    _role(
        "roles/storage.objectCreator",
        "Storage Object Creator",
        "Allows users to create "
        "objects. Does not give permission to view, delete, or replace objects.",
        _p(
            "storage.objects.create",
            "storage.multipartUploads.abort",
            "storage.multipartUploads.create",
            "storage.multipartUploads.listParts",
        ),
    ),
    _role(
        "roles/storage.objectViewer",
        "Storage Object Viewer",
        "Grants access to view objects "
        "and their metadata, excluding ACLs. Can also list the objects in a bucket.",
        _OBJECTS_READ | _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    _role(
        "roles/storage.objectUser",
        "Storage Object User",
        "Access to create, read, update and delete objects and multipart uploads.",
        _OBJECTS_READ
        | _OBJECTS_WRITE
        | _MULTIPART
        | _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    # -- Dataflow
    _role(
        "roles/dataflow.admin",
        "Dataflow Admin",
        "Minimal role for creating and managing dataflow jobs.",
        _DATAFLOW_READ
        | _DATAFLOW_WRITE
        | _p(
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
            "storage.buckets.get",
            "storage.objects.create",
            "storage.objects.get",
            "storage.objects.list",
            "serviceusage.services.get",
            "serviceusage.services.list",
        ),
    ),
    _role(
        "roles/dataflow.developer",
        "Dataflow Developer",
        "Provides the permissions necessary to execute and manipulate Dataflow jobs.",
        _DATAFLOW_READ
        | _DATAFLOW_WRITE
        | _p(
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
            "serviceusage.services.get",
            "serviceusage.services.list",
        ),
    ),
    _role(
        "roles/dataflow.viewer",
        "Dataflow Viewer",
        "Provides read-only access to all Dataflow-related resources.",
        _DATAFLOW_READ | _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    _role(
        "roles/dataflow.worker",
        "Dataflow Worker",
        "Provides the permissions necessary for a "
        "Compute Engine service account to execute work units for a Dataflow pipeline.",
        _DATAFLOW_WORKER
        | _p(
            "storage.buckets.get",
            "storage.objects.create",
            "storage.objects.get",
            "storage.objects.list",
            "storage.objects.update",
            "logging.logEntries.create",
        ),
    ),
    # -- Dataproc
    _role(
        "roles/dataproc.admin",
        "Dataproc Administrator",
        "Full control of Dataproc resources.",
        _DATAPROC_READ
        | _DATAPROC_WRITE
        | _DATAPROC_IAM
        | _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    _role(
        "roles/dataproc.editor",
        "Dataproc Editor",
        "Provides the permissions necessary for viewing the resources required to manage "
        "Dataproc, including machine types, networks, projects, and zones.",
        _DATAPROC_READ
        | _DATAPROC_WRITE
        | _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    _role(
        "roles/dataproc.viewer",
        "Dataproc Viewer",
        "Provides read-only access to Dataproc resources.",
        _DATAPROC_READ | _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    _role(
        "roles/dataproc.worker",
        "Dataproc Worker",
        "Provides worker access to Dataproc resources. Intended for service accounts.",
        _DATAPROC_WORKER
        | _p(
            "storage.buckets.get",
            "storage.objects.create",
            "storage.objects.delete",
            "storage.objects.get",
            "storage.objects.list",
            "storage.objects.update",
            "logging.logEntries.create",
        ),
    ),
    # -- App Engine
    _role(
        "roles/appengine.appAdmin",
        "App Engine Admin",
        "Read/Write/Modify access to all application configuration and settings.",
        _APPENGINE_ADMIN,
    ),
    _role(
        "roles/appengine.deployer",
        "App Engine Deployer",
        "Read-only access to all "
        "application configuration and settings. Write access only to create a new version; "
        "cannot affect existing versions other than deleting versions that are not receiving "
        "traffic.",
        _APPENGINE_DEPLOY,
    ),
    _role(
        "roles/appengine.appViewer",
        "App Engine Viewer",
        "Read-only access to all application configuration and settings.",
        _APPENGINE_READ,
    ),
    _role(
        "roles/appengine.appCreator",
        "App Engine Creator",
        "Ability to create the App Engine resource for the project.",
        _p(
            "appengine.applications.create",
            "appengine.applications.get",
            "appengine.operations.get",
            "appengine.operations.list",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        ),
    ),
    # -- Logging and Cloud Scheduler (App Engine's logs and cron jobs)
    _role("roles/logging.viewer", "Logs Viewer", "Provides access to view logs.", _LOGGING_READ),
    _role(
        "roles/cloudscheduler.admin",
        "Cloud Scheduler Admin",
        "Full access to jobs and executions.",
        _SCHEDULER_READ | _SCHEDULER_WRITE,
    ),
    _role(
        "roles/cloudscheduler.viewer",
        "Cloud Scheduler Viewer",
        "Access to view jobs and executions.",
        _SCHEDULER_READ,
    ),
    # -- Service accounts
    _role(
        "roles/iam.serviceAccountAdmin",
        "Service Account Admin",
        "Create and manage service accounts.",
        _SA_ADMIN | _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    _role(
        "roles/iam.serviceAccountKeyAdmin",
        "Service Account Key Admin",
        "Create and manage (and rotate) service account keys.",
        _SA_KEYS
        | _p(
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.list",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        ),
    ),
    _role(
        "roles/iam.serviceAccountUser",
        "Service Account User",
        "Run operations as the service account.",
        _SA_USER | _p("resourcemanager.projects.list"),
    ),
    _role(
        "roles/iam.serviceAccountTokenCreator",
        "Service Account Token Creator",
        "Impersonate service accounts (create OAuth2 access tokens, sign blobs or JWTs, etc).",
        _SA_TOKENS | _p("resourcemanager.projects.get", "resourcemanager.projects.list"),
    ),
    # -- Service Usage
    _role(
        "roles/serviceusage.serviceUsageAdmin",
        "Service Usage Admin",
        "Ability to enable, disable, and inspect service states, inspect operations.",
        _p(
            "serviceusage.services.disable",
            "serviceusage.services.enable",
            "serviceusage.services.get",
            "serviceusage.services.list",
            "serviceusage.operations.get",
            "serviceusage.operations.list",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        ),
    ),
    _role(
        "roles/serviceusage.serviceUsageConsumer",
        "Service Usage Consumer",
        "Ability to inspect service states and operations, and consume quota and billing.",
        _p("serviceusage.services.get", "serviceusage.services.list", "serviceusage.services.use"),
    ),
)

ROLES: dict[str, Role] = {r.name: r for r in _ALL}


def role(name: str) -> Role | None:
    """The predefined role called `name` (`roles/...`), or None."""
    return ROLES.get(name)


def permissions_of(name: str) -> frozenset[str]:
    """The permissions `name` grants; an unknown role grants nothing."""
    found = ROLES.get(name)
    return found.permissions if found else frozenset()
