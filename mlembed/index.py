"""FAISS indexes of sentence embeddings for cross-lingual search, saved with their sentences.

An index folder holds ``index.faiss`` (the FAISS index, inner product on L2-normalised vectors,
so scores are cosines), ``meta.json`` (model fingerprint, dimension, normalisation, sentence
count, source file hash, index type and search settings) and the sentences through a
:class:`mlembed.textstore.LineStore` (the source text plus a line-offset file), so search can print
sentences without loading them all.

Index types (``kind``): ``flat`` (exact), ``ivf`` (``IVF{nlist},Flat``), ``ivfsq`` (``IVF{nlist},SQ8``,
4x smaller), ``hnsw`` (``HNSW32``), ``ivfpq`` (``IVF{nlist},PQ{m}``), ``auto`` (by size), or any FAISS
factory string.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mlembed.io import DataError, atomic_open, replace_dir

KINDS = ("auto", "flat", "ivf", "ivfsq", "hnsw", "ivfpq")
META = "meta.json"
FAISS_FILE = "index.faiss"
SENTENCES = "sentences.txt"


class ModelMismatchError(DataError):
    """An index (or cached embeddings) built with a different model than the one given."""


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


def _training_sample(emb: np.ndarray, size: int, seed: int = 0, block: int = 1024) -> np.ndarray:
    """``size`` rows read as random contiguous blocks (bounded reads from a memmap)."""
    from mlembed.knn import read_rows

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
) -> Any:
    """Build an inner-product FAISS index from an array, memmap or ``.npy`` path, adding chunk by chunk.

    ``train_size`` rows (default ``max(40 nlist, 10000)``) train IVF/PQ indexes.

    Example:
        >>> x = np.eye(4, dtype="float32")
        >>> build_faiss_index(x, "flat").search(x[:1], 1)[1].tolist()
        [[0]]
    """
    import faiss
    from tqdm.auto import tqdm

    from mlembed.knn import open_embeddings, read_rows

    emb = open_embeddings(emb)
    n, dim = emb.shape
    factory = factory_string(kind, n, dim)
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(f"not a valid index type or FAISS factory string: {kind!r} ({str(exc).splitlines()[0]})") from None
    ivf = _ivf(index)
    needed = max(ivf.nlist if ivf is not None else 0, 256 if "PQ" in factory else 0)  # centroids, PQ codes
    if not index.is_trained and n < needed:
        raise ValueError(f"index type {factory} needs at least {needed} vectors to train, got {n}: "
                         "use the exact 'flat' type for so few (or 'auto')")
    if isinstance(ivf, faiss.IndexIVFScalarQuantizer):
        ivf.by_residual = False  # SQ8 of the vectors themselves: as accurate here, and big_batch_search supports it
    if not index.is_trained:
        size = train_size or max(40 * (ivf.nlist if ivf is not None else 256), 10_000)
        index.train(_training_sample(emb, min(size, n)))
    bar = tqdm(total=n, unit="vec", desc=desc, disable=not show_progress)
    for start in range(0, n, chunk_size):
        index.add(read_rows(emb, start, min(start + chunk_size, n)))
        bar.update(min(chunk_size, n - start))
    bar.close()
    return index


def _ivf(index: Any) -> Any:
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def set_search_params(index: Any, nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Set ``nprobe`` (IVF) and ``efSearch`` (HNSW) where the index has them; ``None`` leaves the default.

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


def file_sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, streamed.

    Example:
        >>> import tempfile; p = tempfile.mktemp(); _ = open(p, "w").write("a")
        >>> file_sha256(p)[:12]
        'ca978112ca1b'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while buf := fh.read(block):
            digest.update(buf)
    return digest.hexdigest()


@dataclass
class Hit:
    """One search result: cosine ``score``, row ``id`` and the ``sentence``."""

    score: float
    id: int
    sentence: str


class SentenceIndex:
    """A saved FAISS index plus its sentences and metadata.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp(); src = os.path.join(d, "s.txt")
        >>> _ = open(src, "w").write("The cat sleeps.\\nStock markets fell sharply.\\n")
        >>> idx = SentenceIndex.build(src, os.path.join(d, "idx"), model="minilm-en", show_progress=False)
        >>> idx.search("Die Katze schläft.", k=1)[0].sentence
        'The cat sleeps.'
    """

    def __init__(self, folder: str | os.PathLike, index: Any, meta: dict):
        from mlembed.textstore import LineStore

        self.folder = Path(folder)
        self.index = index
        self.meta = meta
        self.sentences = LineStore.open(self.folder / SENTENCES)
        self._model: Any = None

    @classmethod
    def build(
        cls,
        sentences_file: str | os.PathLike,
        output: str | os.PathLike,
        model: Any = "minilm-en",
        kind: str = "auto",
        embeddings: str | os.PathLike | None = None,
        train_size: int | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        batch_size: int = 64,
        show_progress: bool = True,
    ) -> "SentenceIndex":
        """Index a text file (one sentence a line) into the folder ``output``.

        Sentences are encoded in chunks to a memory-mapped ``embeddings.npy`` in ``output`` (or
        ``embeddings``, a ready ``.npy`` of normalised rows aligned with the lines, is used). The folder is
        built whole beside ``output`` and swapped in by renames: a failure or a kill leaves the previous
        index as it was.
        """
        output = Path(output)
        if output.exists() and not output.is_dir():
            raise DataError("exists and is not a folder: expected an index folder to create or replace", output)
        stage = output.parent / f".{output.name}.staging"  # built whole, then swapped in by renames
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
        try:
            index, meta = cls._build_in(stage, sentences_file, model, kind, embeddings, train_size, nprobe, ef_search,
                                        batch_size, show_progress)
            replace_dir(stage, output)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)  # the previous index, if any, stays as it was
            raise
        idx = cls(output, index, meta)
        idx._model = meta.pop("_model")
        return idx

    @staticmethod
    def _build_in(stage: Path, sentences_file, model, kind, embeddings, train_size, nprobe, ef_search, batch_size,
                  show_progress) -> tuple[Any, dict]:
        import faiss

        from mlembed.encoding import encode_to_npy, read_sentences
        from mlembed.models import fingerprint, load_model
        from mlembed.textstore import LineStore

        store = LineStore.build(sentences_file, stage / SENTENCES)
        if isinstance(model, (str, os.PathLike)):
            model_name, model = str(model), load_model(model)
        else:
            model_name = getattr(model, "mlembed_source", type(model).__name__)
        if embeddings is None:
            embeddings = stage / "embeddings.npy"
            encode_to_npy(read_sentences(sentences_file), embeddings, model, count=len(store), batch_size=batch_size,
                          normalize=True, show_progress=show_progress)
        emb = np.load(embeddings, mmap_mode="r")
        if len(emb) != len(store):
            raise DataError(f"{len(emb)} embeddings for {len(store)} lines", embeddings)
        factory = factory_string(kind, len(emb), emb.shape[1])
        index = build_faiss_index(emb, factory, train_size=train_size, show_progress=show_progress)
        set_search_params(index, nprobe=nprobe, ef_search=ef_search)
        meta = {
            "model": model_name,
            "fingerprint": fingerprint(model),
            "dimension": int(emb.shape[1]),
            "normalized": True,
            "count": int(len(emb)),
            "factory": factory,
            "nprobe": nprobe,
            "ef_search": ef_search,
            "source": str(Path(sentences_file).resolve()),
            "source_sha256": file_sha256(sentences_file),
            "sentences_sha256": file_sha256(stage / SENTENCES),  # the stored copy, checked by load()
        }
        faiss.write_index(index, str(stage / FAISS_FILE))
        with atomic_open(stage / META) as fh:
            json.dump(meta, fh, indent=2)
        return index, {**meta, "_model": model}

    @classmethod
    def load(cls, folder: str | os.PathLike, model: Any = None, mmap: bool = False) -> "SentenceIndex":
        """Open a saved index; with ``model`` given, refuse it unless its fingerprint matches.

        Raises:
            ModelMismatchError: the index was built with another model.
        """
        import faiss

        from mlembed.models import fingerprint, load_model

        folder = Path(folder)
        meta_path = folder / META
        if not meta_path.exists():
            raise FileNotFoundError(f"{folder}: not an mlembed index (no {META})")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON ({exc.msg}): rebuild the index with `mlembed index build`", meta_path,
                            exc.lineno) from None
        loaded = None
        if model is not None:
            got = fingerprint(model)  # from the folder or alias when given by name: no need to load it first
            if got != meta["fingerprint"]:
                name = str(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__
                raise ModelMismatchError(
                    f"index built with model {meta['model']!r} (fingerprint {meta['fingerprint']}), but model "
                    f"{name!r} has fingerprint {got}: search with the index's model or rebuild the index",
                    meta_path,
                )
            loaded = load_model(model) if isinstance(model, (str, os.PathLike)) else model
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        index = faiss.read_index(str(folder / FAISS_FILE), flags)
        from mlembed.textstore import LineStore

        lines = len(LineStore.open(folder / SENTENCES))
        if not index.ntotal == lines == meta["count"]:
            raise DataError(f"inconsistent index folder: {index.ntotal} vectors, {lines} sentences, meta.json says "
                            f"{meta['count']}; rebuild it with `mlembed index build`", folder)
        if meta.get("sentences_sha256") and file_sha256(folder / SENTENCES) != meta["sentences_sha256"]:
            raise DataError(f"{SENTENCES} was changed after the index was built (content hash differs from meta.json); "
                            "rebuild it with `mlembed index build`", folder)
        set_search_params(index, nprobe=meta.get("nprobe"), ef_search=meta.get("ef_search"))
        idx = cls(folder, index, meta)
        idx._model = loaded
        return idx

    def search_vectors(self, vectors: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Raw FAISS search of normalised query vectors: ``(scores, ids)``, each ``(n, k)``."""
        return self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)

    def search(self, queries: str | Sequence[str], k: int = 10) -> list[Hit] | list[list[Hit]]:
        """Encode queries (any language) and return the ``k`` best hits (one list per query)."""
        from mlembed.encoding import encode
        from mlembed.models import load_model

        if self._model is None:
            self._model = load_model(self.meta["model"])
        single = isinstance(queries, str)
        vecs = encode([queries] if single else list(queries), self._model, normalize=True)
        scores, ids = self.search_vectors(vecs, k)
        hits = [
            [Hit(float(s), int(i), self.sentences[int(i)]) for s, i in zip(row_s, row_i) if i >= 0]
            for row_s, row_i in zip(scores, ids)
        ]
        return hits[0] if single else hits


def iter_batches(items: Iterable[str], size: int) -> Iterable[list[str]]:
    """Group an iterable into lists of ``size`` (the last may be shorter).

    Example:
        >>> list(iter_batches("abcde", 2))
        [['a', 'b'], ['c', 'd'], ['e']]
    """
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
