"""Preparation of a run, everything before the first step, saved into its work folder so that ``--resume``
after a kill trains on the same data in the same order from the same initial weights.

Pairs are read and cleaned (:mod:`mlembed.data`), sampled evenly across languages (:mod:`.sampling`), split
into training and dev pairs (dev English sentences held out of training), the teacher's targets cached
(:class:`mlembed.teacher_cache.TeacherCache`), the student built (:mod:`.student`), optionally projected to
``--dim`` (:mod:`.pca`) and saved; the plan is written last.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.distill.config import DistillConfig, StudentKind
from mlembed.distill.run_folder import Plan, RunFolder
from mlembed.distill.student import build_student
from mlembed.files import cache_root

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """Where teacher embeddings are cached: ``$MLEMBED_CACHE`` or ``~/.cache/mlembed``."""
    return cache_root() / "teacher"


def prepare(config: DistillConfig, kind: StudentKind, teacher: Any, run: RunFolder) -> Plan:
    """Sample pairs, split dev, compute teacher targets, build and save the initial student; returns the plan.

    Example:
        >>> run = RunFolder("student")  # doctest: +SKIP
        >>> prepare(DistillConfig(data=["tsv:pairs.tsv"]), "pretrained", load_model("minilm-en"), run)  # doctest: +SKIP
    """
    from datasets import Dataset

    from mlembed.distill.collator import ROW_COLUMN, TARGET_COLUMN
    from mlembed.teacher_cache import TeacherCache

    run.start()
    train, dev, cleaning = _split(config)
    counts = Counter(f"{p.src_lang}-{p.tgt_lang}" for p in train)
    logger.info(f"{len(train)} training pairs in {len(counts)} language pairs, {len(dev)} dev pairs")

    cache = TeacherCache(config.cache_dir or default_cache_dir(), teacher)
    rows = cache.rows([p.src for p in train], show_progress=config.show_progress)
    columns = {"english": [p.src for p in train], "non_english": [p.tgt for p in train], ROW_COLUMN: rows.tolist()}
    if kind == "layers":  # the full model is multilingual: each side learns its own vector of its own sentence
        logger.info("the full model's vectors of the non-English side (the smaller copy learns both sides)")
        columns[TARGET_COLUMN] = cache.rows([p.tgt for p in train], show_progress=config.show_progress).tolist()
    Dataset.from_dict(columns).save_to_disk(str(run.train_data))
    run.write_dev(dev)

    start = build_student(config, kind, teacher, train, cache, rows)
    student = start.model
    if start.student_map:  # the start's map (the Dense before the last Normalize), to rebuild the start later
        linear = student[len(student) - 2].linear
        run.write_start_map(linear.weight.detach().numpy().T, linear.bias.detach().numpy())
    components = None
    if config.dim:
        from mlembed.distill.pca import add_projection, fit_pca

        components = fit_pca(cache.vectors()[np.unique(rows)], config.dim)
        run.write_pca(components)
        add_projection(student, components)
    student.save(str(run.student_init))
    plan = Plan(
        config={k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        teacher_fingerprint=cache.fingerprint,
        cache_dir=str(cache.dir.parent),
        train_pairs=len(train),
        dev_pairs=len(dev),
        pairs_per_language=dict(sorted(counts.items())),
        languages=sorted({p.src_lang for p in train} | {p.tgt_lang for p in train}),
        cleaning=cleaning,
        vocab=start.vocab,
        student_map=start.student_map,
        layers=start.layers,
        teacher_embeddings_computed=cache.computed,
        pca=components is not None,
        # trained on short pairs, read as far as its start reads: the saved model keeps the start's window
        max_seq_length={"training": config.max_seq_length, "inference": start.window},
    )
    run.write_plan(plan)  # last: its presence means preparation finished
    return plan


def _split(config: DistillConfig) -> tuple[list, list, str]:
    """The training and dev pairs (each data spec an equal share, balanced across its languages, shuffled;
    dev from ``eval_data`` or held out; no dev English sentence in training) and the cleaning table."""
    from mlembed.data import read_pairs
    from mlembed.data.cleaning import CleanOptions, CleanStats
    from mlembed.distill.sampling import balanced_sample

    stats = CleanStats()
    clean = CleanOptions(decontaminate=tuple(config.decontaminate))
    logger.info(
        f"reading {', '.join(config.data)}" + (f" (languages: {', '.join(config.langs)})" if config.langs else "")
    )
    if any(spec.startswith("gettext:") for spec in config.data):
        logger.info(
            "gettext catalogs hold software-interface text (menus, messages, help), not ordinary sentences: the "
            "start's map is fitted on packaged ordinary English too, and dev english_cosine is measured on them"
        )
    reserve = 0 if config.eval_data else config.eval_pairs
    total = None if config.max_pairs is None else config.max_pairs + reserve
    pairs = []
    for spec in config.data:
        stream = read_pairs(spec, langs=config.langs, clean=clean, stats=stats)
        share = None if total is None else max(1, total // len(config.data))
        pairs += balanced_sample(stream, max_pairs=share, per_language=config.max_pairs_per_lang, seed=config.seed)
    random.Random(config.seed).shuffle(pairs)
    if not pairs:
        raise ValueError(
            f"no training pairs found in {', '.join(config.data)}" + (f" for {config.langs}" if config.langs else "")
        )
    logger.info("cleaning:\n" + _short_summary(stats.summary()))
    if config.eval_data:
        dev = list(islice(read_pairs(config.eval_data, langs=config.langs, clean=CleanOptions()), config.eval_pairs))
        train = pairs
    else:
        dev, train = pairs[:reserve], pairs[reserve:]
    dev_english = {p.src for p in dev}
    train = [p for p in train if p.src not in dev_english]  # dev English sentences are truly held out
    if not train:
        raise ValueError("every pair went to the dev set: give more data or a smaller --eval-pairs")
    return train, dev, stats.summary()


def _short_summary(table: str, rows: int = 12) -> str:
    """The cleaning table, cut to its header, first rows and total when there are many languages."""
    lines = table.splitlines()
    if len(lines) <= rows + 2:
        return table
    return "\n".join(
        lines[: rows + 1] + [f"... ({len(lines) - rows - 2} more language pairs in the model card)", lines[-1]]
    )
