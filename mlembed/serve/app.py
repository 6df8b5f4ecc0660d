"""The HTTP application: OpenAI-compatible embeddings, cross-lingual search, a comparison heat map, a web page.

Built on FastAPI (Starlette + pydantic) and served by uvicorn: the ASGI stack that embedding servers
of the sentence-transformers world (Infinity, many RAG services) use, with request validation and
an asyncio loop that lets one process hold many connections while a single worker thread runs the
model (:mod:`mlembed.serve.batcher` gathers concurrent requests into one forward pass).

Routes: ``POST /v1/embeddings`` (the OpenAI request and response: ``input`` string or list,
``model``, ``encoding_format`` float|base64, ``dimensions``; ``usage`` counts tokens), ``POST
/v1/search``, ``POST /v1/compare``, ``GET /v1/models``, ``GET /v1/indexes``, ``GET /healthz`` and the
page at ``/``. Every error is a JSON body ``{"error": {"message", "type", "param", "code"}}`` as
OpenAI sends, with a 4xx status for bad input; the server keeps serving. No route reads or writes a
file named by a request.
"""

import asyncio
import base64
import hmac
import json
import logging
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import numpy as np

from mlembed.heap import heap_trimmer
from mlembed.serve.batcher import MicroBatcher, QueueFull
from mlembed.serve.search import IndexSet

#: how often a waiting request checks whether its client is still there
DISCONNECT_POLL_S = 0.2

logger = logging.getLogger(__name__)


@dataclass
class Limits:
    """What one request may ask (each refused with a 4xx naming the limit) and how batches form."""

    max_inputs: int = 2048  #: strings per request (OpenAI's limit)
    max_input_chars: int = 20_000  #: characters per string
    max_body_bytes: int = 8 << 20  #: request body size
    max_k: int = 100  #: hits per search query
    max_compare: int = 32  #: sentences in one comparison
    max_batch: int = 256  #: sentences gathered from concurrent requests into one batch
    #: padded tokens per model call within a batch (sentences sorted by length); smaller than ``encode``'s
    #: default, measured best for batches of a few dozen unrelated sentences
    token_budget: int = 512
    max_queue: int = 8192  #: sentences waiting for a forward pass
    batch_wait_ms: float = 0.0  #: how long a part-full batch waits for more requests


class ApiError(Exception):
    """An error answered as OpenAI does: HTTP ``status`` and ``{"error": {...}}``."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None) -> dict:
    """The OpenAI error object.

    Example:
        >>> error_body("input[0] is empty", param="input")["error"]["param"]
        'input'
    """
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes with 413 (checked as it streams)."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_json(send, 413, error_body(f"request body over {self.limit:,} bytes"))
            return
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, error_body(f"request body over {self.limit:,} bytes"))


class _TooLarge(Exception):
    pass


async def _send_json(send: Any, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def check_texts(value: Any, field: str, limits: Limits) -> list[str]:
    """A string or a list of strings, each non-empty and within the limits; else :class:`ApiError` 400.

    Example:
        >>> check_texts("Hallo", "input", Limits())
        ['Hallo']
        >>> check_texts(["a", ""], "input", Limits())
        Traceback (most recent call last):
        ...
        mlembed.serve.app.ApiError: input[1] is empty: expected a non-empty string
    """
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        raise ApiError(400, f"{field}: expected a string or a list of strings, got {_json_type(value)}", field)
    if not texts:
        raise ApiError(400, f"{field} is an empty list: expected at least one string", field)
    if len(texts) > limits.max_inputs:
        raise ApiError(400, f"{field} has {len(texts):,} strings: at most {limits.max_inputs:,} per request", field)
    for i, text in enumerate(texts):
        where = field if isinstance(value, str) else f"{field}[{i}]"
        if not isinstance(text, str):
            hint = " (token arrays are not supported: send the text)" if isinstance(text, (int, list)) else ""
            raise ApiError(400, f"{where}: expected a string, got {_json_type(text)}{hint}", field)
        if not text.strip():
            raise ApiError(400, f"{where} is empty: expected a non-empty string", field)
        if len(text) > limits.max_input_chars:
            raise ApiError(
                400, f"{where} has {len(text):,} characters: at most {limits.max_input_chars:,} per string", field
            )
    return texts


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _token_counter(model: Any) -> Any:
    """``texts -> token counts`` with the model's own tokenizer (as it truncates), else whitespace words."""
    tokenizer = getattr(model, "tokenizer", None)
    max_len = getattr(model, "max_seq_length", None)
    if tokenizer is not None and callable(tokenizer):

        def count(texts: list[str]) -> np.ndarray:
            ids = tokenizer(texts, truncation=max_len is not None, max_length=max_len)["input_ids"]
            return np.array([len(x) for x in ids], dtype=np.int64)

        return count
    return lambda texts: np.array([len(t.split()) for t in texts], dtype=np.int64)


