"""Length-grouped random batches: far less padding when short and long sentences are mixed.

Tatoeba-style sentences are ~10 tokens, news and help texts 40-60; in a random batch every short
sentence is padded to the longest, which multiplies the cost of a step several times on CPU. Here
the shuffled pairs are cut into pools of ``pool`` batches, each pool is sorted by length and cut into
batches, and the batch order is shuffled again. The order depends only on ``seed`` and the epoch, so
a resumed run replays exactly the batches of the interrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler


class LengthGroupedBatchSampler(DefaultBatchSampler):
    """A sentence-transformers batch sampler (pass the class as ``batch_sampler``) grouping by length.

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"english": ["a", "bbbbbbbb", "cc", "ddddddddd"], "non_english": ["a", "b" * 9, "c", "d" * 8]})
        >>> sorted(sorted(b) for b in LengthGroupedBatchSampler(ds, batch_size=2, drop_last=False))
        [[0, 2], [1, 3]]
    """

    pool = 50

    def __init__(
        self, dataset, batch_size: int, drop_last: bool, valid_label_columns=None, generator=None, seed: int = 0
    ):
        super().__init__(
            range(len(dataset)),
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        text_columns = [c for c in dataset.column_names if isinstance(dataset[0][c], str)]
        self.lengths = np.zeros(len(dataset), dtype=np.int64)
        for column in text_columns:
            self.lengths += np.fromiter((len(t) for t in dataset[column]), dtype=np.int64, count=len(dataset))

    def _batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(len(self.lengths))
        size, batches = self.batch_size, []
        for start in range(0, len(order), size * self.pool):
            chunk = order[start : start + size * self.pool]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == size]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._batches():
            yield batch.tolist()

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
