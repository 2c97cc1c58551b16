"""A small client of the gateway's GCS JSON API for the CLI: streaming, resumable for large files.

It speaks the same paths as google-cloud-storage (so it works against Google Cloud's shapes).
The calls, the credentials and the errors (ApiError, or the CLI's words when no gateway
answers) are the CLI's gateway client's (core/client.py, cli/context.py).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from cloudlet.cli.context import ApiError, CliError, check_response, gateway_unreachable
from cloudlet.core.client import GatewayClient

__all__ = ["GcsClient", "GsUrl", "parse_url"]

RESUMABLE_THRESHOLD = 8 * 1024 * 1024
CHUNK = 32 * 1024 * 1024
READ = 1024 * 1024

Progress = Callable[[int], None]


@dataclass(frozen=True)
class GsUrl:
    bucket: str
    name: str = ""

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def parse_url(url: str) -> GsUrl | None:
    """gs://bucket[/name] → GsUrl; anything else (a local path) → None."""
    if not url.startswith("gs://"):
        return None
    rest = url[5:]
    bucket, _, name = rest.partition("/")
    if not bucket:
        raise CliError(f"Invalid URL [{url}]: expected gs://BUCKET[/OBJECT].")
    return GsUrl(bucket, name)


def _o(name: str) -> str:
    return quote(name, safe="")


class GcsClient(GatewayClient):
    def __init__(self, base_url: str, timeout: float = 300) -> None:
        super().__init__(base_url, timeout=timeout)

    def credentials(self) -> httpx.Auth | None:
        from cloudlet.cli.credentials import active_auth  # the active account's token

        return active_auth(self.url)

    def unreachable(self, exc: httpx.TransportError) -> Exception:
        return gateway_unreachable(self.url, exc)

    # -- buckets -----------------------------------------------------------------------------

    def create_bucket(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.request(
            "POST", "/storage/v1/b", params={"project": project}, json=body
        )
        return out

    def get_bucket(self, bucket: str) -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", f"/storage/v1/b/{bucket}")
        return out

    def list_buckets(self, project: str) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            params = {"project": project, **({"pageToken": token} if token else {})}
            page = self.request("GET", "/storage/v1/b", params=params)
            yield from page.get("items", [])
            token = page.get("nextPageToken")
            if not token:
                return

    def patch_bucket(self, bucket: str, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.request("PATCH", f"/storage/v1/b/{bucket}", json=body)
        return out

    def delete_bucket(self, bucket: str) -> None:
        self.request("DELETE", f"/storage/v1/b/{bucket}")

    # -- objects -----------------------------------------------------------------------------

    def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str = "", glob: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Objects (and, with a delimiter, {"prefix": p} entries) in order, every page."""
        token = None
        while True:
            params: dict[str, str] = {}
            if prefix:
                params["prefix"] = prefix
            if delimiter:
                params["delimiter"] = delimiter
            if glob:
                params["matchGlob"] = glob
            if token:
                params["pageToken"] = token
            page = self.request("GET", f"/storage/v1/b/{bucket}/o", params=params)
            entries = list(page.get("items", [])) + [
                {"prefix": p} for p in page.get("prefixes", [])
            ]
            entries.sort(key=lambda e: e.get("name") or e.get("prefix") or "")
            yield from entries
            token = page.get("nextPageToken")
            if not token:
                return

    def get_object(self, bucket: str, name: str) -> dict[str, Any] | None:
        try:
            out: dict[str, Any] = self.request("GET", f"/storage/v1/b/{bucket}/o/{_o(name)}")
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise
        return out

    def delete_object(self, bucket: str, name: str) -> None:
        self.request("DELETE", f"/storage/v1/b/{bucket}/o/{_o(name)}")

    def rewrite(self, src: GsUrl, dst: GsUrl) -> dict[str, Any]:
        path = (
            f"/storage/v1/b/{src.bucket}/o/{_o(src.name)}/rewriteTo/b/{dst.bucket}/o/{_o(dst.name)}"
        )
        params: dict[str, str] = {}
        while True:
            out = self.request("POST", path, params=params, json={})
            if out.get("done"):
                resource: dict[str, Any] = out["resource"]
                return resource
            params["rewriteToken"] = out["rewriteToken"]

    def upload(
        self,
        source: Path,
        dst: GsUrl,
        content_type: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Upload a file: one streamed request when small, a resumable session when large."""
        size = source.stat().st_size
        ctype = content_type or _guess_type(source)
        upload_path = f"/upload/storage/v1/b/{dst.bucket}/o"
        if size < RESUMABLE_THRESHOLD:
            with source.open("rb") as f:
                out: dict[str, Any] = self.request(
                    "POST",
                    upload_path,
                    params={"uploadType": "media", "name": dst.name},
                    content=_chunks(f, size, progress),
                    headers={"Content-Type": ctype, "Content-Length": str(size)},
                )
            return out
        start = check_response(
            self.http.post(
                upload_path,
                params={"uploadType": "resumable", "name": dst.name},
                content=json.dumps({"name": dst.name, "contentType": ctype}),
                headers={
                    "Content-Type": "application/json",
                    "X-Upload-Content-Type": ctype,
                    "X-Upload-Content-Length": str(size),
                },
            )
        )
        session = start.headers["location"]
        offset = 0
        with source.open("rb") as f:
            while True:
                length = min(CHUNK, size - offset)
                f.seek(offset)
                response = check_response(
                    self.http.put(
                        session,
                        content=_chunks(f, length, progress),
                        headers={
                            "Content-Range": f"bytes {offset}-{offset + length - 1}/{size}",
                            "Content-Length": str(length),
                        },
                    )
                )
                if response.status_code in (200, 201):
                    done: dict[str, Any] = response.json()
                    return done
                match = re.match(r"bytes=0-(\d+)", response.headers.get("range", ""))
                offset = int(match.group(1)) + 1 if match else 0

    def download(self, src: GsUrl, target: BinaryIO, progress: Progress | None = None) -> None:
        path = f"/download/storage/v1/b/{src.bucket}/o/{_o(src.name)}"
        with self.http.stream("GET", path, params={"alt": "media"}) as response:
            check_response(response)
            for chunk in response.iter_bytes(READ):
                target.write(chunk)
                if progress:
                    progress(len(chunk))


def _chunks(f: BinaryIO, length: int, progress: Progress | None) -> Iterator[bytes]:
    remaining = length
    while remaining > 0:
        data = f.read(min(READ, remaining))
        if not data:
            return
        remaining -= len(data)
        if progress:
            progress(len(data))
        yield data


def _guess_type(path: Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def local_files(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            yield Path(dirpath) / name
