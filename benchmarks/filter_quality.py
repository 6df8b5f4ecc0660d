"""`mlembed filter` against today's heuristic cleaning on corpora with labelled noise, and what it does downstream.

Base corpus: per language, tatoeba-challenge pairs (short sentences) and NTREX-128 pairs (news), cleaned first by
today's heuristic cleaning (`mlembed.data.cleaning` defaults), with untranslated copies, text-less pairs and
near-duplicates of each other taken out, so that the base's own duplicates and copies do not count as noise.
Each file holds 1,000 pairs of one language pair; at noise level L, L x 1,000 of them are noise, six kinds in equal
shares:

- misaligned: the target of another pair of the same file's language;
- wrong_language: a side replaced by a translation of the same English sentence into another language (another
  language's NTREX line, or the tatoeba-challenge translation of the same English sentence) when there is one,
  else another language's line;
- copy: the target is the untranslated source;
- truncated: one side cut to its first third (words; characters in scripts without spaces);
- near_duplicate: a copy of a clean pair with case, punctuation or digits changed (the later of the two in the
  file is the noise: dropping the second copy is right);
- no_text: a side (or both) a number, a URL or a reference, no words.

Precision: the share of dropped pairs that are noise; recall: the share of noisy pairs dropped. `--calibrate`
chooses `mlembed.filtering.FilterThresholds` on languages the benchmark does not use (the highest recall at
precision >= 0.97 over a grid), once; the run then measures the defaults. Downstream: `mlembed distill --data
tsv:DIR --max-minutes 10 --seed 0` on the 30 % corpus and on its filtered version, both students evaluated on
Tatoeba, cross-model Tatoeba and STS.

    python benchmarks/filter_quality.py --calibrate     # once: prints the thresholds for FilterThresholds
    python benchmarks/filter_quality.py                  # the measured run (add --skip-downstream for filter only)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from _common import machine, require_shared, write_results

# tatoeba-challenge file name -> NTREX code
BENCH = {
    "ara": "arb", "ces": "ces", "cmn_Hans": "zho-CN", "deu": "deu", "fra": "fra", "hin": "hin", "jpn_Hira": "jpn",
    "rus": "rus", "spa": "spa", "tur": "tur", "ukr": "ukr", "vie": "vie", "ita": "ita", "por": "por", "nld": "nld",
    "swe": "swe", "fin": "fin", "hun": "hun", "heb": "heb", "ell": "ell", "bul": "bul", "ind": "ind", "dan": "dan",
    "mar": "mar",
}  # fmt: skip
CALIBRATION = {
    "ron": "ron", "mkd": "mkd", "lit": "lit", "kor_Hang": "kor", "slv": "slv", "isl": "isl", "cat": "cat",
    "hrv": "hrv",
}  # fmt: skip
MEANING = ("no_text", "length", "low_margin")  # `mlembed filter --drop no_text,length,low_margin`
KINDS = ("misaligned", "wrong_language", "copy", "truncated", "near_duplicate", "no_text")
LEVELS = (0.1, 0.3, 0.5)
PER_FILE, TATOEBA_SHARE, POOL = 1000, 700, 1500
STS = ["en", "de", "zh", "es", "fr", "ru", "ja", "en-de", "en-zh"]


def _name(code: str) -> str:
    """File name of a language: ``eng-deu.tsv`` (script suffixes dropped: ``eng-cmn.tsv``)."""
    return f"eng-{code.split('_')[0]}.tsv"


def build_pools(shared: Path, langs: dict[str, str], seed: int) -> tuple[dict, dict]:
    """Per language: the cleaned base pool (list of (en, x)); and English sentence -> {lang: translation}."""
    from mlembed.data import read_pairs
    from mlembed.data.cleaning import CleanOptions
    from mlembed.filtering import fold_text, has_text

    rng = random.Random(seed)
    pools, by_english = {}, defaultdict(dict)
    for code, ntrex in langs.items():
        tat = [
            (p.src, p.tgt) for p in read_pairs(f"tsv:{shared}/tatoeba-challenge/eng-{code}.tsv", clean=CleanOptions())
        ]
        nt = [(p.src, p.tgt) for p in read_pairs(f"ntrex:{shared}/ntrex128:{ntrex}", clean=CleanOptions())]
        for en, x in tat + nt:
            by_english[en][code] = x
        rng.shuffle(tat)
        rng.shuffle(nt)
        seen, pool = set(), []
        for en, x in tat[: TATOEBA_SHARE * 2] + nt:
            key = (fold_text(en, False), fold_text(x, False))
            if has_text(en) and has_text(x) and fold_text(en, True) != fold_text(x, True) and key not in seen:
                seen.add(key)
                pool.append((en, x))
        tat_set = set(tat)
        tat_part = [p for p in pool if p in tat_set][:TATOEBA_SHARE]
        chosen = set(tat_part)
        rest = [p for p in pool if p not in chosen]
        pools[code] = tat_part + rest[: POOL - len(tat_part)]
        rng.shuffle(pools[code])
    return pools, by_english


def _cut(text: str) -> str:
    words = text.split()
    if len(words) >= 3:
        return " ".join(words[: max(1, round(len(words) / 3))])
    return text[: max(1, round(len(text) / 3))]


def _near_copy(pair: tuple[str, str], rng: random.Random) -> tuple[str, str]:
    def edit(text: str) -> str:
        choice = rng.randrange(4)
        if choice == 0:
            return text.lower() if text != text.lower() else text.upper()
        if choice == 1:
            return text.rstrip(".!?。！？") if text[-1:] in ".!?。！？" else text + "!"
        if choice == 2 and any(ch.isdigit() for ch in text):
            return "".join(str((int(ch) + 3) % 10) if ch.isdigit() else ch for ch in text)
        return text.replace(",", "") + ("." if not text.endswith(".") else "") if "," in text else text + " ."

    a, b = edit(pair[0]), edit(pair[1])
    return (a, b) if (a, b) != pair else (pair[0] + "!", pair[1] + "!")


def _no_text(rng: random.Random) -> tuple[str, str]:
    n = rng.randrange(1, 100000)
    options = [
        (str(1900 + n % 130), str(1900 + n % 130)),
        (f"{n / 100:.1f} %", f"{n / 100:.1f} %".replace(".", ",")),
        (f"https://www.example-news.org/{n % 30 + 1990}/{n}/article.html",) * 2,
        (f"+{n % 90 + 1} {n} {n % 997}",) * 2,
        (f"§ {n % 50}", f"§ {n % 50}"),
        (f"{n % 12 + 1}.", f"{n % 12 + 1}."),
    ]
    a, b = rng.choice(options)
    return a, b


def build_level(pools: dict, by_english: dict, level: float, out: Path, seed: int) -> None:
    """One noisy file per language under ``out`` and its labels (``.labels``, one kind or ``clean`` a line)."""
    out.mkdir(parents=True, exist_ok=True)
    codes = list(pools)
    for li, code in enumerate(codes):
        rng = random.Random(seed * 1000 + li)
        pool = pools[code]
        n_noise = round(level * PER_FILE)
        clean = pool[: PER_FILE - n_noise]
        spare = pool[PER_FILE - n_noise :]
        rows: list[tuple[str, str, str, int]] = [(a, b, "clean", i) for i, (a, b) in enumerate(clean)]
        for j in range(n_noise):
            kind = KINDS[j % len(KINDS)]
            en, x = spare[j % len(spare)]
            if kind == "misaligned":
                other = spare[(j + 1 + rng.randrange(len(spare) - 1)) % len(spare)]
                pair = (en, other[1])
            elif kind == "wrong_language":
                others = [c for c in by_english.get(en, {}) if c != code]
                if others:
                    wrong = by_english[en][rng.choice(others)]
                else:
                    wrong = rng.choice(pools[rng.choice([c for c in codes if c != code])])[1]
                pair = (en, wrong) if rng.random() < 0.8 else (wrong, x)
            elif kind == "copy":
                pair = (en, en)
            elif kind == "truncated":
                pair = (_cut(en), x) if rng.random() < 0.5 else (en, _cut(x))
            elif kind == "near_duplicate":
                pair = _near_copy(clean[rng.randrange(len(clean))], rng)
            else:
                number = _no_text(rng)
                pair = number if rng.random() < 0.5 else ((number[0], x) if rng.random() < 0.5 else (en, number[1]))
            rows.append((pair[0], pair[1], kind, -1))
        rng.shuffle(rows)
        # near-duplicates: the later of the copy and its original is the noise
        labels = [kind for _, _, kind, _ in rows]
        from mlembed.filtering import fold_text

        first: dict[tuple[str, str], int] = {}
        for pos, (a, b, kind, _) in enumerate(rows):
            key = (fold_text(a, False), fold_text(b, False))
            if kind in ("clean", "near_duplicate"):
                if key in first:
                    if labels[pos] == "clean":  # the original came after its copy: it is the second one
                        labels[first[key]], labels[pos] = "clean", "near_duplicate"
                else:
                    first[key] = pos
        name = _name(code)
        (out / name).write_text("".join(f"{a}\t{b}\n" for a, b, _, _ in rows), encoding="utf-8")
        (out / (name + ".labels")).write_text("\n".join(labels) + "\n")


def run_filter(level_dir: Path, model, thresholds=None, resume: bool = False) -> dict[str, list[dict]]:
    """`filter_file` on every file of a level; per file the rows of its scores TSV."""
    import csv

    from mlembed.filtering import filter_file

    rows = {}
    (level_dir / "kept").mkdir(exist_ok=True)
    for path in sorted(level_dir.glob("eng-*.tsv")):
        scores = level_dir / "scores" / path.name
        scores.parent.mkdir(exist_ok=True)
        if not (resume and scores.exists() and (level_dir / "kept" / path.name).exists()):
            filter_file(
                path,
                scores,
                kept=level_dir / "kept" / path.name,
                model=model,
                thresholds=thresholds,
                show_progress=False,
            )
        with open(scores, encoding="utf-8", newline="") as fh:
            rows[path.name] = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows


def heuristic_drops(path: Path, check_lang: bool) -> list[bool]:
    """Which lines today's heuristic cleaning (`mlembed data` defaults) drops."""
    from mlembed.data import read_pairs
    from mlembed.data.cleaning import CleanOptions, normalize_text

    raw = [tuple(line.split("\t")) for line in path.read_text(encoding="utf-8").splitlines()]
    kept = [(p.src, p.tgt) for p in read_pairs(f"tsv:{path}", clean=CleanOptions(check_lang=check_lang))]
    drops, j = [], 0
    for a, b in raw:
        pair = (normalize_text(a), normalize_text(b))
        if j < len(kept) and kept[j] == pair:
            drops.append(False)
            j += 1
        else:
            drops.append(True)
    assert j == len(kept), f"{path}: kept pairs did not match the input in order"
    return drops


