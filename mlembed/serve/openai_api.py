"""OpenAI's routes: ``POST /v1/embeddings``, ``GET /v1/models``, ``GET /v1/models/{id}``; and mlembed's own under
``/v1``: ``POST /v1/search``, ``POST /v1/compare``, ``GET /v1/indexes``. Every one needs the API key when the
server has one.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from mlembed.serve.errors import ApiError
from mlembed.serve.inputs import check_texts, is_token_ids
from mlembed.serve.state import Served, State, authorize

router = APIRouter(dependencies=[Depends(authorize)])


class JsonBody(BaseModel):
    """A JSON request body; fields it does not know are ignored, as OpenAI's API does."""

    model_config = ConfigDict(extra="ignore")


class EmbeddingsRequest(JsonBody):
    """OpenAI's embeddings request, and TEI's ``truncate``."""

    input: Any = Field(description="a string, a list of strings, a token-id array or a list of them")
    model: str = Field(description="the served model's id or one of its aliases")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, description="only the model's own dimension")
    user: str | None = None
    truncate: bool | None = Field(
        None, description="read inputs over the window up to it (default: the server's --truncate, else a 400)"
    )


class SearchRequest(JsonBody):
    query: Any = Field(description="a string or a list of strings, any language")
    k: int = Field(10, ge=1)
    margin: bool = False
    indexes: list[str] | None = None


class CompareItem(JsonBody):
    lang: str = ""
    text: Any


class CompareRequest(JsonBody):
    sentences: list[CompareItem]


def model_card(state: Served, model_id: str) -> dict:
    """What ``/v1/models`` says of one id: OpenAI's fields, then the fingerprint, dimension, window and languages
    of the model's training data (for a model ``mlembed distill`` made)."""
    from mlembed.models import model_info

    info = model_info(state.model)
    languages = None
    folder = getattr(state.model, "mlembed_source", None)
    if folder:
        from mlembed.distill.run_folder import read_plan

        try:
            plan = read_plan(folder)
        except (ValueError, KeyError, TypeError, AttributeError):  # a damaged mlembed.json: no languages
            plan = None
        languages = plan.languages if plan else None
    return {
        "id": model_id,
        "object": "model",
        "created": 0,
        "owned_by": "mlembed",
        "root": state.name,
        "fingerprint": info["fingerprint"],
        "dimension": info["dimension"],
        "max_seq_length": info["max_seq_length"],
        "languages": languages,
    }


@router.get("/v1/models")
async def list_models(state: State) -> dict:
    """The served model under its name, then under each alias."""
    return {"object": "list", "data": [model_card(state, i) for i in state.ids]}


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(model_id: str, state: State) -> dict:
    """One model by id (``client.models.retrieve``)."""
    state.check_model(model_id)
    return model_card(state, model_id)


def _prepare(state: Served, req: EmbeddingsRequest) -> tuple[list[str], Any]:
    texts = check_texts(req.input, "input", state.limits, state.decoder)
    truncate = state.truncate if req.truncate is None else req.truncate
    single = isinstance(req.input, str) or is_token_ids(req.input)
    return texts, state.window.fit(texts, truncate, "input", single)


