"""Micro-batching: concurrent requests share one forward pass.

Requests queue their sentences; one worker takes everything queued (up to ``max_batch`` sentences),
runs the model once in a dedicated thread, and hands each request its rows. Under no load a request
runs alone at once (no added wait); under load, the requests that arrive while a forward pass runs
form the next batch, so throughput approaches that of one big in-process ``encode`` call.
``max_wait_ms`` optionally holds a batch open a little longer for more requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """More sentences are waiting than the batcher's ``max_queue`` allows."""


@dataclass
class BatcherStats:
    """Counters since start: forward passes, sentences, requests, the largest batch."""

    batches: int = 0
    sentences: int = 0
    requests: int = 0
    largest_batch: int = 0
    busy_s: float = 0.0
    started: float = field(default_factory=time.monotonic)
    running_since: float | None = None  #: monotonic start of the forward pass now running
    last_ok: float | None = None  #: monotonic end of the last forward pass that succeeded
    last_error: str | None = None  #: the last forward pass's error, if it failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "sentences": self.sentences,
            "requests": self.requests,
            "largest_batch": self.largest_batch,
            "mean_batch": round(self.sentences / self.batches, 2) if self.batches else 0.0,
            "busy_fraction": round(self.busy_s / max(time.monotonic() - self.started, 1e-9), 3),
        }


class MicroBatcher:
    """Run ``fn(texts) -> tuple of row-aligned arrays`` on the union of concurrent requests.

    Args:
        fn: called in one worker thread with a list of sentences; returns a tuple of arrays (or lists)
            whose first axis is aligned with the sentences.
        max_batch: most sentences per call of ``fn`` (a request larger than this runs alone).
        max_queue: most sentences waiting; :meth:`submit` raises :class:`QueueFull` beyond it.
        max_wait_ms: how long a batch that is not full waits for more requests (0: never waits).

    Example:
        >>> import asyncio
        >>> async def demo():
        ...     b = MicroBatcher(lambda texts: ([t.upper() for t in texts],))
        ...     await b.start()
        ...     out = await asyncio.gather(b.submit(["a", "b"]), b.submit(["c"]))
        ...     await b.stop()
        ...     return out
        >>> asyncio.run(demo())
        [(['A', 'B'],), (['C'],)]
    """

    def __init__(
        self,
        fn: Callable[[list[str]], tuple[Sequence[Any], ...]],
        max_batch: int = 256,
        max_queue: int = 8192,
        max_wait_ms: float = 0.0,
    ):
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait_ms >= 0")
        self.fn, self.max_batch, self.max_queue, self.max_wait = fn, max_batch, max_queue, max_wait_ms / 1000
        self.stats = BatcherStats()
        self._queue: deque[tuple[list[str], asyncio.Future]] = deque()
        self._queued = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def queued(self) -> int:
        """Sentences waiting for a forward pass."""
        return self._queued

    @property
    def running(self) -> bool:
        """Whether the worker is started and alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the worker (in the running event loop)."""
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="mlembed-forward")
        self._task = asyncio.create_task(self._run(), name="mlembed-batcher")

    async def stop(self) -> None:
        """Stop the worker; waiting requests fail with ``RuntimeError``."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._queue:
            _, fut = self._queue.popleft()
            if not fut.done():
                fut.set_exception(RuntimeError("server shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, texts: list[str]) -> tuple[Sequence[Any], ...]:
        """Queue ``texts``; returns ``fn``'s outputs for exactly these rows."""
        if self._task is None or self._wake is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        if self._queued + len(texts) > self.max_queue:
            raise QueueFull(f"{self._queued} sentences are waiting (limit {self.max_queue})")
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((texts, fut))
        self._queued += len(texts)
        self._wake.set()
        try:
            return await fut
        except asyncio.CancelledError:  # the caller gave up (its client hung up): its rows leave the queue now
            for i, (_, queued) in enumerate(self._queue):
                if queued is fut:
                    del self._queue[i]
                    self._queued -= len(texts)
                    break
            raise

    def _take(self) -> list[tuple[list[str], asyncio.Future]]:
        taken, size = [], 0
        while self._queue:
            texts, fut = self._queue[0]
            if taken and size + len(texts) > self.max_batch:
                break
            self._queue.popleft()
            self._queued -= len(texts)
            if fut.cancelled():  # the client went away before its turn
                continue
            taken.append((texts, fut))
            size += len(texts)
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                if self.max_wait and self._queued < self.max_batch:
                    await asyncio.sleep(self.max_wait)
                taken = self._take()
                if not taken:
                    continue
                texts = [t for batch, _ in taken for t in batch]
                t0 = self.stats.running_since = time.monotonic()
                try:
                    outputs = await loop.run_in_executor(self._executor, self.fn, texts)
                except Exception as exc:  # noqa: BLE001 - every waiting request gets the error; the worker lives on
                    logger.exception("forward pass of %d sentences failed", len(texts))
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    for _, fut in taken:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                finally:
                    self.stats.running_since = None
                    self.stats.busy_s += time.monotonic() - t0
                self.stats.last_ok, self.stats.last_error = time.monotonic(), None
                self.stats.batches += 1
                self.stats.sentences += len(texts)
                self.stats.requests += len(taken)
                self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
                start = 0
                for batch, fut in taken:
                    end = start + len(batch)
                    if not fut.done():
                        fut.set_result(tuple(out[start:end] for out in outputs))
                    start = end