def score(labels: list[str], drops: list[bool], reasons: list[str] | None = None) -> dict:
    """Precision, recall (overall and per noise kind) and precision per drop reason."""
    noisy = np.array([lab != "clean" for lab in labels])
    dropped = np.array(drops)
    tp = int((noisy & dropped).sum())
    out = {
        "pairs": len(labels),
        "noisy": int(noisy.sum()),
        "dropped": int(dropped.sum()),
        "precision": round(tp / max(int(dropped.sum()), 1), 4),
        "recall": round(tp / max(int(noisy.sum()), 1), 4),
        "clean_dropped": round(int((~noisy & dropped).sum()) / max(int((~noisy).sum()), 1), 4),
        "recall_by_kind": {},
    }
    for kind in KINDS:
        mask = np.array([lab == kind for lab in labels])
        if mask.any():
            out["recall_by_kind"][kind] = round(float(dropped[mask].mean()), 4)
    if reasons is not None:
        by = defaultdict(lambda: [0, 0])
        for r, n in zip(reasons, noisy):
            if r:
                by[r][0] += int(n)
                by[r][1] += 1
        out["precision_by_reason"] = {r: {"precision": round(a / b, 4), "dropped": b} for r, (a, b) in by.items()}
    return out


def _labels(level_dir: Path, name: str) -> list[str]:
    return (level_dir / (name + ".labels")).read_text().split()


