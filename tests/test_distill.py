"""Distillation: teacher cache reuse, vocabulary extension, PCA, save/load, resume after kill -9.

Runs on a few dozen hand-written translations so it needs no shared data and stays fast.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlembed.teacher_cache import TeacherCache

DE = [
    ("The weather is lovely today.", "Das Wetter ist heute herrlich."),
    ("I would like a cup of coffee.", "Ich hätte gern eine Tasse Kaffee."),
    ("Where is the train station?", "Wo ist der Bahnhof?"),
    ("My brother lives in Berlin.", "Mein Bruder wohnt in Berlin."),
    ("The children are playing in the garden.", "Die Kinder spielen im Garten."),
    ("Please close the window.", "Bitte schließ das Fenster."),
    ("We are going to the cinema tonight.", "Wir gehen heute Abend ins Kino."),
    ("This book is very interesting.", "Dieses Buch ist sehr interessant."),
    ("She drinks tea every morning.", "Sie trinkt jeden Morgen Tee."),
    ("The file could not be opened.", "Die Datei konnte nicht geöffnet werden."),
    ("He forgot his keys at home.", "Er hat seine Schlüssel zu Hause vergessen."),
    ("How much does this shirt cost?", "Wie viel kostet dieses Hemd?"),
    ("The meeting starts at nine o'clock.", "Die Besprechung beginnt um neun Uhr."),
    ("I am learning to play the piano.", "Ich lerne Klavier spielen."),
    ("The dog is sleeping under the table.", "Der Hund schläft unter dem Tisch."),
    ("Save the changes before closing.", "Speichern Sie die Änderungen vor dem Schließen."),
]
ZH = [
    ("The weather is lovely today.", "今天天气很好。"),
    ("I would like a cup of coffee.", "我想要一杯咖啡。"),
    ("Where is the train station?", "火车站在哪里？"),
    ("My brother lives in Berlin.", "我哥哥住在柏林。"),
    ("The children are playing in the garden.", "孩子们在花园里玩。"),
    ("Please close the window.", "请关上窗户。"),
    ("We are going to the cinema tonight.", "我们今晚去看电影。"),
    ("This book is very interesting.", "这本书很有意思。"),
    ("She drinks tea every morning.", "她每天早上喝茶。"),
    ("The file could not be opened.", "无法打开文件。"),
    ("He forgot his keys at home.", "他把钥匙忘在家里了。"),
    ("How much does this shirt cost?", "这件衬衫多少钱？"),
    ("The meeting starts at nine o'clock.", "会议九点开始。"),
    ("I am learning to play the piano.", "我在学弹钢琴。"),
    ("The dog is sleeping under the table.", "狗在桌子下面睡觉。"),
    ("Save the changes before closing.", "关闭前请保存更改。"),
]


@pytest.fixture()
def corpus(tmp_path) -> list[str]:
    specs = []
    for lang, rows in (("deu", DE), ("cmn", ZH)):
        path = tmp_path / f"pairs.eng-{lang}.tsv"
        path.write_text(f"eng\t{lang}\n" + "".join(f"{en}\t{xx}\n" for en, xx in rows), encoding="utf-8")
        specs.append(f"tsv:{path}")
    return specs


def _options(tmp_path, corpus, **extra):
    opts = dict(
        data=corpus,
        output=str(tmp_path / "student"),
        cache_dir=str(tmp_path / "cache"),
        max_pairs=None,
        max_minutes=None,
        batch_size=8,
        max_steps=6,
        eval_pairs=6,
        eval_english=40,
        eval_steps=3,
        save_steps=3,
        new_tokens=300,
        lr=1e-4,
        show_progress=False,
        student="auto",
    )
    opts.update(extra)
    return opts


@pytest.mark.slow
def test_distill_saves_plain_st_model_with_card_and_reuses_teacher_cache(tmp_path, corpus, teacher):
    from sentence_transformers import SentenceTransformer

    from mlembed.distill import distill

    first = distill(**_options(tmp_path, corpus))
    assert first.teacher_embeddings_computed > 0
    assert first.steps == 6 and set(first.pairs_per_language) == {"en-de", "en-zh"}
    assert {"mse_x100", "mean_accuracy", "src2trg_accuracy", "trg2src_accuracy"} <= set(first.dev)
    out = Path(first.output)
    assert not (out / "_distill").exists()
    card = (out / "README.md").read_text()
    assert "en-de" in card and "minilm-en" in card and "mse_x100" in card

    # plain sentence-transformers loads it; save -> load gives the same embeddings
    sentences = ["Guten Morgen!", "早上好！", "Good morning!"]
    loaded = SentenceTransformer(str(out), device="cpu")
    again = SentenceTransformer(str(out), device="cpu")
    np.testing.assert_allclose(loaded.encode(sentences), again.encode(sentences), atol=1e-6)
    assert "[UNK]" not in loaded.tokenizer.tokenize("今天天气很好")
    # trained on short pairs, it reads as far as its start (the teacher: 256 tokens), and says both
    plan = json.loads((out / "mlembed.json").read_text())["plan"]
    assert loaded.max_seq_length == 256 and plan["max_seq_length"]["inference"] == 256
    assert plan["max_seq_length"]["training"] == plan["config"]["max_seq_length"] < 256
    assert "input window: 256 tokens" in card

    second = distill(**_options(tmp_path, corpus, output=str(tmp_path / "student2")))
    assert second.teacher_embeddings_computed == 0  # every English sentence came from the cache


@pytest.mark.slow
def test_two_processes_filling_one_teacher_cache_do_not_mix_rows(tmp_path, teacher, numerics):
    from mlembed.encoding import encode

    script = (
        "import sys\n"
        "from mlembed.models import load_model\n"
        "from mlembed.teacher_cache import TeacherCache\n"
        "cache = TeacherCache(sys.argv[1], load_model('minilm-en'))\n"
        "own = [f'{sys.argv[2]} sentence number {i}.' for i in range(150)]\n"
        "cache.rows(own + [f'A shared sentence {i}.' for i in range(40)], show_progress=False, chunk_size=8)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), tag]) for tag in ("Alpha", "Beta")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    sentences = [f"{tag} sentence number {i}." for tag in ("Alpha", "Beta") for i in range(150)]
    sentences += [f"A shared sentence {i}." for i in range(40)]
    cache = TeacherCache(tmp_path, teacher)
    rows = cache.rows(sentences, show_progress=False)
    assert cache.computed == 0 and 340 <= len(cache) <= 380  # shared ones at most twice
    numerics.assert_embeddings_close(cache.vectors()[rows], encode(sentences, teacher))


def test_teacher_cache_survives_torn_write(tmp_path, teacher):
    cache = TeacherCache(tmp_path, teacher)
    rows = cache.rows(["one sentence", "another sentence"], show_progress=False)
    expected = np.array(cache.vectors()[rows])
    with open(cache.dir / "vectors.bin", "ab") as fh:  # a kill after half a row of the next chunk
        fh.write(b"\0" * 100)
    np.testing.assert_array_equal(TeacherCache.stored(tmp_path, cache.fingerprint)[rows], expected)  # tail left out
    reopened = TeacherCache(tmp_path, teacher)
    assert len(reopened) == 2
    np.testing.assert_array_equal(reopened.vectors()[reopened.rows(["one sentence", "another sentence"])], expected)
    assert reopened.computed == 0


def test_extended_vocabulary_transfers_known_pieces(teacher):
    from mlembed.models import load_model
    from mlembed.vocab import extend_vocabulary

    student = load_model("minilm-en")
    old = student[0].auto_model.get_input_embeddings().weight.detach().clone()
    stats = extend_vocabulary(
        student, [zh for _, zh in ZH] * 3 + [de for _, de in DE] * 3, new_tokens=400, min_frequency=1
    )
    assert stats["added"] > 0 and stats["transferred"] > 0
    tok = student.tokenizer
    assert "[UNK]" not in tok.tokenize("我想要一杯咖啡。")
    assert "[UNK]" in teacher.tokenizer.tokenize("我想要一杯咖啡。")
    weight = student[0].auto_model.get_input_embeddings().weight.detach()
    torch_equal = bool((weight[: len(old)] == old).all())
    assert torch_equal  # the teacher's rows are untouched
    # a new token the teacher can spell (e.g. an accented German word) starts at the mean of its pieces
    vocab = tok.get_vocab()
    checked = 0
    for token, idx in vocab.items():
        if idx < len(old) or token.startswith("##"):
            continue
        pieces = teacher.tokenizer(token, add_special_tokens=False)["input_ids"]
        if pieces and teacher.tokenizer.unk_token_id not in pieces:
            np.testing.assert_allclose(weight[idx].numpy(), old[pieces].mean(0).numpy(), atol=1e-6)
            checked += 1
    assert checked > 0


def _nearest_teacher_tokens(student, teacher, token: str, n: int = 3) -> list[str]:
    rows = student[0].auto_model.get_input_embeddings().weight.detach()
    old = rows[: len(teacher.tokenizer)]
    row = rows[student.tokenizer.convert_tokens_to_ids(token)]
    cos = (old @ row) / (old.norm(dim=1) * row.norm())
    return teacher.tokenizer.convert_ids_to_tokens(cos.topk(n).indices.tolist())


def test_every_character_of_a_seen_script_gets_a_piece(teacher):
    """Characters the training text never showed, of a script it did show, are not [UNK]: a Chinese
    character absent from the data, a Cyrillic letter inside a word; the coverage costs rows, counted."""
    from mlembed.models import load_model
    from mlembed.vocab import extend_vocabulary

    student = load_model("minilm-en")
    texts = [zh for _, zh in ZH] * 3 + [de for _, de in DE] * 3 + ["Привет, как дела?"] * 3
    assert not any("猫" in t or "ё" in t for t in texts)
    stats = extend_vocabulary(student, texts, new_tokens=400, min_frequency=1)
    tok = student.tokenizer
    assert "[UNK]" not in tok.tokenize("猫在沙发上睡觉。")
    assert "[UNK]" not in tok.tokenize("Всё хорошо, ёжик")
    assert "[UNK]" in tok.tokenize("ქართული")  # a script the data never showed stays unknown
    assert 20000 < stats["alphabet"] < 40000  # CJK ideographs are most of it
    assert stats["vocab_size"] == len(tok.get_vocab())


def test_translation_transfer_starts_new_subwords_at_their_english_translation(teacher):
    from mlembed.models import load_model
    from mlembed.vocab import extend_vocabulary

    pairs = [
        ("the cat sleeps", "die katze schläft"),
        ("a black cat", "eine schwarze katze"),
        ("my cat eats fish", "meine katze frisst fisch"),
        ("the dog sleeps", "der hund schläft"),
        ("a black dog", "ein schwarzer hund"),
        ("my dog eats meat", "mein hund frisst fleisch"),
    ] * 2
    student = load_model("minilm-en")
    stats = extend_vocabulary(student, [p[1] for p in pairs], new_tokens=150, min_frequency=1, pairs=pairs)
    assert stats["aligned"] > 0
    assert _nearest_teacher_tokens(student, teacher, "katze", 1) == ["cat"]
    assert _nearest_teacher_tokens(student, teacher, "hund", 1) == ["dog"]
    spelled = load_model("minilm-en")
    extend_vocabulary(spelled, [p[1] for p in pairs], new_tokens=150, min_frequency=1)  # no pairs: spelling only
    assert _nearest_teacher_tokens(spelled, teacher, "katze", 1) != ["cat"]


@pytest.mark.slow
def test_translation_transfer_on_real_chinese_pairs(shared_data, teacher):
    from mlembed.data import read_pairs
    from mlembed.models import load_model
    from mlembed.vocab import extend_vocabulary

    pairs = [(p.src, p.tgt) for p in read_pairs(f"tsv:{shared_data}/tatoeba-challenge/eng-cmn_Hans.tsv")]
    student = load_model("minilm-en")
    stats = extend_vocabulary(student, [p[1] for p in pairs], new_tokens=3000, pairs=pairs)
    assert stats["aligned"] > 500, stats
    expected = {"猫": "cat", "狗": "dog", "书": "book", "茶": "tea"}  # characters the teacher's vocabulary lacks
    found = {zh: _nearest_teacher_tokens(student, teacher, zh) for zh in expected}
    for zh, english in expected.items():
        assert english in found[zh], found


def test_resume_refuses_a_run_prepared_with_another_teacher(tmp_path, corpus):
    from mlembed.distill import distill

    work = tmp_path / "student" / "_distill"
    work.mkdir(parents=True)
    (work / "plan.json").write_text(json.dumps({"train_pairs": 40, "teacher_fingerprint": "0123abcd"}))
    with pytest.raises(ValueError, match=r"_distill: prepared with another teacher \(0123abcd\), got [0-9a-f]+"):
        distill(resume=True, **_options(tmp_path, corpus))
    assert sorted(p.name for p in work.iterdir()) == ["plan.json"]  # nothing trained, nothing removed


def test_pca_reduces_dimension(tmp_path, corpus):
    from sentence_transformers import SentenceTransformer

    from mlembed.distill import distill

    result = distill(**_options(tmp_path, corpus, dim=8, max_steps=3))
    model = SentenceTransformer(result.output, device="cpu")
    emb = model.encode(["Hallo Welt", "你好"])
    assert emb.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, corpus, capsys, monkeypatch):
    env = dict(os.environ, MLEMBED_CACHE=str(tmp_path / "cache"))
    args = [
        sys.executable,
        "-m",
        "mlembed",
        "distill",
        "--max-minutes",
        "0",
        "--batch-size",
        "4",
        "--max-steps",
        "8",
        "--save-steps",
        "4",
        "--eval-steps",
        "100",
        "--eval-pairs",
        "6",
        "--new-tokens",
        "300",
        "--max-pairs",
        "0",
        "--no-table",
        "--student",
        "auto",
    ]
    for spec in corpus:
        args += ["--data", spec]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        args + ["--output", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpts = killed / "_distill" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and not list(ckpts.glob("checkpoint-4/trainer_state.json")) and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    prepared = tmp_path / "straight" / "_distill"
    shutil.copytree(killed / "_distill", prepared, ignore=shutil.ignore_patterns("checkpoints"))
    assert not (killed / "modules.json").exists()
    kept = sorted(p.name for p in ckpts.iterdir())
    from mlembed.cli import main  # (in this process: the refusal and the no-op below need no fresh interpreter)

    monkeypatch.setenv("MLEMBED_CACHE", env["MLEMBED_CACHE"])
    capsys.readouterr()
    assert main(args[3:] + ["--output", str(killed)]) == 2
    refused = capsys.readouterr().err
    assert "Traceback" not in refused
    assert f"--output {killed}: already holds an interrupted run (_distill/); pass --resume" in refused
    assert sorted(p.name for p in ckpts.iterdir()) == kept  # nothing deleted
    done = subprocess.run(
        args + ["--output", str(killed), "--resume"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "continuing from checkpoint-" in done.stderr + done.stdout
    # the same prepared run (plan, data, initial student: a learned vocabulary differs between processes)
    # trained without interruption must end on the very same weights: the resume replays the same batches
    straight = subprocess.run(
        args + ["--output", str(tmp_path / "straight"), "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert straight.returncode == 0, straight.stderr[-2000:]
    before = (killed / "model.safetensors").read_bytes()
    assert main(args[3:] + ["--output", str(killed), "--resume"]) == 0
    assert "holds a finished run: nothing to resume" in capsys.readouterr().err
    assert (killed / "model.safetensors").read_bytes() == before  # --resume on a finished run changes nothing
    resumed = json.loads((killed / "mlembed.json").read_text())["result"]
    plain = json.loads((tmp_path / "straight" / "mlembed.json").read_text())["result"]
    assert resumed["steps"] == plain["steps"] == 8
    assert resumed["dev"] == plain["dev"]
    from safetensors.numpy import load_file

    a, b = load_file(killed / "model.safetensors"), load_file(tmp_path / "straight" / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_bad_options_fail_before_any_work(tmp_path):
    from mlembed.distill import distill
    from mlembed.files import DataError
    from mlembed.models import ModelNotFoundError

    out = str(tmp_path / "s")
    with pytest.raises(ValueError, match="--vocab-init 'meaning': expected one of translation, spelling"):
        distill(output=out, vocab_init="meaning")
    with pytest.raises(TypeError, match="unknown distill option 'epoch'"):
        distill(output=out, epoch=2)
    with pytest.raises(ValueError, match="--batch-size 0: expected a positive number of pairs per step"):
        distill(output=out, batch_size=0)
    with pytest.raises(ValueError, match="--eval-english 501: expected at most the 500 held-out sentences"):
        distill(output=out, eval_english=501)
    with pytest.raises(ValueError, match="--dim 0: expected a positive dimension"):
        distill(output=out, dim=0)
    with pytest.raises(ValueError, match=r"--anchor 1.0: expected a share in \[0, 1\)"):
        distill(output=out, anchor=1.0)
    with pytest.raises(ValueError, match="--layers 3: expected a positive number of layers to keep of a pretrained"):
        distill(output=out, student="auto", layers=3)
    with pytest.raises(ValueError, match="--anchor 0.5: with --layers each side already learns its own target"):
        distill(output=out, layers=3, anchor=0.5)
    with pytest.raises(ValueError, match=r"--merge-start 1.5: expected a weight from 0 \(the start\) to 1"):
        distill(output=out, merge_start=1.5)
    with pytest.raises(ValueError, match=r"--contrastive -0.1: expected a weight of 0 \(off\) or more"):
        distill(output=out, contrastive=-0.1)
    with pytest.raises(ValueError, match="--freeze-layers -1: expected 0 or more"):
        distill(output=out, freeze_layers=-1)
    with pytest.raises(ValueError, match="--student-map 'pca': expected one of procrustes, lstsq, none"):
        distill(output=out, student_map="pca")
    with pytest.raises(ValueError, match="--lr-schedule 'cosine': expected one of budget, epochs"):
        distill(output=out, lr_schedule="cosine")
    with pytest.raises(ValueError, match="--langs '@': not a language code"):
        distill(output=out, langs=["de", "@"])
    with pytest.raises(DataError, match="unknown kind of data spec"):
        distill(output=out, data=["csv:pairs.csv"])
    with pytest.raises(ModelNotFoundError, match="no/such/student: no such model folder"):
        distill(output=out, student="./no/such/student")
    empty = tmp_path / "empty.eng-deu.tsv"
    empty.write_text("eng\tdeu\n")
    with pytest.raises(ValueError, match=f"--eval-data tsv:{empty}: no pairs"):
        distill(output=out, eval_data=f"tsv:{empty}")
    assert not (tmp_path / "s").exists()


def test_distill_refuses_an_output_holding_a_model(tmp_path, capsys):
    from mlembed.cli import main

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "modules.json").write_text("[]")
    assert main(["distill", "--output", str(tmp_path / "s"), "--student", "auto"]) == 2
    err = capsys.readouterr().err
    assert f"mlembed distill: error: --output {tmp_path / 's'}: already holds a model; pass --resume" in err
    assert "--overwrite" in err and "Traceback" not in err
    assert (tmp_path / "s" / "modules.json").read_text() == "[]"


@pytest.mark.slow
def test_e5_student_starts_from_a_rotation_keeps_frozen_layers_and_records_its_start(tmp_path, corpus, e5_folder):
    """The pretrained student's start is e5 centred and rotated (its geometry kept: an orthogonal map); with
    --freeze-layers the bottom layers stay the start's, with --anchor the run trains on blended targets (and
    here with gradient checkpointing), by default with the contrastive term and no merge; the start's dev
    figures (English fidelity on held-out plain sentences among them) and map are saved beside the model, and
    start_model rebuilds the start from them."""
    import torch
    from sentence_transformers import SentenceTransformer

    from mlembed.distill import distill
    from mlembed.distill.head import start_model

    opts = _options(tmp_path, corpus, student=str(e5_folder), student_map="procrustes", map_sentences=1000)
    opts.update(freeze_layers=10, anchor=0.5, gradient_checkpointing=True, keep_best=False)
    opts.update(lr=1e-3, head_lr=1e-3, max_steps=3, keep_work=True)
    result = distill(**opts)
    out = Path(result.output)
    saved = json.loads((out / "mlembed.json").read_text())
    dev_start, dev = saved["result"]["dev_start"], saved["result"]["dev"]
    assert set(dev_start) == set(dev) >= {"mse_x100", "mean_accuracy", "english_cosine"}
    assert 0.5 < dev_start["english_cosine"] < 1  # e5 rotated onto the teacher, on 40 held-out plain sentences
    assert saved["plan"]["student_map"]["method"] == "procrustes"
    assert saved["plan"]["student_map"]["english_sentences"] == 1000
    with np.load(out / "start_map.npz") as m:
        w = m["weight"]
    np.testing.assert_allclose(w @ w.T, np.eye(384), atol=1e-4)  # a rotation: angles of e5's space kept
    start = SentenceTransformer(str(out / "_distill" / "student-init"), device="cpu")
    trained = SentenceTransformer(str(out), device="cpu")
    before, after = dict(start.named_parameters()), dict(trained.named_parameters())
    moved = {n: not torch.equal(before[n], after[n]) for n in before}
    assert not any(v for n, v in moved.items() if ".layer.9." in n or "embeddings" in n)
    assert any(v for n, v in moved.items() if ".layer.10." in n) and any(
        v for n, v in moved.items() if ".layer.11." in n
    )
    sentences = ["Guten Morgen!", "Good morning!"]
    np.testing.assert_allclose(start_model(str(out)).encode(sentences), start.encode(sentences), atol=1e-5)
    assert saved["result"]["shipped"] == "trained"  # (keep_best=False: whatever the dev figures say)
    card = (out / "README.md").read_text()
    assert "| mse_x100 |" in card and "anchor 0.5" in card
    assert saved["plan"]["config"]["contrastive"] == 0.05 and "MSE + 0.05 x in-batch contrastive" in card  # default
    assert saved["plan"]["config"]["merge_start"] == 0.3 and "start + 0.3 x (trained - start)" in card  # default
    assert saved["plan"]["config"]["freeze_embeddings"] is True and "word embeddings frozen" in card  # the default
    assert "centred and rotated onto the teacher's (orthogonal Procrustes)" in card
    names = [type(m).__name__ for m in trained]
    assert names[-2:] == ["Dense", "Normalize"] and trained.default_prompt_name == "query"
    assert trained.max_seq_length == 512 == saved["plan"]["max_seq_length"]["inference"]  # e5-small's window
    # continuing from that student (e.g. to add a language) keeps its settings and adds no second map
    distill(**_options(tmp_path, corpus, student=str(out), output=str(tmp_path / "more"), max_steps=1, eval_pairs=0))
    more = SentenceTransformer(str(tmp_path / "more"), device="cpu")
    assert [type(m).__name__ for m in more] == names and more.max_seq_length == 512
    config = json.loads((tmp_path / "more" / "mlembed.json").read_text())["plan"]["config"]
    assert config["freeze_layers"] == 10 and config["anchor"] == 0.5 and config["freeze_embeddings"] is True


@pytest.mark.slow
def test_keep_best_saves_the_start_when_training_lowers_dev_accuracy(tmp_path, corpus, monkeypatch):
    """The dev figures are made to fall (a stand-in run_dev): the folder then holds the start, copied as it was
    saved before training, and the result, mlembed.json and the card say so."""
    from sentence_transformers import SentenceTransformer

    import mlembed.distill.dev as dev
    from mlembed.distill import distill

    figures = iter([{"mean_accuracy": 80.0, "mse_x100": 0.3}, {"mean_accuracy": 70.0, "mse_x100": 0.2}])
    monkeypatch.setattr(dev, "run_dev", lambda evaluator, model: next(figures))
    result = distill(**_options(tmp_path, corpus, keep_work=True))
    out = Path(result.output)
    assert result.shipped == "start" and result.dev == result.dev_start == {"mean_accuracy": 80.0, "mse_x100": 0.3}
    assert json.loads((out / "mlembed.json").read_text())["result"]["shipped"] == "start"
    assert "this folder holds the untrained start" in (out / "README.md").read_text()
    sentences = ["Guten Morgen!", "早上好！"]
    start = SentenceTransformer(str(out / "_distill" / "student-init"), device="cpu")
    shipped = SentenceTransformer(str(out), device="cpu")
    np.testing.assert_array_equal(shipped.encode(sentences), start.encode(sentences))
    assert shipped.max_seq_length == 256  # the start's window, though its copy was saved at the training length


@pytest.mark.slow
@pytest.mark.precision  # training runs under bf16 autocast where `auto` is bf16; CI reruns under fp32 and bf16
def test_merge_start_averages_the_trained_weights_with_the_start(tmp_path, corpus):
    """--merge-start ALPHA: the saved weights are start + ALPHA x (trained - start) and the card says so. At
    0.5 every trained weight lies halfway between the start and the trained weights of the run's last
    checkpoint, whatever precision trained them."""
    import torch
    from sentence_transformers import SentenceTransformer

    from mlembed.distill import distill

    result = distill(**_options(tmp_path, corpus, keep_work=True, keep_best=False, max_steps=3, merge_start=0.5))
    work = Path(result.output) / "_distill"
    start = dict(SentenceTransformer(str(work / "student-init"), device="cpu").named_parameters())
    trained = dict(SentenceTransformer(str(work / "checkpoints" / "checkpoint-3"), device="cpu").named_parameters())
    half = dict(SentenceTransformer(result.output, device="cpu").named_parameters())
    moved = [n for n in start if not torch.equal(start[n], trained[n])]
    assert len(moved) > 10
    for name in moved:
        torch.testing.assert_close(half[name] - start[name], (trained[name] - start[name]) / 2, atol=1e-6, rtol=1e-4)
    assert result.dev["mean_accuracy"] is not None and result.dev != result.dev_start
    assert "start + 0.5 x (trained - start)" in (Path(result.output) / "README.md").read_text()


def test_a_budget_stop_checkpoints_only_a_work_folder_that_is_kept():
    """At the budget the run stops; a checkpoint is written only when --keep-work keeps it for --resume (else the
    final model is all that remains, and serialising a checkpoint only cost time and memory)."""
    from transformers import TrainerControl, TrainerState

    from mlembed.distill.callbacks import TimeBudget

    for keep in (True, False):
        control = TimeBudget(0.0, checkpoint=keep).on_step_end(None, TrainerState(), TrainerControl())
        assert control.should_training_stop and control.should_save is keep
    control = TimeBudget(60.0).on_step_end(None, TrainerState(), TrainerControl())
    assert not control.should_training_stop and not control.should_save


def test_a_budgeted_run_warms_up_and_anneals_to_zero_when_its_budget_ends():
    """Under a time budget the learning rate follows the budget, not the epochs the budget cuts: it warms up over
    the first 5 % of the time, then decays linearly to 0 at the budget's end; steps run out first when the
    epochs end earlier. The time is read as each step begins (and agreed across torchrun's ranks), and the
    trainer's scheduler (a LambdaLR of the optimizer) carries the factor."""
    import time

    import torch
    from transformers import TrainerControl, TrainerState

    from mlembed.distill.callbacks import TimeBudget

    budget = TimeBudget(10.0, warmup=0.05)  # 600 s
    state, control = TrainerState(max_steps=1000), TrainerControl()
    budget.on_train_begin(None, state, control)
    assert budget.lr_factor(0) == 0.0

    def after(seconds: float) -> None:  # a step begins this long after training began
        budget._start = time.monotonic() - seconds
        budget.on_step_begin(None, state, control)

    for elapsed, factor in ((15.0, 0.5), (30.0, 1.0), (315.0, 0.5), (600.0, 0.0), (900.0, 0.0)):
        after(elapsed)
        assert budget.lr_factor(10) == pytest.approx(factor, abs=1e-3), elapsed
    after(0.0)  # no time spent, but 3/4 of the epochs' steps done
    assert budget.lr_factor(750) == pytest.approx(0.25 / 0.95, abs=1e-3)
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([weight], lr=2e-5)
    scheduler = budget.schedule(optimizer)
    after(315.0)
    optimizer.step()  # (no gradient: nothing moves)
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5, rel=1e-2)


