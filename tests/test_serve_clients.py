"""The clients people point at an embeddings server, with the settings docs/serve.md gives, against a live
``mlembed serve`` of multilingual-e5-small on 127.0.0.1: each finds the English sentence a German query
translates. None of them downloads anything (LangChain's tokenizer is a small fixture encoding)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")
from live_server import LiveServer  # noqa: E402
from test_serve import fixture_encoding, write_fixture_encoding  # noqa: E402

from mlembed.encoding import encode  # noqa: E402
from mlembed.serve import create_app  # noqa: E402

ENGLISH = [
    "The cat sleeps on the sofa.",
    "Stock markets fell sharply today.",
    "I am very hungry.",
    "Where is the train station?",
]
GERMAN = [
    "Die Katze schläft auf dem Sofa.",
    "Die Aktienmärkte sind heute stark gefallen.",
    "Ich habe großen Hunger.",
    "Wo ist der Bahnhof?",
]
NAME, KEY = "mlembed-student", "k1"


@pytest.fixture(scope="module")
def model(e5_folder):
    from mlembed.models import load_model

    return load_model(e5_folder)


@pytest.fixture(scope="module")
def live(model, tmp_path_factory):
    encoding = write_fixture_encoding(tmp_path_factory.mktemp("tiktoken") / "fixture.tiktoken")
    app = create_app(model, NAME, api_key=KEY, aliases=["text-embedding-3-small"], token_encoding=str(encoding))
    with LiveServer(app) as server:
        server.encoding = encoding
        yield server


def _ranks_right(docs: np.ndarray, queries: np.ndarray) -> None:
    docs = docs / np.linalg.norm(docs, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    assert (queries @ docs.T).argmax(axis=1).tolist() == list(range(len(ENGLISH)))


def test_openai_client_names_codes_and_model_retrieval(live):
    import openai

    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=KEY, max_retries=0)
    assert client.models.retrieve(NAME).id == NAME
    assert client.models.retrieve("text-embedding-3-small").id == "text-embedding-3-small"
    docs = client.embeddings.create(model=NAME, input=ENGLISH).data
    queries = client.embeddings.create(model="text-embedding-3-small", input=GERMAN).data
    _ranks_right(np.array([d.embedding for d in docs]), np.array([d.embedding for d in queries]))
    with pytest.raises(openai.NotFoundError) as e:
        client.embeddings.create(model="gpt-4", input="x")
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError) as e:
        openai.OpenAI(base_url=f"{live.url}/v1", api_key="wrong", max_retries=0).models.list()
    assert e.value.code == "invalid_api_key"
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=NAME, input="word " * 600)
    assert e.value.code == "context_length_exceeded" and "maximum context length is 512 tokens" in str(e.value)


@pytest.mark.precision  # vectors at `auto` precision; CI reruns under fp32 and bf16
def test_langchain_with_its_defaults_and_without_token_ids(live, model, monkeypatch):
    pytest.importorskip("langchain_openai")
    import tiktoken
    from langchain_openai import OpenAIEmbeddings

    # tiktoken's own encodings are fetched at first use; the client here has a small one instead
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda name: fixture_encoding(live.encoding))
    common = {"model": NAME, "base_url": f"{live.url}/v1", "api_key": KEY, "max_retries": 0}
    by_ids = OpenAIEmbeddings(**common)  # LangChain's default: token ids, chunked at embedding_ctx_length
    by_text = OpenAIEmbeddings(**common, check_embedding_ctx_length=False)  # what docs/serve.md recommends
    docs = np.array(by_text.embed_documents(ENGLISH))
    _ranks_right(docs, np.array([by_text.embed_query(q) for q in GERMAN]))
    decoder = live.server.config.app.state.served.decoder
    before = decoder.decoded
    np.testing.assert_allclose(by_ids.embed_documents(ENGLISH), docs, atol=1e-5)  # ids decoded to the same text
    assert decoder.decoded - before == len(ENGLISH)  # LangChain did send token ids
    want = encode(ENGLISH, model, normalize=True)
    assert np.min(np.sum(docs * want, axis=1)) > 0.999


def test_langchain_token_ids_without_the_encoding_get_the_setting_to_use(model):
    pytest.importorskip("langchain_openai")
    import openai
    from langchain_openai import OpenAIEmbeddings

    with LiveServer(create_app(model, NAME, token_encoding=None)) as live:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="none", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="check_embedding_ctx_length=False"):
            client.embeddings.create(model=NAME, input=[[464, 3797]])  # what LangChain sends by default
        text = OpenAIEmbeddings(
            model=NAME, base_url=f"{live.url}/v1", api_key="none", check_embedding_ctx_length=False, max_retries=0
        )
        assert len(text.embed_query("Hallo Welt")) == 384


def test_llama_index_with_model_name(live):
    pytest.importorskip("llama_index.embeddings.openai")
    from llama_index.embeddings.openai import OpenAIEmbedding

    embed = OpenAIEmbedding(model_name=NAME, api_base=f"{live.url}/v1", api_key=KEY, max_retries=0)
    docs = np.array(embed.get_text_embedding_batch(ENGLISH))
    _ranks_right(docs, np.array([embed.get_query_embedding(q) for q in GERMAN]))


def test_chroma_with_its_openai_embedding_function(live):
    chromadb = pytest.importorskip("chromadb")
    from chromadb.config import Settings
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    client = chromadb.EphemeralClient(Settings(anonymized_telemetry=False))
    function = OpenAIEmbeddingFunction(api_key=KEY, api_base=f"{live.url}/v1", model_name=NAME)
    docs = client.create_collection("sentences", embedding_function=function)
    docs.add(ids=[str(i) for i in range(len(ENGLISH))], documents=ENGLISH)
    hits = docs.query(query_texts=GERMAN, n_results=1)
    assert [h[0] for h in hits["documents"]] == ENGLISH


def test_qdrant_with_vectors_from_the_openai_client(live):
    pytest.importorskip("qdrant_client")
    import openai
    from qdrant_client import QdrantClient, models

    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=KEY, max_retries=0)
    vectors = [d.embedding for d in client.embeddings.create(model=NAME, input=ENGLISH).data]
    qdrant = QdrantClient(":memory:")
    qdrant.create_collection("sentences", vectors_config=models.VectorParams(size=len(vectors[0]), distance="Cosine"))
    qdrant.upsert(
        "sentences",
        [models.PointStruct(id=i, vector=v, payload={"text": t}) for i, (v, t) in enumerate(zip(vectors, ENGLISH))],
    )
    for i, query in enumerate(GERMAN):
        vector = client.embeddings.create(model=NAME, input=query).data[0].embedding
        (hit,) = qdrant.query_points("sentences", query=vector, limit=1).points
        assert hit.payload["text"] == ENGLISH[i]


def test_huggingface_hub_inference_client_as_a_tei_client(live, monkeypatch):
    from huggingface_hub import InferenceClient, constants

    # the hub client refuses every URL in offline mode, this loopback server's too; nothing here leaves 127.0.0.1
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    client = InferenceClient(model=live.url, token=KEY)  # posts to the root, as TEI serves it
    docs = np.stack([client.feature_extraction(t)[0] for t in ENGLISH])
    _ranks_right(docs, np.stack([client.feature_extraction(q)[0] for q in GERMAN]))
