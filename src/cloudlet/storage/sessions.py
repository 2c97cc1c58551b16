"""Resumable upload sessions: rows in the metadata store, bytes in a partial file.

https://cloud.google.com/storage/docs/performing-resumable-uploads
The session row counts only bytes that are fsynced in its partial file (see uploads.py); the
object is committed through `Store.commit_blob_id`, whose crash rules hold here too. Upload ids
are 32 hex digits (blobs.new_id); anything else is answered 404 before any lookup, so a hostile
id costs neither a query nor memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.orm import Session

from cloudlet.core.db import Database, utcnow
from cloudlet.core.errors import Aborted, NotFound
from cloudlet.storage.blobs import BlobStore, BlobWriter, Digests
from cloudlet.storage.conditions import Conditions
from cloudlet.storage.models import Bucket, StoredObject, UploadSession


class Owner(Protocol):
    """What sessions need of the store that owns them (service.Store)."""

    db: Database
    blobs: BlobStore

    def get_bucket_in(self, s: Session, name: str) -> Bucket: ...

    def commit_blob_id(
        self,
        bucket: str,
        name: str,
        blob_id: str,
        digests: Digests | tuple[int, str | None, str],
        fields: dict[str, Any],
        conditions: Conditions = ...,
        *,
        md5: bool = ...,
        component_count: int | None = ...,
        after: Callable[[Session, StoredObject], None] | None = ...,
    ) -> StoredObject: ...


__all__ = ["MAX_UPLOAD_ID", "Owner", "Sessions", "valid_upload_id"]

MAX_UPLOAD_ID = 64
# Running digests kept for this many sessions; an older session's are rebuilt from its partial
# file on its next chunk (blobs.resume_writer), so the cap bounds memory, not correctness.
MAX_DIGESTS = 256


def valid_upload_id(value: str) -> bool:
    """An id this gateway could have issued: 1-64 lowercase hex digits."""
    return 0 < len(value) <= MAX_UPLOAD_ID and all(c in "0123456789abcdef" for c in value)


def _no_session(upload_id: str) -> NotFound:
    shown = upload_id if valid_upload_id(upload_id) else "(not an upload id of this gateway)"
    return NotFound(
        f"No such upload session: {shown}. It was cancelled, or never existed; "
        "start a new resumable upload."
    )


class RecentDigests(OrderedDict[str, Digests]):
    """Running digests by upload id, the oldest dropped past MAX_DIGESTS."""

    def put(self, upload_id: str, digests: Digests) -> None:
        self[upload_id] = digests
        self.move_to_end(upload_id)
        while len(self) > MAX_DIGESTS:
            self.popitem(last=False)


class Sessions:
    """The resumable sessions of one `Store`."""

    def __init__(self, store: Owner) -> None:
        self.store = store
        # Running digests of open sessions, so a chunk need not rehash the partial file.
        self.digests = RecentDigests()

    def create(
        self,
        bucket: str,
        name: str,
        resource: dict[str, Any],
        conditions: Conditions,
        total: int | None,
    ) -> UploadSession:
        from cloudlet.storage.blobs import new_id

        upload_id = new_id()
        with self.store.db.session() as s:
            self.store.get_bucket_in(s, bucket)
            session = UploadSession(
                upload_id=upload_id,
                bucket=bucket,
                name=name,
                resource=resource,
                conditions=conditions.to_json(),
                received=0,
                total=total,
                time_created=utcnow(),
            )
            s.add(session)
        self.store.blobs.upload_path(upload_id).touch()
        return session

    def get(self, upload_id: str) -> UploadSession:
        if not valid_upload_id(upload_id):
            raise _no_session(upload_id)
        with self.store.db.session() as s:
            upload = s.get(UploadSession, upload_id)
            if upload is None:
                raise _no_session(upload_id)
            return upload

    def record_progress(self, upload_id: str, received: int, total: int | None) -> None:
        with self.store.db.session() as s:
            upload = s.get(UploadSession, upload_id)
            if upload is None:
                raise Aborted(f"Upload session {upload_id} was cancelled.")
            upload.received = received
            if total is not None:
                upload.total = total

    def finish(
        self, upload: UploadSession, writer: BlobWriter, fields: dict[str, Any]
    ) -> StoredObject:
        def mark(s: Session, obj: StoredObject) -> None:
            row = s.get(UploadSession, upload.upload_id)
            if row is None:
                raise Aborted(f"Upload session {upload.upload_id} was cancelled.")
            row.received = obj.size
            row.total = obj.size
            row.generation = obj.generation

        digests = writer.digests
        blob_id = writer.commit()
        obj = self.store.commit_blob_id(
            upload.bucket,
            upload.name,
            blob_id,
            digests,
            fields,
            Conditions.from_json(upload.conditions or {}),
            after=mark,
        )
        self.digests.pop(upload.upload_id, None)
        return obj

    def cancel(self, upload_id: str) -> None:
        if not valid_upload_id(upload_id):
            raise _no_session(upload_id)
        with self.store.db.session() as s:
            upload = s.get(UploadSession, upload_id)
            if upload is None:
                raise _no_session(upload_id)
            s.delete(upload)
        self.digests.pop(upload_id, None)
        self.store.blobs.upload_path(upload_id).unlink(missing_ok=True)