def evaluate_level(level_dir: Path, model, resume: bool = False) -> dict:
    rows = run_filter(level_dir, model, resume=resume)
    labels, drops, reasons, heur, heur_lang = [], [], [], [], []
    per_lang = {}
    for name, file_rows in rows.items():
        lab = _labels(level_dir, name)
        assert len(lab) == len(file_rows), name
        labels += lab
        r = [row["reason"] for row in file_rows]
        reasons += r
        drops += [bool(x) for x in r]
        heur += heuristic_drops(level_dir / name, False)
        heur_lang += heuristic_drops(level_dir / name, True)
        per_lang[name] = score(lab, [bool(x) for x in r])
    return {
        "filter": score(labels, drops, reasons),
        "heuristic": score(labels, heur),
        "heuristic_check_lang": score(labels, heur_lang),
        "filter_by_language": {k: {m: v[m] for m in ("precision", "recall")} for k, v in per_lang.items()},
    }


def calibrate(level_dir: Path, model, target: float = 0.96) -> dict:
    """The highest-recall thresholds at precision >= ``target`` on the calibration languages (a grid search over
    the scores of one loose run; the language rule as `mlembed.filtering` applies it, confusable languages included)."""
    from mlembed.filtering import FilterThresholds, plausible_languages
    from mlembed.languages import length_units

    loose = FilterThresholds(margin=-1e9, length=1e9, lang_top=1000, lang_min_units=10**6)
    rows = run_filter(level_dir, model, loose)
    noisy, fixed, margin, length, units, files = [], [], [], [], [], []
    for name, file_rows in rows.items():
        lab = _labels(level_dir, name)
        cols = {
            "src_lang": np.array([r["source_lang"] for r in file_rows]),
            "tgt_lang": np.array([r["target_lang"] for r in file_rows]),
            "src_rank": np.array([int(r["source_lang_rank"] or 0) for r in file_rows]),
            "tgt_rank": np.array([int(r["target_lang_rank"] or 0) for r in file_rows]),
            "src_units": np.array([length_units(r["source"]) for r in file_rows]),
            "tgt_units": np.array([length_units(r["target"]) for r in file_rows]),
        }
        files.append((cols, ("en", name[4:7])))
        for row, label in zip(file_rows, lab):
            noisy.append(label != "clean")
            fixed.append(bool(row["reason"]))
            margin.append(float(row["margin"] or "nan"))
            length.append(abs(float(row["length"] or 0)))
        units += list(np.maximum(cols["src_units"], cols["tgt_units"]))
    noisy, fixed = np.array(noisy), np.array(fixed)
    margin, length, units = np.array(margin), np.array(length), np.array(units)
    best = None
    for top in (1, 2, 3):
        for lmin in (0, 5, 10, 15, 20):
            t = FilterThresholds(lang_top=top, lang_min_units=lmin)
            parts = []
            for cols, langs in files:
                from mlembed.languages import normalize_lang

                langs = (langs[0], normalize_lang(langs[1]))
                ok = plausible_languages(cols, langs, t)
                parts.append(
                    np.any(
                        [
                            (cols[f"{side}_rank"] > top)
                            & (cols[f"{side}_units"] >= lmin)
                            & ~np.isin(cols[f"{side}_lang"], list(ok[side]))
                            for side in ("src", "tgt")
                        ],
                        axis=0,
                    )
                )
            wrong = np.concatenate(parts)
            for lmax in (0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5):
                for lunits in (10, 20, 30):
                    base = fixed | wrong | ((length > lmax) & (units >= lunits))
                    for m in np.round(np.arange(0.90, 1.06, 0.0025), 4):
                        drop = base | ~(margin >= m)
                        tp = int((drop & noisy).sum())
                        p, r = tp / max(int(drop.sum()), 1), tp / max(int(noisy.sum()), 1)
                        key = (p >= target, r if p >= target else p, -m)
                        if best is None or key > best[0]:
                            best = (key, dict(margin=float(m), length=lmax, length_min_units=lunits, lang_top=top,
                                              lang_min_units=lmin), round(p, 4), round(r, 4))  # fmt: skip
    return {
        "thresholds": best[1],
        "precision": best[2],
        "recall": best[3],
        "target_precision": target,
        "languages": sorted(CALIBRATION),
    }


