"""Text Embeddings Inference's own routes, so TEI's clients work unchanged: ``POST /embed``, ``GET /health``,
``GET /info``; and Prometheus ``GET /metrics``. Field names and status codes follow TEI's OpenAPI document
(huggingface/text-embeddings-inference ``docs/openapi.json``); errors on them are TEI's
``{"error", "error_type"}``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from mlembed import __version__
from mlembed.serve.errors import ApiError
from mlembed.serve.inputs import check_texts, is_token_ids
from mlembed.serve.openai_api import JsonBody, normalized, record
from mlembed.serve.state import State, authorize

router = APIRouter()


class EmbedRequest(JsonBody):
    """TEI's embed request (``prompt_name`` is not taken: the model's own prompt is always used)."""

    inputs: Any = Field(description="a string, a list of strings, a token-id array or a list of them")
    truncate: bool | None = Field(None, description="cut inputs over the window (default: the server's --truncate)")
    truncation_direction: Literal["Right", "Left", "right", "left"] = "Right"
    normalize: bool = True
    dimensions: int | None = None


@router.post("/embed", dependencies=[Depends(authorize)])
@router.post("/", dependencies=[Depends(authorize)], include_in_schema=False)  # TEI embeds at its root too
async def embed(req: EmbedRequest, request: Request, state: State) -> Response:
    """A JSON list of vectors, one per input; inputs cut at the window are named in ``X-Truncated-Inputs``."""
    if req.truncation_direction.lower() == "left":
        raise ApiError(
            400, "truncation_direction Left: this server keeps the start of an input (Right)", "truncation_direction"
        )
    if req.dimensions is not None and req.dimensions != state.dim:
        raise ApiError(400, f"dimensions={req.dimensions}: this model gives {state.dim} only", "dimensions")

    def prepare() -> tuple[list[str], Any]:
        texts = check_texts(req.inputs, "inputs", state.limits, state.decoder)
        single = isinstance(req.inputs, str) or is_token_ids(req.inputs)
        truncate = state.truncate if req.truncate is None else req.truncate
        return texts, state.window.fit(texts, truncate, "inputs", single)

    texts, fitted = await run_in_threadpool(prepare)
    vectors = await state.embed(texts, request)
    record(state, fitted)
    out = normalized(vectors) if req.normalize else vectors
    return JSONResponse(out.tolist(), headers=fitted.header())


@router.get("/health")
async def health(state: State) -> Response:
    """200 when the model answers; 503 with the reason otherwise (a probe sentence when it has been idle)."""
    reason = await state.unhealthy()
    if reason is not None:
        return JSONResponse({"error": f"unhealthy: {reason}", "error_type": "Unhealthy"}, 503)
    return Response(status_code=200)


@router.get("/info")
async def info(state: State) -> dict:
    """TEI's ``Info``: the model, its dtype and window, and the server's limits."""
    from mlembed.windows import model_window

    return {
        "model_id": str(getattr(state.model, "mlembed_source", None) or state.name),
        "model_sha": state.fingerprint,
        "model_dtype": state.dtype,
        "served_model_name": state.name,
        "model_type": {"embedding": {"pooling": pooling(state.model)}},
        "max_concurrent_requests": state.limits.max_queue,
        "max_input_length": model_window(state.model),
        "max_batch_tokens": state.limits.token_budget,
        "max_batch_requests": None,
        "max_client_batch_size": state.limits.max_inputs,
        "auto_truncate": state.truncate,
        "tokenization_workers": 1,
        "version": __version__,
        "sha": None,
        "docker_label": None,
        "aliases": list(state.aliases),
        "dimension": state.dim,
    }


def pooling(model: Any) -> str:
    """The pooling of a sentence-transformers model (``mean``, ``cls``, ...); ``mean`` for other engines.

    Example:
        >>> from mlembed.models import load_model
        >>> pooling(load_model("minilm-en"))
        'mean'
    """
    st = getattr(model, "st", model)  # an exported engine keeps its source model
    try:
        return str(st[1].get_pooling_mode_str())
    except (TypeError, IndexError, KeyError, AttributeError):
        return "mean"


@router.get("/metrics")
async def metrics(state: State) -> Response:
    """Prometheus' text format (:mod:`mlembed.serve.metrics`)."""
    body, content_type = state.metrics.render()
    return Response(body, media_type=content_type)
