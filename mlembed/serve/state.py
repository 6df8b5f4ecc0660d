"""What one server holds while it runs: the model and its names, the batcher, the indexes, the limits.

Routes reach it as ``served(request)``; :func:`authorize` checks the API key. The names: a server answers to its
``name`` and to each ``alias`` (``--alias text-embedding-3-small`` lets clients that insist on an OpenAI model
name send it); any other model name is a 404 ``model_not_found``.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request

from mlembed.heap import heap_trimmer
from mlembed.serve.batcher import MicroBatcher, QueueFull
from mlembed.serve.errors import ApiError
from mlembed.serve.inputs import Limits, TokenDecoder, WindowCheck
from mlembed.serve.metrics import Metrics
from mlembed.serve.search import IndexSet

#: how often a waiting request checks whether its client is still there
DISCONNECT_POLL_S = 0.2
#: /health answers from the last forward pass that succeeded this recently; else it sends one sentence through
HEALTH_FRESH_S = 5.0
#: /health gives up on its probe sentence after this long (it queues behind the requests already waiting)
HEALTH_TIMEOUT_S = 30.0
#: a forward pass running longer than this is taken for a hung model (a full batch of long inputs on 2 cores: ~20 s)
HEALTH_STALL_S = 120.0


def model_dtype(model: Any) -> str:
    """The precision the served model computes at: an exported engine's own, else ``auto``'s choice on this CPU.

    Example:
        >>> from mlembed.models import load_model
        >>> model_dtype(load_model("minilm-en")) in ("float32", "bfloat16")
        True
    """
    from mlembed.encoding import resolve_precision

    names = {"fp32": "float32", "bf16": "bfloat16", "int8": "int8"}
    if getattr(model, "backend", None) not in (None, "torch"):
        return names.get(getattr(model, "precision", ""), "float32")
    return names[resolve_precision("auto")]


@dataclass
class Served:
    """The state of one server. Made by :func:`mlembed.serve.create_app`."""

    model: Any
    name: str
    indexes: IndexSet
    limits: Limits
    api_key: str | None = None
    aliases: tuple[str, ...] = ()
    truncate: bool = False  #: read over-long inputs up to the window unless a request says otherwise
    decoder: TokenDecoder = field(default_factory=TokenDecoder)
    dim: int = 0
    dtype: str = "float32"
    fingerprint: str = ""

    def __post_init__(self) -> None:
        from mlembed.models import embedding_dim, fingerprint

        self.dim, self.fingerprint = embedding_dim(self.model), fingerprint(self.model)
        self.dtype = model_dtype(self.model)
        self._trim = heap_trimmer(5.0)  # forward passes of changing shapes fragment the heap (mlembed.heap)
        self.batcher = MicroBatcher(
            self._forward, self.limits.max_batch, self.limits.max_queue, self.limits.batch_wait_ms
        )
        self.metrics = Metrics(queued=lambda: self.batcher.queued)
        self.window = WindowCheck(self.model)  # counts tokens off the forward thread's tokenizer

    @property
    def ids(self) -> list[str]:
        """The model names this server answers to, its own first."""
        return [self.name, *[a for a in self.aliases if a != self.name]]

    def check_model(self, requested: str) -> None:
        """404 ``model_not_found`` unless ``requested`` is the served name or one of its aliases."""
        if requested not in self.ids:
            also = f" (or its aliases {', '.join(map(repr, self.ids[1:]))})" if len(self.ids) > 1 else ""
            raise ApiError(
                404,
                f"model {requested!r} is not served here: this server serves {self.name!r}{also}; "
                "start it with --alias NAME to answer to another name",
                "model",
                "model_not_found",
            )

    def _forward(self, texts: list[str]) -> tuple[np.ndarray]:  # runs in the batcher's worker thread
        from mlembed.encoding import encode

        t0 = time.perf_counter()
        # every input here fits the window or was allowed to be cut at it (mlembed.serve.inputs.fit_window)
        vectors = encode(texts, self.model, token_budget=self.limits.token_budget, overflow="truncate")
        self.metrics.forward.observe(time.perf_counter() - t0)
        self.metrics.batch.observe(len(texts))
        self._trim()
        return (vectors,)

    async def embed(self, texts: list[str], request: Request) -> np.ndarray:
        """The (unnormalised) vectors of ``texts`` through the batcher; if the client hangs up first, its
        sentences leave the queue (no forward pass is spent on an answer nobody reads)."""
        task = asyncio.ensure_future(self.batcher.submit(texts))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
                if done:
                    return task.result()[0]
                if await request.is_disconnected():
                    task.cancel()
                    raise ApiError(
                        499, "client closed the connection before its answer", None, "client_closed", "client_closed"
                    )
        except QueueFull as exc:
            raise ApiError(503, f"server busy: {exc}; retry shortly", None, "server_busy", "server_busy") from None
        finally:
            task.cancel()  # (a no-op once done; cancels the queued work when this handler itself is cancelled)

    async def unhealthy(self) -> str | None:
        """Why the model does not answer, or None when it does: the worker is alive, no forward pass hangs, and
        one succeeded in the last few seconds or a probe sentence goes through now."""
        stats = self.batcher.stats
        if not self.batcher.running:
            return "the batching worker is not running"
        now = time.monotonic()
        if stats.running_since is not None and now - stats.running_since > HEALTH_STALL_S:
            return f"a forward pass has run for {now - stats.running_since:.0f} s"
        if stats.last_ok is not None and now - stats.last_ok < HEALTH_FRESH_S:
            return None
        try:
            await asyncio.wait_for(self.batcher.submit(["health check"]), HEALTH_TIMEOUT_S)
        except asyncio.TimeoutError:
            return f"the model did not answer a probe sentence within {HEALTH_TIMEOUT_S:.0f} s"
        except Exception as exc:  # noqa: BLE001 - whatever the model raised is the reason
            return f"the model failed on a probe sentence: {type(exc).__name__}: {exc}"
        return None


def served(request: Request) -> Served:
    """The :class:`Served` of the app answering ``request`` (a FastAPI dependency)."""
    return request.app.state.served


async def authorize(request: Request) -> None:
    """401 ``invalid_api_key`` unless the request carries the server's key (when it has one)."""
    api_key = served(request).api_key
    if api_key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise ApiError(
            401,
            "missing or wrong API key: send 'Authorization: Bearer KEY'",
            None,
            "invalid_api_key",
            "authentication_error",
        )


#: a route's parameter ``state: State`` receives the app's :class:`Served`
State = Annotated[Served, Depends(served)]
