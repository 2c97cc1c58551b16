"""The README's two set-up commands ("Set up (two commands)") work as a new user types them.

The first command (a venv, pip install of the checkout with the `[dataflow]` extra, `cloudlet
start`) is read from README.md, so the test and the README cannot drift, and runs for real: a
copy of the checkout, a fresh `python3 -m venv`, pip fetching from the package index (through
the user's pip cache), HOME and CLOUDLET_HOME in tmp. Only the port differs from a user's run:
the gateway reads `CLOUDLET_PORT` and `CLOUDLET_GRPC_PORT` (docs/configuration.md), so the
command's text stays the README's and the test never fights over 8080. The gateway it started
must then answer the CLI installed in that venv, and `cloudlet stop` must stop it.

The second command, `./scripts/test`, runs this suite: running it from inside the suite would
be circular. CI runs it (`.ci/run`, on SQLite and then on PostgreSQL), so the test checks that
`.ci/run` runs exactly the README's second command (and its slow tests, `-m slow`), and CI's
green run is that command's test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import platformdirs
import pytest

from cloudlet.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT = 1500  # seconds: pip installs Beam and the Google client libraries


def setup_commands() -> list[str]:
    """The ```sh blocks of README.md's "Set up (two commands)" section, one command each."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up (two commands)", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    return [block.strip() for block in blocks]


def test_the_readme_has_two_set_up_commands_of_one_line_each() -> None:
    commands = setup_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in command for command in commands), commands
    # Debian and Ubuntu refuse `pip install` outside a venv (PEP 668).
    assert commands[0].startswith("python3 -m venv "), commands[0]


def test_ci_runs_the_readmes_second_command() -> None:
    """CI is where `./scripts/test` runs green, on both metadata stores."""
    test_command = setup_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    runs = [line for line in ci if line.strip() and not line.lstrip().startswith("#")]
    sqlite = [line for line in runs if line.strip() == test_command]
    postgres = [
        line for line in runs
        if line.startswith("CLOUDLET_TEST_DATABASE_URL=") and line.endswith(" " + test_command)
    ]  # fmt: skip
    slow = [line for line in runs if line.strip() == test_command + " -m slow"]
    assert len(sqlite) == 1 and len(postgres) == 1 and len(slow) == 1, runs
    assert (ROOT / test_command.removeprefix("./")).stat().st_mode & 0o111


def _checkout_copy(dest: Path) -> Path:
    """What `pip install .` reads of the checkout: the project file, README and sources."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for licence in ROOT.glob("LICEN[CS]E*"):
        shutil.copy2(licence, dest / licence.name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _plain_python(bin_dir: Path) -> Path:
    """A directory holding only `python3`: the interpreter under this test's venv, so the
    README's command finds no cloudlet, pip or uv but the ones it installs itself."""
    bin_dir.mkdir()
    base = Path(getattr(sys, "_base_executable", sys.executable))
    (bin_dir / "python3").symlink_to(base)
    return bin_dir


def _user_pip_config() -> Path | None:
    """The user's own pip.conf, which pip stops reading when HOME moves to tmp."""
    candidates = [Path(platformdirs.user_config_dir("pip")) / "pip.conf",
                  Path.home() / ".pip" / "pip.conf"]  # fmt: skip
    return next((path for path in candidates if path.is_file()), None)


@pytest.mark.slow
def test_the_readmes_install_and_start_command_runs(tmp_path: Path) -> None:
    command = setup_commands()[0]
    repo = _checkout_copy(tmp_path / "cloudlet")
    home = tmp_path / "home"
    home.mkdir()
    data = tmp_path / "data"
    port, grpc_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("CLOUDLET_", "UV_", "PYTHON")) and k != "VIRTUAL_ENV"
    }  # fmt: skip
    user_pip_config = _user_pip_config()
    if user_pip_config and "PIP_CONFIG_FILE" not in env:  # the user's index settings
        env["PIP_CONFIG_FILE"] = str(user_pip_config)
    env.update(
        HOME=str(home),
        PATH=os.pathsep.join([str(_plain_python(tmp_path / "bin")), "/usr/bin", "/bin"]),
        CLOUDLET_HOME=str(data),
        CLOUDLET_PORT=str(port),
        CLOUDLET_GRPC_PORT=str(grpc_port),
        # The user's pip cache (HOME is a fresh one), and less work than a user's first run:
        # no version check, no bytecode for the ~130 packages (the gateway compiles what it
        # imports).
        PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR") or platformdirs.user_cache_dir("pip"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_COMPILE="1",
        PIP_PROGRESS_BAR="off",
    )
    venv_bin = repo / ".venv" / "bin"
    try:
        setup = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", command], cwd=repo, env=env,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
        )  # fmt: skip
        output = setup.stdout + setup.stderr
        assert setup.returncode == 0, f"$ {command}\nexited {setup.returncode}:\n{output[-6000:]}"
        url = f"http://127.0.0.1:{port}"
        assert f"is running at {url}" in output, output[-3000:]

        env["PATH"] = os.pathsep.join([str(venv_bin), env["PATH"]])  # as `. .venv/bin/activate`
        assert httpx.get(f"{url}/api/v1/status", timeout=30).status_code == 200
        listed = subprocess.run(
            ["cloudlet", "projects", "list"], cwd=repo, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stdout + listed.stderr

        stopped = subprocess.run(
            ["cloudlet", "stop"], cwd=repo, env=env, capture_output=True, text=True, timeout=120
        )
        assert stopped.returncode == 0 and "Stopped" in stopped.stderr, stopped.stderr
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/api/v1/status", timeout=5)
    finally:
        if (venv_bin / "cloudlet").exists():  # a gateway left running by a failure above
            subprocess.run(
                [str(venv_bin / "cloudlet"), "stop"], env=env, capture_output=True, timeout=120
            )
