"""Helpers shared by the benchmark scripts: shared-data location, result writing, machine info, the mlembed
command, synthetic mining vectors and the F1 of a mined TSV.

A benchmark script imports only ``_``-prefixed helper modules (this one, ``_distill_eval``, ``_faults``), never
another script: ``tests/test_benchmarks_layout.py`` checks it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MLEMBED_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"
CACHE = Path(tempfile.gettempdir()) / "mlembed-bench"  # synthetic vectors and encodings reused across runs
#: the command line that runs mlembed in a child process (this interpreter, so this checkout's package)
MLEMBED = [sys.executable, "-m", "mlembed"]


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
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "native_bf16": cpu_has_native_bf16(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],  # > cpu_count: other jobs shared the CPU
        "cpu_flags": cpu_flags(),
        "commit": code_commit(),
    }


def code_commit() -> str | None:
    """The checkout's commit (short), ``+changes`` where the package differs from it; None outside git."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head, changed = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--", "mlembed")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if changed else "")


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    return next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "unknown"
    )


def cpu_flags() -> list[str]:
    """The CPU flags that decide engine precision and speed."""
    try:
        flags = next(
            line.split(":", 1)[1].split()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return []
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return [f for f in wanted if f in flags]


def write_results(name: str, data: dict, markdown: str) -> None:
    """Write ``benchmarks/results/NAME.json`` and ``NAME.md`` atomically."""
    from mlembed.files import atomic_open

    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_open(RESULTS / f"{name}.json") as fh:
        json.dump(data, fh, indent=1, ensure_ascii=False)
    with atomic_open(RESULTS / f"{name}.md") as fh:
        fh.write(markdown.rstrip() + "\n")
    print(markdown)


def load_results(name: str) -> dict:
    """The earlier ``benchmarks/results/NAME.json``, or ``{}`` (a part rerun keeps the other parts' rows)."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb(pid: int) -> float | None:
    """The resident set of process ``pid`` now (VmRSS, MB), or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(x.split()[1]) / 1024 for x in status.splitlines() if x.startswith("VmRSS")), 0.0)


def sgemm_gflops(dim: int = 384, n: int = 8192, repeat: int = 5) -> float:
    """This machine's float32 matrix-product rate (the floor of exact k-NN is ``2 N^2 d`` flops at it)."""
    a = np.random.default_rng(0).random((n, dim), dtype=np.float32)
    b = np.random.default_rng(1).random((n, dim), dtype=np.float32)
    a @ b.T
    t = time.perf_counter()
    for _ in range(repeat):
        a @ b.T
    return 2 * n * n * dim * repeat / (time.perf_counter() - t) / 1e9


def synthetic(
    n: int,
    dim: int,
    cache: Path = CACHE,
    noise: float = 0.038,
    spread: float = 0.06,
    clusters: int = 1000,
    seed: int = 0,
) -> tuple[Path, Path, Path]:
    """``src``, ``tgt`` (.npy, unit rows) and ``gold`` (tgt row t < n/2 pairs src row gold[t]), written in chunks.

    Vectors are clustered (random centre + ``spread`` noise, cosine ~0.65 to the centre) as real
    embeddings are; a paired target is its source + ``noise`` (cosine ~0.8); other targets are new
    clustered vectors.
    """
    cache.mkdir(parents=True, exist_ok=True)
    paths = cache / f"synth2-{n}-src.npy", cache / f"synth2-{n}-tgt.npy", cache / f"synth2-{n}-gold.npy"
    if all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def clustered(m: int) -> np.ndarray:
        return centres[rng.integers(0, clusters, m)] + spread * rng.standard_normal((m, dim), dtype=np.float32)

    src = np.lib.format.open_memmap(paths[0], "w+", np.float32, (n, dim))
    tgt = np.lib.format.open_memmap(paths[1], "w+", np.float32, (n, dim))
    step = 65536
    for a in range(0, n, step):
        b = min(a + step, n)
        v = clustered(b - a)
        src[a:b] = v / np.linalg.norm(v, axis=1, keepdims=True)
    gold = rng.permutation(n)[: n // 2]
    for a in range(0, n, step):
        b = min(a + step, n)
        rows = np.arange(a, b)
        v = clustered(b - a)
        paired = rows < n // 2
        v[paired] = src[gold[rows[paired]]] + noise * rng.standard_normal((int(paired.sum()), dim), dtype=np.float32)
        tgt[a:b] = v / np.linalg.norm(v, axis=1, keepdims=True)
    src.flush(), tgt.flush()
    del src, tgt
    np.save(paths[2], gold)
    return paths


def f1_of(output: Path, gold: dict[str, str]) -> dict:
    """Best-threshold F1 x100 (with its precision and recall) of a mined TSV (``score<TAB>src<TAB>tgt``) against
    the gold pairs (``{src: tgt}``), and how many gold pairs are among its candidates at all."""
    from mlembed.margin import f1_sweep

    scores, correct = [], []
    with open(output, encoding="utf-8") as fh:
        for line in fh:
            score, a, b = line.rstrip("\n").split("\t")  # (both writers turn tabs in a sentence into spaces)
            scores.append(float(score))
            correct.append(gold.get(a) == b)
    t, p, r, f = f1_sweep(np.array(scores), np.array(correct), len(gold))
    i = int(np.argmax(f))
    return {
        "f1": round(float(f[i]) * 100, 2),
        "precision": round(float(p[i]) * 100, 2),
        "recall": round(float(r[i]) * 100, 2),
        "threshold": round(float(t[i]), 4),
        "candidates": len(scores),
        "gold_candidates": int(sum(correct)),
    }
