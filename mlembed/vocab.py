"""A student that reads every script: the teacher's transformer with an extended WordPiece vocabulary.

The teacher's uncased English WordPiece vocabulary turns most Chinese, Japanese or Hindi text into
``[UNK]``. :func:`extend_vocabulary` learns new subwords from the non-English training text with HF
``tokenizers`` (same normaliser and pre-tokeniser family as the teacher, so the merged vocabulary
stays a valid WordPiece vocabulary), appends those the teacher lacks after the teacher's ids (the
teacher's rows are untouched), and initialises each new row from what the teacher already knows:

* **translation transfer** (when parallel pairs are given): the Dice-weighted mean of the teacher's
  embeddings of the English subwords that the new subword co-occurs with across the pairs (``猫``
  starts near ``cat``); this gives the student a bag-of-translations head start before training;
* else **fast vocabulary transfer**: the mean of the teacher's embeddings of that string's teacher
  tokenisation (``straße`` -> ``stra`` ``##ße``);
* else a small random vector (the teacher sees only ``[UNK]`` and the pairs say nothing).

The student keeps accents (``strip_accents=False``; the teacher strips them, which erases Vietnamese
tones and Devanagari vowel signs) but lower-cases like the teacher.

No character of a script seen in the data becomes ``[UNK]``: :func:`script_alphabet` adds every letter,
mark and digit of each such script (the first word of its Unicode name: ``CJK``, ``CYRILLIC``, ``HANGUL``,
...; Basic Multilingual Plane), as a word-initial piece and, outside CJK ideographs (which BERT's
pre-tokeniser splits one by one), as a ``##`` continuation, so a Chinese character that the training data
never showed, or a rare Cyrillic letter inside a word, still gets a row of its own.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _normalizer():
    from tokenizers import normalizers

    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True)


def learn_subwords(texts: Iterable[str], vocab_size: int = 40000, min_frequency: int = 2) -> list[str]:
    """Learn a WordPiece vocabulary (``##`` continuation prefix) from ``texts``.

    Example:
        >>> vocab = learn_subwords(["今天天气很好", "天气不错"] * 10, vocab_size=200, min_frequency=1)
        >>> "天" in vocab and "气" in vocab
        True
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = _normalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # Sorted by text, not by the trainer's ids, which follow its hash maps' per-process order. The set itself
    # can still differ between two processes on the same texts (ties of equal counts; measured: 1 piece in 300),
    # so a resumed distillation reuses the vocabulary saved with its initial student rather than relearning it.
    return sorted(t for t in tok.get_vocab() if t not in SPECIAL_TOKENS)


def _is_cjk_ideograph(cp: int) -> bool:
    """The ranges BERT's pre-tokeniser splits into single characters (``handle_chinese_chars``)."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _script(char: str) -> str | None:
    """A character's script, as the first word of its Unicode name, for letters, marks and digits."""
    if not unicodedata.category(char).startswith(("L", "M", "N")):
        return None
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else None


@functools.lru_cache(maxsize=1)
def _script_table() -> dict[str, tuple[str, ...]]:
    """Script -> its normalised letters, marks and digits in the Basic Multilingual Plane (built once)."""
    norm = _normalizer()
    table: dict[str, list[str]] = {}
    for cp in range(0x80, 0x10000):
        char = chr(cp)
        script = _script(char)
        if script and norm.normalize_str(char).strip() == char:
            table.setdefault(script, []).append(char)
    return {k: tuple(v) for k, v in table.items()}


def script_alphabet(texts: Iterable[str]) -> list[str]:
    """Pieces covering every character of each non-ASCII script seen in ``texts``: the character itself and,
    except for CJK ideographs, its ``##`` continuation.

    Example:
        >>> pieces = script_alphabet(["Привет"])
        >>> "ё" in pieces and "##ё" in pieces, "猫" in script_alphabet(["今天"])
        (True, True)
    """
    seen = {c for text in texts for c in _normalizer().normalize_str(text) if ord(c) >= 0x80}
    scripts = sorted({s for s in map(_script, seen) if s})
    table = _script_table()
    pieces = []
    for script in scripts:
        for char in table.get(script, ()):
            pieces.append(char)
            if not _is_cjk_ideograph(ord(char)):
                pieces.append("##" + char)
    return pieces


def extend_vocabulary(
    model: Any,
    texts: Iterable[str],
    new_tokens: int = 40000,
    min_frequency: int = 2,
    seed: int = 0,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> dict:
    """Extend a BERT-style sentence-transformers model's vocabulary in place with subwords from ``texts``.

    ``new_tokens`` is the size of the vocabulary learned from ``texts``; the subwords the model
    already has are skipped, so fewer rows than that may be added. ``pairs`` (English, translation)
    enable translation transfer (see the module docstring). Every character of each script seen in
    ``texts`` gets a piece too (:func:`script_alphabet`). Returns statistics: ``added``,
    ``aligned`` (rows from translation transfer), ``transferred`` (rows from the teacher's
    tokenisation), ``random``, ``alphabet`` (rows added only for script coverage).

    Example:
        >>> from mlembed.models import load_model
        >>> student = load_model("minilm-en")
        >>> stats = extend_vocabulary(student, ["今天天气很好。", "我喜欢学习中文。"] * 20, new_tokens=300, min_frequency=1)
        >>> "[UNK]" in student.tokenizer.tokenize("今天天气很好")
        False
    """
    import torch
    from transformers import BertTokenizer

    transformer = model[0]
    old_tok = transformer.tokenizer
    old_vocab = old_tok.get_vocab()
    texts = list(texts)
    learned = learn_subwords(texts, vocab_size=new_tokens, min_frequency=min_frequency)
    added = [t for t in learned if t not in old_vocab]
    have = set(old_vocab) | set(added)
    coverage = [t for t in script_alphabet(texts) if t not in have]
    added += coverage
    merged = [t for t, _ in sorted(old_vocab.items(), key=lambda kv: kv[1])] + added
    new_tok = BertTokenizer(
        vocab={token: i for i, token in enumerate(merged)},
        do_lower_case=True,
        strip_accents=False,
        tokenize_chinese_chars=True,
        model_max_length=old_tok.model_max_length,
    )
    embeddings = transformer.auto_model.get_input_embeddings().weight
    old_rows = embeddings.detach().clone()
    transformer.auto_model.resize_token_embeddings(len(merged), mean_resizing=False)
    weight = transformer.auto_model.get_input_embeddings().weight
    rng = np.random.default_rng(seed)
    std = float(old_rows.std())
    unk = old_tok.unk_token_id
    surface = [t[2:] if t.startswith("##") and len(t) > 2 else t for t in added]
    ids = old_tok(surface, add_special_tokens=False)["input_ids"] if added else []
    transferred = 0
    new_rows = np.empty((len(added), weight.shape[1]), dtype=np.float32)
    old_np = old_rows.numpy()
    aligned = translation_transfer(old_tok, new_tok, pairs, len(old_vocab), old_np) if pairs and added else {}
    for i, piece_ids in enumerate(ids):
        known = [p for p in piece_ids if p != unk]
        if i + len(old_vocab) in aligned:
            new_rows[i] = aligned[i + len(old_vocab)]
        elif known:
            new_rows[i] = old_np[known].mean(axis=0)
            transferred += 1
        else:
            new_rows[i] = rng.normal(0.0, std * 0.5, size=weight.shape[1])
    with torch.no_grad():
        weight[: len(old_vocab)] = old_rows
        if added:
            weight[len(old_vocab) :] = torch.from_numpy(new_rows)
    transformer.processor = new_tok  # sentence-transformers 6 keeps the tokenizer as the module's processor
    return {
        "added": len(added),
        "aligned": len(aligned),
        "transferred": transferred,
        "random": len(added) - transferred - len(aligned),
        "alphabet": len(coverage),
        "vocab_size": len(merged),
    }


def _bags(tokenizer: Any, texts: Sequence[str], width: int) -> Any:
    """Sparse 0/1 matrix (texts x vocabulary): which subwords each text contains."""
    from scipy import sparse

    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    rows = np.repeat(np.arange(len(ids)), [len(x) for x in ids])
    cols = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=len(rows))
    bags = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(ids), width))
    bags.data[:] = 1.0  # duplicates within a text were summed
    return bags


