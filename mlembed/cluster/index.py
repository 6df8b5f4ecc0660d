"""``mlembed index build --ray``: an IVF index built by Ray tasks and merged on disk, so it may exceed RAM.

The driver trains the coarse quantizer (and PQ/SQ codes) on a sample, exactly as a single-process build
does (:func:`mlembed.faiss_index.trained_faiss_index`). Ray tasks each add a contiguous range of rows,
with their global ids, to a copy of the trained empty index and save it; FAISS's
:func:`faiss.contrib.ondisk.merge_ondisk` then merges the parts' inverted lists into one
``lists.ivfdata`` file that searches memory-map. Same vectors, same quantizer, lists filled in the
same order: the index answers as the single-process one does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mlembed.files import DataError, atomic_path

IVFDATA = "lists.ivfdata"


def _add_part(trained: str, embeddings: str, r0: int, r1: int, out: str, chunk: int = 65536) -> float:
    """Rows ``r0:r1`` added (ids = row numbers) to a copy of the trained index, saved to ``out``; peak RSS MB."""
    import faiss

    from mlembed.arrays import open_embeddings, read_rows
    from mlembed.cluster import peak_rss_mb

    if not Path(out).exists():
        index = faiss.read_index(trained)
        emb = open_embeddings(embeddings)
        for start in range(r0, r1, chunk):
            stop = min(start + chunk, r1)
            index.add_with_ids(read_rows(emb, start, stop), np.arange(start, stop, dtype=np.int64))
        with atomic_path(out, suffix=".faiss") as tmp:
            faiss.write_index(index, str(tmp))
    return peak_rss_mb()


def build_ivf_on_ray(
    embeddings: str | os.PathLike,
    folder: str | os.PathLike,
    factory: str,
    index_file: str,
    train_size: int | None = None,
    parts: int | None = None,
    address: str | None = None,
    show_progress: bool = True,
) -> dict:
    """Build the IVF index ``factory`` of ``embeddings`` (a ``.npy``) into ``folder/index_file`` + ``lists.ivfdata``.

    Returns what the build measured: parts, rows, the tasks' peak RSS.

    Example:
        >>> build_ivf_on_ray("emb.npy", "idx", "IVF1024,Flat", "index.faiss")  # doctest: +SKIP
    """
    import faiss
    import ray
    from faiss.contrib.ondisk import merge_ondisk
    from tqdm.auto import tqdm

    from mlembed.arrays import open_embeddings
    from mlembed.cluster import connect
    from mlembed.faiss_index import trained_faiss_index

    folder = Path(folder)
    if "IVF" not in factory or "HNSW" in factory:
        raise DataError(
            f"index type {factory}: --ray builds IVF indexes (ivf, ivfsq, ivfpq or an IVF factory string), whose "
            "inverted lists can be filled in parts and merged on disk",
            folder,
        )
    n = len(open_embeddings(embeddings))
    trained_path = folder / "trained.faiss"
    faiss.write_index(trained_faiss_index(embeddings, factory, train_size), str(trained_path))
    cpus = connect(address)
    parts = max(1, min(parts or cpus, n))
    bounds = np.linspace(0, n, parts + 1).astype(int)
    add = ray.remote(num_cpus=1, max_retries=5)(_add_part)
    refs = [
        add.remote(str(trained_path), str(embeddings), int(r0), int(r1), str(folder / f"part-{p:04d}.faiss"))
        for p, (r0, r1) in enumerate(zip(bounds[:-1], bounds[1:]))
    ]
    peaks = []
    with tqdm(total=len(refs), unit="part", desc="index (ray)", disable=not show_progress) as bar:
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            peaks.append(ray.get(ready[0]))
            bar.update(1)
    index = faiss.read_index(str(trained_path))
    part_files = [str(folder / f"part-{p:04d}.faiss") for p in range(parts)]
    merge_ondisk(index, part_files, str(folder / IVFDATA))
    faiss.write_index(index, str(folder / index_file))
    for file in part_files + [str(trained_path)]:
        os.unlink(file)
    return {"parts": parts, "rows": n, "worker_peak_rss_mb": max(peaks, default=0.0)}