def distill(data_dir: Path, out: Path, minutes: float, log: Path, resume: bool, seed: int = 0, extra=()) -> dict:
    from mlembed.distill.run_folder import read_record

    if resume and (saved := read_record(out)) is not None:
        return saved["result"]
    cmd = [sys.executable, "-m", "mlembed", "distill", "--data", f"tsv:{data_dir}", "--max-minutes", str(minutes),
           "--seed", str(seed), "--output", str(out), "--overwrite", *extra]  # fmt: skip
    with open(log, "w") as fh:
        code = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if code:
        raise SystemExit(f"distill failed ({code}): see {log}")
    return read_record(out)["result"]


def evaluate_students(models: dict[str, str], shared: Path) -> dict:
    from mlembed.evaluation import EmbeddingCache, parse_task
    from mlembed.evaluation import evaluate as run_tasks
    from mlembed.models import load_model

    teacher = EmbeddingCache(load_model("minilm-en"), name="teacher")
    tasks = [parse_task(f"tatoeba:{shared}/tatoeba"), parse_task(f"sts:{shared}/stsb-multi-mt:{','.join(STS)}:test")]
    caches = {"teacher": teacher}
    results = run_tasks(models, tasks, caches=caches, show_progress=False)
    results += run_tasks(models, [parse_task(f"tatoeba:{shared}/tatoeba", english=teacher)], caches=caches,
                         show_progress=False)  # fmt: skip
    table: dict[str, dict] = defaultdict(dict)
    for name, r in results:
        key = {"tatoeba": "tatoeba", "tatoeba-cross": "cross_model", "sts": "sts_mean"}[r.task]
        table[name][key] = round(r.main_score, 2)
        if r.task == "sts":
            table[name]["sts"] = {k: round(v, 2) for k, v in r.per_language.items()}
    return dict(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlembed-filter"))
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibrate", action="store_true", help="choose the thresholds (calibration languages)")
    parser.add_argument("--skip-downstream", action="store_true")
    parser.add_argument(
        "--resume", action="store_true", help="reuse the scores and students an earlier run left in --work"
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="distill --max-minutes of each student")
    args = parser.parse_args()
    shared = Path(os.path.relpath(require_shared()))
    info = machine()
    from mlembed.filtering import FilterThresholds
    from mlembed.models import load_model

    model = load_model(args.model)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.calibrate:
        pools, by_english = build_pools(shared, CALIBRATION, args.seed)
        build_level(pools, by_english, 0.3, args.work / "calibration", args.seed + 7)
        result = calibrate(args.work / "calibration", model)
        (args.work / "calibration.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return
    calibration = json.loads((args.work / "calibration.json").read_text())
    from dataclasses import asdict

    defaults = asdict(FilterThresholds())
    t0 = time.time()
    pools, by_english = build_pools(shared, BENCH, args.seed)
    levels = {}
    for level in LEVELS:
        level_dir = args.work / f"noise{round(level * 100)}"
        build_level(pools, by_english, level, level_dir, args.seed)
        clock = time.time()
        levels[f"{round(level * 100)}%"] = evaluate_level(level_dir, model, args.resume)
        levels[f"{round(level * 100)}%"]["seconds"] = round(time.time() - clock, 1)
        print(level, json.dumps(levels[f"{round(level * 100)}%"]["filter"]), flush=True)
    filter_minutes = (time.time() - t0) / 60
    main_level = levels["30%"]
    downstream = {}
    if not args.skip_downstream:
        # a variant for distillation data: only meaning drops a pair (copies, duplicates, other languages stay)
        meaning = args.work / "noise30" / "kept-meaning"
        meaning.mkdir(exist_ok=True)
        labels, drops = [], []
        from mlembed.filtering import filter_file

        for path in sorted((args.work / "noise30").glob("eng-*.tsv")):
            scores = meaning / (path.name + ".scores")
            if not (args.resume and scores.exists() and (meaning / path.name).exists()):
                filter_file(path, scores, kept=meaning / path.name, model=model, drop=MEANING, show_progress=False)
            labels += _labels(args.work / "noise30", path.name)
            text = scores.read_text(encoding="utf-8").splitlines()[1:]
            drops += [bool(line.split("\t")[-1]) and not line.split("\t")[-1].startswith("kept:") for line in text]
        main_level["filter_drop_meaning_only"] = score(labels, drops)
        del model
        noisy_dir = args.work / "noise30"
        data_noisy = args.work / "train-noisy"
        data_noisy.mkdir(exist_ok=True)
        for path in noisy_dir.glob("eng-*.tsv"):
            (data_noisy / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        runs = {}
        for name, data in (("noisy", data_noisy), ("filtered", noisy_dir / "kept")):
            runs[name] = distill(
                data, args.work / f"student-{name}", args.minutes, args.work / f"distill-{name}.log", args.resume
            )
        # beside the command: the filtered data for as many steps as the noisy run took, and a second seed
        same = ["--max-steps", str(runs["noisy"]["steps"])]
        runs["filtered_same_steps"] = distill(noisy_dir / "kept", args.work / "student-filtered_same_steps",
                                              args.minutes, args.work / "distill-filtered_same_steps.log",
                                              args.resume, 0, same)  # fmt: skip
        runs["filtered_meaning_only"] = distill(meaning, args.work / "student-filtered_meaning_only", args.minutes,
                                                args.work / "distill-filtered_meaning_only.log", args.resume)  # fmt: skip
        for name, data in (("noisy_seed1", data_noisy), ("filtered_seed1", noisy_dir / "kept")):
            runs[name] = distill(data, args.work / f"student-{name}", args.minutes, args.work / f"distill-{name}.log",
                                 args.resume, 1)  # fmt: skip
        downstream = evaluate_students({n: str(args.work / f"student-{n}") for n in runs}, shared)
        for name, result in runs.items():
            downstream[name]["steps"] = result.get("steps")
            downstream[name]["train_pairs"] = sum(result.get("pairs_per_language", {}).values())
    summary = {
        "precision": main_level["filter"]["precision"],
        "recall": main_level["filter"]["recall"],
        "noise": 0.3,
        "pairs_at_30": main_level["filter"]["pairs"],
        "languages": len(BENCH),
        "thresholds": defaults,
        "defaults_are_calibrated": defaults == calibration["thresholds"],
        "downstream": {
            n: {k: downstream[n][k] for k in ("tatoeba", "sts_mean", "cross_model")}
            for n in downstream
            if n in ("noisy", "filtered")
        },
    }
    cols = ["precision", "recall", "clean_dropped"]
    md = [
        "# `mlembed filter` on corpora with labelled noise (one run)",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, native bf16: {info['native_bf16']}. Model: "
        f"{args.model}. {len(BENCH)} language pairs (English-X), {PER_FILE} pairs a file "
        f"({TATOEBA_SHARE} tatoeba-challenge + NTREX-128, cleaned first); noise kinds in equal shares: "
        f"{', '.join(KINDS)}. Filter stage: "
        + (
            "scores reused from an earlier run in --work (--resume). "
            if args.resume
            else f"{filter_minutes:.1f} min for the three levels. "
        )
        + ("Students already trained in --work were reused (--resume)." if args.resume else ""),
        "",
        f"Thresholds (defaults, calibrated on {', '.join(sorted(CALIBRATION))} at 30 % noise: precision "
        f"{calibration['precision']}, recall {calibration['recall']}): `{json.dumps(defaults)}`; equal to the "
        f"calibration's: {summary['defaults_are_calibrated']}.",
        "",
        "| noise | method | pairs | precision | recall | clean pairs dropped |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for level, res in levels.items():
        for method in ("heuristic", "heuristic_check_lang", "filter"):
            r = res[method]
            md.append(
                f"| {level} | {method} | {r['pairs']:,} | " + " | ".join(f"{100 * r[c]:.1f}" for c in cols) + " |"
            )
    if "filter_drop_meaning_only" in main_level:
        r = main_level["filter_drop_meaning_only"]
        md.append(
            "| 30% | filter --drop no_text,length,low_margin | "
            + f"{r['pairs']:,} | "
            + " | ".join(f"{100 * r[c]:.1f}" for c in cols)
            + " |"
        )
    md += ["", "Recall by noise kind (%):", "", "| noise | method | " + " | ".join(KINDS) + " |",
           "|---|---|" + "---:|" * len(KINDS)]  # fmt: skip
    for level, res in levels.items():
        for method in ("heuristic", "heuristic_check_lang", "filter"):
            by = res[method]["recall_by_kind"]
            md.append(f"| {level} | {method} | " + " | ".join(f"{100 * by.get(k, 0):.1f}" for k in KINDS) + " |")
    md += ["", "Precision by the filter's drop reason at 30 % (%, pairs):", "", "| reason | precision | dropped |",
           "|---|---:|---:|"]  # fmt: skip
    for reason, v in sorted(main_level["filter"]["precision_by_reason"].items()):
        md.append(f"| {reason} | {100 * v['precision']:.1f} | {v['dropped']} |")
    if downstream:
        md += [
            "",
            f"## Downstream: `mlembed distill --data tsv:DIR --max-minutes {args.minutes:g} --seed 0` (30 % noise)",
            "",
            "The first two rows are the issue's command (seed 0, one epoch within the 10 minutes); "
            "`filtered_same_steps` trains on the filtered data for as many steps as the noisy run took "
            "(`--max-steps`), the `_seed1` rows repeat both with `--seed 1`, and `filtered_meaning_only` trains on "
            "`mlembed filter --drop no_text,length,low_margin`'s kept pairs (copies, duplicates and other-language "
            "sides kept: distillation learns from them).",
            "",
            "| training data | pairs | steps | Tatoeba | cross-model | STS mean |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, r in downstream.items():
            md.append(
                f"| {name} | {r['train_pairs']:,} | {r['steps']} | {r['tatoeba']} | {r['cross_model']} | "
                f"{r['sts_mean']} |"
            )
    data = {
        "benchmark": "filter_quality",
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "calibration": calibration,
        "summary": summary,
        "levels": levels,
        "downstream": downstream,
    }
    write_results("filter_quality", data, "\n".join(md))


if __name__ == "__main__":
    main()
