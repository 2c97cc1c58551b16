"""The GCS JSON API v1, at the paths Google uses.

https://cloud.google.com/storage/docs/json_api/v1
- /storage/v1/b[/...]                  buckets and object metadata, copy/rewrite/compose
- /upload/storage/v1/b/{bucket}/o      uploads: media, multipart, resumable (also under
  /resumable/upload/..., where apitools sends resumable uploads)
- /download/storage/v1/b/{bucket}/o/…  media downloads (also `alt=media` on /storage/v1)
- /batch/storage/v1                    multipart/mixed batches (see batch.py)

Object names arrive percent-encoded (`a%2Fb`), so routes that carry one are parsed from the
raw request path: a decoded `/` inside a name could otherwise pass for a path separator.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

from cloudlet.core.authz import Resource, project_resource, public, requires, requires_each
from cloudlet.core.authz import bucket_resource as authz_bucket
from cloudlet.core.authz import object_resource as authz_object
from cloudlet.core.bodies import read_json_object
from cloudlet.core.deps import DbSession
from cloudlet.core.errors import InvalidArgument, NotFound
from cloudlet.core.state import gateway_state
from cloudlet.projects import requires_service
from cloudlet.storage import STORE
from cloudlet.storage.batch import run_batch
from cloudlet.storage.conditions import NotModified, parse_conditions
from cloudlet.storage.downloads import media_response
from cloudlet.storage.naming import decode_name
from cloudlet.storage.resources import bucket_resource, object_resource
from cloudlet.storage.service import MAX_LIST, Store, unknown_project
from cloudlet.storage.uploads import cancel_upload, resumable_put, start_upload

__all__ = ["router"]

router = APIRouter(tags=["storage"])


def store_of(request: Request) -> Store:
    return gateway_state(request)[STORE]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _int(request: Request, key: str, default: int | None = None) -> int | None:
    value = request.query_params.get(key)
    if value is None or value == "":
        return default
    try:
        number = int(value) if len(value) <= 20 else None
    except ValueError:
        number = None
    if number is None or not -(2**63) <= number < 2**63:
        raise InvalidArgument(f"Invalid value for {key}: '{value[:40]}' is not an int64.")
    return number


def _bool(request: Request, key: str) -> bool:
    return (request.query_params.get(key) or "").lower() in ("true", "1", "yes")


async def _json(request: Request) -> dict[str, Any]:
    """The JSON object body, bounded (413) and depth-limited (400); see core/bodies.py."""
    return await read_json_object(request)


# -- what each route is authorized on (cloudlet.iam.authz) -------------------------------------
# Permissions as GCS checks them: https://cloud.google.com/storage/docs/access-control/iam-json


def _project_of_query(request: Request) -> Resource | None:
    project = request.query_params.get("project")
    return project_resource(project, gcs=True) if project else None  # none: the handler's 400


def _bucket_of_path(request: Request) -> Resource:
    return authz_bucket(request.path_params["bucket"])


def _downloaded_object(request: Request) -> Resource:
    bucket, rest = _raw_tail(request, "/download/storage/v1/b/")
    return authz_object(bucket, unquote(rest))


def _uploaded_object(request: Request) -> Resource:
    return authz_object(request.path_params["bucket"], request.query_params.get("name", ""))


def _object_checks(request: Request) -> list[tuple[str, Resource | None]]:
    """objects.get|patch|update|delete|copy|rewrite|compose, told apart as object_route does."""
    bucket, rest = _raw_tail(request, "/storage/v1/b/")
    method = request.method
    if method == "POST":
        match = _REWRITE.match(rest)
        if match:
            source = authz_object(bucket, unquote(match["src"]))
            target = authz_object(unquote(match["db"]), unquote(match["dst"]))
            return [("storage.objects.get", source), ("storage.objects.create", target)]
        match = _COMPOSE.match(rest)
        if match:
            return [("storage.objects.create", authz_object(bucket, unquote(match["dst"])))]
        return []  # the handler's 404
    verb = {"GET": "get", "PATCH": "update", "PUT": "update", "DELETE": "delete"}[method]
    return [(f"storage.objects.{verb}", authz_object(bucket, unquote(rest)))]


_SESSION_URI = "the resumable session URI is the credential, as on GCS; its start was authorized"

# -- documented answers (OpenAPI) --------------------------------------------------------------
# https://cloud.google.com/storage/docs/json_api/v1/status-codes; every error is Google's body.
_ANSWERS = {
    204: "No Content: deleted.",
    304: "Not Modified: an ifGenerationNotMatch/ifMetagenerationNotMatch read held.",
    308: "Resume Incomplete: the Range header says which bytes are persisted.",
    400: "Invalid argument: a bad parameter, name or body field (the message names it).",
    401: "Unauthenticated: a missing or invalid token.",
    403: "Permission denied, or the Cloud Storage API is not enabled in the project.",
    404: "No such bucket, object or upload session.",
    409: "Conflict: the bucket exists, is not empty, or the upload was cancelled.",
    412: "A precondition (ifGenerationMatch & co) did not hold.",
    413: "The request body is larger than this request accepts.",
    416: "Requested range not satisfiable.",
    499: "Client Closed Request: the resumable upload is cancelled, as GCS answers.",
}
_READ = (400, 401, 403, 404)
_WRITE = (*_READ, 409, 412, 413)


def _answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": _ANSWERS[code]} for code in codes}


# -- buckets -----------------------------------------------------------------------------------


@router.get(
    "/storage/v1/b",
    summary="buckets.list",
    responses=_answers(*_READ),
    dependencies=[requires("storage.buckets.list", _project_of_query)],
)
def list_buckets(request: Request) -> dict[str, Any]:
    project = request.query_params.get("project")
    if not project:
        raise InvalidArgument("Required parameter: project. Pass ?project=PROJECT_ID.")
    max_results = min(_int(request, "maxResults", MAX_LIST) or MAX_LIST, MAX_LIST)
    rows, token = store_of(request).list_buckets(
        project,
        request.query_params.get("prefix") or "",
        max(1, max_results),
        request.query_params.get("pageToken"),
    )
    out: dict[str, Any] = {
        "kind": "storage#buckets",
        "items": [bucket_resource(b, base_url(request)) for b in rows],
    }
    if token:
        out["nextPageToken"] = token
    return out


_storage_enabled = requires_service("storage.googleapis.com")


def _storage_enabled_in_known_project(request: Request, session: DbSession) -> None:
    """The Cloud Storage API must be enabled; an unknown project is 400 `invalid`, as
    buckets.insert answers it (see service.unknown_project)."""
    try:
        _storage_enabled(request, session)
    except NotFound:
        raise unknown_project(request.query_params.get("project") or "") from None


@router.post(
    "/storage/v1/b",
    summary="buckets.insert",
    responses=_answers(*_WRITE),
    dependencies=[
        requires("storage.buckets.create", _project_of_query),
        Depends(_storage_enabled_in_known_project),
    ],
)
async def insert_bucket(request: Request) -> dict[str, Any]:
    project = request.query_params.get("project")
    if not project:
        raise InvalidArgument("Required parameter: project. Pass ?project=PROJECT_ID.")
    body = await _json(request)
    store = store_of(request)
    bucket = await to_thread.run_sync(store.create_bucket, project, body)
    return bucket_resource(bucket, base_url(request))


@router.get(
    "/storage/v1/b/{bucket}",
    summary="buckets.get",
    responses=_answers(*_READ, 304, 412),
    dependencies=[requires("storage.buckets.get", _bucket_of_path)],
)
def get_bucket(bucket: str, request: Request) -> dict[str, Any]:
    found = store_of(request).get_bucket(bucket)
    parse_conditions(request.query_params).check(
        f"bucket {bucket}", 1, found.metageneration, read=True
    )
    return bucket_resource(found, base_url(request))


@router.patch(
    "/storage/v1/b/{bucket}",
    summary="buckets.patch",
    responses=_answers(*_WRITE),
    dependencies=[requires("storage.buckets.update", _bucket_of_path)],
)
@router.put(
    "/storage/v1/b/{bucket}",
    summary="buckets.update",
    responses=_answers(*_WRITE),
    dependencies=[requires("storage.buckets.update", _bucket_of_path)],
)
async def patch_bucket(bucket: str, request: Request) -> dict[str, Any]:
    body = await _json(request)
    conditions = parse_conditions(request.query_params)
    replace = request.method == "PUT"
    store = store_of(request)
    found = await to_thread.run_sync(
        lambda: store.patch_bucket(bucket, body, conditions, replace=replace)
    )
    return bucket_resource(found, base_url(request))


@router.delete(
    "/storage/v1/b/{bucket}",
    summary="buckets.delete",
    responses=_answers(204, *_WRITE),
    status_code=204,
    dependencies=[requires("storage.buckets.delete", _bucket_of_path)],
)
def delete_bucket(bucket: str, request: Request) -> Response:
    store_of(request).delete_bucket(bucket, parse_conditions(request.query_params))
    return Response(status_code=204)


# -- objects: list and the raw-path dispatcher -------------------------------------------------


@router.get(
    "/storage/v1/b/{bucket}/o",
    summary="objects.list",
    responses=_answers(*_READ),
    dependencies=[requires("storage.objects.list", _bucket_of_path)],
)
def list_objects(bucket: str, request: Request) -> dict[str, Any]:
    q = request.query_params
    page = store_of(request).list_objects(
        bucket,
        prefix=q.get("prefix") or "",
        delimiter=q.get("delimiter") or "",
        max_results=_int(request, "maxResults", MAX_LIST) or MAX_LIST,
        page_token=q.get("pageToken") or None,
        versions=_bool(request, "versions"),
        start_offset=q.get("startOffset") or "",
        end_offset=q.get("endOffset") or "",
        match_glob=q.get("matchGlob") or "",
        include_trailing_delimiter=_bool(request, "includeTrailingDelimiter"),
    )
    base = base_url(request)
    out: dict[str, Any] = {
        "kind": "storage#objects",
        "items": [object_resource(o, base) for o in page.items],
    }
    if page.prefixes:
        out["prefixes"] = page.prefixes
    if page.next_token:
        out["nextPageToken"] = page.next_token
    return out


_REWRITE = re.compile(r"^(?P<src>.+?)/(?P<op>copyTo|rewriteTo)/b/(?P<db>[^/]+)/o/(?P<dst>.+)$")
_COMPOSE = re.compile(r"^(?P<dst>.+)/compose$")


def _raw_tail(request: Request, marker: str) -> tuple[str, str]:
    """(bucket, still-encoded rest) from the raw path `.../b/{bucket}/o/{rest}`."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    start = path.index(marker) + len(marker)
    bucket, sep, rest = path[start:].partition("/o/")
    if not sep or not rest:
        raise NotFound(f"No such resource: {request.method} {request.url.path}")
    return unquote(bucket), rest


