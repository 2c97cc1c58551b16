"""`cloudlet storage`: buckets and objects, shaped like `gcloud storage` (and gsutil's habits).

cloudlet storage buckets create gs://muasif      (alias: cloudlet storage mb gs://muasif)
cloudlet storage cp sample.txt gs://muasif/input/sample.txt
cloudlet storage ls -l gs://muasif/input/
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from cloudlet.cli.context import ApiError, CliError, fail, state
from cloudlet.cli.output import emit
from cloudlet.storage.client import GcsClient, GsUrl, local_files, parse_url

__all__ = ["storage_app"]

storage_app = typer.Typer(
    help="Create and manage Cloud Storage buckets and objects.", no_args_is_help=True
)
buckets_app = typer.Typer(
    help="Create, list, describe, update and delete buckets.", no_args_is_help=True
)
storage_app.add_typer(buckets_app, name="buckets")

WILDCARDS = "*?["


def _client() -> GcsClient:
    return GcsClient(state.gateway.url)


def _bucket_url(url: str) -> str:
    parsed = parse_url(url if url.startswith("gs://") else f"gs://{url}")
    if parsed is None or parsed.name.strip("/"):
        fail(f"Invalid bucket URL [{url}]: expected gs://BUCKET.")
    return parsed.bucket


def _human(size: float) -> str:
    for unit in ("B", "kiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.2f}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1024
    return f"{size}"


def bucket_view(b: dict[str, Any]) -> dict[str, Any]:
    """A bucket as `gcloud storage buckets describe` shows it."""
    out: dict[str, Any] = {
        "creation_time": b.get("timeCreated"),
        "default_storage_class": b.get("storageClass"),
        "location": b.get("location"),
        "location_type": b.get("locationType"),
        "metageneration": int(b.get("metageneration", 1)),
        "name": b["name"],
        "storage_url": f"gs://{b['name']}/",
        "update_time": b.get("updated"),
        "versioning_enabled": bool((b.get("versioning") or {}).get("enabled")),
    }
    if b.get("labels"):
        out["labels"] = b["labels"]
    return out


def object_view(o: dict[str, Any]) -> dict[str, Any]:
    """An object as `gcloud storage objects describe` shows it."""
    out: dict[str, Any] = {
        "bucket": o["bucket"],
        "content_type": o.get("contentType"),
        "crc32c_hash": o.get("crc32c"),
        "creation_time": o.get("timeCreated"),
        "generation": o.get("generation"),
        "metageneration": o.get("metageneration"),
        "name": o["name"],
        "size": int(o.get("size", 0)),
        "storage_class": o.get("storageClass"),
        "storage_url": f"gs://{o['bucket']}/{o['name']}#{o.get('generation')}",
        "update_time": o.get("updated"),
    }
    if o.get("md5Hash"):
        out["md5_hash"] = o["md5Hash"]
    if o.get("metadata"):
        out["custom_fields"] = o["metadata"]
    return out


# -- buckets -----------------------------------------------------------------------------------


def _create_bucket(
    url: str, location: str | None, storage_class: str | None, versioning: bool
) -> None:
    from cloudlet.core.errors import InvalidArgument
    from cloudlet.storage.naming import check_bucket_name

    name = _bucket_url(url)
    try:  # validate before contacting the gateway, as gcloud does
        check_bucket_name(name)
    except InvalidArgument as exc:
        fail(exc.message)
    project = state.require_project()
    body: dict[str, Any] = {"name": name}
    if location:
        body["location"] = location
    if storage_class:
        body["storageClass"] = storage_class
    if versioning:
        body["versioning"] = {"enabled": True}
    state.status(f"Creating gs://{name}/...")
    created = _client().create_bucket(project, body)
    if state.format:
        emit(bucket_view(created), state.format)


@buckets_app.command("create")
def buckets_create(
    url: str = typer.Argument(..., metavar="gs://BUCKET", help="Bucket to create."),
    location: str | None = typer.Option(None, "--location", "-l", help="e.g. US, us-central1."),
    default_storage_class: str | None = typer.Option(
        None, "--default-storage-class", "-c", help="STANDARD (default), NEARLINE, ..."
    ),
    enable_versioning: bool = typer.Option(
        False, "--enable-versioning", help="Keep noncurrent object generations."
    ),
) -> None:
    """Create a bucket in the current project (names are global, as on Google Cloud)."""
    _create_bucket(url, location, default_storage_class, enable_versioning)


@storage_app.command("mb")
def make_bucket(
    url: str = typer.Argument(..., metavar="gs://BUCKET"),
    location: str | None = typer.Option(None, "--location", "-l", help="e.g. US, us-central1."),
) -> None:
    """Make a bucket (alias of `buckets create`)."""
    _create_bucket(url, location, None, False)


@buckets_app.command("list")
def buckets_list() -> None:
    """List the project's buckets."""
    project = state.require_project()
    views = [bucket_view(b) for b in _client().list_buckets(project)]
    emit(views, state.format, default="yaml")


