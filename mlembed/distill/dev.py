"""Dev evaluation during distillation: MSE x100 to the teacher and translation matching, both directions.

The figures come from the same functions as ``mlembed evaluate`` (:func:`mlembed.evaluation.mse.mse_x100`,
:func:`mlembed.evaluation.retrieval.retrieval_accuracy`: one implementation of each metric), wrapped as a
sentence-transformers ``SentenceEvaluator`` so the trainer runs it every ``eval_steps``. They equal
sentence-transformers' ``MSEEvaluator`` and ``TranslationEvaluator`` on the same pairs (tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from mlembed.evaluation.mse import mse_x100
from mlembed.evaluation.retrieval import retrieval_accuracy


class DevEvaluator(SentenceEvaluator):
    """Held-out pairs (``src`` English, ``tgt`` translation): MSE x100 between the student's ``tgt`` vectors
    and the teacher's ``src`` vectors (computed once), and translation accuracy of the student both ways.

    Keys (as the sentence-transformers evaluators name them): ``dev_negative_mse`` (-MSE x100),
    ``dev_src2trg_accuracy``, ``dev_trg2src_accuracy``, ``dev_mean_accuracy`` (fractions).
    """

    def __init__(
        self,
        src: list[str],
        tgt: list[str],
        teacher: Any,
        components: np.ndarray | None = None,
        batch_size: int = 64,
        english: list[str] = (),
    ):
        super().__init__()
        self.src, self.tgt, self.batch_size, self.english = src, tgt, batch_size, list(english)

        def targets_of(sentences: list[str]) -> np.ndarray:
            vectors = np.asarray(teacher.encode(sentences, batch_size=batch_size, convert_to_numpy=True), np.float32)
            if components is not None:  # the student's output is projected and re-normalised: so are its targets
                vectors = vectors @ components
            return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

        self.targets = targets_of(src)
        self.english_targets = targets_of(self.english) if self.english else None
        self.primary_metric = "negative_mse"

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
        s = np.asarray(model.encode(self.src, batch_size=self.batch_size, convert_to_numpy=True), dtype=np.float32)
        t = np.asarray(model.encode(self.tgt, batch_size=self.batch_size, convert_to_numpy=True), dtype=np.float32)
        acc = retrieval_accuracy(s, t)
        metrics = {
            "negative_mse": -mse_x100(self.targets, t),
            "src2trg_accuracy": acc["src2tgt"] / 100,
            "trg2src_accuracy": acc["tgt2src"] / 100,
            "mean_accuracy": acc["accuracy"] / 100,
        }
        if self.english:  # English fidelity on ordinary sentences, whatever the training data's domain
            e = np.asarray(model.encode(self.english, batch_size=self.batch_size, convert_to_numpy=True), np.float32)
            e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
            metrics["english_cosine"] = float((e * self.english_targets).sum(1).mean())
        metrics = self.prefix_name_to_metrics(metrics, "dev")
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics


def dev_evaluator(
    dev: list[dict], teacher: Any, components: np.ndarray | None = None, english: list[str] = ()
) -> DevEvaluator:
    """The dev evaluator over held-out pairs (dicts with ``src`` and ``tgt``), and held-out ``english``
    sentences for the student's mean cosine to the teacher (``english_cosine``)."""
    return DevEvaluator([d["src"] for d in dev], [d["tgt"] for d in dev], teacher, components, english=english)


def run_dev(evaluator: Any, model: Any) -> dict[str, float]:
    """Run the dev evaluator; return ``mse_x100`` (lower is better) and accuracies in percent."""
    scores = evaluator(model)
    out = {}
    for key, value in scores.items():
        name = key.split("dev_", 1)[-1]
        if name == "negative_mse":
            out["mse_x100"] = round(-float(value), 4)
        elif name in ("src2trg_accuracy", "trg2src_accuracy", "mean_accuracy"):
            out[name] = round(100 * float(value), 2)
        elif name == "english_cosine":
            out[name] = round(float(value), 4)
    return out
