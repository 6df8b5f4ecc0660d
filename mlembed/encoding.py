"""Encoding sentences to embeddings: in memory, or streamed to a memory-mapped ``.npy``.

Encoding is sentence-transformers' ``encode`` (length-sorted batches) with two additions: a fast
path (bf16 autocast, used only on CPUs with native bf16 instructions, where it measured
cosine >= 0.9999 to float32) and chunked streaming so inputs larger than RAM become a ``.npy``
without ever holding all sentences or vectors in memory.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlembed.data.base import batched
from mlembed.files import atomic_open, atomic_path, read_lines
from mlembed.heap import trim
from mlembed.models import embedding_dim, load_model
from mlembed.windows import SPLIT_WINDOW, InputTooLongError, LengthReport, Overflow, model_window, plan_inputs

#: what :func:`encode` does with a long input: read it all, in pooled windows (``benchmarks/long_text.py``)
DEFAULT_OVERFLOW: Overflow = "split"

Precision = Literal["auto", "fp32", "bf16"]


#: padded tokens per CPU forward pass (rows x longest sentence); measured on MiniLM in benchmarks/encode_speed.py
DEFAULT_TOKEN_BUDGET = 2048


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU has AVX512-BF16 or AMX-BF16 (where bf16 autocast is a real speed-up).

    Example:
        >>> isinstance(cpu_has_native_bf16(), bool)
        True
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


#: Environment variable that decides ``auto`` (``fp32`` or ``bf16``) whatever the CPU: tests and CI run
#: both numeric paths on any machine, and a user can force one everywhere (encode, evaluate, distill).
PRECISION_ENV = "MLEMBED_PRECISION"


def resolve_precision(precision: Precision, device: str = "cpu") -> str:
    """``auto`` -> ``$MLEMBED_PRECISION`` when set, else ``bf16`` on CPUs with native bf16 and ``fp32``
    elsewhere (bf16 emulation is ~5x slower).

    Example:
        >>> resolve_precision("fp32")
        'fp32'
        >>> resolve_precision("auto") in ("fp32", "bf16")
        True
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if precision != "auto":
        return precision
    forced = os.environ.get(PRECISION_ENV, "").strip().lower()
    if forced:
        if forced not in ("fp32", "bf16"):
            raise ValueError(f"{PRECISION_ENV} must be fp32 or bf16, got {forced!r}")
        return forced
    return "bf16" if device == "cpu" and cpu_has_native_bf16() else "fp32"


def _autocast(precision: str, device: str) -> contextlib.AbstractContextManager:
    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def _model_device(model: Any) -> str:
    return str(getattr(model, "device", "cpu"))


