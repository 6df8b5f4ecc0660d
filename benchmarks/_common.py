"""Helpers shared by the benchmark scripts: shared-data location, result writing, machine info."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MLEMBED_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"


def require_shared() -> Path:
    """The shared data folder, or exit with a clear message."""
    if not SHARED.is_dir():
        sys.exit(f"benchmark needs the shared data folder, not found at {SHARED} (set MLEMBED_SHARED_DATA)")
    return SHARED


def machine() -> dict:
    """Where a result was measured."""
    import torch

    from mlembed.encoding import cpu_has_native_bf16

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "native_bf16": cpu_has_native_bf16(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],  # > cpu_count: other jobs shared the CPU
    }


def write_results(name: str, data: dict, markdown: str) -> None:
    """Write ``benchmarks/results/NAME.json`` and ``NAME.md`` atomically."""
    from mlembed.files import atomic_open

    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_open(RESULTS / f"{name}.json") as fh:
        json.dump(data, fh, indent=1, ensure_ascii=False)
    with atomic_open(RESULTS / f"{name}.md") as fh:
        fh.write(markdown.rstrip() + "\n")
    print(markdown)
