"""Every ```console block in README.md and docs/*.md runs, as Datasette tests its docs.

The convention (docs/architecture.md repeats it for writers):

- A fenced block marked ``console`` is executed; ``text``, ``sh`` and unmarked blocks are not.
  Use ``text`` for anything illustrative that cannot run in a test.
- In a console block, a line starting with ``$ `` is a command; a command whose line ends with
  ``\\`` continues on the next line. Every other line is the output the command is expected to
  print.
- The console blocks of one file run in order, in ONE bash session (so ``cd``, ``export`` and
  ``eval`` carry over), against a fresh gateway of their own (HTTP, HTTPS and the Beam Job API
  on free ports) with a fresh HOME, CLOUDLET_HOME and CLI config, in a directory holding a copy
  of ``examples/``. The docs' default ports 8080, 8443 and 8099 are rewritten to that
  gateway's ports. ``cloudlet start``, ``cloudlet stop`` and ``cloudlet serve`` are skipped:
  the test owns the gateway. gcloud gets a config dir of its own and no prompts; a block that
  uses gcloud or gsutil starts with ``eval "$(cloudlet env-init)"`` as a user's shell would.
  All the commands of a file must finish within TIMEOUT seconds.
- A command must exit 0, unless its expected output has a line starting with ``ERROR:``: then it
  must fail.
- Output is compared loosely: every expected line without a digit in it (and other than
  ``...``) must appear in what the command printed (stdout and stderr), whitespace collapsed.
  Lines with digits (times, ids, numbers) are not compared.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cloudlet.testing import Gateway, free_port

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIPPED = re.compile(r"^cloudlet (start|stop|serve)\b")
DONE = "__cloudlet_docs_command_done__"
TIMEOUT = 900  # seconds for all the commands of one file


@dataclass
class Command:
    line: int  # where it is in the file
    text: str
    expected: list[str] = field(default_factory=list)


def console_commands(markdown: str) -> list[Command]:
    """The commands of every ```console block, in order, with their expected output."""
    commands: list[Command] = []
    inside = False
    continuing = False
    for number, line in enumerate(markdown.splitlines(), 1):
        fence = line.strip()
        if not inside:
            inside = fence == "```console"
            continue
        if fence.startswith("```"):
            inside = continuing = False
        elif continuing:
            commands[-1].text += "\n" + line
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            commands.append(Command(number, line[2:]))
            continuing = line.endswith("\\")
        elif commands and line.strip():
            commands[-1].expected.append(line)
    return commands


def _squash(text: str) -> str:
    return " ".join(text.split())


def check(command: Command, code: int, output: str, name: str) -> None:
    where = f"{name}:{command.line}: $ {command.text}"
    must_fail = any(line.startswith("ERROR:") for line in command.expected)
    if must_fail:
        assert code != 0, f"{where}\nexpected an error, got exit 0:\n{output}"
    else:
        assert code == 0, f"{where}\nexited {code}:\n{output}"
    printed = _squash(output)
    for line in command.expected:
        if line.strip() == "..." or re.search(r"\d", line):
            continue
        assert _squash(line) in printed, f"{where}\nexpected {line!r} in:\n{output}"


def _files_with_blocks() -> list[Path]:
    """The files with at least one command to run (a gateway is started for each)."""
    return [
        p for p in FILES
        if any(not SKIPPED.match(c.text) for c in console_commands(p.read_text()))
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("path", _files_with_blocks(), ids=lambda p: p.name)
def test_console_blocks_run(path: Path, tmp_path: Path) -> None:
    commands = console_commands(path.read_text())
    https = free_port()
    gateway = Gateway.start(tmp_path / "data", env={"CLOUDLET_HTTPS_PORT": str(https)})
    try:
        work = tmp_path / "work"
        shutil.copytree(ROOT / "examples", work / "examples",
                        ignore=shutil.ignore_patterns(".gcloudignore", "__pycache__"))  # fmt: skip
        (tmp_path / "home").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDLET_", "CLOUDSDK_"))}
        env.update(
            HOME=str(tmp_path / "home"),
            CLOUDLET_HOME=str(gateway.data_dir),
            CLOUDLET_CONFIG=str(tmp_path / "config"),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),  # never the user's gcloud settings
            CLOUDSDK_CORE_DISABLE_PROMPTS="1",
            COLUMNS="500",
            NO_COLOR="1",
        )
        ports = {"8080": str(gateway.port), "8443": str(https), "8099": str(gateway.grpc_port)}
        script = ["exec 2>&1", "set -o pipefail"]
        run: list[Command] = []
        for command in commands:
            if SKIPPED.match(command.text):
                continue
            text = re.sub(r"\b(8080|8443|8099)\b", lambda m: ports[m.group(1)], command.text)
            script += [text, f'printf "\\n{DONE} %s\\n" "$?"']
            run.append(command)
        log = tmp_path / "session.log"
        with log.open("w") as sink:
            shell = subprocess.Popen(["bash", "--noprofile", "--norc", "-c", "\n".join(script)],
                                     cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=sink,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            try:
                shell.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(shell.pid, signal.SIGKILL)  # the shell and whatever it runs
                shell.wait()
        parts = re.split(rf"\n{DONE} (\d+)\n", "\n" + log.read_text(errors="replace"))
        results = list(zip(parts[0::2], parts[1::2], strict=False))
        for command, (output, code) in zip(run, results, strict=False):
            check(command, int(code), output.strip("\n"), path.name)
        if len(results) < len(run):
            stuck = run[len(results)]
            raise AssertionError(
                f"{path.name}:{stuck.line}: $ {stuck.text}\ndid not finish within the file's "
                f"{TIMEOUT}s:\n{parts[-1][-3000:]}"
            )
    finally:
        gateway.stop()
        shutil.rmtree(tmp_path / "work" / "examples", ignore_errors=True)


def test_the_parser_reads_prompts_continuations_and_output() -> None:
    text = (
        "```sh\n$ not run\n```\n"
        "```console\n$ echo a \\\n    b\na b\n$ false\nERROR: (x) no\n```\n"
        "```text\n$ illustrative\n```\n"
    )
    commands = console_commands(text)
    assert [c.text for c in commands] == ["echo a \\\n    b", "false"]
    assert commands[0].expected == ["a b"] and commands[1].expected == ["ERROR: (x) no"]