def encode(
    sentences: Sequence[str] | str,
    model: Any = "minilm-en",
    batch_size: int = 64,
    normalize: bool = False,
    max_seq_length: int | None = None,
    dtype: str = "float32",
    precision: Precision = "auto",
    show_progress: bool = False,
    token_budget: int | None = DEFAULT_TOKEN_BUDGET,
    overflow: Overflow = DEFAULT_OVERFLOW,
    report: LengthReport | None = None,
    split_window: int | None = SPLIT_WINDOW,
) -> np.ndarray:
    """Encode sentences in any language to a ``(n, dim)`` array.

    Args:
        sentences: a list of strings (or one string, giving a ``(dim,)`` vector).
        model: a loaded model or anything :func:`mlembed.models.load_model` accepts.
        normalize: L2-normalise the vectors (cosine = dot product).
        max_seq_length: the model's window in tokens, prompt and special tokens included (default: its own).
        dtype: ``float32`` or ``float16`` for the returned array.
        precision: ``auto`` (bf16 autocast only on CPUs with native bf16), ``fp32`` or ``bf16``.
        token_budget: on CPU, sort the sentences by token length and give each forward pass at most this
            many padded tokens (rows x longest), instead of ``batch_size`` rows: short sentences go many
            to a pass, long ones few, padding stays small and memory is bounded by the budget
            (``benchmarks/encode_speed.py``). ``None`` or 0: fixed batches of ``batch_size``, as on GPU
            and for models without a tokenizer.
        overflow: what happens to a long input (:mod:`mlembed.windows`): ``split`` (default: an input longer
            than ``split_window`` tokens, 128, is read whole in windows of that size whose vectors are pooled,
            weighted by their tokens), ``truncate`` (the model's first window only) or ``error`` (an input longer
            than the model's window raises :class:`mlembed.windows.InputTooLongError`).
        report: a :class:`mlembed.windows.LengthReport` to add this call's counts to; without one, any input over
            the window is reported as a logged warning.

    Example:
        >>> import mlembed
        >>> emb = mlembed.encode(["A cat sits.", "Eine Katze sitzt."], normalize=True)
        >>> emb.shape, emb.dtype
        ((2, 384), dtype('float32'))
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    single = isinstance(sentences, str)
    batch = [sentences] if single else list(sentences)
    if max_seq_length is not None and hasattr(model, "max_seq_length"):
        model.max_seq_length = max_seq_length
    device = _model_device(model)
    if not batch:
        return np.zeros((0, embedding_dim(model)), dtype=dtype)
    own_report = report is None
    if own_report:
        report = LengthReport(overflow, model_window(model))
    # an exported engine queues token-budget chunks (mlembed.backends.runtime), reading the token ids counted here
    queued = hasattr(model, "encode_chunks") and bool(token_budget) and device == "cpu"
    plan = plan_inputs(model, batch, overflow, report, split_window=split_window, keep_ids=queued)
    texts = plan.texts
    lengths = plan.lengths if token_budget and device == "cpu" and len(texts) > 1 else None
    with _autocast(resolve_precision(precision, device), device):
        if lengths is None:
            out = model.encode(
                texts,
                batch_size=batch_size,
                show_progress_bar=show_progress,
                normalize_embeddings=normalize,
                convert_to_numpy=True,
            )
        else:
            from tqdm.auto import tqdm

            out = np.empty((len(texts), embedding_dim(model)), dtype=np.float32)
            chunks = token_budget_chunks(lengths, token_budget)
            with tqdm(total=len(texts), unit="sent", desc="encode", disable=not show_progress) as bar:
                if queued:
                    model.encode_chunks(texts, chunks, out, normalize, bar.update, plan.tokens)
                else:
                    for rows in chunks:
                        out[rows] = model.encode(
                            [texts[i] for i in rows],
                            batch_size=len(rows),
                            show_progress_bar=False,
                            normalize_embeddings=normalize,
                            convert_to_numpy=True,
                        )
                        bar.update(len(rows))
    out = plan.pool(np.asarray(out, dtype=np.float32), len(batch))
    if own_report:
        report.log()
    out = np.asarray(out, dtype=np.float32)
    if normalize:  # bf16 and some peers leave tiny norm errors; make cosine == dot exactly
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    out = out.astype(dtype, copy=False)
    return out[0] if single else out


def token_budget_chunks(lengths: Sequence[int], budget: int) -> list[np.ndarray]:
    """Row indices sorted by length, cut so that each chunk's padded size (rows x longest) stays within ``budget``.

    Short sentences go many to a forward pass, long ones few; padding stays small. A sentence longer
    than the budget is a chunk of its own.

    Example:
        >>> [c.tolist() for c in token_budget_chunks([5, 30, 6, 7], budget=20)]
        [[0, 2], [3], [1]]
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    chunks, start = [], 0
    for end in range(1, len(order) + 1):
        if end == len(order) or lengths[order[end]] * (end - start + 1) > budget:
            chunks.append(order[start:end])
            start = end
    return chunks