@buckets_app.command("describe")
def buckets_describe(url: str = typer.Argument(..., metavar="gs://BUCKET")) -> None:
    """Show a bucket's metadata."""
    emit(bucket_view(_client().get_bucket(_bucket_url(url))), state.format, default="yaml")


@buckets_app.command("update")
def buckets_update(
    url: str = typer.Argument(..., metavar="gs://BUCKET"),
    versioning: bool | None = typer.Option(
        None, "--versioning/--no-versioning", help="Turn object versioning on or off."
    ),
    update_labels: str | None = typer.Option(None, "--update-labels", help="KEY=VALUE,..."),
    remove_labels: str | None = typer.Option(None, "--remove-labels", help="KEY,..."),
    clear_labels: bool = typer.Option(False, "--clear-labels", help="Remove every label."),
    default_storage_class: str | None = typer.Option(None, "--default-storage-class"),
) -> None:
    """Update a bucket's versioning, labels or default storage class."""
    name = _bucket_url(url)
    client = _client()
    body: dict[str, Any] = {}
    if versioning is not None:
        body["versioning"] = {"enabled": versioning}
    labels: dict[str, str | None] = {}
    if clear_labels:
        labels.update({k: None for k in (client.get_bucket(name).get("labels") or {})})
    for key in (remove_labels or "").split(","):
        if key.strip():
            labels[key.strip()] = None
    for pair in (update_labels or "").split(","):
        if pair.strip():
            key, sep, value = pair.partition("=")
            if not sep:
                fail(f"Invalid label [{pair}]: use KEY=VALUE.")
            labels[key.strip()] = value.strip()
    if labels:
        body["labels"] = labels
    if default_storage_class:
        body["storageClass"] = default_storage_class
    if not body:
        fail("Nothing to update: give --versioning, --update-labels, --remove-labels, ...")
    state.status(f"Updating gs://{name}/...")
    updated = client.patch_bucket(name, body)
    if state.format:
        emit(bucket_view(updated), state.format)


def _delete_bucket(url: str) -> None:
    name = _bucket_url(url)
    state.status(f"Removing gs://{name}/...")
    _client().delete_bucket(name)


@buckets_app.command("delete")
def buckets_delete(urls: list[str] = typer.Argument(..., metavar="gs://BUCKET...")) -> None:
    """Delete empty buckets."""
    for url in urls:
        _delete_bucket(url)


@storage_app.command("rb")
def remove_bucket(urls: list[str] = typer.Argument(..., metavar="gs://BUCKET...")) -> None:
    """Remove empty buckets (alias of `buckets delete`)."""
    for url in urls:
        _delete_bucket(url)


# -- object listing helpers ---------------------------------------------------------------------


