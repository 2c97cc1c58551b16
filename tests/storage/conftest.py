"""Fixtures for Cloud Storage tests: the real google-cloud-storage client against a gateway."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from cloudlet.testing import Gateway


def make_project(url: str) -> str:
    project = "p-" + uuid.uuid4().hex[:12]
    httpx.post(f"{url}/api/v1/projects", json={"projectId": project}).raise_for_status()
    return project


def make_client(url: str, project: str) -> storage.Client:
    return storage.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=url),
    )


@pytest.fixture
def gcs_project(gateway: Gateway) -> str:
    return make_project(gateway.url)


@pytest.fixture
def gcs(gateway: Gateway, gcs_project: str) -> storage.Client:
    return make_client(gateway.url, gcs_project)


@pytest.fixture
def bucket(gcs: storage.Client) -> Iterator[storage.Bucket]:
    yield gcs.create_bucket("b-" + uuid.uuid4().hex[:16])
