"""``auto``: the fastest backend whose vectors stay within the quality bound, measured once per model and CPU.

The probe encodes held-out sentences (:func:`mlembed.backends.sentences.probe_sentences`) with each
candidate, in alternating rounds (machine noise hits all alike), and compares each to the model's own
torch fp32 vectors. A candidate passes when its mean cosine is at least 0.999 and its worst at least 0.99;
the fastest that passes wins, if it beats torch by 5% (a closer gap is noise, and torch needs no export).
A verb that encodes for one task judges by that task instead (``task``): ``mining`` (``mine``) accepts a
candidate whose mining F1 x100 is at most :data:`TASK_BOUND` below torch fp32's, ``search`` (``index build``)
one whose top-1 retrieval accuracy is, on 1,000 gettext pairs hidden among as many distractors per side
(:func:`mlembed.backends.sentences.task_sentences`): margin mining tolerates int8 vectors that fail the cosine
bound. The verdict and every candidate's figures are cached in
``$MLEMBED_CACHE/backends.json`` under the model's fingerprint, the CPU (model name, flags, cores) and the
engines' versions: a new CPU, model or engine release probes again.
"""

from __future__ import annotations

import json
import logging
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.backends.runtime import PRECISION, ExportedModel
from mlembed.backends.sentences import probe_sentences, task_sentences
from mlembed.files import atomic_open, cache_root

log = logging.getLogger(__name__)

#: what ``auto`` accepts, as cosine to the same model's torch fp32 vectors
QUALITY_BOUND = {"mean_cosine": 0.999, "min_cosine": 0.99}
CANDIDATES = ("torch", "onnx", "openvino", "openvino-bf16", "openvino-int8", "onnx-int8")
#: what ``auto`` accepts when judged by a task: points (x100) lost against torch fp32 on the task probe
TASK_BOUND = 0.5
#: the measure each task is judged by
TASK_METRIC = {"mining": "mining_f1", "search": "search_accuracy"}
#: another engine must beat torch by this factor to be chosen (closer is within the probe's noise)
MIN_GAIN = 1.05
#: bump when the probe's method changes: old verdicts are then measured again
PROBE_VERSION = 4  # 4: OpenVINO encodes bulk input as queued requests on a throughput-compiled model


def candidates_for(precision: str) -> tuple[str, ...]:
    """The candidates ``auto`` measures when encoding at ``precision`` (``fp32`` or ``bf16``): a bf16 engine
    only where bf16 is what ``auto`` gives torch (a CPU with native bf16, or ``$MLEMBED_PRECISION=bf16``).

    Example:
        >>> candidates_for("fp32")
        ('torch', 'onnx', 'openvino', 'openvino-int8', 'onnx-int8')
    """
    return tuple(c for c in CANDIDATES if precision == "bf16" or PRECISION.get(c) != "bf16")


def choose_backend(model: Any, refresh: bool = False, precision: str = "auto", task: str | None = None) -> str:
    """The backend ``auto`` means for this model on this CPU at ``precision`` (``auto``: bf16 where native),
    judged by ``task`` (``None``: the vectors; ``mining``, ``search``): the cached verdict, else a fresh probe.
    Torch is measured at that precision; exported engines at the one their name says, so a verdict never
    names the wrong precision.

    Example:
        >>> from mlembed.models import load_model
        >>> choose_backend(load_model("minilm-en")) in CANDIDATES  # doctest: +SKIP
        True
    """
    from mlembed.encoding import resolve_precision

    if task is not None and task not in TASK_METRIC:
        raise ValueError(f"task must be one of {', '.join(TASK_METRIC)} (or None), got {task!r}")
    precision = resolve_precision(precision)
    key = probe_key(model, precision) + (f"|task={task}" if task else "")
    store = cache_root() / "backends.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known and not refresh:
        log.info("backend auto -> %s (%s; cached)", known[key]["chosen"], known[key].get("reason", ""))
        return known[key]["chosen"]
    result = probe(model, candidates_for(precision), precision=precision, task=task)
    log.info("backend auto -> %s (%s)", result["chosen"], result["reason"])
    try:
        known = json.loads(store.read_text())  # another process may have added its own verdict meanwhile
    except (OSError, ValueError):
        known = {}
    known[key] = result
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(store) as fh:
            json.dump(known, fh, indent=1)
    except OSError:  # a read-only cache only costs a probe next time
        pass
    return result["chosen"]