@pytest.mark.slow
def test_contrastive_term_changes_training_and_is_on_the_card(tmp_path, corpus):
    """--contrastive W trains on MSE + W x in-batch cross-entropy: from the same start, data order and seed, the
    weights end elsewhere than under MSE alone, and the card and mlembed.json record the term."""
    from sentence_transformers import SentenceTransformer

    from mlembed.distill import distill

    runs = {
        w: distill(
            **_options(tmp_path, corpus, output=str(tmp_path / f"w{w}"), max_steps=2, eval_pairs=0, contrastive=w)
        )
        for w in (0.0, 1.0)
    }
    sentences = ["Guten Morgen!", "早上好！"]
    mse, both = (SentenceTransformer(runs[w].output, device="cpu").encode(sentences) for w in (0.0, 1.0))
    assert np.abs(mse - both).max() > 1e-3
    out = Path(runs[1.0].output)
    assert json.loads((out / "mlembed.json").read_text())["plan"]["config"]["contrastive"] == 1.0
    assert "loss: MSE + 1.0 x in-batch contrastive term" in (out / "README.md").read_text()
    assert "loss:" not in (Path(runs[0.0].output) / "README.md").read_text()


@pytest.mark.slow
def test_layers_cuts_a_copy_that_learns_the_full_model_on_both_sides(tmp_path, corpus):
    """--layers: the student keeps 3 of the full model's 6 layers (the first, the last and one between), the full
    model is its own teacher, each side of a pair is trained toward the full model's vector of that same
    sentence, and training brings the copy closer to the full model than the cut alone; the output is a plain
    3-layer sentence-transformers folder whose card says what was kept."""
    from sentence_transformers import SentenceTransformer

    from mlembed.distill import distill
    from mlembed.distill.collator import TARGET_COLUMN
    from mlembed.models import load_model

    opts = _options(
        tmp_path, corpus, student="minilm-en", layers=3, lr=5e-4, max_steps=8, keep_work=True, keep_best=False
    )
    opts.pop("new_tokens")
    result = distill(**opts)
    out = Path(result.output)
    saved = json.loads((out / "mlembed.json").read_text())
    assert saved["plan"]["config"]["teacher"] == "minilm-en"  # the student's own full model
    assert saved["plan"]["layers"] == {"kept": [0, 2, 5], "of": 6}
    assert not saved["plan"]["student_map"] and not (out / "start_map.npz").exists()
    from datasets import load_from_disk

    train = load_from_disk(str(out / "_distill" / "train"))
    assert train[0][TARGET_COLUMN] != train[0]["teacher_row"]  # the German side has its own target
    small = SentenceTransformer(str(out), device="cpu")
    assert small[0].auto_model.config.num_hidden_layers == 3 and len(small[0].auto_model.encoder.layer) == 3
    assert "layers: 3 of the 6 of `minilm-en` (layers [0, 2, 5])" in (out / "README.md").read_text()
    # closer to the full model than the untrained cut, on both sides of held-out pairs
    full, cut = load_model("minilm-en"), SentenceTransformer(str(out / "_distill" / "student-init"), device="cpu")
    held_out = [en for en, _ in DE[:6]] + [de for _, de in DE[:6]]
    target = full.encode(held_out, normalize_embeddings=True)
    before = (cut.encode(held_out, normalize_embeddings=True) * target).sum(1).mean()
    after = (small.encode(held_out, normalize_embeddings=True) * target).sum(1).mean()
    assert after > before + 0.01, (before, after)
    assert result.dev["english_cosine"] > result.dev_start["english_cosine"]