def served_model_card(model: Any, name: str) -> dict:
    """What ``/v1/models`` says of the served model: id, fingerprint, dimension, languages of its training data."""
    from mlembed.models import model_info

    info = model_info(model)
    languages = None
    folder = getattr(model, "mlembed_source", None)
    if folder:
        from pathlib import Path

        saved = Path(folder) / "mlembed.json"
        if saved.is_file():
            try:
                languages = json.loads(saved.read_text(encoding="utf-8"))["plan"].get("languages")
            except (ValueError, KeyError, TypeError, AttributeError):
                languages = None
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "mlembed",
        "fingerprint": info["fingerprint"],
        "dimension": info["dimension"],
        "max_seq_length": info["max_seq_length"],
        "languages": languages,
    }


def create_app(
    model: Any,
    name: str,
    indexes: IndexSet | None = None,
    api_key: str | None = None,
    limits: Limits | None = None,
) -> Any:
    """The FastAPI application serving ``model`` (a loaded encoder) under the id ``name``.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> from mlembed.models import load_model
        >>> app = create_app(load_model("minilm-en"), "minilm-en")
        >>> with TestClient(app) as client:
        ...     r = client.post("/v1/embeddings", json={"model": "minilm-en", "input": "Hallo Welt"})
        >>> len(r.json()["data"][0]["embedding"])
        384
    """
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from mlembed.encoding import encode
    from mlembed.models import embedding_dim

    limits = limits or Limits()
    indexes = indexes or IndexSet({})
    dim = embedding_dim(model)
    count_tokens = _token_counter(model)
    card = served_model_card(model, name)

    trim = heap_trimmer(5.0)  # forward passes of changing shapes fragment the heap (mlembed.heap)

    def forward(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:  # runs in the batcher's worker thread
        # inputs over the window: read as far as the window, as before, and logged (mlembed.windows)
        vectors = encode(texts, model, normalize=True, token_budget=limits.token_budget, overflow="truncate")
        trim()
        return vectors, count_tokens(texts)

    batcher = MicroBatcher(forward, limits.max_batch, limits.max_queue, limits.batch_wait_ms)

    @asynccontextmanager
    async def lifespan(_: Any):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="mlembed", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.batcher = batcher

    async def embed(texts: list[str], request: Request) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of ``texts`` through the batcher; if the client hangs up first, its sentences leave the
        queue (no forward pass is spent on an answer nobody reads)."""
        task = asyncio.ensure_future(batcher.submit(texts))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
                if done:
                    return task.result()
                if await request.is_disconnected():
                    task.cancel()
                    raise ApiError(499, "client closed the connection before its answer", kind="client_closed")
        except QueueFull as exc:
            raise ApiError(503, f"server busy: {exc}; retry shortly", kind="server_busy") from None
        finally:
            task.cancel()  # (a no-op once done; cancels the queued work when this handler itself is cancelled)

    async def authorize(request: Request) -> None:
        if api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise ApiError(
                401, "missing or wrong API key: send 'Authorization: Bearer KEY'", kind="authentication_error"
            )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return JSONResponse(error_body(exc.message, exc.kind, exc.param), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":
            message = f"request body is not valid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
            return JSONResponse(error_body(message), 400)
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        field = ".".join(loc) or "body"
        message = f"{field}: {first.get('msg', 'invalid')}"
        if first.get("type") == "missing":
            message = f"{field}: required field missing"
        elif first.get("type") == "model_attributes_type":
            message = "request body: expected a JSON object"
            sent = request.headers.get("content-type", "")
            if "json" not in sent:  # the body is then read as bytes, whatever it holds
                message += f" with 'Content-Type: application/json' (sent: {sent or 'none'})"
        return JSONResponse(error_body(message, param=loc[0] if loc else None), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, _TooLarge):  # a body streamed without Content-Length, over the limit
            return JSONResponse(error_body(f"request body over {limits.max_body_bytes:,} bytes"), 413)
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), kind), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}", "server_error"), 500)

    class Strict(BaseModel):
        model_config = ConfigDict(extra="ignore")

    class EmbeddingsRequest(Strict):
        input: Any = Field(description="a string or a list of strings")
        model: str
        encoding_format: Literal["float", "base64"] = "float"
        dimensions: int | None = None
        user: str | None = None

    class SearchRequest(Strict):
        query: Any = Field(description="a string or a list of strings, any language")
        k: int = Field(10, ge=1)
        margin: bool = False
        indexes: list[str] | None = None

    class CompareItem(Strict):
        lang: str = ""
        text: Any

    class CompareRequest(Strict):
        sentences: list[CompareItem]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        html = resources.files("mlembed.serve").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    @app.get("/healthz")
    async def healthz() -> dict:
        return {
            "status": "ok",
            "model": name,
            "indexes": len(indexes.indexes),
            "auth": api_key is not None,
            "queued": batcher.queued,
            "batching": batcher.stats.to_dict(),
        }

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def models() -> dict:
        return {"object": "list", "data": [card]}

    @app.get("/v1/indexes", dependencies=[Depends(authorize)])
    async def list_indexes() -> dict:
        return {"object": "list", "data": indexes.describe()}

    @app.post("/v1/embeddings", dependencies=[Depends(authorize)])
    async def embeddings(req: EmbeddingsRequest, request: Request) -> Response:
        if req.model != name:
            raise ApiError(
                404, f"model {req.model!r} is not served here: this server serves {name!r}", "model", "model_not_found"
            )
        if req.dimensions is not None and req.dimensions != dim:
            raise ApiError(
                400,
                f"dimensions={req.dimensions}: {name} gives {dim}-dimensional embeddings and was not trained to be "
                f"truncated; omit dimensions or pass {dim}",
                "dimensions",
            )
        texts = check_texts(req.input, "input", limits)
        vectors, tokens = await embed(texts, request)
        if req.encoding_format == "base64":
            data = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
        else:
            data = vectors.tolist()
        used = int(tokens.sum())
        body = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(data)],
            "model": name,
            "usage": {"prompt_tokens": used, "total_tokens": used},
        }
        return Response(json.dumps(body), media_type="application/json")

    @app.post("/v1/search", dependencies=[Depends(authorize)])
    async def search(req: SearchRequest, request: Request) -> dict:
        if not indexes.indexes:
            raise ApiError(400, "no index is loaded: start the server with --index DIR", "indexes")
        if req.k > limits.max_k:
            raise ApiError(400, f"k={req.k}: at most {limits.max_k}", "k")
        queries = check_texts(req.query, "query", limits)
        vectors, tokens = await embed(queries, request)
        try:
            results = indexes.search(vectors, k=req.k, margin=req.margin, names=req.indexes)
        except KeyError as exc:
            raise ApiError(400, str(exc.args[0]), "indexes") from None
        used = int(tokens.sum())
        return {
            "object": "list",
            "model": name,
            "score": "margin" if req.margin else "cosine",
            "data": [{"query": q, "hits": [h.to_dict() for h in hits]} for q, hits in zip(queries, results)],
            "usage": {"prompt_tokens": used, "total_tokens": used},
        }

    @app.post("/v1/compare", dependencies=[Depends(authorize)])
    async def compare(req: CompareRequest, request: Request) -> dict:
        if not 2 <= len(req.sentences) <= limits.max_compare:
            raise ApiError(
                400, f"sentences: expected 2 to {limits.max_compare} sentences, got {len(req.sentences)}", "sentences"
            )
        texts = [check_texts(s.text, f"sentences[{i}].text", limits)[0] for i, s in enumerate(req.sentences)]
        for i, s in enumerate(req.sentences):
            if len(s.lang) > 35 or not re.fullmatch(r"[\w*@.\- ]*", s.lang):
                raise ApiError(
                    400, f"sentences[{i}].lang: expected a short language tag such as de or zh-Hans", "sentences"
                )
        vectors, _ = await embed(texts, request)
        matrix = np.clip(vectors @ vectors.T, -1.0, 1.0)
        return {
            "model": name,
            "labels": [s.lang or str(i + 1) for i, s in enumerate(req.sentences)],
            "sentences": texts,
            "matrix": np.round(matrix, 4).tolist(),
        }

    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    return app
