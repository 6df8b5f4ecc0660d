"""Trimming the heap: blocks freed by a training step or a request go back to the system."""

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
