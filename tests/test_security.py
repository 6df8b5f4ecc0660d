"""Security basics: no network unless a hub id is asked for, the umask's permissions, no writes outside the output."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

#: loaded into the child process: any socket connection is recorded on stderr and refused
BLOCKER = """
import socket, sys
def _blocked(self, address, *a, **k):
    sys.stderr.write(f"NETWORK ATTEMPT {address!r}\\n")
    raise OSError("network blocked by the test")
socket.socket.connect = _blocked
socket.socket.connect_ex = _blocked
"""


def _child_env(tmp_path, online: bool = True) -> dict:
    (tmp_path / "site").mkdir(exist_ok=True)
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")} if online else dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), env.get("PYTHONPATH", "")])
    env["MLEMBED_CACHE"] = str(tmp_path / "cache")
    return env


def _mlembed(args, env, umask=None):
    return subprocess.run(
        [sys.executable, "-m", "mlembed", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


@pytest.mark.slow
def test_no_network_without_a_hub_id_and_the_umask_decides_permissions(tmp_path):
    env = _child_env(tmp_path)  # HF_*_OFFLINE unset: only mlembed itself keeps the process off the network
    src = tmp_path / "s.txt"
    src.write_text("The cat sleeps.\nDie Katze schläft.\nStocks fell.\n")
    done = _mlembed(["encode", str(src), "-o", str(tmp_path / "e.npy")], env, umask=0o027)
    assert done.returncode == 0, done.stderr[-1500:]
    done2 = _mlembed(["index", "build", "--input", str(src), "-o", str(tmp_path / "idx")], env, umask=0o027)
    assert done2.returncode == 0, done2.stderr[-1500:]
    assert "NETWORK ATTEMPT" not in done.stderr + done2.stderr
    assert stat.S_IMODE((tmp_path / "e.npy").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "idx").stat().st_mode) == 0o750
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "idx").iterdir()} == {0o640}


def test_a_hub_id_with_the_network_blocked_is_one_clear_line(tmp_path):
    done = _mlembed(
        ["encode", "-o", str(tmp_path / "e.npy"), "--model", "someone/some-model"], _child_env(tmp_path, online=False)
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        "'someone/some-model' is not a local folder and could not be loaded from the Hugging Face hub" in done.stderr
    )
    assert not (tmp_path / "e.npy").exists()


def test_languages_read_from_data_never_name_a_path(tmp_path):
    from mlembed.data import Pair
    from mlembed.data.output import write_tsv
    from mlembed.files import DataError

    with pytest.raises(DataError, match="cannot name a file inside the output folder"):
        write_tsv([Pair("Hello", "Hallo", "en", "../../evil")], tmp_path / "out")
    assert not list(tmp_path.parent.glob("evil*")) and not list(tmp_path.rglob("*.tsv"))
