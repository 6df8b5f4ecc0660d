"""What people open in a browser: the search page at ``/`` and ``/healthz`` (status and batching counters). The
API docs at ``/docs`` come from ``fastapi-swagger`` (:func:`mlembed.serve.create_app`): Swagger UI 5 served from
this server, so they work offline (FastAPI's own page loads it from a CDN).
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from mlembed.serve.state import State

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    """The search and compare page (one file, no build step)."""
    html = resources.files("mlembed.serve").joinpath("static/index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/healthz")
async def healthz(state: State) -> dict:
    """Status, queue and batching counters (``/health`` is the probe: it checks that the model answers)."""
    return {
        "status": "ok",
        "model": state.name,
        "aliases": list(state.aliases),
        "indexes": len(state.indexes.indexes),
        "auth": state.api_key is not None,
        "queued": state.batcher.queued,
        "batching": state.batcher.stats.to_dict(),
    }
