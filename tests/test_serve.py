"""``mlembed serve``: the OpenAI embeddings API, search, compare, errors, auth, micro-batching, a real browser."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from live_server import LiveServer  # noqa: E402

from mlembed.encoding import encode  # noqa: E402
from mlembed.index import IndexSpec, SentenceIndex  # noqa: E402
from mlembed.models import fingerprint  # noqa: E402
from mlembed.serve import Limits, create_app  # noqa: E402
from mlembed.serve.search import IndexSet  # noqa: E402

ENGLISH = ["The cat sleeps.", "Stock markets fell sharply.", "I am hungry.", "Where is the station?"]


@pytest.fixture(scope="module")
def english_index(tmp_path_factory, teacher) -> Path:
    folder = tmp_path_factory.mktemp("serve")
    (folder / "en.txt").write_text("\n".join(ENGLISH) + "\n")
    SentenceIndex.build(folder / "en.txt", folder / "en", teacher, IndexSpec(lang="en"), show_progress=False)
    return folder / "en"


@pytest.fixture(scope="module")
def client(teacher, english_index):
    app = create_app(
        teacher,
        "minilm-en",
        IndexSet.load([str(english_index)], teacher),
        limits=Limits(max_inputs=8),
        token_encoding=None,
    )
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def e5_client(tmp_path_factory, e5_folder):
    """A multilingual model (multilingual-e5-small) serving an English index."""
    from mlembed.models import load_model

    model = load_model(e5_folder)
    folder = tmp_path_factory.mktemp("serve-e5")
    (folder / "en.txt").write_text("\n".join(ENGLISH) + "\n")
    SentenceIndex.build(folder / "en.txt", folder / "en", model, IndexSpec(lang="en"), show_progress=False)
    with TestClient(create_app(model, "e5", IndexSet.load([str(folder / "en")], model))) as c:
        yield c


@pytest.mark.precision  # vectors at `auto` precision; CI reruns under fp32 and bf16
def test_embeddings_are_the_normalised_vectors_of_encode(client, teacher):
    r = client.post("/v1/embeddings", json={"model": "minilm-en", "input": ["Hallo Welt", "A cat."]})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list" and body["model"] == "minilm-en"
    assert [d["index"] for d in body["data"]] == [0, 1] and body["data"][0]["object"] == "embedding"
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    want = encode(["Hallo Welt", "A cat."], teacher, normalize=True)
    assert np.min(np.sum(got * want, axis=1)) > 0.999  # same vectors (bf16 autocast on some CPUs)
    tokens = sum(len(x) for x in teacher.tokenizer(["Hallo Welt", "A cat."])["input_ids"])
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_base64_decodes_to_the_float_vector(client):
    one = client.post("/v1/embeddings", json={"model": "minilm-en", "input": "Guten Morgen"}).json()
    b64 = client.post(
        "/v1/embeddings", json={"model": "minilm-en", "input": "Guten Morgen", "encoding_format": "base64"}
    ).json()
    decoded = np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, np.array(one["data"][0]["embedding"], dtype=np.float32), atol=1e-6)
    assert (
        client.post("/v1/embeddings", json={"model": "minilm-en", "input": "x y", "dimensions": 384}).status_code
        == 200
    )


def test_models_and_health(client, teacher):
    card = client.get("/v1/models").json()["data"][0]
    assert card["id"] == "minilm-en" and card["dimension"] == 384 and card["fingerprint"] == fingerprint(teacher)
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["indexes"] == 1 and health["auth"] is False
    (idx,) = client.get("/v1/indexes").json()["data"]
    assert idx["lang"] == "en" and idx["count"] == len(ENGLISH)


@pytest.mark.precision  # vectors at `auto` precision; CI reruns under fp32 and bf16
def test_search_finds_the_translation_with_cosine_and_margin(e5_client):
    client = e5_client
    r = client.post("/v1/search", json={"query": ["Die Katze schläft.", "Ich habe Hunger."], "k": 2})
    assert r.status_code == 200 and r.json()["score"] == "cosine"
    first, second = r.json()["data"]
    assert first["hits"][0]["sentence"] == "The cat sleeps." and second["hits"][0]["sentence"] == "I am hungry."
    assert first["hits"][0]["lang"] == "en" and first["hits"][0]["index"] == "en" and len(first["hits"]) == 2
    assert first["hits"][0]["score"] == first["hits"][0]["cosine"] and first["hits"][0]["margin"] is None
    m = client.post("/v1/search", json={"query": "Die Katze schläft.", "k": 4, "margin": True}).json()
    hits = m["data"][0]["hits"]
    assert m["score"] == "margin" and hits[0]["sentence"] == "The cat sleeps."
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert hits[0]["margin"] > 1.0 > hits[-1]["margin"]  # the translation stands out of its neighbourhood


def test_compare_gives_a_symmetric_similarity_matrix(client):
    r = client.post(
        "/v1/compare",
        json={
            "sentences": [
                {"lang": "en", "text": "I am hungry."},
                {"lang": "de", "text": "Ich habe Hunger."},
                {"text": "Stocks fell."},
            ]
        },
    )
    body = r.json()
    m = np.array(body["matrix"])
    assert body["labels"] == ["en", "de", "3"] and m.shape == (3, 3)
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-3)
    np.testing.assert_allclose(m, m.T, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "minilm-en", "input": ""}, 400, "input is empty: expected a non-empty string"),
        ({"model": "minilm-en", "input": ["ok", "  "]}, 400, r"input\[1\] is empty"),
        ({"model": "minilm-en", "input": []}, 400, "empty list"),
        ({"model": "minilm-en", "input": 5}, 400, "expected a string or a list of strings, got integer"),
        ({"model": "minilm-en", "input": [[101, 102]]}, 400, "check_embedding_ctx_length=False"),
        ({"model": "minilm-en", "input": ["a"] * 9}, 400, "at most 8 per request"),
        ({"model": "minilm-en", "input": "x" * 20_001}, 400, "at most 20,000 per string"),
        ({"input": "x"}, 400, "model: required field missing"),
        ({"model": "gpt-4", "input": "x"}, 404, "not served here"),
        ({"model": "minilm-en", "input": "x", "dimensions": 128}, 400, "was not trained to be truncated"),
        ({"model": "minilm-en", "input": "x", "encoding_format": "hex"}, 400, "encoding_format"),
        ([1, 2], 400, "expected a JSON object"),
    ],
)
def test_bad_embedding_requests_get_a_4xx_json_error_and_the_server_keeps_serving(client, body, status, message):
    r = client.post("/v1/embeddings", json=body)
    assert r.status_code == status
    error = r.json()["error"]
    assert re.search(message, error["message"]), error
    assert set(error) == {"message", "type", "param", "code"} and error["code"]  # clients' e.code says what
    assert client.post("/v1/embeddings", json={"model": "minilm-en", "input": "still up"}).status_code == 200


def test_malformed_json_oversized_bodies_and_bad_search_requests(teacher, english_index):
    app = create_app(
        teacher, "m", IndexSet.load([f"docs={english_index}"], teacher), limits=Limits(max_body_bytes=2000)
    )
    with TestClient(app) as c:
        r = c.post("/v1/embeddings", content=b'{"model": "m", "input": ', headers={"content-type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
        r = c.post("/v1/embeddings", content=b'{"model": "m", "input": "x"}')  # a JSON body sent as plain bytes
        assert r.status_code == 400
        assert "with 'Content-Type: application/json' (sent: none)" in r.json()["error"]["message"]
        r = c.post("/v1/embeddings", json={"model": "m", "input": "x" * 5000})
        assert r.status_code == 413 and "over 2,000 bytes" in r.json()["error"]["message"]
        assert r.headers["content-type"] == "application/json"
        chunks = iter([b'{"model": "m", "input": "', b"y" * 3000, b'"}'])  # no Content-Length: counted as it streams
        r = c.post("/v1/embeddings", content=chunks, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.post("/v1/search", json={"query": "x", "k": 101}).json()["error"]["param"] == "k"
        assert c.post("/v1/search", json={"query": "x", "k": 0}).status_code == 400
        r = c.post("/v1/search", json={"query": "x", "indexes": ["nope"]})
        assert r.status_code == 400 and "no index named 'nope'; loaded: docs" in r.json()["error"]["message"]
        assert c.get("/v1/nothing").status_code == 404 and "error" in c.get("/v1/nothing").json()
        assert c.post("/v1/compare", json={"sentences": [{"text": "only one"}]}).status_code == 400
        r = c.post("/v1/compare", json={"sentences": [{"text": ["a", "b"]}, {"text": "c"}]})
        assert r.status_code == 400 and "sentences[0].text: expected a string" in r.json()["error"]["message"]
        assert (
            c.post("/v1/search", json={"query": "Die Katze schläft."}).json()["data"][0]["hits"][0]["index"] == "docs"
        )
    with TestClient(create_app(teacher, "m")) as c:
        r = c.post("/v1/search", json={"query": "x"})
        assert r.status_code == 400 and "no index is loaded" in r.json()["error"]["message"]


def test_api_key_is_required_on_v1_routes_only(teacher):
    with TestClient(create_app(teacher, "m", api_key="s3cret")) as c:
        assert c.get("/healthz").json()["auth"] is True and c.get("/").status_code == 200
        assert c.get("/v1/models").status_code == 401
        wrong = c.post("/v1/embeddings", json={"model": "m", "input": "x"}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
        ok = c.post("/v1/embeddings", json={"model": "m", "input": "x"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_the_page_is_served_and_needs_no_build(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="q"' in r.text and "/v1/search" in r.text and "/v1/compare" in r.text


# --- a live server on 127.0.0.1 ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def paragraph() -> str:
    """A real paragraph over MiniLM's 256-token window: 40 packaged held-out English sentences."""
    from mlembed.data.english import english_sentences

    return " ".join(english_sentences("heldout")[:40])