def _expand(client: GcsClient, url: GsUrl, recursive: bool) -> Iterator[dict[str, Any]]:
    """The objects a URL names: one object, a wildcard, or (recursively) a folder or bucket."""
    if any(c in url.name for c in WILDCARDS):
        cut = min(url.name.find(c) for c in WILDCARDS if c in url.name)
        yield from client.list_objects(url.bucket, prefix=url.name[:cut], glob=url.name)
        return
    if url.name and not url.name.endswith("/"):
        found = client.get_object(url.bucket, url.name)
        if found is not None:
            yield found
            return
        if not recursive:
            return
        yield from client.list_objects(url.bucket, prefix=url.name + "/")
        return
    if recursive:
        yield from client.list_objects(url.bucket, prefix=url.name)


# -- ls and du ----------------------------------------------------------------------------------


@storage_app.command("ls")
def ls(
    urls: list[str] = typer.Argument(None, metavar="[gs://BUCKET[/PREFIX]...]"),
    recursive: bool = typer.Option(False, "--recursive", "-r", "-R", help="List all levels."),
    long: bool = typer.Option(False, "--long", "-l", help="Show size and update time."),
) -> None:
    """List buckets, or the objects and folders under a URL."""
    client = _client()
    if not urls:
        for bucket in client.list_buckets(state.require_project()):
            print(f"gs://{bucket['name']}/")
        return
    count = total = 0
    for raw in urls:
        url = parse_url(raw)
        if url is None:
            fail(f"ls only lists gs:// URLs, not [{raw}].")
        client.get_bucket(url.bucket)
        if any(c in url.name for c in WILDCARDS) or recursive:
            entries: Iterator[dict[str, Any]] = _expand(
                client, url if url.name or not recursive else GsUrl(url.bucket, ""), True
            )
        else:
            prefix = url.name
            if prefix and not prefix.endswith("/"):
                exact = client.get_object(url.bucket, prefix)
                entries = (
                    iter([exact])
                    if exact
                    else client.list_objects(url.bucket, prefix=prefix + "/", delimiter="/")
                )
            else:
                entries = client.list_objects(url.bucket, prefix=prefix, delimiter="/")
        matched = False
        for entry in entries:
            matched = True
            if "prefix" in entry:
                where = f"gs://{url.bucket}/{entry['prefix']}"
                print(f"{'':>10}  {'':20}  {where}" if long else where)
                continue
            where = f"gs://{entry['bucket']}/{entry['name']}"
            size = int(entry.get("size", 0))
            count += 1
            total += size
            if long:
                updated = str(entry.get("updated", ""))[:19] + "Z"
                print(f"{size:>10}  {updated}  {where}")
            else:
                print(where)
        if not matched and url.name:
            fail(f"One or more URLs matched no objects: {raw}")
    if long:
        print(f"TOTAL: {count} objects, {total} bytes ({_human(total)})")


@storage_app.command("du")
def du(
    urls: list[str] = typer.Argument(None, metavar="[gs://BUCKET[/PREFIX]...]"),
    summarize: bool = typer.Option(False, "--summarize", "-s", help="One total per URL."),
    total: bool = typer.Option(False, "--total", "-c", help="Print a grand total."),
    readable: bool = typer.Option(False, "--readable-sizes", "-r", help="Human sizes."),
) -> None:
    """Show the space used by objects under each URL."""
    client = _client()
    targets = (
        [parse_url(u) for u in urls]
        if urls
        else [GsUrl(b["name"]) for b in client.list_buckets(state.require_project())]
    )

    def fmt(n: int) -> str:
        return _human(n) if readable else str(n)

    grand = 0
    for url in targets:
        if url is None:
            fail("du only measures gs:// URLs.")
        client.get_bucket(url.bucket)
        subtotal = 0
        for obj in _expand(client, url, recursive=True):
            size = int(obj.get("size", 0))
            subtotal += size
            if not summarize:
                print(f"{fmt(size):<12}{'  '}gs://{obj['bucket']}/{obj['name']}")
        if summarize:
            print(f"{fmt(subtotal):<12}  {url}")
        grand += subtotal
    if total:
        print(f"{fmt(grand):<12}  total")


# -- cp, mv, cat, rm ----------------------------------------------------------------------------


