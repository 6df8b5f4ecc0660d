"""The initial student, built one way per kind (:func:`mlembed.distill.config.student_kind`).

- ``pretrained`` (e5-small, a hub id): the model, with a map from its space into the teacher's fitted in
  closed form (:mod:`mlembed.distill.head`), or a trainable ``Dense`` when it has no map and another dimension;
- ``distilled`` (a folder mlembed distilled): the model as saved, already in the teacher's space;
- ``auto``: the teacher with a vocabulary learned from the data's non-English side (:mod:`mlembed.vocab`);
- ``layers``: a copy of the student cut to ``--layers`` layers, taught by the full model.

Each student trains on short pairs and reads at inference as far as its start does (:func:`start_window`).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlembed.distill.config import DistillConfig, StudentKind
from mlembed.distill.run_folder import read_plan

logger = logging.getLogger(__name__)


@dataclass
class Start:
    """An initial student and what building it measured: the window it reads at inference, its vocabulary
    figures (``auto``), its map's figures (``pretrained``) and the layers it kept (``layers``)."""

    model: Any
    window: int | None
    vocab: dict[str, int] = field(default_factory=dict)
    student_map: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, Any] = field(default_factory=dict)


def start_window(model: Any, source: str) -> int | None:
    """The tokens a student's start reads at inference: its own ``max_seq_length`` (e5-small 512, the
    teacher 256), or for a folder mlembed distilled before, the window recorded in its ``mlembed.json``
    (folders saved before that was recorded carried their training length: the tokenizer's limit then).

    Example:
        >>> from mlembed.models import load_model
        >>> start_window(load_model("minilm-en"), "minilm-en")
        256
    """
    window = getattr(model, "max_seq_length", None)
    previous = read_plan(source)
    if previous is None:
        return window
    if isinstance(previous.max_seq_length, dict) and previous.max_seq_length.get("inference"):
        return int(previous.max_seq_length["inference"])
    limit = getattr(getattr(model, "tokenizer", None), "model_max_length", None)
    return int(limit) if isinstance(limit, int) and limit < 100_000 else window


def build_student(
    config: DistillConfig, kind: StudentKind, teacher: Any, train: list, cache: Any, rows: np.ndarray
) -> Start:
    """The initial student of a run over the training pairs ``train``; ``cache.vectors()[rows[i]]`` is the
    teacher vector of pair i (only the map's pairs are read).

    Example:
        >>> from mlembed.models import load_model
        >>> from mlembed.teacher_cache import TeacherCache
        >>> import tempfile
        >>> teacher = load_model("minilm-en")
        >>> cache = TeacherCache(tempfile.mkdtemp(), teacher)
        >>> config = DistillConfig(student="minilm-en", student_map="none")
        >>> start = build_student(config, "pretrained", teacher, [], cache, np.zeros(0, int))
        >>> start.window, start.model.max_seq_length, start.student_map
        (256, 64, {})
    """
    from mlembed.models import embedding_dim, load_model

    if kind == "layers":
        return _cut(config)
    vocab = {}
    if kind == "auto":
        student, vocab = _extended(config, train)
    else:
        student = load_model(config.student)
    window = start_window(student, config.student)
    student.max_seq_length = config.max_seq_length
    if kind == "pretrained" and config.student_map != "none":
        return Start(student, window, student_map=_fit_map(config, student, train, cache, rows))
    s_dim, t_dim = embedding_dim(student), embedding_dim(teacher)
    if s_dim != t_dim:  # e.g. xlm-roberta-base (768) under a 384-d teacher: learn a projection
        import torch
        from sentence_transformers.models import Dense

        student.append(
            Dense(in_features=s_dim, out_features=t_dim, bias=False, activation_function=torch.nn.Identity())
        )
        logger.info(f"student dimension {s_dim} != teacher {t_dim}: added a trainable Dense projection")
    return Start(student, window, vocab=vocab)


def _cut(config: DistillConfig) -> Start:
    """A copy of the full model with layers left out: already in its teacher's space."""
    from mlembed.distill.layers import encoder_layers, keep_layers
    from mlembed.models import load_model

    student = load_model(config.student)
    total = len(encoder_layers(student))
    kept = keep_layers(student, config.layers)
    window = start_window(student, config.student)
    student.max_seq_length = config.max_seq_length
    logger.info(
        f"student: {config.student} cut to {len(kept)} of its {total} layers ({kept}), learning the full model"
    )
    return Start(student, window, layers={"kept": kept, "of": total})


def _extended(config: DistillConfig, train: list) -> tuple[Any, dict[str, int]]:
    """The teacher with the subwords of the non-English side it lacks (``auto``)."""
    from mlembed.models import load_model, resolve_model_path
    from mlembed.vocab import extend_vocabulary

    student = load_model(resolve_model_path(config.teacher))
    logger.info(f"learning a {config.new_tokens}-subword vocabulary from the non-English side")
    pairs = [(p.src, p.tgt) for p in train] if config.vocab_init == "translation" else None
    stats = extend_vocabulary(
        student, (p.tgt for p in train), new_tokens=config.new_tokens, seed=config.seed, pairs=pairs
    )
    logger.info(
        f"student vocabulary: +{stats['added']} subwords ({stats['aligned']} initialised from their "
        f"English translations, {stats['transferred']} from the teacher's tokenisation, "
        f"{stats['random']} random; {stats['alphabet']} of them cover the rest of the scripts seen) = "
        f"{stats['vocab_size']}"
    )
    return student, stats


def _fit_map(config: DistillConfig, student: Any, train: list, cache: Any, rows: np.ndarray) -> dict[str, Any]:
    """Append the map from a pretrained student's space into the teacher's, fitted on ``map_pairs`` training
    pairs (and, for procrustes, ``map_sentences`` packaged English sentences); returns its figures."""
    from mlembed.data.english import english_sentences
    from mlembed.distill.head import fit_student_map

    picked = random.Random(config.seed).sample(range(len(train)), min(config.map_pairs, len(train)))
    english = english_sentences()[: config.map_sentences] if config.student_map == "procrustes" else []
    logger.info(
        f"fitting a {config.student_map} map from the student's space into the teacher's on {len(picked)} pairs"
        + (f" and {len(english)} packaged English sentences" if english else "")
    )
    english_rows = cache.rows(english, show_progress=config.show_progress) if english else None
    cached = cache.vectors()  # (after the English sentences were added)
    return fit_student_map(  # (distill.head logs the mapped start's cosines)
        student,
        [(train[i].src, train[i].tgt) for i in picked],
        cached[rows[picked]],
        show_progress=config.show_progress,
        method=config.student_map,
        english=english,
        english_targets=cached[english_rows] if english else None,
    )