@router.post("/v1/embeddings")
async def embeddings(req: EmbeddingsRequest, request: Request, state: State) -> Response:
    """OpenAI's embeddings: L2-normalised vectors, ``usage`` in the model's tokens; inputs cut at the window are
    listed under ``truncated`` (and in the ``X-Truncated-Inputs`` header)."""
    state.check_model(req.model)
    if req.dimensions is not None and req.dimensions != state.dim:
        raise ApiError(
            400,
            f"dimensions={req.dimensions}: {state.name} gives {state.dim}-dimensional embeddings and was not trained "
            f"to be truncated; omit dimensions or pass {state.dim}",
            "dimensions",
        )
    texts, fitted = await run_in_threadpool(_prepare, state, req)  # token counts and decoding: off the event loop
    vectors = normalized(await state.embed(texts, request))
    record(state, fitted)
    if req.encoding_format == "base64":
        data = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
    else:
        data = vectors.tolist()
    used = int(fitted.tokens.sum())
    body: dict[str, Any] = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(data)],
        "model": req.model,
        "usage": {"prompt_tokens": used, "total_tokens": used},
    }
    if fitted.truncated:
        body["truncated"] = [{**t, "window": fitted.window} for t in fitted.truncated]
    return Response(json.dumps(body), media_type="application/json", headers=fitted.header())


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine == dot product).

    Example:
        >>> normalized(np.array([[3.0, 4.0]], np.float32)).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def record(state: Served, fitted: Any) -> None:
    """Count inputs, tokens and truncations in the metrics."""
    state.metrics.inputs.inc(len(fitted.tokens))
    state.metrics.tokens.inc(int(fitted.tokens.sum()))
    if fitted.truncated:
        state.metrics.truncated.inc(len(fitted.truncated))


@router.get("/v1/indexes")
async def list_indexes(state: State) -> dict:
    """Name, language, size, FAISS factory and model of each loaded index."""
    return {"object": "list", "data": state.indexes.describe()}


@router.post("/v1/search")
async def search(req: SearchRequest, request: Request, state: State) -> dict:
    """The ``k`` best hits of each query over the loaded indexes, by cosine or ratio margin."""
    if not state.indexes.indexes:
        raise ApiError(400, "no index is loaded: start the server with --index DIR", "indexes")
    if req.k > state.limits.max_k:
        raise ApiError(400, f"k={req.k}: at most {state.limits.max_k}", "k")
    queries = check_texts(req.query, "query", state.limits)
    fitted = await run_in_threadpool(state.window.fit, queries, state.truncate, "query", isinstance(req.query, str))
    vectors = normalized(await state.embed(queries, request))
    record(state, fitted)
    try:
        results = state.indexes.search(vectors, k=req.k, margin=req.margin, names=req.indexes)
    except KeyError as exc:
        raise ApiError(400, str(exc.args[0]), "indexes") from None
    used = int(fitted.tokens.sum())
    return {
        "object": "list",
        "model": state.name,
        "score": "margin" if req.margin else "cosine",
        "data": [{"query": q, "hits": [h.to_dict() for h in hits]} for q, hits in zip(queries, results)],
        "usage": {"prompt_tokens": used, "total_tokens": used},
    }


@router.post("/v1/compare")
async def compare(req: CompareRequest, request: Request, state: State) -> dict:
    """The cosine matrix of 2 to ``max_compare`` sentences, as ``mlembed compare`` prints it."""
    limit = state.limits.max_compare
    if not 2 <= len(req.sentences) <= limit:
        raise ApiError(400, f"sentences: expected 2 to {limit} sentences, got {len(req.sentences)}", "sentences")
    for i, s in enumerate(req.sentences):  # one string each: a list would have all but its first string ignored
        if not isinstance(s.text, str):
            raise ApiError(400, f"sentences[{i}].text: expected a string, got {type(s.text).__name__}", "sentences")
    texts = [check_texts(s.text, f"sentences[{i}].text", state.limits)[0] for i, s in enumerate(req.sentences)]
    for i, s in enumerate(req.sentences):
        if len(s.lang) > 35 or not re.fullmatch(r"[\w*@.\- ]*", s.lang):
            raise ApiError(
                400, f"sentences[{i}].lang: expected a short language tag such as de or zh-Hans", "sentences"
            )
    fitted = await run_in_threadpool(state.window.fit, texts, state.truncate, "sentences")
    vectors = normalized(await state.embed(texts, request))
    record(state, fitted)
    matrix = np.clip(vectors @ vectors.T, -1.0, 1.0)
    return {
        "model": state.name,
        "labels": [s.lang or str(i + 1) for i, s in enumerate(req.sentences)],
        "sentences": texts,
        "matrix": np.round(matrix, 4).tolist(),
    }
