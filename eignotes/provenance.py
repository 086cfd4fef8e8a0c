"""Where a results file came from: the one helper every writer of benchmarks/results/ uses.

`provenance(...)` returns the fields a results file records so that a reader can rerun it: the git commit of the
code, whether tracked files differed from that commit (`dirty`), the command line, the device and the date, and the
environment variables that change what is measured (thread counts, the scale switch). Outside a git checkout (an
installed package) commit and dirty are "unknown".

>>> p = provenance(device="x86_64 CPU, 2 threads", command="python -m eignotes.bench --quick")
>>> sorted(p) == sorted(FIELDS)
True
>>> p["command"], p["device"]
('python -m eignotes.bench --quick', 'x86_64 CPU, 2 threads')
>>> as_markdown({"commit": "abc", "dirty": False, "command": "make bench"})
['- commit: abc', '- dirty: False', '- command: `make bench`']
"""
from __future__ import annotations

import datetime as _dt
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIELDS = ("commit", "dirty", "command", "device", "date", "environment")
# Variables that change a measurement without changing the command line.
_ENV_KEYS = ("EIGNOTES_SCALE", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TRITON_INTERPRET",
             "CUDA_VISIBLE_DEVICES")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit() -> tuple[str, bool | str]:
    """(commit, dirty) of the checkout this package runs from; ("unknown", "unknown") outside one.

    dirty is True when a tracked file differs from the commit (untracked files are not counted: caches and
    build outputs would mark every run dirty)."""
    head = _git("rev-parse", "HEAD")
    if not head:
        return "unknown", "unknown"
    status = _git("status", "--porcelain", "--untracked-files=no")
    return head.strip(), ("unknown" if status is None else bool(status.strip()))


def command_line(module: str | None = None, argv: list[str] | None = None) -> str:
    """The command that produced a file: `python -m MODULE ARGS` when a command line's module and arguments are
    given, otherwise this process's own command line (its script path relative to the repository)."""
    if module is not None:
        return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])
    args = list(sys.argv) or ["python"]
    try:
        args[0] = str(Path(args[0]).resolve().relative_to(REPO))
    except (ValueError, OSError):
        pass
    return shlex.join(["python", *args])


def provenance(*, device: str, command: str | None = None, date: _dt.datetime | None = None) -> dict[str, Any]:
    """The provenance fields of a results file (FIELDS): commit, dirty, command, device, date, environment.

    device: the label the file is written for (`eignotes.config.device_name`); command: as `command_line` returns
    it (default: this process's); date: when the measurement started (default: now, local time, to the second)."""
    commit, dirty = git_commit()
    when = (date or _dt.datetime.now()).isoformat(timespec="seconds")
    env = {k: os.environ[k] for k in _ENV_KEYS if k in os.environ}
    return {"commit": commit, "dirty": dirty, "command": command or command_line(), "device": device,
            "date": when, "environment": env}


def as_markdown(fields: dict[str, Any]) -> list[str]:
    """Markdown bullet lines of provenance fields, for the header of a markdown results file."""
    return [f"- {k}: `{v}`" if k == "command" else f"- {k}: {v}" for k, v in fields.items()]