def encode_to_npy(
    sentences: Iterable[str],
    output: str | os.PathLike,
    model: Any = "minilm-en",
    count: int | None = None,
    chunk_size: int = 8192,
    batch_size: int = 64,
    normalize: bool = False,
    max_seq_length: int | None = None,
    dtype: str = "float32",
    precision: Precision = "auto",
    show_progress: bool = True,
    token_budget: int | None = DEFAULT_TOKEN_BUDGET,
    overflow: Overflow = DEFAULT_OVERFLOW,
    report: LengthReport | None = None,
    resume_key: dict | None = None,
) -> Path:
    """Stream sentences into a ``.npy`` file chunk by chunk (memory bounded by ``chunk_size``).

    Each chunk is encoded by :func:`encode` (``batch_size``, ``precision``, ``token_budget``, ``overflow`` as
    there); inputs over the model's window are counted in ``report`` (logged once at the end without one).

    With ``count`` (the number of sentences, known for a file input) the ``.npy`` header is written first
    and the rows after it: one pass, no second copy on disk; a different number of sentences is an error.
    Without it (a stream such as stdin) rows go to a raw temporary file that is wrapped as ``.npy`` at the
    end. Either way the file appears under ``output`` only when complete.

    ``resume_key`` (with ``count``; what identifies the input and the settings, e.g. hashes and the model's
    fingerprint) makes the encoding resumable: rows go to ``OUTPUT.partial.npy``, and after each chunk is on disk
    ``OUTPUT.partial.json`` records how many rows it holds (and their long-input counts). A call with the same
    key after a kill continues after those rows, so a kill loses at most one chunk; another key starts afresh.

    Example:
        >>> import tempfile, os, numpy as np
        >>> out = os.path.join(tempfile.mkdtemp(), "emb.npy")
        >>> _ = encode_to_npy(["Hello", "Hallo", "Bonjour"], out, count=3, show_progress=False)
        >>> np.load(out, mmap_mode="r").shape
        (3, 384)
    """
    from tqdm.auto import tqdm

    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    dim = embedding_dim(model)
    output = Path(output)
    if max_seq_length is not None and hasattr(model, "max_seq_length"):
        model.max_seq_length = max_seq_length
    own_report = report is None
    if own_report:
        report = LengthReport(overflow, model_window(model))
    settings = dict(
        batch_size=batch_size,
        normalize=normalize,
        dtype=dtype,
        precision=precision,
        token_budget=token_budget,
        overflow=overflow,
    )
    if resume_key is not None and count is not None:
        _encode_resumable(sentences, output, model, count, chunk_size, resume_key, report, show_progress, settings)
    else:
        bar = tqdm(total=count, unit="sent", desc=f"encode {output.name}", disable=not show_progress)
        with atomic_path(output, suffix=".npy") as tmp:
            rows = tmp if count is not None else tmp.with_suffix(".raw")
            n = 0
            try:
                with open(rows, "wb") as fh:
                    if count is not None:
                        np.lib.format.write_array_header_1_0(fh, _npy_header((count, dim), dtype))
                    for emb, chunk_report in _encoded_chunks(sentences, model, chunk_size, 0, settings):
                        report.merge(chunk_report)
                        fh.write(np.ascontiguousarray(emb).tobytes())
                        n += len(emb)
                        bar.update(len(emb))
                if count is None:
                    _raw_to_npy(rows, tmp, (n, dim), np.dtype(dtype))
                elif n != count:
                    raise ValueError(f"{output}: expected {count} sentences (count=...), got {n}")
            finally:
                if count is None:
                    rows.unlink(missing_ok=True)
        bar.close()
    if own_report:
        report.log()
    return output


def _npy_header(shape: tuple[int, int], dtype: str | np.dtype) -> dict:
    return {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}