def _name(encoded: str) -> str:
    return decode_name(encoded)


@router.api_route(
    "/storage/v1/b/{bucket}/o/{object:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    summary="objects.get|patch|update|delete|copy|rewrite|compose",
    responses=_answers(204, 304, *_WRITE, 416),
    dependencies=[
        requires_each(
            _object_checks,
            "storage.objects.get",
            "storage.objects.update",
            "storage.objects.delete",
            "storage.objects.create",
            note="by method; copy and rewrite need get on the source and create on the destination",
        )
    ],
)
async def object_route(
    request: Request,
    bucket_name: str = Path(alias="bucket", description="The bucket's name."),
    object_name: str = Path(
        alias="object", description="The object's name, percent-encoded (a `/` as %2F)."
    ),
) -> Response:
    """The name is read from the raw path (see the module's docstring); the parameters are
    declared for the OpenAPI document."""
    bucket, rest = _raw_tail(request, "/storage/v1/b/")
    method = request.method
    if method == "POST":
        match = _REWRITE.match(rest)
        if match:
            body = await _json(request)
            src, dst_bucket, dst = _name(match["src"]), unquote(match["db"]), _name(match["dst"])
            op = match["op"]
            return await to_thread.run_sync(
                lambda: _copy_or_rewrite(request, bucket, src, dst_bucket, dst, op, body)
            )
        match = _COMPOSE.match(rest)
        if match:
            body = await _json(request)
            dst_name = _name(match["dst"])
            return await to_thread.run_sync(lambda: _compose(request, bucket, dst_name, body))
        raise NotFound(
            f"No such resource: POST {request.url.path}. Object uploads go to "
            f"/upload/storage/v1/b/{bucket}/o."
        )
    name = _name(rest)
    store = store_of(request)
    generation = _int(request, "generation")
    conditions = parse_conditions(request.query_params)
    if method == "GET":
        if request.query_params.get("alt") == "media":
            return await to_thread.run_sync(lambda: media_response(request, store, bucket, name))
        try:
            obj = await to_thread.run_sync(
                lambda: store.get_object(bucket, name, generation, conditions)
            )
        except NotModified:
            return Response(status_code=304)
        return JSONResponse(object_resource(obj, base_url(request)))
    if method in ("PATCH", "PUT"):
        body = await _json(request)
        obj = await to_thread.run_sync(
            lambda: store.patch_object(
                bucket, name, generation, body, conditions, replace=method == "PUT"
            )
        )
        return JSONResponse(object_resource(obj, base_url(request)))
    await to_thread.run_sync(lambda: store.delete_object(bucket, name, generation, conditions))
    return Response(status_code=204)


