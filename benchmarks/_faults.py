"""Fault injection into mlembed runs, for ``reliability.py``: run a verb in a child process, SIGKILL it at a
random moment, and check that its output path holds the previous output or the complete new one (never a partial
file), what temporaries the kill left, and that a rerun gives the uninterrupted run's output; plus an
address-space cap for a child (``ulimit -v``) and the one line of an error a child printed.
"""

from __future__ import annotations

import hashlib
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import MLEMBED


def digest(path: Path) -> str:
    """Hash of a file, or of every file (name + content) under a folder; ``absent`` when missing."""
    if not path.exists():
        return "absent"
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
    for f in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []:
        h.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def run_mlembed(args: list[str], env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """``mlembed ARGS`` in a child process, its output captured as text."""
    return subprocess.run(MLEMBED + args, capture_output=True, text=True, env=env, **kw)


def stray(folder: Path) -> list[str]:
    """Hidden temporary files or staging folders a killed run left (kill -9 runs no cleanup)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def kill_trials(
    name: str,
    command: list[str],
    out: Path,
    previous: Path,
    reference: str,
    seconds: float,
    trials: int,
    rng: random.Random,
    rerun: list[str],
    env: dict | None = None,
    workdirs: tuple[Path, ...] = (),
    setup: Callable[[], None] | None = None,
    measure: Callable[[Path], str] | None = None,
) -> dict:
    """``trials`` times: put ``previous`` at ``out`` (or call ``setup``), start ``command``, SIGKILL it after a
    random delay, check ``out`` holds the previous or the complete new output, then ``rerun`` and compare to
    ``reference``; outputs are compared by ``measure`` (default: :func:`digest`)."""
    measure = measure or digest
    stats = {
        "trials": trials,
        "killed_mid_run": 0,
        "finished_before_kill": 0,
        "partial_outputs": 0,
        "rerun_identical": 0,
        "rerun_failed": 0,
        "stray_after_kill": 0,
        "stray_temporaries": 0,
        "tracebacks": 0,
    }
    for t in range(trials):
        for w in workdirs:
            shutil.rmtree(w, ignore_errors=True)
        if setup is not None:
            setup()
        else:
            if out.exists():
                shutil.rmtree(out) if out.is_dir() else out.unlink()
            if previous.is_dir():
                shutil.copytree(previous, out)
            else:
                shutil.copy(previous, out)
        before = measure(out)
        delay = rng.uniform(0.1, 0.95) * seconds
        proc = subprocess.Popen(MLEMBED + command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            stats["killed_mid_run"] += 1
        else:
            stats["finished_before_kill"] += 1
        proc.wait()
        after = measure(out)
        if after not in (before, reference):
            stats["partial_outputs"] += 1
            print(f"{name} trial {t}: PARTIAL output after kill at {delay:.1f}s", flush=True)
        stats["stray_after_kill"] += len(stray(out.parent))
        done = run_mlembed(rerun, env=env)
        stats["stray_temporaries"] += len(stray(out.parent))  # what the rerun did not clean up
        stats["tracebacks"] += "Traceback" in done.stderr
        if done.returncode != 0:
            stats["rerun_failed"] += 1
            print(f"{name} trial {t}: rerun failed: {done.stderr[-500:]}", flush=True)
        elif measure(out) == reference:
            stats["rerun_identical"] += 1
        else:
            print(f"{name} trial {t}: rerun differs from the uninterrupted run", flush=True)
    print(f"{name}: {stats}", flush=True)
    return stats


def timed(args: list[str], env: dict | None = None) -> float:
    """Seconds of an uninterrupted ``mlembed ARGS`` (a kill trial's time scale); exit if it fails."""
    t0 = time.time()
    done = run_mlembed(args, env=env)
    if done.returncode != 0:
        sys.exit(f"reference run failed: mlembed {' '.join(args)}\n{done.stderr[-2000:]}")
    return time.time() - t0


def address_space_limit(limit_gb: float) -> Callable[[], None]:
    """A ``preexec_fn`` that caps a child's address space at ``limit_gb`` GB (``ulimit -v``)."""

    def cap(limit: int = int(limit_gb * 2**30)) -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return cap


def error_line(stderr: str) -> str:
    """What a failed child said, in one line (at most 200 characters): its last ``error:`` line, else its last."""
    return next(
        (line for line in reversed(stderr.splitlines()) if "error:" in line),
        (stderr.strip().splitlines() or [""])[-1],
    )[:200]