def test_the_model_answers_to_its_name_and_aliases_only(teacher):
    app = create_app(teacher, "mlembed-student", aliases=["text-embedding-3-small"], token_encoding=None)
    with TestClient(app) as c:
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["mlembed-student", "text-embedding-3-small"]
        card = c.get("/v1/models/text-embedding-3-small").json()
        assert card["root"] == "mlembed-student" and card["dimension"] == 384
        r = c.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "Hallo"})
        assert r.status_code == 200 and r.json()["model"] == "text-embedding-3-small"
        for wrong in (c.get("/v1/models/gpt-4"), c.post("/v1/embeddings", json={"model": "gpt-4", "input": "x"})):
            assert wrong.status_code == 404
            assert wrong.json()["error"]["code"] == "model_not_found"
            assert "start it with --alias NAME" in wrong.json()["error"]["message"]


def test_served_name_is_the_folder_name_not_its_path(tmp_path):
    from mlembed.cli.serve import served_name

    (tmp_path / "mlembed-student").mkdir()
    assert served_name(str(tmp_path / "mlembed-student") + "/") == "mlembed-student"
    assert served_name("e5-small") == "e5-small"


def test_an_input_over_the_window_is_a_400_unless_truncation_is_asked(teacher, paragraph):
    from mlembed.windows import token_counts

    tokens = int(token_counts(teacher, [paragraph])[0])
    assert tokens > 256
    body = {"model": "m", "input": ["Hallo Welt", paragraph]}
    with TestClient(create_app(teacher, "m", token_encoding=None)) as c:
        r = c.post("/v1/embeddings", json=body)
        assert r.status_code == 400
        error = r.json()["error"]
        assert error["code"] == "context_length_exceeded" and error["param"] == "input"
        assert f"input[1] has {tokens:,} tokens: this model's maximum context length is 256 tokens" in error["message"]
        r = c.post("/v1/embeddings", json={**body, "truncate": True})
        assert r.status_code == 200 and r.headers["x-truncated-inputs"] == "1"
        assert r.json()["truncated"] == [{"index": 1, "tokens": tokens, "window": 256}]
        assert r.json()["usage"]["prompt_tokens"] == int(token_counts(teacher, ["Hallo Welt"])[0]) + 256
        got = np.array(r.json()["data"][1]["embedding"], dtype=np.float32)
        want = encode([paragraph], teacher, normalize=True, overflow="truncate")[0]
        assert float(got @ want) > 0.999  # the first window, as the long-input policy reads it
        tei = c.post("/embed", json={"inputs": paragraph})
        assert tei.status_code == 422 and tei.json()["error_type"] == "Validation"
        assert "inputs has" in tei.json()["error"]
        assert c.post("/embed", json={"inputs": paragraph, "truncate": True}).headers["x-truncated-inputs"] == "0"
    with TestClient(create_app(teacher, "m", truncate=True, token_encoding=None)) as c:  # `--truncate`
        assert c.post("/v1/embeddings", json=body).json()["truncated"][0]["index"] == 1
        assert c.post("/v1/embeddings", json={**body, "truncate": False}).status_code == 400
        assert c.get("/info").json()["auto_truncate"] is True


