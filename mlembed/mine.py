"""Bitext mining: two sets of embeddings, or two text files, to scored translation pairs.

The k-NN runs shard by shard from memmaps in bounded memory (:mod:`mlembed.knn`); candidates are scored by
margin and picked by mode (:mod:`mlembed.margin`, whose names this module re-exports); :func:`mine_files` adds
text handling: dedupe, streamed encoding, atomic TSV, and the seconds of each stage. What to mine with (k, margin,
mode, threshold, index, memory budget, work folder...) is one :class:`MiningOptions` (re-exported from
:mod:`mlembed.knn`), which both functions read and pass down.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.arrays import Embeddings, open_embeddings, read_rows
from mlembed.data.output import tsv_field
from mlembed.files import DataError, atomic_open, file_sha256
from mlembed.knn import MiningOptions, knn_both_ways
from mlembed.margin import (
    DEFAULT_THRESHOLDS,
    MARGINS,
    MODES,
    MinedPairs,
    ThresholdChoice,
    best_threshold,
    candidate_scores,
    f1_sweep,
    select_pairs,
)
from mlembed.means import estimate_means

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MARGINS",
    "MODES",
    "MinedPairs",
    "MiningOptions",
    "ThresholdChoice",
    "best_threshold",
    "calibrate_from_spec",
    "calibrate_threshold",
    "candidate_scores",
    "f1_sweep",
    "mine_embeddings",
    "mine_files",
    "select_pairs",
]

logger = logging.getLogger(__name__)


def mine_embeddings(
    src: Embeddings,
    tgt: Embeddings,
    options: MiningOptions | None = None,
    *,
    show_progress: bool = False,
    timings: dict[str, float] | None = None,
) -> MinedPairs:
    """Mine parallel pairs between two sets of L2-normalised embeddings.

    Args:
        src, tgt: ``(n, d)`` float32 arrays, memmaps or ``.npy`` paths, L2-normalised.
        options: a :class:`MiningOptions` (default ``MiningOptions()``): ``k`` (the margin's neighbourhood),
            ``margin`` (``ratio`` | ``distance`` | ``absolute``), ``mode`` (``forward`` | ``backward`` | ``intersect``
            | ``max``), ``threshold`` (keep pairs scoring ``>= threshold``; ``None`` returns every candidate) and
            the k-NN's fields (see :func:`mlembed.knn.knn_both_ways`: ``index``, ``memory_budget``, ``precision``,
            ``centre``, ``nprobe``, ``workdir``, ``resume``...). ``ray``: run the query shards as tasks on a Ray
            cluster (``True``: ``$RAY_ADDRESS`` or a local one; a string: that address); ``src`` and ``tgt`` are
            then ``.npy`` paths and ``workdir`` is needed (:func:`mlembed.cluster.knn.knn_both_ways_ray`). Same
            pairs as without.
        show_progress: progress bars of the k-NN.
        timings: a dict that receives the seconds of each stage (``knn``: index and search both ways;
            ``means``, where :mod:`mlembed.means` estimated them; ``margin``).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(50, 16)).astype("float32"); x /= np.linalg.norm(x, axis=1, keepdims=True)
        >>> y = x[::-1] + 0.01; y /= np.linalg.norm(y, axis=1, keepdims=True)
        >>> pairs = mine_embeddings(x, y, MiningOptions(k=4, margin="ratio", mode="intersect"))
        >>> bool(np.all(pairs.tgt_idx == 49 - pairs.src_idx)), len(pairs)
        (True, 50)
    """
    options = options or MiningOptions()
    clock = time.monotonic()
    if options.ray:
        from mlembed.cluster.knn import knn_both_ways_ray

        if options.workdir is None or not all(isinstance(side, (str, os.PathLike)) for side in (src, tgt)):
            raise ValueError("mining on Ray needs src and tgt as .npy paths and a workdir that its workers can read")
        fwd, bwd = knn_both_ways_ray(src, tgt, options, show_progress=show_progress)
    else:
        fwd, bwd = knn_both_ways(src, tgt, options, show_progress=show_progress)
    clock = _lap(timings, "knn", clock)
    fwd, bwd, means, report = estimate_means(src, tgt, fwd, bwd, options, show_progress)
    if report.method != "found":
        clock = _lap(timings, "means", clock)
    pairs = select_pairs(fwd, bwd, options.margin, options.mode, means)
    _lap(timings, "margin", clock)
    return pairs if options.threshold is None else pairs.above(options.threshold)


def _lap(timings: dict[str, float] | None, stage: str, since: float) -> float:
    """Add the seconds since ``since`` to ``timings[stage]`` (when timings are kept); the time now."""
    now = time.monotonic()
    if timings is not None:
        timings[stage] = round(timings.get(stage, 0.0) + now - since, 2)
    return now


def calibrate_threshold(
    src: np.ndarray, tgt: np.ndarray, k: int = 4, margin: str = "ratio", mode: str = "intersect", seed: int = 0
) -> ThresholdChoice:
    """Threshold from a parallel calibration set (row ``i`` of ``src`` translates row ``i`` of ``tgt``).

    Half of the targets (chosen with ``seed``) are withheld, so half of the sources have no true
    partner and the threshold must reject their best candidates; the F1-best cut is returned.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(200, 32)).astype("float32"); x /= np.linalg.norm(x, axis=1, keepdims=True)
        >>> y = x + 0.05 * rng.normal(size=x.shape).astype("float32"); y /= np.linalg.norm(y, axis=1, keepdims=True)
        >>> calibrate_threshold(x, y).f1 > 0.9
        True
    """
    n = len(src)
    kept = np.sort(np.random.default_rng(seed).permutation(n)[: (n + 1) // 2])
    pairs = mine_embeddings(np.asarray(src), np.asarray(tgt)[kept], MiningOptions(k=k, margin=margin, mode=mode))
    return best_threshold(pairs, {(int(i), j) for j, i in enumerate(kept)})


def calibrate_from_spec(
    spec: str,
    model: Any,
    k: int = 4,
    margin: str = "ratio",
    mode: str = "intersect",
    langs: list[str] | None = None,
    limit: int = 5000,
) -> ThresholdChoice:
    """:func:`calibrate_threshold` on up to ``limit`` pairs read with :func:`mlembed.data.read_pairs` (e.g. ``ntrex:DIR:deu``)."""
    from itertools import islice

    from mlembed.data import read_pairs
    from mlembed.encoding import encode

    pairs = list(islice(read_pairs(spec, langs=langs), limit))
    if len(pairs) < 10:
        raise DataError(f"calibration needs at least 10 parallel pairs, got {len(pairs)}", spec)
    src = encode([p.src for p in pairs], model, normalize=True)
    tgt = encode([p.tgt for p in pairs], model, normalize=True)
    return calibrate_threshold(src, tgt, k=k, margin=margin, mode=mode)


def _embed_unique(
    text: str | os.PathLike,
    ids: np.ndarray,
    n_lines: int,
    out: Path,
    model: Any,
    emb: str | os.PathLike | None,
    fingerprint: str,
    show_progress: bool,
    overflow: str = "truncate",
    report: Any = None,
) -> Path:
    """Embeddings of the deduplicated lines ``ids`` of ``text`` in ``out`` (reused when already complete);
    lines over the model's window are handled as ``overflow`` says and counted in ``report`` (a resumed run
    reads the count back from the stamp)."""
    from tqdm.auto import tqdm

    from mlembed.encoding import encode_to_npy
    from mlembed.textstore import LineStore
    from mlembed.windows import LengthReport

    stamp = out.with_suffix(".json")  # inputs stamped by content: an edited file at the same path is re-encoded
    want = {
        "fingerprint": fingerprint,
        "rows": int(len(ids)),
        "source_sha256": file_sha256(text),
        "embeddings_sha256": None if emb is None else file_sha256(emb),
        "overflow": overflow if emb is None else None,
    }
    if out.exists() and stamp.exists():
        done = json.loads(stamp.read_text())
        if {k: done.get(k) for k in want} == want:
            if report is not None and done.get("report"):
                report.merge(LengthReport(**done["report"]))
            return out
    counted = LengthReport(overflow, None)
    if emb is not None:
        given = open_embeddings(emb)
        if len(given) != n_lines:
            raise DataError(f"{len(given)} embedding rows for {n_lines} lines of {text}", emb)
        with atomic_open(out, "wb") as fh:  # gather the unique rows in chunks
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "<f4", "fortran_order": False, "shape": (len(ids), given.shape[1])}
            )
            for start in tqdm(range(0, len(ids), 65536), desc=f"gather {out.name}", disable=not show_progress):
                part = ids[start : start + 65536]
                fh.write(read_rows(given, int(part[0]), int(part[-1]) + 1)[part - part[0]].tobytes())
    else:
        from mlembed.windows import model_window

        store = LineStore.build(text, offsets=out.with_suffix(".offsets.npy"))
        lines = (store[int(i)] for i in ids)
        counted.window = model_window(model)
        encode_to_npy(
            lines,
            out,
            model,
            count=len(ids),
            normalize=True,
            show_progress=show_progress,
            overflow=overflow,
            report=counted,
            resume_key=want,  # a killed run continues after the last chunk on disk
        )
        counted.first_over = [int(ids[i]) for i in counted.first_over]  # numbered by line of the file, from 0
        if counted.longest_input is not None:
            counted.longest_input = int(ids[counted.longest_input])
    if report is not None:
        report.merge(counted)
    with atomic_open(stamp) as fh:
        json.dump({**want, "report": counted.to_dict()}, fh)
    return out


def _encode_unique_on_ray(
    text: str | os.PathLike,
    ids: np.ndarray,
    folder: Path,
    model: Any,
    backend: str,
    ray: bool | str,
    show_progress: bool,
    overflow: str = "truncate",
    report: Any = None,
) -> Path:
    """The distinct lines ``ids`` of ``text`` encoded by a Ray actor pool into ``FOLDER.npy`` (one row per id);
    lines over the window counted in ``report`` (numbered by their row among the distinct lines)."""
    from mlembed.cluster.encode import encode_ray, shards_to_npy
    from mlembed.textstore import LineStore

    lines, stamp = folder.with_suffix(".unique.txt"), folder.with_suffix(".unique.json")
    source = {"source_sha256": file_sha256(text), "rows": int(len(ids))}
    if not (lines.exists() and stamp.exists() and json.loads(stamp.read_text()) == source):
        shutil.rmtree(folder, ignore_errors=True)  # shards of an older version of the file
        store = LineStore.build(text, offsets=folder.with_suffix(".offsets.npy"))
        with atomic_open(lines) as fh:
            for i in ids:
                fh.write(store[int(i)] + "\n")
        store.close()
        with atomic_open(stamp) as fh:
            json.dump(source, fh)
    name = getattr(model, "mlembed_source", None) or model
    manifest = encode_ray(
        [lines],
        folder,
        str(name),
        backend=backend,
        address=ray if isinstance(ray, str) else None,
        normalize=True,
        show_progress=show_progress,
        overflow=overflow,
    )
    if report is not None and manifest.get("overflow"):
        from mlembed.windows import LengthReport

        counted = LengthReport(**manifest["overflow"])
        counted.first_over = [int(ids[i]) for i in counted.first_over]
        if counted.longest_input is not None:
            counted.longest_input = int(ids[counted.longest_input])
        report.merge(counted)
        report.window = counted.window
    return shards_to_npy(folder, folder.with_suffix(".npy"))


def mine_files(
    src: str | os.PathLike,
    tgt: str | os.PathLike,
    output: str | os.PathLike,
    model: Any = "minilm-en",
    options: MiningOptions | None = None,
    *,
    calibrate: str | None = None,
    src_embeddings: str | os.PathLike | None = None,
    tgt_embeddings: str | os.PathLike | None = None,
    backend: str = "torch",
    overflow: str = "truncate",
    show_progress: bool = True,
    timings: dict[str, float] | None = None,
    reports: dict[str, Any] | None = None,
) -> tuple[int, float]:
    """Mine two text files (one sentence a line) into ``output``: ``score<TAB>src<TAB>tgt``, best first.

    Duplicate (and empty) lines are dropped on each side first; sentences are encoded in streamed
    chunks to memmaps in ``options.workdir`` (default ``OUTPUT.work``, kept for ``options.resume`` until success;
    the k-NN's shards go to its ``knn`` folder), or taken from ``src_embeddings``/``tgt_embeddings`` (``.npy``
    rows aligned with the lines). ``options``: a :class:`MiningOptions` (see :func:`mine_embeddings`; checked
    before anything is encoded); ``options.ray`` encodes and searches on a Ray cluster, same pairs.
    ``backend``: the engine a model given by name runs on (see :mod:`mlembed.backends`).
    The threshold is ``options.threshold`` if given, else calibrated on ``calibrate`` (a
    :func:`mlembed.data.read_pairs` spec), else :data:`DEFAULT_THRESHOLDS` for the margin.
    ``timings``: a dict that receives the seconds of each stage (``load``, ``dedupe``, ``encode``, ``knn``,
    ``margin``, ``write``; a resumed run counts only what it redid).
    ``overflow``: a line longer than the model's window is ``truncate``d by default (one over-long line must not
    abort a long run; ``split`` reads it all, ``error`` refuses it); ``reports``, a dict, receives a
    :class:`mlembed.windows.LengthReport` per side (``src``, ``tgt``), and any line over the window is logged.

    Returns:
        ``(pairs written, threshold used)``.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp(); s, t = os.path.join(d, "en.txt"), os.path.join(d, "de.txt")
        >>> _ = open(s, "w").write("The cat sleeps.\\nStocks fell.\\n"); _ = open(t, "w").write("Stocks fell.\\nThe cat sleeps.\\n")
        >>> mine_files(s, t, os.path.join(d, "out.tsv"), options=MiningOptions(threshold=1.0), show_progress=False)
        (2, 1.0)
    """
    from tqdm.auto import tqdm

    from mlembed.models import fingerprint, load_model
    from mlembed.textstore import LineStore, unique_line_ids
    from mlembed.windows import OVERFLOW_MODES, InputTooLongError, LengthReport

    options = options or MiningOptions()
    if overflow not in OVERFLOW_MODES:
        raise ValueError(f"--overflow {overflow!r}: expected one of {', '.join(OVERFLOW_MODES)}")
    options.check()  # options are checked before minutes of encoding
    ray, threshold = options.ray, options.threshold
    for path in (src, tgt):
        if not Path(path).is_file():
            raise DataError("no such file (expected a text file, one sentence a line)", path)
    output = Path(output)
    work = Path(options.workdir) if options.workdir is not None else output.with_name(output.name + ".work")
    if work.exists() and not options.resume and (work / "knn" / "manifest.json").exists():
        raise DataError("holds an unfinished run: pass --resume (resume=True) to continue it, or remove it", work)
    work.mkdir(parents=True, exist_ok=True)
    clock = time.monotonic()
    calibrating = threshold is None and calibrate
    # on Ray the workers encode: the driver loads the model only to calibrate
    need_model = calibrating or (not ray and (src_embeddings is None or tgt_embeddings is None))
    if isinstance(model, (str, os.PathLike)):
        fp = fingerprint(model)
        if need_model:
            from mlembed.backends import load_backend

            name, model = str(model), load_backend(load_model(model), backend, task="mining")
            engine = getattr(model, "backend", "torch")
            why = " (--backend auto: judged by mining F1)" if backend == "auto" else ""
            logger.info(f"encoding with {name} on {engine}{why}")
        elif not ray:
            model = None  # (on Ray its name goes to the workers)
    else:
        fp = fingerprint(model)
    clock = _lap(timings, "load", clock)
    sides = []
    reports = reports if reports is not None else {}
    for name, text, emb in (("src", src, src_embeddings), ("tgt", tgt, tgt_embeddings)):
        ids, n_lines = unique_line_ids(text)
        if not len(ids):
            raise DataError("no non-empty lines to mine", text)
        clock = _lap(timings, "dedupe", clock)
        reports[name] = report = LengthReport(overflow, None)
        try:
            if ray and emb is None:
                path = _encode_unique_on_ray(
                    text, ids, work / name, model, backend, ray, show_progress, overflow, report
                )
            else:
                path = _embed_unique(
                    text, ids, n_lines, work / f"{name}.npy", model, emb, fp, show_progress, overflow, report
                )
        except InputTooLongError as exc:
            line = int(ids[exc.index]) + 1  # the distinct lines were encoded: number it in the file
            raise DataError(str(exc).replace(f"input {exc.index} ", "this line ", 1), text, line) from None
        report.log(f"distinct lines of {text}")
        sides.append((ids, path))
        clock = _lap(timings, "encode", clock)
    if threshold is None:
        threshold = (
            calibrate_from_spec(calibrate, model, options.k, options.margin, options.mode).threshold
            if calibrate
            else DEFAULT_THRESHOLDS[options.margin]
        )
        if calibrating:
            _lap(timings, "calibrate", clock)
    model = None  # done with: a model loaded here frees its weights (and engine) before the k-NN
    gc.collect()
    pairs = mine_embeddings(
        sides[0][1],
        sides[1][1],
        replace(options, threshold=threshold, workdir=work / "knn"),
        show_progress=show_progress,
        timings=timings,
    )
    clock = time.monotonic()
    src_store = LineStore.build(src, offsets=work / "src.lines.npy")
    tgt_store = LineStore.build(tgt, offsets=work / "tgt.lines.npy")
    src_ids, tgt_ids = sides[0][0], sides[1][0]
    with atomic_open(output) as fh:
        for score, i, j in tqdm(
            zip(pairs.scores.tolist(), pairs.src_idx, pairs.tgt_idx),
            total=len(pairs),
            desc="write",
            unit="pair",
            disable=not show_progress,
        ):
            fh.write(
                f"{score:.6f}\t{tsv_field(src_store[int(src_ids[i])])}\t{tsv_field(tgt_store[int(tgt_ids[j])])}\n"
            )
    src_store.close()
    tgt_store.close()
    shutil.rmtree(work, ignore_errors=True)
    _lap(timings, "write", clock)
    return len(pairs), float(threshold)
