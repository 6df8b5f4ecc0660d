"""``distill()``: the run as its data flows, one stage per module.

config (:mod:`.config`: options, checks, the student's kind and defaults) -> preparation (:mod:`.prepare`: pairs,
dev split, teacher targets, the initial student from :mod:`.student`) -> training (:mod:`.training`) -> dev
figures (:mod:`.dev`) -> the saved folder (:mod:`.run_folder`, which owns every file of the run). Everything a
run needs to continue after a kill lives in ``OUTPUT/_distill/``: ``resume=True`` reuses it, so the data order
and the initial weights are those of the interrupted run and the trainer continues from its last checkpoint.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from mlembed.distill.config import DistillConfig, configure
from mlembed.distill.run_folder import DistillResult, RunFolder

logger = logging.getLogger(__name__)

#: dev accuracy points a trained student may lose against its start before ``keep_best`` ships the start
KEEP_TOLERANCE = 0.5


def distill(config: DistillConfig | None = None, resume: bool = False, **overrides: Any) -> DistillResult:
    """Distil the teacher into a multilingual student and save it as a sentence-transformers folder.

    Example:
        >>> from mlembed.distill import distill
        >>> result = distill(data=["tsv:pairs.tsv"], output="student", max_minutes=1)  # doctest: +SKIP
        >>> from sentence_transformers import SentenceTransformer
        >>> SentenceTransformer("student").encode(["Guten Morgen"]).shape  # doctest: +SKIP
        (1, 384)
    """
    from mlembed.data.english import english_sentences
    from mlembed.distill import distributed
    from mlembed.distill.dev import dev_evaluator, run_dev
    from mlembed.distill.prepare import prepare
    from mlembed.distill.training import train
    from mlembed.models import embedding_dim, fingerprint, load_model

    config, kind = configure(config, resume, **overrides)
    run = RunFolder(config.output)
    if resume and (finished := run.finished):  # the run had finished: keep its model
        logger.info(f"{run.output} holds a finished run: nothing to resume")
        return finished.result
    distributed.init()
    t0 = time.monotonic()
    teacher = load_model(config.teacher)
    if config.dim and config.dim > embedding_dim(teacher):
        raise ValueError(f"--dim {config.dim}: expected at most the teacher's dimension, {embedding_dim(teacher)}")
    prepared = resume and run.prepared
    distributed.barrier()  # under torchrun: every rank has looked before rank 0 changes anything
    if prepared:
        plan = run.read_plan()
        logger.info(f"resuming {run.output} (prepared {plan.train_pairs} training pairs)")
    elif distributed.is_main():
        if resume:
            logger.info(f"nothing to resume in {run.output}: starting a new run")
        plan = prepare(config, kind, teacher, run)
    distributed.barrier()  # the other ranks wait for rank 0's preparation, then read its plan
    if not prepared and not distributed.is_main():
        plan = run.read_plan()
    prep_seconds = time.monotonic() - t0
    if (got := fingerprint(teacher)) != plan.teacher_fingerprint:  # a resumed run given another --teacher
        raise ValueError(f"{run.work}: prepared with another teacher ({plan.teacher_fingerprint}), got {got}")
    dev = run.read_dev()  # the teacher's vectors of the dev pairs and held-out English, computed once
    english = english_sentences("heldout")[: config.eval_english]
    evaluator = dev_evaluator(dev, teacher, run.read_pca(plan), english) if dev else None
    del teacher  # its targets are in the cache file and the evaluator: its weights go before training
    gc.collect()

    trained = train(config, plan, run, evaluator)
    result = DistillResult(
        output=str(run.output),
        steps=trained.steps,
        train_seconds=round(trained.seconds, 1),
        prep_seconds=round(prep_seconds, 1),
        stopped_by_budget=trained.stopped_by_budget,
        pairs_per_language=plan.pairs_per_language,
        dev={},
        dev_start=trained.dev_start,
        vocab=plan.vocab,
        teacher_embeddings_computed=plan.teacher_embeddings_computed,
        cleaning=plan.cleaning,
    )
    if not distributed.is_main():  # rank 0 evaluates and saves the one model
        return result
    result.dev = run_dev(evaluator, trained.model) if evaluator else {}
    start, after = result.dev_start.get("mean_accuracy"), result.dev.get("mean_accuracy")
    if config.keep_best and start is not None and after is not None and after < start - KEEP_TOLERANCE:
        logger.warning(
            f"dev translation accuracy fell in training ({start} -> {after}): saving the start instead "
            "(--no-keep-best saves the trained student)"
        )
        result.shipped, result.dev = "start", dict(result.dev_start)  # the start's folder is copied
    run.save(trained.model, plan, result, keep_work=config.keep_work)
    return result