def write_fixture_encoding(path: Path) -> Path:
    """A small tiktoken BPE file: the 256 bytes and a few English merges (tiktoken's file format)."""
    merges = [b"th", b"he", b"the", b" t", b" th", b" the", b"in", b"ng", b"ing", b"at", b" c", b" ca", b" cat"]
    ranks = [bytes([i]) for i in range(256)] + merges
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for r, t in enumerate(ranks)))
    return path


def fixture_encoding(path: Path):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    pattern = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""  # GPT-2's split
    return tiktoken.Encoding(
        "fixture", pat_str=pattern, mergeable_ranks=load_tiktoken_bpe(str(path)), special_tokens={}
    )


@pytest.mark.precision  # vectors at `auto` precision; CI reruns under fp32 and bf16
def test_token_id_inputs_are_decoded_with_the_clients_encoding(teacher, tmp_path):
    file = write_fixture_encoding(tmp_path / "fixture.tiktoken")
    enc = fixture_encoding(file)
    texts = ["The cat is sleeping in the garden.", "Die Katze schläft im Garten."]
    ids = [enc.encode(t) for t in texts]
    assert len(ids[0]) < len(texts[0].encode())  # merges were used
    with TestClient(create_app(teacher, "m", token_encoding=str(file))) as c:
        by_ids = c.post("/v1/embeddings", json={"model": "m", "input": ids}).json()["data"]
        by_text = c.post("/v1/embeddings", json={"model": "m", "input": texts}).json()["data"]
        np.testing.assert_allclose([d["embedding"] for d in by_ids], [d["embedding"] for d in by_text], atol=1e-6)
        one = c.post("/v1/embeddings", json={"model": "m", "input": ids[0]}).json()["data"]  # a single array
        assert len(one) == 1
        r = c.post("/v1/embeddings", json={"model": "m", "input": [[72, 10**6]]})
        assert r.status_code == 400 and "not in the encoding" in r.json()["error"]["message"]
        assert c.post("/embed", json={"inputs": ids}).status_code == 200
    with TestClient(create_app(teacher, "m", token_encoding=str(tmp_path / "missing.tiktoken"))) as c:
        r = c.post("/v1/embeddings", json={"model": "m", "input": [ids[0]]})
        assert r.status_code == 400 and r.json()["error"]["code"] == "token_ids_not_supported"
        assert "could not load the tokenizer" in r.json()["error"]["message"]
        assert "check_embedding_ctx_length=False" in r.json()["error"]["message"]


