"""FAISS indexes of sentence embeddings for cross-lingual search, saved with their sentences.

An index folder holds ``index.faiss`` (the FAISS index, inner product on L2-normalised vectors,
so scores are cosines), ``meta.json`` (model fingerprint, dimension, normalisation, sentence
count, source file hash, index type and search settings) and the sentences through a
:class:`mlembed.textstore.LineStore` (the source text plus a line-offset file), so search can print
sentences without loading them all.

Each line of the input is a document (a sentence, a paragraph, a whole text). A line longer than the
model's window is stored as *passages* (by default, ``overflow="passages"``): consecutive windows of the
model's length overlapping by ``passage_overlap`` tokens, one row each; ``documents.npy`` gives every row
its document (the 0-based line) and character span, and search answers with the passage and its document.

What to build is an :class:`IndexSpec`; its index types (``kind``) are those of :mod:`mlembed.faiss_index`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.faiss_index import build_faiss_index, factory_string, set_search_params
from mlembed.files import DataError, atomic_open, file_sha256, replace_dir

META = "meta.json"
FAISS_FILE = "index.faiss"
SENTENCES = "sentences.txt"
DOCUMENTS = "documents.npy"

#: what ``index build`` does with a line longer than the model's window: store it as passages (rows)
INDEX_OVERFLOW = "passages"


class ModelMismatchError(DataError):
    """An index (or cached embeddings) built with a different model than the one given."""


@dataclass
class Hit:
    """One search result: cosine ``score``, row ``id`` and the ``sentence`` (the row's text: a passage of a
    long document); ``document`` is the 0-based input line the row comes from and ``span`` its characters
    there (``None`` in indexes built from ready embeddings, where rows are lines)."""

    score: float
    id: int
    sentence: str
    document: int | None = None
    span: tuple[int, int] | None = None


@dataclass(frozen=True)
class IndexSpec:
    """What :meth:`SentenceIndex.build` makes of a text file's lines: the index type, its search settings, the
    lines' language and what becomes of a line longer than the model's window. What it decides is saved in
    ``meta.json`` (``factory``, ``nprobe``, ``ef_search``, ``lang``, ``overflow``, ``documents``); how the vectors
    are computed (model, engine, Ray, batch size) is given to ``build`` beside it.

    ``lang`` is checked and normalised, and ``overflow`` checked, when the spec is made; a changed copy is
    :func:`dataclasses.replace`'s.

    Example:
        >>> spec = IndexSpec(kind="ivf", nprobe=16, lang="zh_CN")
        >>> spec.lang, spec.overflow
        ('zh-Hans', 'passages')
        >>> from dataclasses import replace
        >>> replace(spec, nprobe=64).nprobe
        64
        >>> IndexSpec(overflow="wrap")
        Traceback (most recent call last):
        ...
        ValueError: overflow must be one of passages, error, truncate, split; got 'wrap'
    """

    #: index type: ``auto``, ``flat``, ``ivf``, ``ivfsq``, ``hnsw``, ``ivfpq`` or a FAISS factory string
    kind: str = "auto"
    #: vectors sampled to train IVF/PQ indexes (``None``: :func:`mlembed.faiss_index.build_faiss_index`'s default)
    train_size: int | None = None
    #: IVF lists probed per query, saved in the index (``None``: FAISS's default)
    nprobe: int | None = None
    #: HNSW efSearch, saved in the index (``None``: FAISS's default)
    ef_search: int | None = None
    #: the sentences' language, a BCP-47 tag (``de``, ``zh-Hans``) that ``mlembed serve`` tags results with
    lang: str | None = None
    #: a line over the model's window: ``passages`` (rows), or ``split``, ``truncate``, ``error`` as :mod:`mlembed.windows`
    overflow: str = INDEX_OVERFLOW
    #: tokens shared by consecutive passages of a long line (``None``: an eighth of the window)
    passage_overlap: int | None = None

    def __post_init__(self) -> None:
        from mlembed.windows import OVERFLOW_MODES

        if self.overflow not in (INDEX_OVERFLOW, *OVERFLOW_MODES):
            raise ValueError(
                f"overflow must be one of {INDEX_OVERFLOW}, {', '.join(OVERFLOW_MODES)}; got {self.overflow!r}"
            )
        if self.lang is not None:
            from mlembed.languages import looks_like_lang, normalize_lang

            if not looks_like_lang(self.lang):
                raise DataError(f"--lang {self.lang!r}: expected a language tag such as de, pt-BR or zh-Hans")
            object.__setattr__(self, "lang", normalize_lang(self.lang))

    @property
    def row_overflow(self) -> str:
        """How the encoder reads one row: as ``overflow`` says, except passages (they fit the window): ``split``."""
        return "split" if self.overflow == INDEX_OVERFLOW else self.overflow


class SentenceIndex:
    """A saved FAISS index plus its sentences and metadata.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp(); src = os.path.join(d, "s.txt")
        >>> _ = open(src, "w").write("The cat sleeps.\\nStock markets fell sharply.\\n")
        >>> idx = SentenceIndex.build(src, os.path.join(d, "idx"), "minilm-en", IndexSpec(kind="flat"), show_progress=False)
        >>> idx.search("Die Katze schläft.", k=1)[0].sentence
        'The cat sleeps.'
        >>> idx.meta["factory"], idx.meta["lang"]
        ('Flat', None)
    """

    def __init__(self, folder: str | os.PathLike, index: Any, meta: dict, model: Any = None):
        from mlembed.textstore import LineStore

        self.folder = Path(folder)
        self.index = index
        self.meta = meta
        self.sentences = LineStore.open(self.folder / SENTENCES)
        documents = self.folder / DOCUMENTS
        self.documents = np.load(documents, mmap_mode="r") if documents.exists() else None
        self._model: Any = model  # loaded on the first search when None

    @classmethod
    def build(
        cls,
        sentences_file: str | os.PathLike,
        output: str | os.PathLike,
        model: Any = "minilm-en",
        spec: IndexSpec | None = None,
        *,
        embeddings: str | os.PathLike | None = None,
        backend: str = "torch",
        ray: bool | str = False,
        batch_size: int = 64,
        show_progress: bool = True,
    ) -> SentenceIndex:
        """Index a text file (one sentence, paragraph or document a line) into the folder ``output``, as
        ``spec`` (an :class:`IndexSpec`; default: ``auto`` type, lines over the window as passages) says.

        ``model``: a model object, or an alias, folder or hub id, loaded to run on ``backend``
        (:mod:`mlembed.backends`; queries may use another engine, the fingerprint is the model's).
        ``ray`` (``True`` or a cluster address): encode on a Ray actor pool and build the IVF index in parts
        merged on disk (:mod:`mlembed.cluster`); ``embeddings`` may then be an ``encode --ray`` folder.

        Sentences are encoded ``batch_size`` at a time to a memory-mapped ``embeddings.npy`` in ``output`` (or
        ``embeddings``, a ready ``.npy`` of normalised rows aligned with the lines, is used). A line over the
        model's window is handled as ``spec.overflow`` says, counted in ``meta.json``'s ``overflow`` and logged.
        The folder is built whole beside ``output`` and swapped in by renames: a failure or a kill leaves the
        previous index as it was.
        """
        spec = IndexSpec() if spec is None else spec
        output = Path(output)
        if output.exists() and not output.is_dir():
            raise DataError("exists and is not a folder: expected an index folder to create or replace", output)
        stage = output.parent / f".{output.name}.staging"  # built whole, then swapped in by renames
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
        try:
            index, meta, loaded = cls._build_in(
                stage,
                sentences_file,
                model,
                spec,
                embeddings=embeddings,
                backend=backend,
                ray=ray,
                batch_size=batch_size,
                show_progress=show_progress,
            )
            replace_dir(stage, output)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)  # the previous index, if any, stays as it was
            raise
        return cls(output, index, meta, model=loaded)

    @staticmethod
    def _build_in(
        stage: Path,
        sentences_file: str | os.PathLike,
        model: Any,
        spec: IndexSpec,
        *,
        embeddings: str | os.PathLike | None,
        backend: str,
        ray: bool | str,
        batch_size: int,
        show_progress: bool,
    ) -> tuple[Any, dict, Any]:
        """Build the index into ``stage``: ``(faiss index, meta, model)``, the model ``None`` where it was given
        by name and never loaded here (on Ray the workers encode)."""
        import faiss

        from mlembed.encoding import encode_to_npy, read_sentences
        from mlembed.models import fingerprint, load_model
        from mlembed.textstore import LineStore
        from mlembed.windows import LengthReport, model_window

        passages = spec.overflow == INDEX_OVERFLOW
        address = ray if isinstance(ray, str) else None
        if isinstance(model, (str, os.PathLike)):
            from mlembed.backends import load_backend

            model_name = str(model)
            if not ray or (embeddings is None and passages):  # on Ray the workers encode
                model = load_model(model)
                if embeddings is None and not ray:
                    model = load_backend(model, backend, task="search")
        else:
            model_name = getattr(model, "mlembed_source", type(model).__name__)
        loaded = None if isinstance(model, (str, os.PathLike)) else model
        report = LengthReport(spec.overflow, None if loaded is None else model_window(loaded))
        if embeddings is None and passages and report.window is not None:
            store = write_passages(
                sentences_file, stage / SENTENCES, stage / DOCUMENTS, loaded, spec.passage_overlap, report
            )
            report.log("lines")
        else:
            store = LineStore.build(sentences_file, stage / SENTENCES)
        rows_report = None  # how each row was read (given embeddings: by whoever made them)
        if ray and (embeddings is None or Path(embeddings).is_dir()):
            from mlembed.cluster.encode import encode_ray, shards_to_npy

            shards = Path(embeddings) if embeddings is not None else stage / "shards"
            if embeddings is None:
                manifest = encode_ray(
                    [stage / SENTENCES],
                    shards,
                    model_name,
                    backend,
                    address,
                    normalize=True,
                    show_progress=show_progress,
                    overflow=spec.row_overflow,
                )
                rows_report = LengthReport(**manifest["overflow"])
            embeddings = shards_to_npy(shards, stage / "embeddings.npy")
            if shards.parent == stage:
                shutil.rmtree(shards)
        elif embeddings is None:
            embeddings = stage / "embeddings.npy"
            rows_report = LengthReport(spec.row_overflow, report.window)
            encode_to_npy(
                read_sentences(stage / SENTENCES),
                embeddings,
                loaded,
                count=len(store),
                batch_size=batch_size,
                normalize=True,
                show_progress=show_progress,
                overflow=spec.row_overflow,  # passages already fit
                report=rows_report,
            )
            rows_report.log("rows")
        emb = np.load(embeddings, mmap_mode="r")
        if len(emb) != len(store):
            raise DataError(f"{len(emb)} embeddings for {len(store)} lines", embeddings)
        factory = factory_string(spec.kind, len(emb), emb.shape[1])
        if ray:
            from mlembed.cluster.index import build_ivf_on_ray

            build_ivf_on_ray(embeddings, stage, factory, FAISS_FILE, spec.train_size, None, address, show_progress)
            index = read_ondisk_index(stage / FAISS_FILE)
        else:
            index = build_faiss_index(emb, factory, train_size=spec.train_size, show_progress=show_progress)
        set_search_params(index, nprobe=spec.nprobe, ef_search=spec.ef_search)
        meta = {
            "model": model_name,
            "fingerprint": fingerprint(model),
            "dimension": int(emb.shape[1]),
            "normalized": True,
            "count": int(len(emb)),
            "lang": spec.lang,
            "factory": factory,
            "nprobe": spec.nprobe,
            "ef_search": spec.ef_search,
            "source": str(Path(sentences_file).resolve()),
            "source_sha256": file_sha256(sentences_file),
            "sentences_sha256": file_sha256(stage / SENTENCES),  # the stored copy, checked by load()
            "ondisk": bool(ray),  # inverted lists in lists.ivfdata beside index.faiss, memory-mapped
            "documents": _count_documents(stage / DOCUMENTS, len(emb)),
            # lines over the window as passages; or, in the other modes, how each row was read
            "overflow": (report if passages or rows_report is None else rows_report).to_dict(),
            # passages (rows up to the window) are read as encode reads them: over 128 tokens, in pooled windows
            "rows": None if rows_report is None else rows_report.to_dict(),
        }
        if not ray:
            faiss.write_index(index, str(stage / FAISS_FILE))
        with atomic_open(stage / META) as fh:
            json.dump(meta, fh, indent=2)
        return index, meta, loaded

    @classmethod
    def load(cls, folder: str | os.PathLike, model: Any = None, mmap: bool = False) -> SentenceIndex:
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
            raise DataError(
                f"not valid JSON ({exc.msg}): rebuild the index with `mlembed index build`", meta_path, exc.lineno
            ) from None
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
        if meta.get("ondisk"):  # built by --ray: its lists file is found beside index.faiss wherever it moved
            index = read_ondisk_index(folder / FAISS_FILE)
        else:
            index = faiss.read_index(
                str(folder / FAISS_FILE), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
            )
        from mlembed.textstore import LineStore

        lines = len(LineStore.open(folder / SENTENCES))
        if not index.ntotal == lines == meta["count"]:
            raise DataError(
                f"inconsistent index folder: {index.ntotal} vectors, {lines} sentences, meta.json says "
                f"{meta['count']}; rebuild it with `mlembed index build`",
                folder,
            )
        if meta.get("sentences_sha256") and file_sha256(folder / SENTENCES) != meta["sentences_sha256"]:
            raise DataError(
                f"{SENTENCES} was changed after the index was built (content hash differs from meta.json); "
                "rebuild it with `mlembed index build`",
                folder,
            )
        if (folder / DOCUMENTS).exists() and len(np.load(folder / DOCUMENTS, mmap_mode="r")) != lines:
            raise DataError(
                f"{DOCUMENTS} does not hold one row per sentence: rebuild it with `mlembed index build`", folder
            )
        set_search_params(index, nprobe=meta.get("nprobe"), ef_search=meta.get("ef_search"))
        return cls(folder, index, meta, model=loaded)

    def search_vectors(self, vectors: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Raw FAISS search of normalised query vectors: ``(scores, ids)``, each ``(n, k)``."""
        return self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)

    def search(
        self, queries: str | Sequence[str], k: int = 10, overflow: str = "split", report: Any = None
    ) -> list[Hit] | list[list[Hit]]:
        """Encode queries (any language) and return the ``k`` best hits (one list per query); a query longer
        than the model's window is read as :func:`mlembed.encode`'s ``overflow`` says (``report`` as there)."""
        from mlembed.encoding import encode
        from mlembed.models import load_model

        if self._model is None:
            self._model = load_model(self.meta["model"])
        single = isinstance(queries, str)
        vecs = encode(
            [queries] if single else list(queries), self._model, normalize=True, overflow=overflow, report=report
        )
        scores, ids = self.search_vectors(vecs, k)
        hits = [
            [self.hit(float(s), int(i)) for s, i in zip(row_s, row_i) if i >= 0] for row_s, row_i in zip(scores, ids)
        ]
        return hits[0] if single else hits

    def hit(self, score: float, row: int) -> Hit:
        """The :class:`Hit` of row ``row``: its text, and its document and span where the index stores them."""
        if self.documents is None:
            return Hit(score, row, self.sentences[row])
        line, start, end = (int(x) for x in self.documents[row])
        return Hit(score, row, self.sentences[row], line, (start, end))