@dataclass
class Job:
    source: str | GsUrl | Path
    target: GsUrl | Path
    size: int

    def describe(self) -> str:
        def show(x: str | GsUrl | Path) -> str:
            return str(x) if isinstance(x, GsUrl) else f"file://{x}"

        return f"Copying {show(self.source)} to {show(self.target)}"


def _plan(client: GcsClient, sources: list[str], dest: str, recursive: bool) -> list[Job]:
    dst_url = parse_url(dest)
    many = len(sources) > 1 or recursive or any(c in s for s in sources for c in WILDCARDS)
    jobs: list[Job] = []
    for raw in sources:
        src_url = parse_url(raw)
        if src_url is None:
            path = Path(raw)
            if not path.exists():
                fail(f"The following URLs matched no objects or files: file://{path}")
            if path.is_dir():
                if not recursive:
                    fail(f"Omitting directory file://{path}. Use -r to copy directories.")
                files = [(f, f.relative_to(path.parent).as_posix()) for f in local_files(path)]
            else:
                files = [(path, path.name)]
            for file, rel in files:
                if dst_url is None:
                    fail("Copying local files to local files is not a storage command; use cp.")
                if many or not dst_url.name or dst_url.name.endswith("/"):
                    name = dst_url.name.rstrip("/") + "/" + rel if dst_url.name else rel
                    name = name.lstrip("/")
                else:
                    name = dst_url.name
                jobs.append(Job(file, GsUrl(dst_url.bucket, name), file.stat().st_size))
            continue
        objects = list(_expand(client, src_url, recursive))
        if not objects:
            fail(f"The following URLs matched no objects or files: {raw}")
        base = src_url.name
        if any(c in base for c in WILDCARDS):
            base = base[: min(base.find(c) for c in WILDCARDS if c in base)]
        base = base.rsplit("/", 1)[0] + "/" if "/" in base.rstrip("/") else ""
        for obj in objects:
            rel = obj["name"][len(base) :] if obj["name"].startswith(base) else obj["name"]
            if len(objects) == 1 and not recursive:
                rel = obj["name"].rsplit("/", 1)[-1]
            src = GsUrl(obj["bucket"], obj["name"])
            size = int(obj.get("size", 0))
            if dst_url is None:
                target = Path(dest)
                if many or target.is_dir() or dest.endswith(os.sep):
                    target = target / rel
                jobs.append(Job(src, target, size))
            else:
                if many or not dst_url.name or dst_url.name.endswith("/"):
                    name = (dst_url.name.rstrip("/") + "/" + rel) if dst_url.name else rel
                else:
                    name = dst_url.name
                jobs.append(Job(src, GsUrl(dst_url.bucket, name), size))
    return jobs


def _run_job(client: GcsClient, job: Job, progress: Callable[[int], None]) -> None:
    if isinstance(job.source, Path):
        assert isinstance(job.target, GsUrl)
        client.upload(job.source, job.target, progress=progress)
    elif isinstance(job.source, GsUrl) and isinstance(job.target, GsUrl):
        client.rewrite(job.source, job.target)
        progress(job.size)
    elif isinstance(job.source, GsUrl):
        assert isinstance(job.target, Path)
        job.target.parent.mkdir(parents=True, exist_ok=True)
        partial = job.target.with_name(job.target.name + ".cloudlet-partial")
        try:
            with partial.open("wb") as f:
                client.download(job.source, f, progress)
            os.replace(partial, job.target)
        finally:
            partial.unlink(missing_ok=True)


