"""``mlembed serve``: a model (and optionally sentence indexes) over HTTP, a drop-in for OpenAI's embeddings API
and for Text Embeddings Inference.

* :mod:`.batcher` -- concurrent requests share one forward pass;
* :mod:`.search` -- several indexes searched together, cosine or ratio-margin scores;
* :mod:`.inputs` -- strings or token ids in, the model's window and what happens over it;
* :mod:`.errors` -- OpenAI's and TEI's error shapes; :mod:`.metrics` -- Prometheus;
* :mod:`.state` -- what a running server holds; routes in :mod:`.openai_api`, :mod:`.tei_api`, :mod:`.pages`;
* :mod:`.app` -- :func:`create_app` puts them together.
"""

from mlembed.serve.app import create_app
from mlembed.serve.inputs import Limits

__all__ = ["Limits", "create_app"]
