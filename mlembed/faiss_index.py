"""FAISS index construction: index types and their factory strings, training on a bounded sample, adding
from a memmap in chunks, search parameters. Shared by :mod:`mlembed.index` (saved sentence indexes) and
:mod:`mlembed.knn` (approximate k-NN for mining).

Index types (``kind``): ``flat`` (exact), ``ivf`` (``IVF{nlist},Flat``), ``ivfsq`` (``IVF{nlist},SQ8``,
4x smaller), ``hnsw`` (``HNSW32``), ``ivfpq`` (``IVF{nlist},PQ{m}``), ``auto`` (by size), or any FAISS
factory string.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlembed.arrays import open_embeddings, read_rows

KINDS = ("auto", "flat", "ivf", "ivfsq", "hnsw", "ivfpq")


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` vectors: the power of two nearest ``2 sqrt(n)``, at least 1 and <= n/39.

    Example:
        >>> nlist_for(1_000_000), nlist_for(200_000), nlist_for(1000)
        (2048, 1024, 16)
    """
    target = 2 * math.sqrt(max(n, 1))
    nlist = 1 << max(0, round(math.log2(target)))
    while nlist > 1 and nlist * 39 > n:
        nlist //= 2
    return nlist


def nprobe_for(nlist: int) -> int:
    """Inverted lists an IVF index probes per query unless told otherwise: 1/16 of them. FAISS's own default
    is 1, which on 200k x 200k mining found too few true neighbours (``benchmarks/mining_nprobe.py``).

    Example:
        >>> nprobe_for(1024), nprobe_for(16), nprobe_for(8)
        (64, 1, 1)
    """
    return max(1, nlist // 16)


def factory_string(kind: str, n: int, dim: int) -> str:
    """The FAISS factory string for an index ``kind`` over ``n`` vectors of dimension ``dim``.

    ``auto`` is exact below 100k vectors, ``ivf`` below 2M, ``ivfpq`` above. Unknown kinds are
    passed through as factory strings.

    Example:
        >>> factory_string("ivf", 1_000_000, 384), factory_string("auto", 5000, 384)
        ('IVF2048,Flat', 'Flat')
        >>> factory_string("ivfpq", 1_000_000, 384), factory_string("OPQ16,IVF256,PQ16", 10, 384)
        ('IVF2048,PQ48', 'OPQ16,IVF256,PQ16')
    """
    if kind == "auto":
        kind = "flat" if n < 100_000 else "ivf" if n < 2_000_000 else "ivfpq"
    nlist = nlist_for(n)
    m = max(x for x in range(1, max(1, dim // 8) + 1) if dim % x == 0)
    known = {
        "flat": "Flat",
        "ivf": f"IVF{nlist},Flat",
        "ivfsq": f"IVF{nlist},SQ8",
        "hnsw": "HNSW32",
        "ivfpq": f"IVF{nlist},PQ{m}",
    }
    return known.get(kind.lower(), kind)


def mean_row(emb: Any, size: int = 100_000) -> np.ndarray:
    """The mean of ``emb``'s rows (of a sample of ``size`` rows read in blocks, as for training), float32.

    Cross-lingual search centres each side by its own mean (:mod:`mlembed.knn`): a language's offset then no
    longer steers which inverted lists a query probes.

    Example:
        >>> mean_row(np.array([[1.0, 0.0], [0.0, 1.0]], "float32")).tolist()
        [0.5, 0.5]
    """
    emb = open_embeddings(emb)
    return _training_sample(emb, min(size, len(emb))).mean(axis=0, dtype=np.float64).astype(np.float32)


def _training_sample(emb: np.ndarray, size: int, seed: int = 0, block: int = 1024) -> np.ndarray:
    """``size`` rows read as random contiguous blocks (bounded reads from a memmap)."""
    n = len(emb)
    if size >= n:
        return read_rows(emb, 0, n)
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.choice(max(1, n // block), size=math.ceil(size / block), replace=False)) * block
    return np.concatenate([read_rows(emb, s, min(s + block, n)) for s in starts])[:size]


def build_faiss_index(
    emb: Any,
    kind: str = "auto",
    train_size: int | None = None,
    chunk_size: int = 65536,
    show_progress: bool = False,
    desc: str = "index",
    shift: np.ndarray | None = None,
) -> Any:
    """Build an inner-product FAISS index from an array, memmap or ``.npy`` path, adding chunk by chunk.

    ``train_size`` rows (default ``max(40 nlist, 10000)``) train IVF/PQ indexes. With ``shift`` (a row, such as
    :func:`mean_row`), the index holds ``emb - shift``: its lists and codes are those of the centred rows.

    Example:
        >>> x = np.eye(4, dtype="float32")
        >>> build_faiss_index(x, "flat").search(x[:1], 1)[1].tolist()
        [[0]]
    """
    from tqdm.auto import tqdm

    emb = open_embeddings(emb)
    n = len(emb)
    index = trained_faiss_index(emb, kind, train_size, shift)
    bar = tqdm(total=n, unit="vec", desc=desc, disable=not show_progress)
    for start in range(0, n, chunk_size):
        rows = read_rows(emb, start, min(start + chunk_size, n))
        index.add(rows if shift is None else rows - shift)
        bar.update(min(chunk_size, n - start))
    bar.close()
    return index


def trained_faiss_index(
    emb: Any, kind: str = "auto", train_size: int | None = None, shift: np.ndarray | None = None
) -> Any:
    """An empty inner-product FAISS index for ``emb``, its IVF/PQ parts trained on a sample of it (of
    ``emb - shift`` with a ``shift``).

    The vectors are added by the caller: :func:`build_faiss_index` in one process, or several processes
    adding row ranges to copies that are merged (:mod:`mlembed.cluster.index`).

    Example:
        >>> trained_faiss_index(np.eye(4, dtype="float32"), "flat").ntotal
        0
    """
    import faiss

    emb = open_embeddings(emb)
    n, dim = emb.shape
    factory = factory_string(kind, n, dim)
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(
            f"not a valid index type or FAISS factory string: {kind!r} ({str(exc).splitlines()[0]})"
        ) from None
    ivf = _ivf(index)
    needed = max(ivf.nlist if ivf is not None else 0, 256 if "PQ" in factory else 0)  # centroids, PQ codes
    if not index.is_trained and n < needed:
        raise ValueError(
            f"index type {factory} needs at least {needed} vectors to train, got {n}: "
            "use the exact 'flat' type for so few (or 'auto')"
        )
    if ivf is not None:
        ivf.nprobe = nprobe_for(ivf.nlist)  # kept when the index is saved; set_search_params overrides it
    if isinstance(ivf, faiss.IndexIVFScalarQuantizer):
        ivf.by_residual = False  # SQ8 of the vectors themselves: as accurate here, and big_batch_search supports it
    if not index.is_trained:
        size = train_size or max(40 * (ivf.nlist if ivf is not None else 256), 10_000)
        sample = _training_sample(emb, min(size, n))
        index.train(sample if shift is None else sample - shift)
    return index


def _ivf(index: Any) -> Any:
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def set_search_params(index: Any, nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Set ``nprobe`` (IVF) and ``efSearch`` (HNSW) where the index has them; ``None`` leaves the index's own
    (for IVF indexes mlembed built, :func:`nprobe_for` its lists).

    Example:
        >>> import faiss
        >>> idx = faiss.index_factory(8, "HNSW8"); set_search_params(idx, ef_search=64); idx.hnsw.efSearch
        64
    """
    import faiss

    ivf = _ivf(index)
    if ivf is not None and nprobe:
        ivf.nprobe = int(nprobe)
    if ef_search:
        hnsw = faiss.downcast_index(index)
        if hasattr(hnsw, "hnsw"):
            hnsw.hnsw.efSearch = int(ef_search)
