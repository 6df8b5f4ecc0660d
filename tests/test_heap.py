"""Resident memory: blocks freed by a training step or a request go back to the system, and rows read from a
file on disk do not stay mapped."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

SCRIPT = """
import sys
import numpy as np
from mlembed.heap import trim
def rss():
    return next(int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("VmRSS"))
big = np.ones(8 << 20, np.uint8); del big  # a freed 8 MB block raises glibc's dynamic mmap threshold to 8 MB
base = rss()
blocks, pins = [], []
for _ in range(50):
    blocks.append(np.ones(4 << 20, np.uint8))  # 200 MB in 4 MB blocks, as a training step's tensors
    pins.append(np.ones(2048, np.uint8))  # small blocks that stay: the heap cannot shrink from its top
del blocks
held = rss() - base
assert trim()
print(held, rss() - base)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_returns_freed_blocks_to_the_system():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    held, after = map(int, out.split())
    assert held >= 150  # glibc kept the freed 200 MB in its heap
    assert after <= 20  # trim gave them back


READ_SCRIPT = """
import sys
import numpy as np
from mlembed.arrays import take_rows
def rss_file():
    return next(int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("RssFile"))
path = sys.argv[1]
np.ones((65536, 1024), np.float32).tofile(path)  # 256 MB of rows, as a teacher cache
arr = np.memmap(path, dtype=np.float32, mode="r", shape=(65536, 1024))
rows = np.random.default_rng(0).permutation(65536)
base = rss_file()
total = sum(float(take_rows(arr, rows[i : i + 64]).sum()) for i in range(0, 65536, 64))
read = rss_file() - base
mapped = sum(float(np.asarray(arr[rows[i : i + 64]]).sum()) for i in range(0, 65536, 64))
print(read, rss_file() - base, total == mapped == 65536 * 1024)
"""


@pytest.mark.skipif(platform.system() != "Linux", reason="reads /proc/self/status")
def test_scattered_rows_read_from_a_file_do_not_stay_resident(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", READ_SCRIPT, str(tmp_path / "rows.bin")], capture_output=True, text=True, check=True
    ).stdout
    read, mapped, same = out.split()
    assert same == "True"
    assert int(mapped) >= 200  # indexing the map leaves the 256 MB it touched resident
    assert int(read) <= 8  # take_rows read every row and left nothing mapped