def _encoded_chunks(
    sentences: Iterable[str], model: Any, chunk_size: int, first: int, settings: dict
) -> Iterator[tuple[np.ndarray, LengthReport]]:
    """Each chunk's vectors (:func:`encode` with ``settings``) and its long-input counts, inputs numbered in the
    whole stream from ``first``; freed buffers are given back after each chunk (its batches had their own shapes)."""
    n = first
    for chunk in batched(sentences, chunk_size):
        chunk_report = LengthReport(settings["overflow"], model_window(model))
        try:
            emb = encode(chunk, model, report=chunk_report, **settings)
        except InputTooLongError as exc:  # numbered in the whole stream, not the chunk
            raise exc.shifted(n) from None
        chunk_report.shift(n)
        n += len(chunk)
        yield emb, chunk_report
        trim()


def _encode_resumable(
    sentences: Iterable[str],
    output: Path,
    model: Any,
    count: int,
    chunk_size: int,
    key: dict,
    report: LengthReport,
    show_progress: bool,
    settings: dict,
) -> None:
    """:func:`encode_to_npy` with ``resume_key``: the rows in ``OUTPUT.partial.npy``, their count after each chunk
    in ``OUTPUT.partial.json``, continued where a killed call with the same key stopped."""
    import itertools
    import logging

    from tqdm.auto import tqdm

    dim, dtype = embedding_dim(model), np.dtype(settings["dtype"])
    partial, state_file = output.with_suffix(".partial.npy"), output.with_suffix(".partial.json")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, _npy_header((count, dim), dtype))
    state = json.loads(state_file.read_text()) if state_file.exists() and partial.exists() else {}
    done = LengthReport(settings["overflow"], model_window(model))
    start = 0
    if state.get("key") == key and state.get("shape") == [count, dim] and state.get("dtype") == dtype.str:
        start, done = state["rows"], LengthReport(**state["report"])
        logging.getLogger(__name__).info(f"{output.name}: resuming after the {start:,} of {count:,} rows on disk")
    bar = tqdm(total=count, initial=start, unit="sent", desc=f"encode {output.name}", disable=not show_progress)
    n = start
    with open(partial, "r+b" if start else "wb") as fh:
        fh.write(header.getvalue())
        fh.seek(len(header.getvalue()) + start * dim * dtype.itemsize)
        rest = itertools.islice(iter(sentences), start, None)
        for emb, chunk_report in _encoded_chunks(rest, model, chunk_size, start, settings):
            done.merge(chunk_report)
            fh.write(np.ascontiguousarray(emb).tobytes())
            fh.flush()
            os.fsync(fh.fileno())  # the rows are on disk before the state says so
            n += len(emb)
            with atomic_open(state_file) as out:
                json.dump(
                    {"key": key, "shape": [count, dim], "dtype": dtype.str, "rows": n, "report": done.to_dict()}, out
                )
            bar.update(len(emb))
    bar.close()
    if n != count:
        partial.unlink()
        state_file.unlink()
        raise ValueError(f"{output}: expected {count} sentences (count=...), got {n}")
    report.merge(done)
    os.replace(partial, output)
    state_file.unlink()


def _raw_to_npy(raw: Path, npy: Path, shape: tuple[int, int], dtype: np.dtype, block: int = 1 << 24) -> None:
    """Write a ``.npy`` header then copy the raw row-major bytes after it (streamed, no full load)."""
    with open(npy, "wb") as out, open(raw, "rb") as src:
        np.lib.format.write_array_header_1_0(out, _npy_header(shape, dtype))
        while buf := src.read(block):
            out.write(buf)


def read_sentences(path: str | os.PathLike, on_bad_line: str = "error") -> Iterator[str]:
    """Stream one sentence a line from a UTF-8 file (``-`` = stdin).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "s.txt")
        >>> _ = open(p, "w").write("one\\ntwo\\n")
        >>> list(read_sentences(p))
        ['one', 'two']
    """
    for _, text in read_lines(path, on_bad_line=on_bad_line):  # type: ignore[arg-type]
        yield text


def write_sidecar(sentences: Iterable[str], path: str | os.PathLike) -> None:
    """Write ``{"id": i, "text": s}`` per line, atomically, to pair each embedding row with its text."""
    with atomic_open(path) as fh:
        for i, text in enumerate(sentences):
            fh.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")