def _copy_or_rewrite(
    request: Request,
    src_bucket: str,
    src_name: str,
    dst_bucket: str,
    dst_name: str,
    op: str,
    body: dict[str, Any],
) -> Response:
    """objects.copy and objects.rewrite (one call, or several with maxBytesRewrittenPerCall).

    https://cloud.google.com/storage/docs/json_api/v1/objects/rewrite
    """
    store = store_of(request)
    q = request.query_params
    src_generation = _int(request, "sourceGeneration")
    src_conditions = parse_conditions(q, "ifSource")
    conditions = parse_conditions(q)
    base = base_url(request)
    if op == "copyTo":
        obj = store.copy_object(
            src_bucket,
            src_name,
            src_generation,
            src_conditions,
            dst_bucket,
            dst_name,
            body,
            conditions,
        )
        return JSONResponse(object_resource(obj, base))
    source = store.get_object(src_bucket, src_name, src_generation, src_conditions)
    per_call = _int(request, "maxBytesRewrittenPerCall")
    token = q.get("rewriteToken")
    done = 0
    if token:
        try:
            token_gen, token_done = (int(x) for x in token.split("-", 1))
        except ValueError:
            raise InvalidArgument(f"Invalid rewriteToken [{token}].") from None
        if token_gen != source.generation:
            raise InvalidArgument(
                "The rewriteToken belongs to another source generation; start the rewrite again."
            )
        done = token_done
    if per_call and done + per_call < source.size:
        # A large rewrite is done over several calls, as on Google Cloud: report progress.
        done += per_call
        return JSONResponse(
            {
                "kind": "storage#rewriteResponse",
                "totalBytesRewritten": str(done),
                "objectSize": str(source.size),
                "done": False,
                "rewriteToken": f"{source.generation}-{done}",
            }
        )
    obj = store.copy_object(
        src_bucket,
        src_name,
        source.generation,
        src_conditions,
        dst_bucket,
        dst_name,
        body,
        conditions,
    )
    return JSONResponse(
        {
            "kind": "storage#rewriteResponse",
            "totalBytesRewritten": str(obj.size),
            "objectSize": str(obj.size),
            "done": True,
            "resource": object_resource(obj, base),
        }
    )


