"""Inputs longer than the model's window: never cut without a word, at every entry point.

Texts are the ordinary English sentences packaged with mlembed, joined into lines of a few hundred tokens;
the model is the teacher (a 256-token window), loaded afresh here so the window can be changed safely.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from mlembed.cli import main


@pytest.fixture(scope="module")
def model():
    from mlembed.models import load_model

    return load_model("minilm-en")


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    from mlembed.data.english import english_sentences

    return english_sentences("heldout")


def _long(sentences: list[str], start: int, count: int = 40) -> str:
    return " ".join(sentences[start : start + count])


def test_window_spans_cover_the_text_in_windows_that_fit(model, sentences):
    from mlembed.windows import token_counts, window_spans

    text = _long(sentences, 0, 60)
    spans = window_spans(model, text, window=128)
    assert len(spans) > 3 and spans[0][0] == 0 and spans[-1][1] == len(text)
    for (_, end, _), (start, _, _) in zip(spans, spans[1:]):  # consecutive, cut between words
        assert text[end:start].strip() == "" and text[start - 1] == " "
    assert token_counts(model, [text[a:b] for a, b, _ in spans]).max() <= 128
    overlapping = window_spans(model, text, window=128, overlap=16)
    assert all(b > c for (_, b, _), (c, _, _) in zip(overlapping, overlapping[1:]))  # each overlaps the next


def test_encode_reads_a_long_input_whole_by_default_and_says_so(model, sentences, caplog):
    """Two long texts that differ only after the window: truncation gives them one vector (the bug users met),
    the default split-and-pool does not, and both are logged."""
    import mlembed
    from mlembed.windows import LengthReport

    head = _long(sentences, 0, 30)
    a, b = head + " " + _long(sentences, 100, 10), head + " " + _long(sentences, 200, 10)
    with caplog.at_level(logging.WARNING, logger="mlembed.windows"):
        cut = mlembed.encode([a, b], model, normalize=True, overflow="truncate")
    assert float(cut[0] @ cut[1]) > 0.9999
    assert "2 of 2 inputs longer than the 256-token window" in caplog.text and "truncated" in caplog.text
    caplog.clear()
    report = LengthReport("split", 256)
    with caplog.at_level(logging.WARNING, logger="mlembed.windows"):
        whole = mlembed.encode([a, b, "A short one."], model, normalize=True, report=report, precision="fp32")
    assert float(whole[0] @ whole[1]) < 0.99
    assert report.over == 2 and report.inputs == 3 and report.windows >= 4 and report.longest > 256
    assert caplog.text == ""  # given a report, the caller reports
    # a text that fits is encoded as plain sentence-transformers encodes it
    np.testing.assert_allclose(whole[2], model.encode(["A short one."], normalize_embeddings=True)[0], atol=1e-5)


def test_split_pools_the_windows_vectors_weighted_by_their_tokens(model, sentences):
    import mlembed
    from mlembed.windows import window_spans

    text = _long(sentences, 0, 30)
    spans = window_spans(model, text, window=128)  # the default split window
    parts = model.encode([text[s:e] for s, e, _ in spans], normalize_embeddings=True)
    weights = np.array([t for _, _, t in spans], dtype=np.float32)
    expected = (parts * weights[:, None]).sum(0) / weights.sum()
    expected /= np.linalg.norm(expected)
    got = mlembed.encode(text, model, normalize=True, precision="fp32")
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_error_mode_names_the_input_its_tokens_and_the_window(model, sentences):
    import mlembed
    from mlembed.windows import InputTooLongError

    with pytest.raises(InputTooLongError, match=r"input 1 has [\d,]+ tokens, more than the model's window of 256"):
        mlembed.encode(["short", _long(sentences, 0)], model, overflow="error")


def test_cli_encode_refuses_names_the_line_and_writes_nothing(tmp_path, sentences, capsys):
    src = tmp_path / "in.txt"
    src.write_text("Hello world\n" + _long(sentences, 0) + "\n", encoding="utf-8")
    out = tmp_path / "emb.npy"
    assert main(["encode", str(src), "-o", str(out), "--overflow", "error"]) == 2
    err = capsys.readouterr().err
    assert f"{src}:2: this line has" in err and "more than the model's window of 256" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [src]


def test_cli_encode_splits_by_default_and_records_it_beside_the_output(tmp_path, sentences, capsys):
    src = tmp_path / "in.txt"
    src.write_text("Hello world\n" + _long(sentences, 0) + "\n" + _long(sentences, 50) + "\n", encoding="utf-8")
    out = tmp_path / "emb.npy"
    assert main(["encode", str(src), "-o", str(out)]) == 0
    assert "2 of 3 lines longer than the 256-token window" in capsys.readouterr().err
    meta = json.loads((tmp_path / "emb.json").read_text())
    assert meta["max_seq_length"] == 256 and meta["overflow"]["mode"] == "split"
    assert meta["overflow"]["over"] == 2 and meta["overflow"]["first_over"] == [1, 2]
    assert np.load(out).shape == (3, 384)
    assert main(["encode", str(src), "-o", str(out), "--overflow", "truncate", "--max-seq-length", "128"]) == 0
    meta = json.loads((tmp_path / "emb.json").read_text())
    assert meta["overflow"]["mode"] == "truncate" and meta["overflow"]["window"] == 128


def test_index_stores_a_long_document_as_passages_and_search_names_its_document(tmp_path, sentences, capsys):
    from mlembed.index import SentenceIndex

    docs = ["The cat sleeps on the sofa.", _long(sentences, 0, 60), "Stock markets fell sharply."]
    src = tmp_path / "docs.txt"
    src.write_text("\n".join(docs) + "\n", encoding="utf-8")
    idx = SentenceIndex.build(src, tmp_path / "idx", model="minilm-en", show_progress=False)
    assert idx.meta["documents"] == 3 and idx.meta["count"] > 4
    assert idx.meta["overflow"]["over"] == 1 and idx.meta["overflow"]["windows"] == idx.meta["count"] - 2
    # every passage fits the window; those over 128 tokens were read in pooled windows, and meta.json says so
    assert idx.meta["rows"]["over"] == 0 and idx.meta["rows"]["pooled"] >= 1
    # a sentence from deep inside the long document finds a passage of it, the passage's span is in the
    # document, and every sentence of the document is in one of its passages
    needle = sentences[52]
    loaded = SentenceIndex.load(tmp_path / "idx")
    hit = loaded.search(needle, k=1)[0]
    assert hit.document == 1
    start, end = hit.span
    assert docs[1][start:end] == hit.sentence
    rows = [loaded.hit(0.0, i) for i in range(loaded.meta["count"])]
    assert [r.document for r in rows] == [0] + [1] * (len(rows) - 2) + [2]
    assert all(any(s in r.sentence for r in rows[1:-1]) for s in sentences[:60])
    assert main(["search", "--index", str(tmp_path / "idx"), "-k", "1", needle]) == 0
    printed = capsys.readouterr().out.splitlines()[1].split("\t")
    assert printed[1:] == ["1", f"{start}:{end}", hit.sentence]


def test_index_other_modes_keep_one_row_per_line_and_count_it(tmp_path, sentences):
    from mlembed.index import IndexSpec, SentenceIndex
    from mlembed.windows import InputTooLongError

    src = tmp_path / "docs.txt"
    src.write_text("A short line.\n" + _long(sentences, 0) + "\n", encoding="utf-8")
    idx = SentenceIndex.build(src, tmp_path / "idx", "minilm-en", IndexSpec(overflow="truncate"), show_progress=False)
    assert idx.meta["count"] == idx.meta["documents"] == 2 and idx.meta["overflow"]["over"] == 1
    assert idx.documents is None
    with pytest.raises(InputTooLongError, match="input 1 has"):
        SentenceIndex.build(src, tmp_path / "idx2", "minilm-en", IndexSpec(overflow="error"), show_progress=False)
    assert not (tmp_path / "idx2").exists()


def test_search_reports_a_query_longer_than_the_window(tmp_path, sentences, capsys):
    src = tmp_path / "s.txt"
    src.write_text("The cat sleeps.\nStocks fell.\n", encoding="utf-8")
    assert main(["index", "build", "--input", str(src), "-o", str(tmp_path / "idx")]) == 0
    capsys.readouterr()
    assert main(["search", "--index", str(tmp_path / "idx"), _long(sentences, 0)]) == 0
    assert "1 of 1 queries longer than the 256-token window" in capsys.readouterr().err
    assert main(["search", "--index", str(tmp_path / "idx"), "--overflow", "error", _long(sentences, 0)]) == 2
    assert "query 1 has" in capsys.readouterr().err


def test_mine_truncates_an_over_long_line_by_default_reports_it_and_can_refuse_it(tmp_path, sentences, capsys):
    src, tgt = tmp_path / "en.txt", tmp_path / "de.txt"
    src.write_text("The cat sleeps.\nStocks fell sharply.\n" + _long(sentences, 0) + "\n", encoding="utf-8")
    tgt.write_text("Die Katze schläft.\nDie Aktien fielen stark.\n", encoding="utf-8")
    out = tmp_path / "pairs.tsv"
    assert main(["mine", "--src", str(src), "--tgt", str(tgt), "-o", str(out), "--threshold", "1.0"]) == 0
    captured = capsys.readouterr()
    assert "--src: 1 of 3 distinct lines longer than the 256-token window" in captured.out
    assert "truncated" in captured.err and out.exists()
    out.unlink()
    args = ["mine", "--src", str(src), "--tgt", str(tgt), "-o", str(out), "--overflow", "error"]
    assert main(args) == 2
    assert f"{src}:3: this line has" in capsys.readouterr().err and not out.exists()


def test_info_prints_a_models_window(capsys):
    assert main(["info", "--model", "minilm-en"]) == 0
    assert "input window: 256 tokens" in capsys.readouterr().out


def test_a_model_without_a_tokenizer_is_left_to_its_engine():
    from mlembed.windows import LengthReport, plan_inputs

    class Peer:
        def encode(self, sentences, **_):
            return np.ones((len(sentences), 2), dtype=np.float32)

    report = LengthReport("error", None)
    plan = plan_inputs(Peer(), ["x" * 100_000], "error", report)
    assert plan.texts == ["x" * 100_000] and report.inputs == 0
