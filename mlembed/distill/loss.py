"""The distillation loss: the paper's MSE to the teacher's vectors, plus an optional in-batch contrastive term.

MSE pulls every student vector towards its teacher vector but says nothing about the other sentences of the
batch: a language the start barely knows can come closer to its targets while its translations stay
confusable. ``contrastive`` adds, for each text column, the cross-entropy of picking the right teacher vector
among the batch's (cosine x ``scale``, in-batch negatives, as ``MultipleNegativesRankingLoss`` does between
two student columns): it is what translation retrieval rewards, measured against fixed teacher targets so
the space stays the teacher's.
"""

from __future__ import annotations

from typing import Any

import torch
from sentence_transformers.sentence_transformer.losses import MSELoss


class DistillLoss(MSELoss):
    """``MSELoss`` + ``contrastive`` x in-batch cross-entropy against the teacher's vectors.

    Example:
        >>> from mlembed.models import load_model
        >>> loss = DistillLoss(load_model("minilm-en"), contrastive=0.1)
        >>> s, t = torch.eye(4, 8), torch.eye(4, 8)
        >>> round(float(loss.compute_loss_from_embeddings([s], [t])), 4)  # each its own target
        0.0
        >>> round(float(loss.compute_loss_from_embeddings([s], [t.flip(0)])), 4)  # crossed: MSE 0.25 + 0.1 x 20
        2.25
    """

    def __init__(self, model: Any, contrastive: float = 0.0, scale: float = 20.0) -> None:
        super().__init__(model)
        self.contrastive = contrastive
        self.scale = scale

    def compute_loss_from_embeddings(self, embeddings: list[torch.Tensor], teacher_embeddings: list[torch.Tensor]):
        loss = super().compute_loss_from_embeddings(embeddings, teacher_embeddings)
        if not self.contrastive:
            return loss
        terms = []
        for student_emb, teacher_emb in zip(embeddings, teacher_embeddings):
            s = torch.nn.functional.normalize(student_emb.float(), dim=-1)
            t = torch.nn.functional.normalize(teacher_emb.to(s.device).float(), dim=-1)
            logits = self.scale * s @ t.T
            terms.append(torch.nn.functional.cross_entropy(logits, torch.arange(len(s), device=s.device)))
        return loss + self.contrastive * torch.stack(terms).mean()

    def get_config_dict(self) -> dict[str, Any]:
        return {"contrastive": self.contrastive, "scale": self.scale}
