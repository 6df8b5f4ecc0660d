"""The HTTP application: a drop-in for OpenAI's embeddings API and for Text Embeddings Inference, cross-lingual
search, a comparison heat map, a web page.

Built on FastAPI (Starlette + pydantic) and served by uvicorn: the ASGI stack that embedding servers of the
sentence-transformers world (Infinity, many RAG services) use. One asyncio loop holds the connections while a
single worker thread runs the model (:mod:`mlembed.serve.batcher` gathers concurrent requests into one forward
pass). The routes live in :mod:`.openai_api` (``/v1/...``), :mod:`.tei_api` (``/embed``, ``/health``,
``/info``, ``/metrics``) and :mod:`.pages` (``/``, ``/docs``, ``/healthz``); the state they share in
:mod:`.state`. No route reads or writes a file named by a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import Any

from mlembed.serve.inputs import DEFAULT_TOKEN_ENCODING, Limits, TokenDecoder
from mlembed.serve.search import IndexSet
from mlembed.serve.state import Served


def create_app(
    model: Any,
    name: str,
    indexes: IndexSet | None = None,
    api_key: str | None = None,
    limits: Limits | None = None,
    aliases: Sequence[str] = (),
    truncate: bool = False,
    token_encoding: str | None = DEFAULT_TOKEN_ENCODING,
) -> Any:
    """The FastAPI application serving ``model`` (a loaded encoder) under the id ``name``.

    Args:
        aliases: other model names requests may send (``text-embedding-3-small`` for clients that insist on one).
        truncate: read inputs over the model's window up to it (reported) instead of answering 400.
        token_encoding: the tiktoken encoding token-id inputs are decoded with (name or ``.tiktoken`` file);
            None refuses them.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> from mlembed.models import load_model
        >>> app = create_app(load_model("minilm-en"), "minilm-en")
        >>> with TestClient(app) as client:
        ...     r = client.post("/v1/embeddings", json={"model": "minilm-en", "input": "Hallo Welt"})
        >>> len(r.json()["data"][0]["embedding"])
        384
    """
    from fastapi import FastAPI
    from fastapi_swagger import patch_fastapi

    from mlembed import __version__
    from mlembed.serve import openai_api, pages, tei_api
    from mlembed.serve.errors import BodyLimit, install_handlers
    from mlembed.serve.metrics import MetricsMiddleware

    state = Served(
        model,
        name,
        indexes or IndexSet({}),
        limits or Limits(),
        api_key=api_key,
        aliases=tuple(aliases),
        truncate=truncate,
        decoder=TokenDecoder(token_encoding),
    )

    @asynccontextmanager
    async def lifespan(_: Any):
        await state.batcher.start()
        yield
        await state.batcher.stop()

    app = FastAPI(
        title="mlembed serve",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.served = state
    app.state.metrics = state.metrics
    app.state.batcher = state.batcher
    for module in (openai_api, tei_api, pages):
        app.include_router(module.router)
    patch_fastapi(app, docs_url="/docs", redirect_from_root_to_docs=False, title="mlembed serve: API")  # offline
    install_handlers(app, state.limits.max_body_bytes)
    app.add_middleware(BodyLimit, limit=state.limits.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)  # outermost: counts the 413s too
    return app
