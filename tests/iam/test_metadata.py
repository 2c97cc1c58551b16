"""The workloads' metadata server, spoken to as google-auth speaks to it (see iam/metadata.py).

google-auth itself, inside a deployed app, is driven by tests/appengine/test_identity.py and,
inside Dataflow workers, by tests/dataflow/test_dataflow_runner.py.
"""

from __future__ import annotations

from typing import Any

import httpx

from cloudlet.iam.metadata import workload_tokens
from cloudlet.iam.workload import Workload, workload_environment
from cloudlet.testing import Gateway
from tests.iam.conftest import KeyFile

FLAVOR = {"Metadata-Flavor": "Google"}


def test_metadata_server_answers_its_workload_only(
    gateway: Gateway, gateway_view: Any, api: httpx.Client, key_file: KeyFile, iam_project: str
) -> None:
    number = api.get(f"/api/v1/projects/{iam_project}").json()["projectNumber"]
    name = f"apps/{iam_project}/services/default/versions/never-deployed"
    workload = Workload("appengine", name, iam_project, int(number), key_file.email,
                        "europe-west1")  # fmt: skip
    token = workload_tokens(gateway_view).token(workload)
    env = workload_environment(gateway.url, token, "/nonexistent")
    root = f"http://{env['GCE_METADATA_HOST']}/computeMetadata/v1/"
    ping = f"http://{env['GCE_METADATA_IP']}"

    def get(url: str, **kwargs: Any) -> httpx.Response:
        response = httpx.get(url, **{"headers": FLAVOR, **kwargs})
        assert response.headers["metadata-flavor"] == "Google"  # on every answer, refusals too
        assert response.headers["content-type"]
        return response

    assert get(ping).status_code == 200
    assert get(ping, headers={}).status_code == 403  # no Metadata-Flavor: Google
    assert get(ping, headers={**FLAVOR, "X-Forwarded-For": "10.0.0.1"}).status_code == 403
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert get(ping.replace(token, forged)).status_code == 404

    assert get(root + "project/project-id").text == iam_project
    assert get(root + "project/numeric-project-id").text == str(number)
    assert get(root + "instance/zone").text == f"projects/{number}/zones/europe-west1-a"
    info = get(root + "instance/service-accounts/default/", params={"recursive": "true"})
    assert info.headers["content-type"] == "application/json"
    assert info.json()["email"] == key_file.email and info.json()["aliases"] == ["default"]
    assert get(root + f"instance/service-accounts/{key_file.email}/email").text == key_file.email
    assert get(root + "instance/service-accounts/other@x.iam.gserviceaccount.com/email"
               ).status_code == 404  # fmt: skip
    assert get(root + "universe/universe-domain").text == "googleapis.com"

    # Tokens go to workloads that run, as an account that exists and is enabled. (Tokens of
    # running apps and jobs are driven through google-auth by test_identity.py and
    # test_dataflow_runner.py.) This workload names a version that was never deployed.
    token_path = root + "instance/service-accounts/default/token"
    gone = get(token_path)
    assert gone.status_code == 403 and "no longer runs" in gone.text
    account = f"/api/v1/projects/{iam_project}/serviceAccounts/{key_file.email}"
    api.post(f"{account}:disable").raise_for_status()
    try:
        refused = get(token_path)
        assert refused.status_code == 403 and "disabled" in refused.text
    finally:
        api.post(f"{account}:enable").raise_for_status()

    # The gateway's log never holds a workload's token.
    log = gateway.log_text()
    assert "/_workload/…/computeMetadata/v1/project/project-id" in log
    assert token not in log and forged not in log
