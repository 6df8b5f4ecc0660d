"""Prometheus metrics of one server (``GET /metrics``), kept by ``prometheus_client`` in the app's own registry.

Requests by route, method and status; request latency; sentences per forward pass and forward-pass time;
sentences waiting; inputs and model tokens embedded; errors by OpenAI ``code``. Routes are labelled by their
template (``/v1/models/{model_id}``), and a path that matches no route is labelled ``unmatched``, so a scan
of random URLs cannot grow the label set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: seconds: from a cached single sentence to a full batch of long inputs on 2 cores
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The server's instruments in a registry of their own (two apps in one process keep separate counts).

    Example:
        >>> m = Metrics(queued=lambda: 3)
        >>> m.tokens.inc(12)
        >>> b"mlembed_tokens_total 12.0" in m.render()[0], b"mlembed_queue_sentences 3.0" in m.render()[0]
        (True, True)
    """

    def __init__(self, queued: Callable[[], int]):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mlembed_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "mlembed_request_duration_seconds",
            "time to answer a request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "mlembed_batch_sentences",
            "sentences per forward pass (concurrent requests batched)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.forward = Histogram(
            "mlembed_forward_duration_seconds", "time of one forward pass", buckets=LATENCY_BUCKETS, registry=r
        )
        self.inputs = Counter("mlembed_inputs", "inputs embedded", registry=r)
        self.tokens = Counter("mlembed_tokens", "model tokens embedded (as read: cut at the window)", registry=r)
        self.truncated = Counter("mlembed_truncated_inputs", "inputs read only up to the window", registry=r)
        self.errors = Counter("mlembed_errors", "error answers by OpenAI error code", ["code"], registry=r)
        queue = Gauge("mlembed_queue_sentences", "sentences waiting for a forward pass", registry=r)
        queue.set_function(queued)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """ASGI middleware: count every HTTP request and time it, by route template and status."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(route=route, method=scope.get("method", ""), status=str(status)).inc()
            self.metrics.latency.labels(route=route).observe(time.perf_counter() - start)
