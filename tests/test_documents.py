"""Documents in (JSONL, folders, text files), sentences out with provenance, and `mine` from two document
collections: split, set aside other languages, mine, drop copies, name each side's document and sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlembed.cli import main
from mlembed.data.documents import document_sentences, read_documents
from mlembed.files import DataError

EN = {
    "weather": "The weather was terrible yesterday. We stayed at home and read books all afternoon.",
    "markets": "Advertisement\nStocks fell sharply on Monday. Investors are worried about rising inflation.",
    "only-en": "The new bridge will open next spring. It cost more than planned.",
}
DE = {
    "maerkte": "Advertisement\nDie Aktien fielen am Montag stark. Anleger sind wegen der steigenden Inflation "
    "besorgt.",
    "wetter": "Das Wetter war gestern schrecklich. Wir blieben zu Hause und lasen den ganzen Nachmittag Bücher.\n"
    "C'est la vie, disait toujours ma grand-mère quand il pleuvait.",
}


def _jsonl(path: Path, docs: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"id": k, "text": v}, ensure_ascii=False) + "\n" for k, v in docs.items()))
    return path


def test_documents_from_jsonl_a_folder_or_a_file_keep_their_ids(tmp_path):
    _jsonl(tmp_path / "en.jsonl", EN)
    assert [d.id for d in read_documents(tmp_path / "en.jsonl")] == list(EN)
    folder = tmp_path / "site"
    (folder / "news").mkdir(parents=True)
    for name, text in EN.items():
        (folder / "news" / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    docs = list(read_documents(folder))
    assert [d.id for d in docs] == sorted(f"news/{n}.txt" for n in EN) and docs[0].text == EN["markets"]
    single = folder / "news" / "weather.txt"
    assert [(d.id, d.text) for d in read_documents(single)] == [("weather.txt", EN["weather"])]


def test_sentences_keep_document_index_line_and_span(tmp_path):
    sentences = list(document_sentences(_jsonl(tmp_path / "en.jsonl", EN), "en"))
    assert [(s.doc, s.index) for s in sentences if s.doc == "markets"] == [("markets", i) for i in range(3)]
    for s in sentences:
        assert EN[s.doc].split("\n")[s.line - 1][s.start : s.end] == s.text
    assert sentences[1].text == "We stayed at home and read books all afternoon."


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', r"docs\.jsonl:2: document id 'a' seen before"),
        ('{"id": "a", "text": "x"}\n{"text": "no id"}\n', r'docs\.jsonl:2: expected an object with "id"'),
        ('{"id": "a", "text": "x"}\nnot json\n', r"docs\.jsonl:2: not JSON"),
    ],
)
def test_a_bad_jsonl_line_is_refused_with_file_and_line(tmp_path, content, message):
    (tmp_path / "docs.jsonl").write_text(content)
    with pytest.raises(DataError, match=message):
        list(read_documents(tmp_path / "docs.jsonl"))


def test_a_missing_collection_or_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        list(read_documents(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .txt files"):
        list(read_documents(tmp_path / "empty"))


@pytest.mark.precision
def test_mine_from_documents_finds_the_translations_with_their_provenance(tmp_path, e5_folder, capsys):
    src, tgt = _jsonl(tmp_path / "en.jsonl", EN), _jsonl(tmp_path / "de.jsonl", DE)
    out = tmp_path / "pairs.tsv"
    code = main(["mine", "--src-docs", str(src), "--tgt-docs", str(tgt), "--src-lang", "en", "--tgt-lang", "de",
                 "--model", str(e5_folder), "--threshold", "1.0", "-o", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "1 not in de set aside" in printed and "dropped as copy: 1" in printed
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == ["score", "source", "target", "source_doc", "source_sentence", "target_doc", "target_sentence"]
    found = {(r[3], r[4], r[5], r[6]) for r in rows[1:]}
    assert found == {
        ("weather", "0", "wetter", "0"),
        ("weather", "1", "wetter", "1"),
        ("markets", "1", "maerkte", "1"),
        ("markets", "2", "maerkte", "2"),
    }
    assert not (tmp_path / "pairs.tsv.work").exists()


def test_mine_refuses_sentence_files_and_documents_together(tmp_path):
    with pytest.raises(SystemExit, match="--src-docs and --tgt-docs together"):
        main(["mine", "--src", "a.txt", "--src-docs", "b.jsonl", "--tgt-docs", "c.jsonl", "-o", str(tmp_path / "o")])


@pytest.mark.slow
@pytest.mark.precision
def test_a_sentence_split_in_two_by_its_translator_comes_out_whole(tmp_path, e5_folder):
    """Matched documents are aligned sentence by sentence: a 1-2 bead gives one pair of the original texts."""
    from mlembed.document_mining import mine_documents
    from mlembed.mine import MiningOptions

    en = {
        "council": "The weather was terrible yesterday. "
        "The city council met on Monday and approved the new budget after a long debate. "
        "We stayed at home and read books all afternoon."
    }
    de = {
        "rat": "Das Wetter war gestern schrecklich. Der Stadtrat trat am Montag zusammen. "
        "Er billigte nach langer Debatte den neuen Haushalt. "
        "Wir blieben zu Hause und lasen den ganzen Nachmittag Bücher."
    }
    src, tgt = _jsonl(tmp_path / "en.jsonl", en), _jsonl(tmp_path / "de.jsonl", de)
    report = mine_documents(src, tgt, tmp_path / "out.tsv", src_lang="en", tgt_lang="de", model=str(e5_folder),
                            options=MiningOptions(threshold=1.0), show_progress=False)  # fmt: skip
    rows = [line.split("\t") for line in (tmp_path / "out.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    assert report.aligned_documents == 1
    merged = [r for r in rows if r[6] == "1,2"]
    assert merged and merged[0][2] == (
        "Der Stadtrat trat am Montag zusammen. Er billigte nach langer Debatte den neuen Haushalt."
    )
    assert merged[0][4] == "1"
    unaligned = mine_documents(src, tgt, tmp_path / "plain.tsv", src_lang="en", tgt_lang="de", model=str(e5_folder),
                               options=MiningOptions(threshold=1.0), show_progress=False, align_documents=False)  # fmt: skip
    assert unaligned.aligned_documents == 0
    assert all("," not in line.split("\t")[6] for line in (tmp_path / "plain.tsv").read_text().splitlines()[1:])