@pytest.mark.precision  # vectors at `auto` precision; CI reruns under fp32 and bf16
def test_tei_routes_embed_info_and_health(teacher):
    with TestClient(create_app(teacher, "minilm-en", limits=Limits(max_inputs=4), token_encoding=None)) as c:
        one = c.post("/embed", json={"inputs": "Hallo Welt"}).json()
        assert np.array(one).shape == (1, 384)
        raw = np.array(c.post("/embed", json={"inputs": ["Hallo Welt"], "normalize": False}).json()[0])
        np.testing.assert_allclose(raw, encode(["Hallo Welt"], teacher)[0], atol=1e-5)  # the model's own vector
        np.testing.assert_allclose(raw / np.linalg.norm(raw), one[0], atol=1e-5)
        assert c.post("/embed", json={"inputs": []}).status_code == 400
        r = c.post("/embed", json={"inputs": ["a"] * 5})
        assert r.status_code == 413 and r.json() == {
            "error": "inputs has 5 strings: at most 4 per request",
            "error_type": "Validation",
        }
        assert c.post("/embed", json={"inputs": "x", "truncation_direction": "Left"}).status_code == 422
        info = c.get("/info").json()
        assert info["served_model_name"] == "minilm-en" and info["max_input_length"] == 256
        assert info["max_client_batch_size"] == 4 and info["model_dtype"] in ("float32", "bfloat16")
        assert {"model_id", "version", "max_batch_tokens", "auto_truncate"} <= set(info)
        assert c.get("/health").status_code == 200