def translation_transfer(
    old_tok: Any,
    new_tok: Any,
    pairs: Sequence[tuple[str, str]],
    first_new: int,
    old_rows: np.ndarray,
    top: int = 3,
    min_dice: float = 0.1,
    min_count: int = 3,
) -> dict[int, np.ndarray]:
    """Initial rows for new subwords (ids >= ``first_new``) from the English subwords they co-occur with.

    For each new subword w seen in at least ``min_count`` translations, the English subwords e of the
    teacher's tokenisation of the same pairs are scored with Dice, 2 c(w,e) / (c(w) + c(e)) over pairs;
    the row is the Dice-weighted mean of the teacher's rows of the ``top`` best e, when the best score
    reaches ``min_dice``. Returns {new id: row}.

    Example:
        >>> from mlembed.models import load_model
        >>> student = load_model("minilm-en")
        >>> pairs = [("the cat sleeps", "die katze schläft"), ("a black cat", "eine schwarze katze"),
        ...          ("the dog sleeps", "der hund schläft")] * 3
        >>> stats = extend_vocabulary(student, [p[1] for p in pairs], new_tokens=120, min_frequency=1, pairs=pairs)
        >>> rows = student[0].auto_model.get_input_embeddings().weight.detach()
        >>> katze = rows[student.tokenizer.convert_tokens_to_ids("katze")]
        >>> student.tokenizer.convert_ids_to_tokens(int((rows[:30522] @ katze).argmax()))
        'cat'
    """
    english = _bags(old_tok, [p[0] for p in pairs], len(old_rows))
    foreign = _bags(new_tok, [p[1] for p in pairs], len(new_tok))[:, first_new:].tocsc()
    n_e = np.asarray(english.sum(axis=0)).ravel()
    n_w = np.asarray(foreign.sum(axis=0)).ravel()
    special = [i for i in old_tok.all_special_ids if i < len(n_e)]
    n_e[special] = np.inf  # never a translation
    co = (foreign.T @ english).tocsr()  # new subwords x English subwords: pairs containing both
    out: dict[int, np.ndarray] = {}
    for w in np.flatnonzero(n_w >= min_count):
        start, end = co.indptr[w], co.indptr[w + 1]
        if start == end:
            continue
        e = co.indices[start:end]
        dice = 2 * co.data[start:end] / (n_w[w] + n_e[e])
        best = np.argsort(-dice)[:top]
        if dice[best[0]] < min_dice:
            continue
        weights = dice[best] / dice[best].sum()
        out[first_new + int(w)] = (weights[:, None] * old_rows[e[best]]).sum(axis=0)
    return out
