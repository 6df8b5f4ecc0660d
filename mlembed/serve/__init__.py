"""``mlembed serve``: a model (and optionally sentence indexes) over HTTP.

* :mod:`.batcher` -- concurrent requests share one forward pass;
* :mod:`.search` -- several indexes searched together, cosine or ratio-margin scores;
* :mod:`.app` -- the FastAPI application: OpenAI-compatible ``/v1/embeddings``, ``/v1/search``,
  ``/v1/compare``, ``/v1/models``, ``/healthz`` and the web page (``static/index.html``).
"""

from mlembed.serve.app import Limits, create_app

__all__ = ["Limits", "create_app"]