class _Broken:
    """The model, until ``broken`` is set: then every forward pass raises."""

    def __init__(self, model):
        self.model, self.broken = model, False

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode(self, sentences, **kw):
        if self.broken:
            raise RuntimeError("out of memory")
        return self.model.encode(sentences, **kw)


def test_health_is_503_when_the_model_fails_and_200_when_it_answers_again(teacher, monkeypatch):
    import mlembed.serve.state as state

    monkeypatch.setattr(state, "HEALTH_FRESH_S", 0.0)  # every /health call sends its probe sentence
    broken = _Broken(teacher)
    with TestClient(create_app(broken, "m", token_encoding=None)) as c:
        assert c.get("/health").status_code == 200
        broken.broken = True
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["error_type"] == "Unhealthy"
        assert "RuntimeError: out of memory" in r.json()["error"]
        broken.broken = False
        assert c.get("/health").status_code == 200


def test_metrics_count_requests_errors_tokens_and_batches(teacher):
    from prometheus_client.parser import text_string_to_metric_families

    with TestClient(create_app(teacher, "m", token_encoding=None)) as c:
        c.post("/v1/embeddings", json={"model": "m", "input": ["Hallo Welt", "Bonjour"]})
        c.post("/v1/embeddings", json={"model": "gpt-4", "input": "x"})
        c.get("/no/such/route")
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }
    ok = ("mlembed_requests_total", (("method", "POST"), ("route", "/v1/embeddings"), ("status", "200")))
    assert samples[ok] == 1
    assert samples[("mlembed_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert samples[("mlembed_errors_total", (("code", "model_not_found"),))] == 1
    assert samples[("mlembed_inputs_total", ())] == 2
    assert samples[("mlembed_tokens_total", ())] == int(token_counts_of(teacher, ["Hallo Welt", "Bonjour"]))
    assert samples[("mlembed_batch_sentences_count", ())] >= 1
    assert samples[("mlembed_request_duration_seconds_count", (("route", "/v1/embeddings"),))] == 2
    assert ("mlembed_queue_sentences", ()) in samples


def token_counts_of(model, texts) -> int:
    from mlembed.windows import token_counts

    return int(token_counts(model, texts).sum())


def test_api_docs_are_served_without_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert not re.search(r"""(src|href)=["']https?://(?!testserver/)""", page.text)  # nothing from outside
    assets = re.findall(r"""(?:src|href)=["']http://testserver(/[^"']+)""", page.text)
    assert len(assets) == 3  # Swagger UI's script, styles and icon, from this server
    for asset in assets:
        assert client.get(asset).status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/embeddings", "/v1/models/{model_id}", "/embed", "/health", "/info", "/metrics"} <= set(spec["paths"])


def test_the_openai_client_works_unchanged_against_a_live_server(teacher):
    openai = pytest.importorskip("openai")
    with LiveServer(create_app(teacher, "minilm-en", api_key="k1")) as live:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="k1", max_retries=0)
        out = client.embeddings.create(
            model="minilm-en", input=["Hallo Welt", "Bonjour le monde"]
        )  # base64 under the hood
        got = np.array([d.embedding for d in out.data], dtype=np.float32)
        floats = client.embeddings.create(model="minilm-en", input="Hallo Welt", encoding_format="float")
        assert got.shape == (2, 384) and out.usage.prompt_tokens > 0
        np.testing.assert_allclose(got[0], np.array(floats.data[0].embedding, dtype=np.float32), atol=1e-5)
        want = encode(["Hallo Welt", "Bonjour le monde"], teacher, normalize=True)
        assert np.min(np.sum(got * want, axis=1)) > 0.999
        assert [m.id for m in client.models.list().data] == ["minilm-en"]
        with pytest.raises(openai.BadRequestError, match="is empty"):
            client.embeddings.create(model="minilm-en", input="")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{live.url}/v1", api_key="wrong", max_retries=0).models.list()


@pytest.mark.precision  # vectors at `auto` precision; CI reruns under fp32 and bf16
def test_concurrent_requests_share_forward_passes(teacher):
    import httpx

    app = create_app(teacher, "m")
    from mlembed.data.english import english_sentences

    # lengths from 3 to 40-odd tokens: each request's tokens are counted while a forward pass pads others
    sentences = english_sentences("heldout")[:48]

    async def fire(url: str) -> list[list[float]]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            rs = await asyncio.gather(*(c.post("/v1/embeddings", json={"model": "m", "input": s}) for s in sentences))
        return [r.json()["data"][0]["embedding"] for r in rs]

    with LiveServer(app) as live:
        got = np.array(asyncio.run(fire(live.url)), dtype=np.float32)
        stats = httpx.get(f"{live.url}/healthz").json()["batching"]
    assert stats["requests"] == 48 and stats["batches"] < 48 and stats["largest_batch"] > 1
    want = encode(sentences, teacher, normalize=True)
    assert np.min(np.sum(got * want, axis=1)) > 0.999  # each request got its own rows back


def test_counting_tokens_beside_a_forward_pass_leaves_its_padding_alone(teacher):
    """Requests count their tokens in threads while the forward thread tokenizes with padding: the count must
    not reset the tokenizer the forward pass is using (it made forward passes fail under load)."""
    from mlembed.data.english import english_sentences
    from mlembed.serve.inputs import WindowCheck

    sentences = english_sentences("heldout")[:64]
    check, errors, done = WindowCheck(teacher), [], threading.Event()

    def count() -> None:
        while not done.is_set():
            check.fit(sentences, truncate=True)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        for _ in range(30):
            try:
                encode(sentences, teacher, token_budget=512, overflow="truncate")
            except ValueError as exc:  # "Unable to create tensor ... activate truncation and/or padding"
                errors.append(exc)
    finally:
        done.set()
        counter.join()
    assert not errors


class _Slow:
    """The model, but each forward pass records its sentences, says it started and waits for ``release``."""

    def __init__(self, model, started: threading.Event, release: threading.Event, seen: list | None = None):
        self.model, self.started, self.release, self.seen = model, started, release, seen
        self.tokenizer = model.tokenizer

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode(self, sentences, **kw):
        if self.seen is not None:
            self.seen.extend(sentences)
        self.started.set()
        self.release.wait(30)
        return self.model.encode(sentences, **kw)


def test_a_full_queue_answers_503_and_the_server_recovers(teacher):
    import httpx

    started, release = threading.Event(), threading.Event()
    app = create_app(_Slow(teacher, started, release), "m", limits=Limits(max_queue=2, max_batch=2))

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            first = asyncio.create_task(c.post("/v1/embeddings", json={"model": "m", "input": ["a", "b"]}))
            while not started.is_set():
                await asyncio.sleep(0.01)
            queued = asyncio.create_task(c.post("/v1/embeddings", json={"model": "m", "input": ["c", "d"]}))
            await asyncio.sleep(0.2)
            refused = await c.post("/v1/embeddings", json={"model": "m", "input": "e"})
            release.set()
            return [(await first).status_code, (await queued).status_code, refused.status_code]

    with LiveServer(app) as live:
        assert asyncio.run(burst(live.url)) == [200, 200, 503]
        assert httpx.post(f"{live.url}/v1/embeddings", json={"model": "m", "input": "e"}).status_code == 200


def test_a_client_that_hangs_up_takes_its_sentences_out_of_the_queue(teacher):
    """While a forward pass is busy, a request is sent and its connection closed: its sentences leave the queue
    (the server never encodes an answer nobody reads), and the server keeps answering."""
    import httpx

    started, release, seen = threading.Event(), threading.Event(), []
    app = create_app(_Slow(teacher, started, release, seen), "m", limits=Limits(max_batch=2))
    with LiveServer(app) as live:
        first = threading.Thread(
            target=httpx.post, args=(f"{live.url}/v1/embeddings",), kwargs={"json": {"model": "m", "input": "a"}}
        )
        first.start()
        assert started.wait(30)
        body = json.dumps({"model": "m", "input": ["gone 1", "gone 2"]}).encode()
        host, port = live.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            head = f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            sock.sendall(head.encode() + body)
            deadline = time.monotonic() + 30
            while app.state.batcher.queued != 2 and time.monotonic() < deadline:  # wait for the state: queued
                time.sleep(0.01)
            assert app.state.batcher.queued == 2
        deadline = time.monotonic() + 30
        while app.state.batcher.queued and time.monotonic() < deadline:  # ... and out of the queue once gone
            time.sleep(0.01)
        assert app.state.batcher.queued == 0
        release.set()
        first.join()
        assert httpx.post(f"{live.url}/v1/embeddings", json={"model": "m", "input": "b"}).status_code == 200
    assert "gone 1" not in seen and seen[-1] == "b"


def test_serve_cli_refuses_bad_options_in_one_line(capsys):
    from mlembed.cli import main

    assert main(["serve", "--port", "0"]) == 2
    assert "--port 0: expected 1 to 65535" in capsys.readouterr().err
    assert main(["serve", "--max-batch", "0"]) == 2
    assert "--max-batch 0: expected a positive number" in capsys.readouterr().err
    assert main(["serve", "--index", "/nonexistent/idx"]) == 2
    assert "not an mlembed index" in capsys.readouterr().err


def test_serve_cli_names_the_model_by_its_folder_and_takes_aliases_and_truncate(e5_folder):
    """``mlembed serve`` as users start it: the id is the folder's name, not its path."""
    import subprocess
    import sys

    import httpx
    from live_server import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "mlembed", "-q", "serve", "--model", str(e5_folder), "--port", str(port)]
    cmd += ["--alias", "text-embedding-3-small", "--truncate", "--token-encoding", "none"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # wait for the state: the model answers
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        ids = [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
        assert ids == [e5_folder.name, "text-embedding-3-small"]
        info = httpx.get(f"{url}/info").json()
        assert info["auto_truncate"] is True and info["max_input_length"] == 512
        r = httpx.post(f"{url}/v1/embeddings", json={"model": "text-embedding-3-small", "input": "word " * 600})
        assert r.status_code == 200 and r.json()["truncated"][0]["window"] == 512
    finally:
        proc.terminate()
        proc.wait(30)


# --- a real browser -----------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (.ci/run installs it)")
def test_a_browser_finds_the_english_translation_of_a_german_sentence(shared_data, e5_folder, tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    from mlembed.models import load_model

    model = load_model(e5_folder)
    tatoeba = shared_data / "tatoeba"
    (tmp_path / "en.txt").write_text("\n".join(_lines(tatoeba / "tatoeba.deu-eng.eng", 300)) + "\n")
    (tmp_path / "fr.txt").write_text("\n".join(_lines(tatoeba / "tatoeba.fra-eng.fra", 300)) + "\n")
    for lang in ("en", "fr"):
        SentenceIndex.build(
            tmp_path / f"{lang}.txt", tmp_path / f"tatoeba-{lang}", model, IndexSpec(lang=lang), show_progress=False
        )
    german = _lines(tatoeba / "tatoeba.deu-eng.deu", 300)[299]
    english = _lines(tatoeba / "tatoeba.deu-eng.eng", 300)[299]
    indexes = IndexSet.load([str(tmp_path / "tatoeba-en"), str(tmp_path / "tatoeba-fr")], model)
    shot = Path(os.environ.get("MLEMBED_SCREENSHOT_DIR", tmp_path)) / "serve.png"
    with (
        LiveServer(create_app(model, "multilingual-e5-small", indexes)) as live,
        playwright_api.sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 640})
            page.goto(live.url)
            page.wait_for_function("document.getElementById('serving').textContent.includes('tatoeba-en')")
            page.keyboard.type(german)  # the search box has the focus on load
            page.keyboard.press("Enter")
            first = page.locator("#hits li").first
            first.wait_for()
            assert first.locator(".sentence").inner_text() == english
            assert first.locator(".lang").inner_text() == "en"
            assert page.locator("#hits li").count() == 10
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            page.get_by_role("tab", name="Compare").click()
            page.get_by_role("button", name="Compare").click()
            page.locator("#heat td").first.wait_for()
            assert page.locator("#heat tr").count() == 8  # header + the 7 default sentences
            page.set_viewport_size({"width": 380, "height": 700})  # a narrow screen: nothing wider than it
            assert page.evaluate("document.documentElement.scrollWidth") <= 380
            page.goto(f"{live.url}/docs")  # Swagger UI renders from this server alone (chromium here is offline)
            page.locator(".opblock-summary-path", has_text="/v1/embeddings").first.wait_for()
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


def _lines(path: Path, n: int) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [next(fh).rstrip("\n") for _ in range(n)]
