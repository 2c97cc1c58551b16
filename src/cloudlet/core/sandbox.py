"""Isolation of workloads from the gateway's data dir: App Engine instances, Dataflow job
executors and their SDK workers run code the gateway did not write.

What a workload must not do: read the data dir's secrets (the metadata database, which holds
the access-token signing key; TLS keys; other projects' object blobs, sources, logs and jobs),
nor write its own deployed source. What it must still do: reach the gateway over loopback,
read its venv and source and the Python interpreter behind them, write /tmp, and (jobs) its
job dir and local files the user named.

Three mechanisms, picked by the `sandbox` setting (auto | uid | bwrap | none):

- ``uid`` (the gateway runs as root): each project's workloads run as a uid and gid of their
  own (allocated from `UID_BASE` upward and kept in `sandbox/uids.json`; no passwd entry is
  made). The data dir is arranged so that uid reaches only what it needs: its source read-only
  (root-owned, group-readable), the venvs (root-owned, world-readable, read-only), its jobs'
  dirs and its own `sandbox/PROJECT` dir (writable); the database, blobs, TLS keys, logs and
  builds are root's alone (0600/0700). Processes are started with subprocess's
  ``user=``/``group=``/``extra_groups=[]``. It needs every path a workload runs from to be
  reachable by other users: the data dir, the gateway's interpreter and venv, and the app
  interpreters (a Python under a 0700 home such as /root/.pyenv is not).
- ``bwrap`` (bubblewrap, https://github.com/containers/bubblewrap): the workload sees the
  machine read-only but /tmp, its own /proc (a new pid namespace), a tmpfs where the data dir
  was, and bound back into it only its source and venv (read-only) and its job and
  `sandbox/PROJECT` dirs (read-write); every capability is dropped. When the gateway runs as
  root the workload is a capability-less root, so root's home (but the Pythons it runs) and
  the shadow files are hidden too.
- ``none``: as the gateway's own user, with a warning at start-up and in `cloudlet status`.

``auto`` picks uid when the gateway is root and uid's paths are reachable, else bwrap when it
is installed and works here (probed once; it needs user namespaces when not root), else none.
docs/security.md says what holds in each mode.

This module builds argument lists and sets file modes; it imports no subsystem.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudlet.core.paths import DataDir, write_atomic
from cloudlet.core.state import Slot

__all__ = [
    "MODES",
    "SANDBOX",
    "UID_BASE",
    "Launch",
    "Sandbox",
    "SandboxUnavailable",
    "Workload",
    "others_can_reach",
    "uid_problem_of",
]

logger = logging.getLogger(__name__)

MODES = ("auto", "uid", "bwrap", "none")
# Project uids and gids: far above login users, system users and the usual subuid ranges
# (100000 + 65536·n), below 2^31 (which some tools mishandle).
UID_BASE = 1_900_000_000


class SandboxUnavailable(Exception):
    """The `sandbox` setting names a mechanism this machine or user cannot provide."""


@dataclass(frozen=True)
class Workload:
    """What one sandboxed process needs to see, beyond the read-only system."""

    project: str
    cwd: Path
    read_only: tuple[Path, ...] = ()
    read_write: tuple[Path, ...] = ()
    job: bool = False  # a Dataflow executor: builds job venvs with uv in its project's dir


@dataclass(frozen=True)
class Launch:
    """How to start a workload: its argv, environment additions, and the uid/gid to run as."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: int | None = None
    group: int | None = None

    def popen_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for subprocess.Popen (with `argv`)."""
        if self.user is None:
            return {}
        return {"user": self.user, "group": self.group, "extra_groups": []}

    def exec_argv(self) -> list[str]:
        """`argv` for a spawner that cannot switch users itself (uvloop's subprocess_exec,
        which the gateway's event loop is, refuses user=/group=/extra_groups=): the gateway's
        own interpreter, still root, drops to the uid and gid and then execs `argv`."""
        if self.user is None:
            return list(self.argv)
        return [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _DROP,
            str(self.user),
            str(self.group),
            *self.argv,
        ]


# setgroups([]) first (it needs root), then the gid, then the uid: no way back. Everything
# it imports comes first: the gateway's standard library may be out of the uid's reach.
_DROP = (
    "import os, sys, warnings\n"
    "uid, gid = int(sys.argv[1]), int(sys.argv[2])\n"
    "os.setgroups([])\n"
    "os.setresgid(gid, gid, gid)\n"
    "os.setresuid(uid, uid, uid)\n"
    "os.execvp(sys.argv[3], sys.argv[3:])\n"
)


def others_can_reach(path: Path, *, listable: bool = False) -> bool:
    """Whether a user that is neither owner nor group could reach `path` (o+x on every
    ancestor, o+r on the path itself; o+rx when it is a directory to be listed)."""
    try:
        real = path.resolve(strict=True)
        for parent in reversed(real.parents):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        mode = os.stat(real).st_mode
    except OSError:
        return False
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) or listable else 0)
    return mode & need == need


def _probe_bwrap(bwrap: str) -> str | None:
    """None when bubblewrap can build our sandbox here, else why not."""
    argv = [bwrap, *_BWRAP_BASE, "--", sys.executable, "-c", "pass"]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if result.returncode != 0:
        return (result.stderr or result.stdout).strip() or f"exit code {result.returncode}"
    return None


# Every bwrap sandbox: its own pid and IPC namespaces (no signals to, nor /proc views of,
# processes outside), the machine read-only, fresh /dev and /proc, no capabilities.
_BWRAP_BASE = (
    "--unshare-pid",
    "--unshare-ipc",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "--cap-drop",
    "ALL",
)


def uid_problem_of(data: DataDir) -> str | None:
    """None when per-project uids can run workloads here, else why not."""
    if os.geteuid() != 0:
        return "the gateway does not run as root"
    needed = {
        "the data dir": data.root,
        "the gateway's Python": Path(sys.executable),
        "the gateway's environment": Path(sys.prefix),
        "the gateway's standard library": Path(sys.base_prefix),
    }
    for what, path in needed.items():
        if not others_can_reach(path):
            return f"{what} ({path}) is not reachable by other users"
    return None


class Sandbox:
    """The isolation the gateway gives its workloads; `Sandbox.choose` picks it."""

    def __init__(self, mode: str, data: DataDir, reason: str = "", bwrap: str | None = None):
        self.mode = mode
        self.data = data
        self.reason = reason  # why this mode (for the log and `cloudlet status`)
        self.bwrap = bwrap
        self._lock = threading.Lock()
        self._granted: set[Path] = set()

    @classmethod
    def start(cls, setting: str, data: DataDir) -> Sandbox:
        """Choose the mode (Sandbox.choose), arrange the data dir for it, and say in the
        gateway's log which mode it is, or warn that workloads are not isolated."""
        sandbox = cls.choose(setting, data)
        sandbox.prepare()
        if sandbox.warning:
            logger.warning("%s", sandbox.warning)
        else:
            logger.info("workloads are sandboxed: %s (%s)", sandbox.mode, sandbox.reason)
        return sandbox

    @classmethod
    def choose(cls, setting: str, data: DataDir) -> Sandbox:
        """The mode the `sandbox` setting asks for; raises SandboxUnavailable when it names
        one that cannot work here. `auto` falls back, saying why."""
        setting = (setting or "auto").strip().lower()
        if setting not in MODES:
            raise SandboxUnavailable(f"sandbox must be one of {', '.join(MODES)}, not {setting!r}")
        if setting == "none":
            return cls("none", data, "sandbox=none")
        uid_problem = uid_problem_of(data) if setting in ("auto", "uid") else None
        if setting == "uid" and uid_problem:
            raise SandboxUnavailable(f"sandbox=uid cannot work: {uid_problem}.")
        if setting == "uid" or (setting == "auto" and uid_problem is None):
            return cls(
                "uid", data, "the gateway runs as root" if setting == "auto" else "sandbox=uid"
            )
        bwrap = shutil.which("bwrap")
        bwrap_problem = _probe_bwrap(bwrap) if bwrap else "bwrap is not installed"
        if setting == "bwrap":
            if bwrap_problem:
                raise SandboxUnavailable(f"sandbox=bwrap cannot work: {bwrap_problem}")
            return cls("bwrap", data, "sandbox=bwrap", bwrap)
        if bwrap_problem is None:
            why = f"uid switching is out ({uid_problem})" if os.geteuid() == 0 else "not root"
            return cls("bwrap", data, f"bubblewrap works here; {why}", bwrap)
        return cls(
            "none", data, f"no uid switching ({uid_problem}) and no bubblewrap ({bwrap_problem})"
        )

    # -- what to tell the user ---------------------------------------------------------------

    @property
    def isolated(self) -> bool:
        return self.mode != "none"

    @property
    def warning(self) -> str | None:
        if self.isolated:
            return None
        return (
            "Workloads are NOT isolated: App Engine apps and Dataflow jobs run as the gateway's "
            f"user and can read its data dir ({self.data.root}: the metadata database with the "
            f"token-signing key, other projects' objects, TLS keys) ({self.reason}). Run the "
            "gateway as root, or install bubblewrap (apt-get install bubblewrap); see "
            "docs/security.md."
        )

    def status(self) -> dict[str, Any]:
        """The sandbox part of /api/v1/status."""
        out: dict[str, Any] = {"mode": self.mode, "reason": self.reason}
        if self.warning:
            out["warning"] = self.warning
        return out

    # -- the data dir ------------------------------------------------------------------------

    def project_dir(self, project: str) -> Path:
        """The directory a project's jobs may write (their venvs, uv's cache), made on first
        use; in uid mode owned by the project's uid (what is inside, that uid made)."""
        path = self.data.sandbox / project
        if path in self._granted:
            return path
        for sub in (path, path / "venvs", path / "uv-cache"):
            sub.mkdir(parents=True, exist_ok=True)
            if self.mode == "uid":
                uid, gid = self.ids(project)
                os.chown(sub, uid, gid, follow_symlinks=False)
                os.chmod(sub, 0o700)
        self._granted.add(path)
        return path

    def prepare(self) -> None:
        """Arrange the data dir for this mode at start-up (uid mode: modes and owners)."""
        if self.mode != "uid":
            return
        data = self.data
        root = data.root
        # The entries a workload may traverse (never list); everything else is the gateway's.
        shared = (data.apps, data.venvs, data.jobs, data.sandbox)
        for path in shared:
            path.mkdir(exist_ok=True)
        for path in (data.blobs, data.builds, data.logs, data.run, data.tls, data.tmp):
            path.mkdir(mode=0o700, exist_ok=True)  # before their owners make them, 0755
        data.job_staging.mkdir(mode=0o700, exist_ok=True)  # the Beam Job API's
        os.chmod(root, 0o711)
        for entry in root.iterdir():
            if entry.is_symlink():
                continue
            if entry in shared:
                os.chmod(entry, 0o711)
            elif entry == data.pid_file:  # where the gateway listens: `cloudlet status`
                os.chmod(entry, 0o644)
            else:
                os.chmod(entry, 0o700 if entry.is_dir() else 0o600)
        jobs = self.data.jobs
        if jobs.is_dir():
            for job in jobs.iterdir():
                if job.is_dir() and not job.is_symlink() and os.lstat(job).st_uid == 0:
                    os.chmod(job, 0o700)  # a project uid owns the jobs it ran
                    if job != data.job_staging:
                        for child in job.iterdir():  # pipeline.pb, spec.json, artifacts/
                            if not child.is_symlink():
                                os.chmod(child, 0o700 if child.is_dir() else 0o600)
        apps = self.data.apps
        if apps.is_dir():
            for entry in apps.iterdir():
                if not entry.is_symlink():
                    os.chmod(entry, 0o700 if entry.is_dir() else 0o600)
        for entry in self.data.sandbox.iterdir():
            if entry == self.data.sandbox_uids:
                os.chmod(entry, 0o600)

    def ids(self, project: str) -> tuple[int, int]:
        """The uid and gid of a project's workloads (uid mode), allocated on first use."""
        table_path = self.data.sandbox_uids
        with self._lock:
            try:
                table: dict[str, int] = json.loads(table_path.read_text())
            except (OSError, ValueError):
                table = {}
            if project not in table:
                taken = set(table.values())
                candidate = UID_BASE
                while candidate in taken or _known_id(candidate):
                    candidate += 1
                table[project] = candidate
                write_atomic(table_path, json.dumps(table, indent=1), private=True)
            return table[project], table[project]

    def grant_source(self, source: Path, project: str) -> None:
        """Make a deployed version's source readable, and only readable, by its project's
        workloads (uid mode); bwrap binds it read-only instead. Idempotent, once per path."""
        if self.mode != "uid" or source in self._granted:
            return
        _, gid = self.ids(project)
        apps = self.data.apps
        with contextlib.suppress(ValueError):
            for parent in source.relative_to(apps).parents:
                if parent != Path("."):  # apps/PROJECT, apps/PROJECT/SERVICE: traverse only
                    os.chown(apps / parent, 0, gid)
                    os.chmod(apps / parent, 0o710)
        _own_tree(source, 0, gid, 0o750, 0o640)
        self._granted.add(source)

    def grant_job(self, job_dir: Path, project: str) -> None:
        """Hand a job's dir to its project's workloads (uid mode): its executor writes
        its progress there."""
        if self.mode == "uid":
            uid, gid = self.ids(project)
            _own_tree(job_dir, uid, gid, 0o700, 0o600)

    # -- starting workloads ------------------------------------------------------------------

    def wrap(self, argv: list[str], workload: Workload) -> Launch:
        """How to start `argv` as `workload` in this mode."""
        if self.mode == "none":
            return Launch(list(argv))
        env, writable = {}, workload.read_write
        if workload.job:  # uv's default cache and the data dir's venvs/ are out of reach
            own = self.project_dir(workload.project)
            env = {"UV_CACHE_DIR": str(own / "uv-cache"), "CLOUDLET_JOB_VENVS": str(own / "venvs")}
            writable = (*writable, own)
        if self.mode == "uid":
            uid, gid = self.ids(workload.project)
            return Launch(list(argv), env, uid, gid)
        assert self.bwrap is not None
        args = [self.bwrap, *_BWRAP_BASE]
        if os.geteuid() == 0:
            args += _root_masks(workload)
        args += ["--bind", "/tmp", "/tmp"]  # the machine's: local files a user hands over
        args += ["--tmpfs", str(self.data.root)]  # after /tmp: the data dir may be under it
        for path in workload.read_only:
            args += ["--ro-bind", str(path), str(path)]
        for path in writable:
            args += ["--bind", str(path), str(path)]
        args += ["--chdir", str(workload.cwd), "--", *argv]
        return Launch(args, env)

    def interpreter_ok(self, path: str) -> bool:
        """Whether a workload could run a venv made from this interpreter (uid mode needs
        it reachable by other users)."""
        return self.mode != "uid" or others_can_reach(Path(path))

    def signal_target(self, pid: int) -> int:
        """The process to send a graceful SIGTERM to: the workload itself, not bubblewrap
        (which does not forward signals) around it."""
        if self.mode != "bwrap":
            return pid
        import psutil

        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            while proc.name() == "bwrap":
                children = proc.children()
                if len(children) != 1:
                    break
                proc = children[0]
            return proc.pid
        return pid


def _root_masks(workload: Workload) -> list[str]:
    """For a gateway that runs as root: its capability-less root workloads still own every
    root-owned file, so hide the shadow password files and root's home, binding back into the
    home only the Pythons the workload runs (the gateway's own, its sys.path, and the
    interpreter behind each venv it is given)."""
    import pwd

    args: list[str] = []
    for secret in ("/etc/shadow", "/etc/gshadow"):
        if os.path.exists(secret):
            args += ["--ro-bind", "/dev/null", secret]
    home = Path(pwd.getpwuid(0).pw_dir).resolve()
    if home == Path("/") or not home.is_dir():
        return args
    needed = {Path(sys.prefix), Path(sys.base_prefix), *(Path(p) for p in sys.path if p)}
    for path in workload.read_only:
        needed.update(_venv_pythons(path))
    keep: list[Path] = []
    for path in sorted({p.resolve() for p in needed if p.exists()}):
        inside = path != home and path.is_relative_to(home) and path.is_dir()
        if inside and not any(path.is_relative_to(kept) for kept in keep):
            keep.append(path)
    args += ["--tmpfs", str(home)]
    for path in keep:
        args += ["--ro-bind", str(path), str(path)]
    return args


def _venv_pythons(venv: Path) -> set[Path]:
    """The installation a venv's interpreter belongs to (pyvenv.cfg's `home` is its bin dir)."""
    found: set[Path] = set()
    with contextlib.suppress(OSError):
        for line in (venv / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                found.add(Path(value.strip()).resolve().parent)
    with contextlib.suppress(OSError):
        found.add((venv / "bin" / "python").resolve(strict=True).parents[1])
    return found


def _known_id(value: int) -> bool:
    import grp
    import pwd

    try:
        pwd.getpwuid(value)
        return True
    except KeyError:
        pass
    try:
        grp.getgrgid(value)
        return True
    except KeyError:
        return False


def _own_tree(root: Path, uid: int, gid: int, dir_mode: int, file_mode: int) -> None:
    """chown every entry under `root` (never following links), directories to `dir_mode`,
    files to `file_mode` (plus the same execute bits where the owner could execute)."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, gid, follow_symlinks=False)
        os.chmod(dirpath, dir_mode)
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                os.chown(path, uid, gid, follow_symlinks=False)
            elif stat.S_ISREG(st.st_mode):
                os.chown(path, uid, gid)
                execute = (dir_mode & 0o111) if st.st_mode & stat.S_IXUSR else 0
                os.chmod(path, file_mode | execute)


# The gateway's sandbox, chosen at start-up before any subsystem starts (cloudlet.app.gateway).
SANDBOX: Slot[Sandbox] = Slot("core.sandbox")
