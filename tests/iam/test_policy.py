"""Roles, policies, etags and permission checks (pure: iam/roles.py, iam/policy.py)."""

from __future__ import annotations

import pytest

from cloudlet.core.errors import InvalidArgument
from cloudlet.iam.policy import (
    Binding,
    Policy,
    add_binding,
    check_member,
    check_role,
    has_permission,
    parse_policy,
    remove_binding,
)
from cloudlet.iam.roles import ROLES, permissions_of

SA = "serviceAccount:reader@p.iam.gserviceaccount.com"


def test_the_roles_the_issue_names_exist_with_googles_permission_names() -> None:
    for name in (
        "roles/owner", "roles/editor", "roles/viewer", "roles/storage.admin",
        "roles/storage.objectAdmin", "roles/storage.objectCreator", "roles/storage.objectViewer",
        "roles/dataflow.admin", "roles/dataflow.developer", "roles/dataflow.viewer",
        "roles/dataflow.worker", "roles/appengine.appAdmin", "roles/appengine.deployer",
        "roles/appengine.appViewer", "roles/iam.serviceAccountAdmin",
        "roles/iam.serviceAccountKeyAdmin", "roles/iam.serviceAccountUser",
        "roles/iam.serviceAccountTokenCreator",
    ):  # fmt: skip
        assert name in ROLES
    assert permissions_of("roles/storage.objectViewer") >= {
        "storage.objects.get", "storage.objects.list"
    }  # fmt: skip
    assert "storage.objects.delete" not in permissions_of("roles/storage.objectViewer")
    assert permissions_of("roles/storage.objectCreator") & {"storage.objects.get"} == set()
    assert "dataflow.jobs.cancel" not in permissions_of("roles/dataflow.viewer")
    assert "appengine.versions.create" in permissions_of("roles/appengine.deployer")
    assert "appengine.services.update" not in permissions_of("roles/appengine.deployer")


def test_basic_roles_nest_and_only_owners_set_policies() -> None:
    viewer, editor, owner = (permissions_of(f"roles/{r}") for r in ("viewer", "editor", "owner"))
    assert viewer < editor < owner
    assert "resourcemanager.projects.setIamPolicy" in owner - editor
    assert "storage.buckets.setIamPolicy" in owner - editor
    assert "resourcemanager.projects.delete" in owner - editor
    assert {"storage.objects.delete", "dataflow.jobs.create"} <= editor - viewer
    assert {"dataproc.clusters.create", "dataproc.jobs.cancel"} <= editor - viewer
    assert "dataproc.clusters.get" in viewer and "dataproc.clusters.setIamPolicy" in owner - editor
    every = {p for r in ROLES.values() for p in r.permissions}
    assert all(p.count(".") >= 2 for p in every)  # service.resource.verb, as Google's


@pytest.mark.parametrize(
    "member",
    ["user:a@example.com", SA, "group:g@example.com", "domain:example.com", "allUsers",
     "allAuthenticatedUsers"],
)  # fmt: skip
def test_members_google_accepts(member: str) -> None:
    assert check_member(member) == member


@pytest.mark.parametrize(
    "member", ["a@example.com", "user:", "user:nobody", "robot:x@y.z", "domain:Not A Domain"]
)
def test_members_that_are_refused_name_the_forms(member: str) -> None:
    with pytest.raises(InvalidArgument, match="Invalid member"):
        check_member(member)


def test_an_unknown_role_is_refused_with_nearby_names() -> None:
    with pytest.raises(InvalidArgument, match=r"roles/storage\.objectViewer"):
        check_role("roles/storage.objectviewer")
    with pytest.raises(InvalidArgument, match="roles/NAME"):
        check_role("viewer")


def test_add_and_remove_bindings_change_the_etag_and_keep_googles_shape() -> None:
    empty = Policy()
    one = add_binding(empty, SA, "roles/storage.objectViewer")
    assert one.to_json() == {
        "version": 1,
        "etag": one.etag,
        "bindings": [{"role": "roles/storage.objectViewer", "members": [SA]}],
    }
    assert one.etag != add_binding(empty, SA, "roles/viewer").etag
    assert add_binding(one, SA, "roles/storage.objectViewer") == one  # granting twice: no-op
    two = add_binding(one, "user:b@example.com", "roles/storage.objectViewer")
    assert two.bindings == (
        Binding("roles/storage.objectViewer", ("serviceAccount:reader@p.iam.gserviceaccount.com",
                                               "user:b@example.com")),
    )  # fmt: skip
    assert remove_binding(two, "user:b@example.com", "roles/storage.objectViewer").etag == one.etag
    assert "bindings" not in remove_binding(one, SA, "roles/storage.objectViewer").to_json()
    with pytest.raises(InvalidArgument, match="not found"):
        remove_binding(one, SA, "roles/owner")


def test_parse_policy_merges_roles_and_refuses_conditions() -> None:
    parsed = parse_policy({"bindings": [
        {"role": "roles/viewer", "members": ["user:b@x.com"]},
        {"role": "roles/viewer", "members": ["user:a@x.com"]},
    ], "etag": "BwX="})  # fmt: skip
    assert parsed.bindings == (Binding("roles/viewer", ("user:a@x.com", "user:b@x.com")),)
    assert parsed.etag == "BwX="  # the etag the writer read, to check against the current one
    with pytest.raises(InvalidArgument, match="condition"):
        parse_policy({"bindings": [{"role": "roles/viewer", "members": ["user:a@x.com"],
                                    "condition": {"expression": "true"}}]})  # fmt: skip


def test_has_permission_looks_at_the_callers_identities_only() -> None:
    policy = add_binding(Policy(), SA, "roles/storage.objectViewer")
    assert has_permission(policy, [SA], "storage.objects.get")
    assert not has_permission(policy, [SA], "storage.objects.delete")
    assert not has_permission(policy, ["serviceAccount:other@p.iam.gserviceaccount.com"],
                              "storage.objects.get")  # fmt: skip
    public = add_binding(Policy(), "allUsers", "roles/storage.objectViewer")
    assert has_permission(public, ["user:anyone@x.com", "allUsers"], "storage.objects.get")
    domain = add_binding(Policy(), "domain:example.com", "roles/viewer")
    assert has_permission(domain, ["user:a@example.com"], "resourcemanager.projects.get")
    assert not has_permission(domain, ["user:a@example.org"], "resourcemanager.projects.get")