def write_passages(
    source: str | os.PathLike,
    dest: str | os.PathLike,
    documents: str | os.PathLike,
    model: Any,
    overlap: int | None = None,
    report: Any = None,
    batch: int = 1024,
) -> Any:
    """The rows of an index of ``source``'s lines: each line that fits the model's window is one row, a
    longer one is cut into passages of the window overlapping by ``overlap`` tokens (default: an eighth of
    the window). Rows go to ``dest`` (a :class:`mlembed.textstore.LineStore`), and ``documents`` (an int64
    ``.npy``, one ``[line, start, end]`` a row) gives each row its 0-based line and character span. Lines are
    read ``batch`` at a time (memory bounded); ``report`` (:class:`mlembed.windows.LengthReport`) counts the
    lines over the window and the passages made.

    Example:
        >>> import tempfile, os
        >>> from mlembed.models import load_model
        >>> model = load_model("minilm-en"); model.max_seq_length = 16
        >>> d = tempfile.mkdtemp(); src = os.path.join(d, "docs.txt")
        >>> _ = open(src, "w").write("A short line.\\n" + " ".join(f"word{i}" for i in range(12)) + "\\n")
        >>> store = write_passages(src, os.path.join(d, "rows.txt"), os.path.join(d, "docs.npy"), model, overlap=1)
        >>> [store[i] for i in range(len(store))]
        ['A short line.', 'word0 word1 word2 word3 word4', 'word4 word5 word6 word7 word8', 'word8 word9 word10 word11']
        >>> np.load(os.path.join(d, "docs.npy"))[:3].tolist()
        [[0, 0, 13], [1, 0, 29], [1, 24, 53]]
    """
    from array import array

    from mlembed.data.base import batched
    from mlembed.files import atomic_path, read_lines
    from mlembed.textstore import LineStore
    from mlembed.windows import passage_spans

    spans = array("q")
    with atomic_path(Path(str(dest) + ".rows")) as rows_tmp, open(rows_tmp, "w", encoding="utf-8") as out:
        for chunk in batched(read_lines(source), batch):
            texts = [text for _, text in chunk]
            for (number, text), parts in zip(chunk, passage_spans(model, texts, overlap, report, chunk[0][0] - 1)):
                for a, b, _ in parts:
                    out.write(text[a:b] + "\n")
                    spans.extend((number - 1, a, b))  # documents are lines counted from 0
        out.close()
        store = LineStore.build(rows_tmp, dest)
    with atomic_path(documents, suffix=".npy") as tmp:
        np.save(tmp, np.frombuffer(spans, dtype=np.int64).reshape(-1, 3))
    return store


def _count_documents(documents: Path, rows: int) -> int:
    """Documents (input lines) behind an index's rows: the last row's line + 1, or the rows themselves."""
    if not documents.exists():
        return rows
    table = np.load(documents, mmap_mode="r")
    return int(table[-1, 0]) + 1 if len(table) else 0


def read_ondisk_index(path: str | os.PathLike) -> Any:
    """Read an index whose inverted lists live in ``lists.ivfdata`` beside it (``index build --ray``).

    FAISS finds the lists file in the index's folder wherever it moved (``IO_FLAG_ONDISK_SAME_DIR``) and
    says so on the C stdout; that line is dropped, so ``mlembed search``'s stdout holds only results.
    """
    import ctypes
    import sys

    import faiss

    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR)
    finally:
        ctypes.CDLL(None).fflush(None)  # C stdio's buffer goes to /dev/null too, not to the restored stdout
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
