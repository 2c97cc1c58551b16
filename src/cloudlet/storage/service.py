"""Buckets and objects over the metadata store and the blob store.

Request bodies arrive as parsed JSON objects and are checked by schema.py before anything is
read or written. Resumable upload sessions are sessions.py's (`Store.sessions`).

Every object mutation runs under one lock and one transaction: the blob file is already
durable (see blobs.py) when the row that names it is committed, and a replaced generation's
blob is only unlinked after the commit. So a crash leaves the old object or the new one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudlet.core.db import Database, utcnow
from cloudlet.core.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
)
from cloudlet.storage.blobs import BlobStore, BlobWriter, Digests
from cloudlet.storage.conditions import Conditions
from cloudlet.storage.listing import _TOP, MAX_LIST, ListPage, decode_token, encode_token, list_page
from cloudlet.storage.models import Bucket, StoredObject, UploadSession
from cloudlet.storage.naming import check_bucket_name, check_object_name
from cloudlet.storage.schema import (
    bucket_change,
    bucket_insert,
    compose_request,
    object_fields,
    patched_fields,
)
from cloudlet.storage.sessions import Sessions

if TYPE_CHECKING:
    from cloudlet.projects import Project

__all__ = ["MAX_LIST", "ListPage", "OpenObject", "Store"]

logger = logging.getLogger(__name__)

SESSION_LIFETIME = timedelta(days=7)
FINISHED_SESSION_LIFETIME = timedelta(days=1)


@dataclass
class OpenObject:
    """An object generation with its blob already open (so a concurrent delete can't race)."""

    obj: StoredObject
    file: BinaryIO


def _owner(s: Session, project_id: str, *, active: bool = False) -> Project:
    """The project a bucket is made in or listed for. Cloud Storage answers an unknown one with
    400 "Unknown project id: X" (reason `invalid`), not 404: gsutil reads a 404 on `mb` as
    "bucket does not exist"."""
    from cloudlet.projects import get_active_project, get_project

    try:
        return get_active_project(s, project_id) if active else get_project(s, project_id)
    except NotFound:
        raise unknown_project(project_id) from None


def unknown_project(project_id: str) -> InvalidArgument:
    return InvalidArgument(
        f"Unknown project id: {project_id}. Create it with: cloudlet projects create "
        f"{project_id}, or list yours with: cloudlet projects list"
    )


def _not_found_bucket(name: str) -> NotFound:
    return NotFound(
        f"The specified bucket does not exist: {name}. Create it with: "
        f"cloudlet storage buckets create gs://{name}"
    )


def _not_found_object(bucket: str, name: str, generation: int | None = None) -> NotFound:
    at = f" (generation {generation})" if generation else ""
    return NotFound(f"No such object: {bucket}/{name}{at}")


class Store:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs
        self.lock = threading.RLock()
        self._last_generation = 0
        self.sessions = Sessions(self)

    # -- start-up ----------------------------------------------------------------------------

    def sweep(self) -> int:
        """Remove what a crash can leave behind: temp files, orphan blobs, stale partials."""
        self.blobs.ensure()
        now = utcnow()
        with self.db.session() as s:
            # Session URIs expire after a week on Google Cloud; a finished one is kept a day
            # so that a client retrying its last request still gets the object back.
            s.execute(
                delete(UploadSession).where(
                    (UploadSession.time_created < now - SESSION_LIFETIME)
                    | (
                        UploadSession.generation.is_not(None)
                        & (UploadSession.time_created < now - FINISHED_SESSION_LIFETIME)
                    )
                )
            )
            referenced = set(s.scalars(select(StoredObject.blob_id)))
            sessions = set(
                s.scalars(select(UploadSession.upload_id).where(UploadSession.generation.is_(None)))
            )
            # A partial file holds at least the fsynced bytes a session counts; if it is
            # shorter or gone, the session restarts from what is really there.
            for upload in s.scalars(
                select(UploadSession).where(UploadSession.generation.is_(None))
            ):
                path = self.blobs.upload_path(upload.upload_id)
                if not path.exists():
                    path.touch()
                size = path.stat().st_size
                if size < upload.received:
                    upload.received = size
        removed = self.blobs.sweep(referenced, sessions)
        if removed:
            logger.info("storage sweep removed %d orphan file(s)", removed)
        return removed

    # -- buckets -----------------------------------------------------------------------------

    def _bucket(self, s: Session, name: str) -> Bucket:
        bucket = s.get(Bucket, name)
        if bucket is None:
            raise _not_found_bucket(name)
        return bucket

    get_bucket_in = _bucket  # for sessions.py: the bucket, in the caller's transaction

    def get_bucket(self, name: str) -> Bucket:
        with self.db.session() as s:
            return self._bucket(s, name)

    def create_bucket(self, project_id: str, body: dict[str, Any]) -> Bucket:
        """buckets.insert with a bucket resource (checked by schema.bucket_insert)."""
        spec = bucket_insert(body)
        name = check_bucket_name(spec.name)
        now = utcnow()
        with self.lock, self.db.session() as s:
            project = _owner(s, project_id, active=True)
            if s.get(Bucket, name) is not None:
                raise AlreadyExists(
                    f"The bucket name [{name}] is not available: bucket names are global. "
                    "Try another name."
                )
            bucket = Bucket(
                name=name,
                project_id=project_id,
                project_number=project.project_number,
                location=spec.location,
                storage_class=spec.storage_class,
                versioning=spec.versioning,
                labels=spec.labels,
                metageneration=1,
                time_created=now,
                updated=now,
            )
            s.add(bucket)
            try:
                s.flush()
            except IntegrityError:
                raise AlreadyExists(f"The bucket name [{name}] is not available.") from None
            return bucket

    def list_buckets(
        self, project_id: str, prefix: str, max_results: int, token: str | None
    ) -> tuple[list[Bucket], str | None]:
        with self.db.session() as s:
            _owner(s, project_id)
            query = select(Bucket).where(Bucket.project_id == project_id)
            if prefix:
                query = query.where(Bucket.name >= prefix, Bucket.name < prefix + _TOP)
            if token:
                query = query.where(Bucket.name > str(decode_token(token).get("n", "")))
            rows = list(s.scalars(query.order_by(Bucket.name).limit(max_results + 1)))
        more = len(rows) > max_results
        rows = rows[:max_results]
        return rows, (encode_token({"n": rows[-1].name}) if more and rows else None)

    def patch_bucket(
        self, name: str, body: dict[str, Any], conditions: Conditions, *, replace: bool = False
    ) -> Bucket:
        change = bucket_change(body, replace=replace)
        with self.lock, self.db.session() as s:
            bucket = self._bucket(s, name)
            conditions.check(f"bucket {name}", 1, bucket.metageneration)
            if change.labels is not None:
                labels = dict(bucket.labels or {}) if not replace else {}
                for key, value in change.labels.items():
                    if value is None:
                        labels.pop(key, None)
                    else:
                        labels[key] = value
                bucket.labels = labels
            if change.versioning is not None:
                bucket.versioning = change.versioning
            if change.storage_class:
                bucket.storage_class = change.storage_class
            bucket.metageneration += 1
            bucket.updated = utcnow()
            return bucket

    def delete_bucket(self, name: str, conditions: Conditions) -> None:
        with self.lock, self.db.session() as s:
            bucket = self._bucket(s, name)
            conditions.check(f"bucket {name}", 1, bucket.metageneration)
            count = s.scalar(
                select(func.count()).select_from(StoredObject).where(StoredObject.bucket == name)
            )
            if count:
                raise AlreadyExists(
                    f"The bucket you tried to delete is not empty: {name} holds {count} object "
                    f"generation(s). Delete them first (cloudlet storage rm -r gs://{name}/**) "
                    "and try again.",
                    reason="conflict",
                )
            for upload in s.scalars(select(UploadSession).where(UploadSession.bucket == name)):
                self.blobs.upload_path(upload.upload_id).unlink(missing_ok=True)
                s.delete(upload)
            s.delete(bucket)

    # -- reading objects ---------------------------------------------------------------------

    def _live(self, s: Session, bucket: str, name: str) -> StoredObject | None:
        return s.scalar(
            select(StoredObject).where(
                StoredObject.bucket == bucket, StoredObject.name == name, StoredObject.live
            )
        )

    def _find(
        self, s: Session, bucket: str, name: str, generation: int | None
    ) -> StoredObject | None:
        if generation is None:
            return self._live(s, bucket, name)
        return s.scalar(
            select(StoredObject).where(
                StoredObject.bucket == bucket,
                StoredObject.name == name,
                StoredObject.generation == generation,
            )
        )

    def get_object(
        self,
        bucket: str,
        name: str,
        generation: int | None = None,
        conditions: Conditions = Conditions(),
    ) -> StoredObject:
        with self.db.session() as s:
            self._bucket(s, bucket)
            obj = self._find(s, bucket, name, generation)
            if obj is None:
                if conditions.if_generation_match == 0:
                    conditions.check(f"{bucket}/{name}", None, None, read=True)
                raise _not_found_object(bucket, name, generation)
            conditions.check(f"{bucket}/{name}", obj.generation, obj.metageneration, read=True)
            return obj

    def open_object(
        self,
        bucket: str,
        name: str,
        generation: int | None = None,
        conditions: Conditions = Conditions(),
    ) -> OpenObject:
        for _ in range(3):
            obj = self.get_object(bucket, name, generation, conditions)
            try:
                return OpenObject(obj, self.blobs.path(obj.blob_id).open("rb"))
            except FileNotFoundError:  # replaced between the lookup and the open: look again
                continue
        raise _not_found_object(bucket, name, generation)

    def list_objects(self, bucket: str, **options: Any) -> ListPage:
        """One page of a listing; see listing.list_page for the options."""
        with self.db.session() as s:
            self._bucket(s, bucket)
            return list_page(s, bucket, **options)

    # -- writing objects ---------------------------------------------------------------------

    def _next_generation(self, s: Session, bucket: str, name: str) -> int:
        newest = s.scalar(
            select(func.max(StoredObject.generation)).where(
                StoredObject.bucket == bucket, StoredObject.name == name
            )
        )
        gen = max(time.time_ns() // 1000, (newest or 0) + 1, self._last_generation + 1)
        self._last_generation = gen
        return gen

    def commit_blob(
        self,
        bucket: str,
        name: str,
        writer: BlobWriter,
        fields: dict[str, Any],
        conditions: Conditions = Conditions(),
        *,
        md5: bool = True,
        component_count: int | None = None,
    ) -> StoredObject:
        """Make a finished write the live generation of `name` (fsync, rename, commit)."""
        digests = writer.digests
        blob_id = writer.commit()
        return self.commit_blob_id(
            bucket,
            name,
            blob_id,
            digests,
            fields,
            conditions,
            md5=md5,
            component_count=component_count,
        )

    def commit_blob_id(
        self,
        bucket: str,
        name: str,
        blob_id: str,
        digests: Digests | tuple[int, str | None, str],
        fields: dict[str, Any],
        conditions: Conditions = Conditions(),
        *,
        md5: bool = True,
        component_count: int | None = None,
        after: Callable[[Session, StoredObject], None] | None = None,
    ) -> StoredObject:
        md5_b64: str | None
        if isinstance(digests, Digests):
            size, md5_b64, crc = digests.size, digests.md5_b64, digests.crc32c_b64
        else:
            size, md5_b64, crc = digests
        replaced: list[str] = []
        try:
            with self.lock, self.db.session() as s:
                b = self._bucket(s, bucket)
                current = self._live(s, bucket, name)
                conditions.check(
                    f"{bucket}/{name}",
                    current.generation if current else None,
                    current.metageneration if current else None,
                )
                now = utcnow()
                generation = self._next_generation(s, bucket, name)
                if current is not None:
                    if b.versioning:
                        current.live = False
                        current.time_deleted = now
                    else:
                        replaced.append(current.blob_id)
                        s.delete(current)
                    s.flush()
                obj = StoredObject(
                    bucket=bucket,
                    name=name,
                    generation=generation,
                    metageneration=1,
                    live=True,
                    blob_id=blob_id,
                    size=size,
                    md5=md5_b64 if md5 else None,
                    crc32c=crc,
                    component_count=component_count,
                    fields=fields,
                    time_created=now,
                    updated=now,
                )
                s.add(obj)
                s.flush()
                if after is not None:
                    after(s, obj)
        except BaseException:
            self.blobs.remove([blob_id])
            raise
        self.blobs.remove(replaced)
        return obj

    def patch_object(
        self,
        bucket: str,
        name: str,
        generation: int | None,
        body: dict[str, Any],
        conditions: Conditions,
        *,
        replace: bool = False,
    ) -> StoredObject:
        patched_fields({}, body, replace=replace)  # a bad body is refused before any lookup
        with self.lock, self.db.session() as s:
            self._bucket(s, bucket)
            obj = self._find(s, bucket, name, generation)
            if obj is None:
                raise _not_found_object(bucket, name, generation)
            conditions.check(f"{bucket}/{name}", obj.generation, obj.metageneration)
            obj.fields = patched_fields(dict(obj.fields or {}), body, replace=replace)
            obj.metageneration += 1
            obj.updated = utcnow()
            return obj

    def delete_object(
        self, bucket: str, name: str, generation: int | None, conditions: Conditions
    ) -> None:
        removed: list[str] = []
        with self.lock, self.db.session() as s:
            b = self._bucket(s, bucket)
            obj = self._find(s, bucket, name, generation)
            if obj is None:
                raise _not_found_object(bucket, name, generation)
            conditions.check(f"{bucket}/{name}", obj.generation, obj.metageneration)
            if b.versioning and generation is None:
                # With versioning on, a delete makes the live generation noncurrent.
                obj.live = False
                obj.time_deleted = utcnow()
            else:
                removed.append(obj.blob_id)
                s.delete(obj)
        self.blobs.remove(removed)

    def copy_object(
        self,
        src_bucket: str,
        src_name: str,
        src_generation: int | None,
        src_conditions: Conditions,
        dst_bucket: str,
        dst_name: str,
        body: dict[str, Any],
        conditions: Conditions,
    ) -> StoredObject:
        check_object_name(dst_name)
        body_fields = object_fields(body)
        opened = self.open_object(src_bucket, src_name, src_generation, src_conditions)
        source = opened.obj
        try:
            self.get_bucket(dst_bucket)
            blob_id = self.blobs.link_copy(source.blob_id)
        finally:
            opened.file.close()
        fields = body_fields or dict(source.fields or {})
        return self.commit_blob_id(
            dst_bucket,
            dst_name,
            blob_id,
            (source.size, source.md5, source.crc32c),
            fields,
            conditions,
            md5=source.md5 is not None,
            component_count=source.component_count,
        )

    def compose(
        self,
        bucket: str,
        name: str,
        body: dict[str, Any],
        conditions: Conditions,
    ) -> StoredObject:
        """https://cloud.google.com/storage/docs/json_api/v1/objects/compose"""
        check_object_name(name)
        sources, fields = compose_request(body)
        opened: list[OpenObject] = []
        writer = self.blobs.writer()
        try:
            for source in sources:
                cond = Conditions(if_generation_match=source.if_generation_match)
                opened.append(self.open_object(bucket, source.name, source.generation, cond))
            components = sum(o.obj.component_count or 1 for o in opened)
            if components > 1024:
                raise InvalidArgument(
                    f"The composite would have {components} components; the limit is 1024."
                )
            for o in opened:
                for chunk in _read_all(o.file):
                    writer.write(chunk)
            first = opened[0].obj.fields or {}
            if "contentType" not in fields and first.get("contentType"):
                fields["contentType"] = first["contentType"]
        except BaseException:
            writer.discard()
            raise
        finally:
            for o in opened:
                o.file.close()
        # Composite objects carry a crc32c but no md5Hash, as on Google Cloud.
        return self.commit_blob(
            bucket, name, writer, fields, conditions, md5=False, component_count=components
        )


def _read_all(f: BinaryIO) -> Iterator[bytes]:
    from cloudlet.storage.blobs import read_open

    return read_open(f, 0, None)