def _copy(sources: list[str], dest: str, recursive: bool, jobs_count: int) -> list[Job]:
    client = _client()
    jobs = _plan(client, sources, dest, recursive)
    total = sum(j.size for j in jobs)
    for job in jobs:
        state.status(job.describe())
    show_bar = state.show_progress()
    lock = threading.Lock()
    errors: list[str] = []
    with _progress(show_bar, total) as advance:

        def run(job: Job) -> None:
            def step(n: int) -> None:
                with lock:
                    advance(n)

            try:
                _run_job(client, job, step)
            except (CliError, ApiError, OSError) as exc:
                errors.append(f"{job.describe()}: {exc}")

        if len(jobs) == 1:
            run(jobs[0])
        else:
            with ThreadPoolExecutor(max(1, min(jobs_count, len(jobs)))) as pool:
                list(pool.map(run, jobs))
    client.close()
    if errors:
        fail("; ".join(errors))
    state.status(f"  Completed files {len(jobs)}/{len(jobs)} | {_human(total)}")
    return jobs


@contextlib.contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[[int], None]]:
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True, quiet=not state.output_enabled),
        transient=True,
    ) as bar:
        task = bar.add_task("Copying", total=total or 1)
        yield lambda n: bar.advance(task, n)


@storage_app.command("cp")
def cp(
    args: list[str] = typer.Argument(..., metavar="SOURCE... DESTINATION"),
    recursive: bool = typer.Option(False, "--recursive", "-r", "-R", help="Copy folders."),
    parallel: int = typer.Option(8, "--parallel", help="Files copied at once."),
) -> None:
    """Copy files and objects: local→gs://, gs://→local and gs://→gs://."""
    if len(args) < 2:
        fail("cp needs at least one SOURCE and a DESTINATION.")
    _copy(args[:-1], args[-1], recursive, parallel)


@storage_app.command("mv")
def mv(
    args: list[str] = typer.Argument(..., metavar="SOURCE... DESTINATION"),
    recursive: bool = typer.Option(False, "--recursive", "-r", "-R", help="Move folders."),
) -> None:
    """Move (copy, then delete the source) files and objects."""
    if len(args) < 2:
        fail("mv needs at least one SOURCE and a DESTINATION.")
    jobs = _copy(args[:-1], args[-1], recursive, 8)
    client = _client()
    for job in jobs:
        if isinstance(job.source, GsUrl):
            state.status(f"Removing {job.source}...")
            client.delete_object(job.source.bucket, job.source.name)
        elif isinstance(job.source, Path):
            job.source.unlink()


@storage_app.command("cat")
def cat(urls: list[str] = typer.Argument(..., metavar="gs://BUCKET/OBJECT...")) -> None:
    """Print objects' contents to stdout."""
    client = _client()
    out = sys.stdout.buffer
    for raw in urls:
        url = parse_url(raw)
        if url is None or not url.name:
            fail(f"cat needs gs://BUCKET/OBJECT, not [{raw}].")
        objects = list(_expand(client, url, recursive=False))
        if not objects:
            fail(f"No URLs matched: {raw}")
        for obj in objects:
            client.download(GsUrl(obj["bucket"], obj["name"]), out)
    out.flush()


@storage_app.command("rm")
def rm(
    urls: list[str] = typer.Argument(..., metavar="gs://BUCKET/OBJECT..."),
    recursive: bool = typer.Option(
        False, "--recursive", "-r", "-R", help="Delete folders; gs://BUCKET also deletes it."
    ),
) -> None:
    """Delete objects (and, with -r on gs://BUCKET, the bucket)."""
    client = _client()
    for raw in urls:
        url = parse_url(raw)
        if url is None:
            fail(f"rm only deletes gs:// URLs, not [{raw}].")
        if not url.name and not recursive:
            fail(f"[{raw}] is a bucket: use -r to delete it with its objects, or rb if empty.")
        name = url.name[:-2] if url.name.endswith("**") and not recursive else url.name
        objects = list(_expand(client, GsUrl(url.bucket, name), recursive or "**" in url.name))
        if not objects and url.name:
            fail(f"No URLs matched: {raw}")
        for obj in objects:
            state.status(f"Removing gs://{obj['bucket']}/{obj['name']}...")
            try:
                client.delete_object(obj["bucket"], obj["name"])
            except ApiError as exc:
                if exc.code != 404:
                    raise
        if not url.name and recursive:
            state.status(f"Removing gs://{url.bucket}/...")
            client.delete_bucket(url.bucket)