def probe(
    model: Any,
    candidates: tuple[str, ...] = CANDIDATES,
    repeats: int = 2,
    precision: str = "auto",
    task: str | None = None,
) -> dict:
    """Measure every candidate on the held-out probe sentences (with a ``task``: the task's sentences, once
    each); the verdict with each one's figures. Torch runs at ``precision`` (``auto``: bf16 where native) and
    is the speed to beat; each row names its precision.

    A candidate whose engine is missing or fails to export is recorded with its error, not chosen.

    Example:
        >>> from mlembed.models import load_model
        >>> probe(load_model("minilm-en"), ("torch", "onnx"))["rows"]["onnx"]["mean_cosine"] > 0.9999  # doctest: +SKIP
        True
    """
    from mlembed.encoding import encode, resolve_precision

    n_gold = 0
    if task:
        english, translations, n_gold = task_sentences()
        held_out, repeats = english + translations, 1
    else:
        held_out = probe_sentences()[1]
    if not held_out:
        return {"chosen": "torch", "reason": "no probe sentences (no gettext catalogs on this machine)", "rows": {}}
    reference = encode(held_out, model, normalize=True, precision="fp32")
    baseline = task_scores(reference, n_gold) if task else {}
    precision = resolve_precision(precision)
    encoders: dict[str, Any] = {}
    rows: dict[str, dict] = {}
    for name in candidates:
        try:
            encoders[name] = model if name == "torch" else ExportedModel(model, name)
            encode(
                held_out[:32], encoders[name], precision=precision
            )  # warm-up: first-call allocations and kernel selection
        except Exception as exc:  # noqa: BLE001 - an engine missing or failing here is a candidate less, not an error
            log.warning("backend %s unavailable: %s", name, exc)
            rows[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            encoders.pop(name, None)
    seconds: dict[str, list[float]] = {name: [] for name in encoders}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            vectors[name] = encode(held_out, encoder, normalize=True, precision=precision)
            seconds[name].append(time.perf_counter() - start)
    for name in encoders:
        cosine = np.sum(reference * vectors[name], axis=1)
        rows[name] = {
            "precision": precision if name == "torch" else PRECISION[name],
            "sentences_per_s": round(len(held_out) / min(seconds[name]), 1),
            "mean_cosine": round(float(cosine.mean()), 6),
            "min_cosine": round(float(cosine.min()), 6),
        }
        rows[name]["passes"] = bool(
            rows[name]["mean_cosine"] >= QUALITY_BOUND["mean_cosine"]
            and rows[name]["min_cosine"] >= QUALITY_BOUND["min_cosine"]
        )
        if task:
            rows[name].update(task_scores(vectors[name], n_gold))
            metric = TASK_METRIC[task]
            rows[name]["passes"] = bool(rows[name][metric] >= baseline[metric] - TASK_BOUND)
    speed = {name: rows[name]["sentences_per_s"] for name in encoders}
    passing = [name for name in encoders if rows[name]["passes"]]
    chosen = max(passing, key=speed.__getitem__) if passing else "torch"
    if "torch" in speed and chosen != "torch" and speed[chosen] < MIN_GAIN * speed["torch"]:
        chosen = "torch"
    bound = (
        f"{TASK_METRIC[task]} at most {TASK_BOUND} below torch fp32's {baseline[TASK_METRIC[task]]}"
        if task
        else f"mean cosine >= {QUALITY_BOUND['mean_cosine']}"
    )
    reason = f"fastest within {bound} and >= {MIN_GAIN}x torch" + (
        f": {speed[chosen] / speed['torch']:.2f}x torch" if "torch" in speed and chosen in speed else ""
    )
    return {
        "chosen": chosen,
        "reason": reason,
        "precision": precision,
        "task": task,
        "fp32": baseline,
        "sentences": len(held_out),
        "rows": rows,
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def task_scores(vectors: np.ndarray, n_gold: int) -> dict[str, float]:
    """The task probe's measures of unit ``vectors`` (English lines, then as many translation lines; the first
    ``n_gold`` of each side are gold pairs): ``mining_f1`` (x100, ratio margin, k=4, ``max`` mode, at its best
    threshold) and ``search_accuracy`` (x100, the gold translation is an English line's nearest neighbour).

    Example:
        >>> v = np.eye(6, dtype="float32")[[0, 1, 2, 0, 1, 3]] + 0.1  # English 0..2; translations: 2 gold, 1 other
        >>> task_scores(v / np.linalg.norm(v, axis=1, keepdims=True), 2)
        {'mining_f1': 100.0, 'search_accuracy': 100.0}
    """
    from mlembed.knn import MiningOptions, knn_both_ways
    from mlembed.margin import best_threshold, select_pairs

    half = len(vectors) // 2
    english, translations = vectors[:half], vectors[half:]
    fwd, bwd = knn_both_ways(english, translations, MiningOptions(k=min(4, half)))
    mined = select_pairs(fwd, bwd, "ratio", "max")
    f1 = best_threshold(mined, {(i, i) for i in range(n_gold)}).f1
    hits = fwd.ids[:n_gold, 0] == np.arange(n_gold)
    return {"mining_f1": round(100 * f1, 2), "search_accuracy": round(100 * float(hits.mean()), 2)}


def probe_key(model: Any, precision: str) -> str:
    """Model fingerprint, CPU (model name, relevant flags, cores), torch's precision and engine versions,
    joined by ``|``."""
    import os

    from mlembed.models import fingerprint

    cpu, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    versions = []
    for package in ("torch", "onnxruntime", "openvino", "nncf"):
        try:
            versions.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package}=none")
    parts = [fingerprint(model), cpu, "+".join(f for f in wanted if f in flags), f"{os.cpu_count()} cpus", precision]
    return "|".join(parts + versions + [f"probe={PROBE_VERSION}"])