def _compose(request: Request, bucket: str, name: str, body: dict[str, Any]) -> Response:
    obj = store_of(request).compose(bucket, name, body, parse_conditions(request.query_params))
    return JSONResponse(object_resource(obj, base_url(request)))


# -- downloads ---------------------------------------------------------------------------------


@router.get(
    "/download/storage/v1/b/{bucket}/o/{object:path}",
    summary="objects.get (media)",
    responses=_answers(*_READ, 304, 412, 416),
    dependencies=[requires("storage.objects.get", _downloaded_object)],
)
async def download(
    request: Request,
    bucket_name: str = Path(alias="bucket", description="The bucket's name."),
    object_name: str = Path(alias="object", description="The object's name, percent-encoded."),
) -> Response:
    bucket, rest = _raw_tail(request, "/download/storage/v1/b/")
    name = _name(rest)
    store = store_of(request)
    return await to_thread.run_sync(lambda: media_response(request, store, bucket, name))


# -- uploads and batch -------------------------------------------------------------------------


# Google's discovery document also names /resumable/upload/storage/v1/b/{bucket}/o for
# resumable uploads, and apitools (gcloud storage, gsutil) sends them there.
@router.post(
    "/upload/storage/v1/b/{bucket}/o",
    summary="objects.insert (upload)",
    responses=_answers(*_WRITE),
    dependencies=[requires("storage.objects.create", _uploaded_object)],
)
@router.post(
    "/resumable/upload/storage/v1/b/{bucket}/o",
    include_in_schema=False,
    dependencies=[requires("storage.objects.create", _uploaded_object)],
)
async def upload(bucket: str, request: Request) -> Response:
    return await start_upload(request, store_of(request), bucket, base_url(request))


@router.put(
    "/upload/storage/v1/b/{bucket}/o",
    summary="resumable upload chunk",
    responses=_answers(308, *_WRITE),
    dependencies=[public(_SESSION_URI)],
)
@router.put(
    "/resumable/upload/storage/v1/b/{bucket}/o",
    include_in_schema=False,
    dependencies=[public(_SESSION_URI)],
)
async def upload_chunk(bucket: str, request: Request) -> Response:
    return await resumable_put(request, store_of(request), bucket, base_url(request))


@router.delete(
    "/upload/storage/v1/b/{bucket}/o",
    summary="cancel a resumable upload",
    responses=_answers(*_READ, 499),
    dependencies=[public(_SESSION_URI)],
)
@router.delete(
    "/resumable/upload/storage/v1/b/{bucket}/o",
    include_in_schema=False,
    dependencies=[public(_SESSION_URI)],
)
async def upload_cancel(bucket: str, request: Request) -> Response:
    return await cancel_upload(request, store_of(request))


@router.post(
    "/batch/storage/v1",
    summary="batch (multipart/mixed)",
    responses=_answers(400, 401, 413),
    dependencies=[
        public("each part is authorized as a request of its own, with the batch's credentials")
    ],
)
async def batch(request: Request) -> Response:
    return await run_batch(request)
