"""A student that reads every script: the teacher's transformer with an extended WordPiece vocabulary.

The teacher's uncased English WordPiece vocabulary turns most Chinese, Japanese or Hindi text into
``[UNK]``. :func:`extend_vocabulary` learns new subwords from the non-English training text with HF
``tokenizers`` (same normaliser and pre-tokeniser family as the teacher, so the merged vocabulary
stays a valid WordPiece vocabulary), appends those the teacher lacks after the teacher's ids (the
teacher's rows are untouched), and initialises each new row as the mean of the teacher's embeddings of
that string's teacher tokenisation (fast vocabulary transfer), or a small random vector where the
teacher sees only ``[UNK]``.

The student keeps accents (``strip_accents=False``; the teacher strips them, which erases Vietnamese
tones and Devanagari vowel signs) but lower-cases like the teacher.
"""

from __future__ import annotations

from typing import Any, Iterable

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
    vocab = tok.get_vocab()
    return [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if t not in SPECIAL_TOKENS]


def extend_vocabulary(
    model: Any, texts: Iterable[str], new_tokens: int = 40000, min_frequency: int = 2, seed: int = 0
) -> dict:
    """Extend a BERT-style sentence-transformers model's vocabulary in place with subwords from ``texts``.

    ``new_tokens`` is the size of the vocabulary learned from ``texts``; the subwords the model
    already has are skipped, so fewer rows than that may be added. Returns statistics:
    ``added``, ``transferred`` (rows initialised from the teacher's tokenisation), ``random``.

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
    learned = learn_subwords(texts, vocab_size=new_tokens, min_frequency=min_frequency)
    added = [t for t in learned if t not in old_vocab]
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
    for i, piece_ids in enumerate(ids):
        known = [p for p in piece_ids if p != unk]
        if known:
            new_rows[i] = old_np[known].mean(axis=0)
            transferred += 1
        else:
            new_rows[i] = rng.normal(0.0, std * 0.5, size=weight.shape[1])
    with torch.no_grad():
        weight[: len(old_vocab)] = old_rows
        if added:
            weight[len(old_vocab) :] = torch.from_numpy(new_rows)
    transformer.processor = new_tok  # sentence-transformers 6 keeps the tokenizer as the module's processor
    return {"added": len(added), "transferred": transferred, "random": len(added) - transferred, "vocab_size": len(merged)}
