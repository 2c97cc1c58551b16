"""core/sandbox.py in process: the mode a setting picks, the argv each mode builds, and the
data dir's modes under uid switching. The end-to-end proofs (a hostile app, a snooping DoFn)
are tests/appengine/test_isolation.py and tests/dataflow/test_isolation.py."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cloudlet.core.paths import DataDir
from cloudlet.core.sandbox import Launch, Sandbox, SandboxUnavailable, Workload, others_can_reach
from cloudlet.dataflow.files import read_json


def test_an_unknown_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="auto, uid, bwrap, none"):
        Sandbox.choose("chroot", DataDir(tmp_path))


def test_none_runs_as_today_and_says_so(tmp_path: Path) -> None:
    sandbox = Sandbox.choose("none", DataDir(tmp_path))
    launch = sandbox.wrap(["gunicorn", "main:app"], Workload("p", tmp_path))
    assert launch == Launch(["gunicorn", "main:app"])
    assert launch.popen_kwargs() == {} and launch.exec_argv() == ["gunicorn", "main:app"]
    assert sandbox.warning is not None and "NOT isolated" in sandbox.warning
    assert sandbox.status()["warning"] == sandbox.warning


def around(argv: list[str], value: str) -> list[str]:
    """The option before the first `value` in argv, `value`, and the word after it."""
    at = argv.index(value)
    return argv[at - 1 : at + 2]


def test_bwrap_hides_the_data_dir_after_binding_tmp(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    source, venv, job = data.apps / "p/default/v1", data.venvs / "abc", data.jobs / "j1"
    sandbox = Sandbox("bwrap", data, "test", "/usr/bin/bwrap")
    app = sandbox.wrap(["gunicorn"], Workload("p", source, read_only=(source, venv)))
    argv = app.argv
    assert argv[0] == "/usr/bin/bwrap" and argv[-2:] == ["--", "gunicorn"]
    assert "--unshare-pid" in argv and around(argv, "--cap-drop")[1:] == ["--cap-drop", "ALL"]
    # /tmp first (the data dir may be under it), then the tmpfs over the data dir, then the
    # workload's own paths bound back into it.
    tmp, hide = argv.index("/tmp"), argv.index(str(data.root))
    assert argv[tmp - 1] == "--bind" and argv[hide - 1] == "--tmpfs" and tmp < hide
    for path in (source, venv):
        at = argv.index(str(path))
        assert argv[at - 1] == "--ro-bind" and at > hide
    assert app.env == {} and app.user is None
    executor = sandbox.wrap(["python"], Workload("p", job, read_write=(job,), job=True))
    assert around(executor.argv, "/tmp") == ["--bind", "/tmp", "/tmp"]
    assert around(executor.argv, str(job)) == ["--bind", str(job), str(job)]
    own = data.root / "sandbox" / "p"
    assert executor.env == {"UV_CACHE_DIR": str(own / "uv-cache"),
                            "CLOUDLET_JOB_VENVS": str(own / "venvs")}  # fmt: skip


def test_reachability_follows_every_parent() -> None:
    base = Path(tempfile.mkdtemp(prefix="cloudlet-reach-", dir="/tmp"))  # pytest's are 0700
    try:
        os.chmod(base, 0o755)
        closed = base / "closed"
        (closed / "inner").mkdir(parents=True)
        target = closed / "inner" / "python"
        target.write_text("")
        os.chmod(target, 0o755)
        os.chmod(closed / "inner", 0o755)
        os.chmod(closed, 0o700)
        assert not others_can_reach(target)
        os.chmod(closed, 0o711)
        assert others_can_reach(target)
        os.chmod(target, 0o700)
        assert not others_can_reach(target)
    finally:
        shutil.rmtree(base)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching uids needs root")
def test_uid_mode_owns_the_data_dir_and_drops_to_the_project_uid(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data").ensure()
    data.database.write_text("secret")
    (data.tls).mkdir()
    source = data.apps / "p" / "default" / "v1"
    source.mkdir(parents=True)
    (source / "main.py").write_text("app = None\n")
    sandbox = Sandbox("uid", data, "test")
    sandbox.prepare()
    assert stat.S_IMODE(data.root.stat().st_mode) == 0o711
    assert stat.S_IMODE(data.database.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.tls.stat().st_mode) == 0o700
    assert stat.S_IMODE(data.job_staging.stat().st_mode) == 0o700
    sandbox.grant_source(source, "p")
    uid, gid = sandbox.ids("p")
    assert uid >= 1_900_000_000 and sandbox.ids("q")[0] != uid and sandbox.ids("p") == (uid, gid)
    main = source / "main.py"
    assert (main.stat().st_uid, main.stat().st_gid) == (0, gid)
    assert stat.S_IMODE(main.stat().st_mode) == 0o640
    launch = sandbox.wrap(["id", "-u"], Workload("p", source))
    assert launch.popen_kwargs() == {"user": uid, "group": gid, "extra_groups": []}
    # The privilege-dropping prefix for spawners without user= (uvloop).
    out = subprocess.run(launch.exec_argv(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(uid)
    assert sys.executable == launch.exec_argv()[0]


def test_the_supervisor_never_reads_a_job_file_through_a_link(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"state": "JOB_STATE_DONE"}')
    link = tmp_path / "result.json"
    link.symlink_to(secret)
    assert read_json(secret) == {"state": "JOB_STATE_DONE"}
    assert read_json(link) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="the masks are for a gateway that runs as root")
def test_as_root_bwrap_hides_roots_home_but_the_pythons_it_runs(tmp_path: Path) -> None:
    import pwd

    home = Path(pwd.getpwuid(0).pw_dir).resolve()
    argv = (
        Sandbox("bwrap", DataDir(tmp_path), "test", "/usr/bin/bwrap")
        .wrap(["python"], Workload("p", tmp_path))
        .argv
    )
    assert argv[argv.index(str(home)) - 1] == "--tmpfs"
    if Path("/etc/shadow").exists():
        assert around(argv, "/etc/shadow")[0] == "/dev/null"
    base = Path(sys.base_prefix).resolve()
    if base.is_relative_to(home):  # e.g. pyenv's Python under /root: bound back, read-only
        assert around(argv, str(base)) == ["--ro-bind", str(base), str(base)]
    assert argv.index(str(home)) < argv.index(str(tmp_path))  # before the data dir's tmpfs
