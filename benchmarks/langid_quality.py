"""Language identification libraries, measured for mlembed's cleaning, mining and filtering.

Candidates whose models install with them (nothing fetched at run time): ``lingua-language-detector`` (75
languages, Rust; its default high-accuracy mode and its low-accuracy mode) and ``py3langid`` (97 languages,
langid.py's model on NumPy). Each runs over all of its own languages, as it would on a user's text in an
unknown language.

Sentences: the first ``--per-language`` lines of each Tatoeba test file (12 languages and English, short
sentences) and of each NTREX-128 reference (news sentences, every language of ``LANGUAGES.tsv``). A sentence
counts as right when the detector's language is the file's language (``mlembed.languages.normalize_lang``,
language subtag only). Accuracy is given per set over the languages each detector covers, and over the
languages **both** cover (the fair comparison); speed is sentences per second over all the sentences, one at a
time, as a filter calls it.

**The cleaning check** (``mlembed.langid.in_language``, what ``mlembed data --check-lang`` drops by): on the first
``--check-pairs`` pairs of tatoeba-challenge eng-{deu,fra,spa,rus,ara,cmn_Hans}, the good pairs wrongly dropped
(either side judged out of its language), and how many English sentences of other pairs, put on the target
side, are caught. Run with no minimum length and with the check's minimum (``MIN_UNITS``).

Writes ``benchmarks/results/langid_quality.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import machine, require_shared, write_results

from mlembed.languages import normalize_lang


def primary(tag: str) -> str:
    return normalize_lang(tag).split("-")[0]


def sentences(shared: Path, per_language: int) -> dict[str, dict[str, list[str]]]:
    sets: dict[str, dict[str, list[str]]] = {"tatoeba": {}, "ntrex": {}}
    for path in sorted((shared / "tatoeba").glob("tatoeba.*-eng.*")):
        code = path.suffix[1:]
        lines = [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        lang = primary(code)
        sets["tatoeba"].setdefault(lang, [])
        if len(sets["tatoeba"][lang]) < per_language:
            sets["tatoeba"][lang] += lines[: per_language - len(sets["tatoeba"][lang])]
    ntrex = shared / "ntrex128"
    for line in (ntrex / "LANGUAGES.tsv").read_text(encoding="utf-8").splitlines():
        code = line.split("\t")[0].split(" ")[0]
        files = sorted(ntrex.glob(f"newstest2019-ref*.{code}.txt"))
        if not files:
            continue
        lang = primary(code)
        if lang in sets["ntrex"]:
            continue
        lines = [x.strip() for x in files[0].read_text(encoding="utf-8").splitlines() if x.strip()]
        sets["ntrex"][lang] = lines[:per_language]
    return sets


class Lingua:
    def __init__(self, low: bool):
        from lingua import LanguageDetectorBuilder

        builder = LanguageDetectorBuilder.from_all_languages()
        self.detector = (builder.with_low_accuracy_mode() if low else builder).with_preloaded_language_models().build()
        from lingua import Language

        self.languages = {lang.iso_code_639_1.name.lower() for lang in Language.all()}

    def __call__(self, text: str) -> str | None:
        lang = self.detector.detect_language_of(text)
        return lang.iso_code_639_1.name.lower() if lang is not None else None


class Py3Langid:
    def __init__(self):
        from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

        self.identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE)
        self.languages = {primary(x) for x in self.identifier.nb_classes}

    def __call__(self, text: str) -> str | None:
        return primary(self.identifier.classify(text)[0])


def run(name: str, make, sets: dict) -> dict:
    t0 = time.perf_counter()
    detect = make()
    load = time.perf_counter() - t0
    out: dict = {"detector": name, "load_seconds": round(load, 2), "languages": len(detect.languages)}
    total, elapsed = 0, 0.0
    for set_name, by_lang in sets.items():
        per = {}
        for lang, texts in by_lang.items():
            if lang not in detect.languages:
                continue
            t = time.perf_counter()
            right = sum(detect(x) == lang for x in texts)
            elapsed += time.perf_counter() - t
            total += len(texts)
            per[lang] = round(right / len(texts), 4)
        out[set_name] = per
    out["sentences_per_s"] = round(total / elapsed, 1)
    print(name, out["sentences_per_s"], flush=True)
    return out


def summary(results: list[dict], sets: dict) -> dict:
    out = {}
    for set_name in sets:
        common = set.intersection(*(set(r[set_name]) for r in results))
        out[set_name] = {
            "languages_in_set": len(sets[set_name]),
            "languages_all_cover": len(common),
            "accuracy_on_common": {
                r["detector"]: round(sum(r[set_name][x] for x in common) / len(common), 4) for r in results
            },
            "covered": {r["detector"]: len(r[set_name]) for r in results},
        }
    return out


CHECK_FILES = ["deu", "fra", "spa", "rus", "ara", "cmn_Hans"]


def cleaning_check(shared: Path, pairs_per_language: int) -> list[dict]:
    from mlembed.langid import MIN_UNITS, in_language

    rows = []
    for name in CHECK_FILES:
        with open(shared / "tatoeba-challenge" / f"eng-{name}.tsv", encoding="utf-8") as fh:
            src_lang, tgt_lang = next(fh).rstrip("\n").split("\t")
            pairs = [line.rstrip("\n").split("\t") for _, line in zip(range(pairs_per_language), fh)]
        pairs = [p for p in pairs if len(p) == 2]
        for minimum in (0, MIN_UNITS):
            wrong = sum(
                in_language(en, src_lang, min_units=minimum) is False
                or in_language(xx, tgt_lang, min_units=minimum) is False
                for en, xx in pairs
            )
            caught = sum(
                in_language(pairs[(i + 7) % len(pairs)][0], tgt_lang, min_units=minimum) is False
                for i in range(len(pairs))
            )
            row = {"file": f"eng-{name}", "min_units": minimum, "pairs": len(pairs), "good_dropped": wrong}
            rows.append({**row, "english_caught": caught})
            print(rows[-1], flush=True)
    return rows


def render(data: dict) -> str:
    m = data["machine"]
    lines = [
        "# Language identification: candidates for mlembed",
        "",
        "Produced by `benchmarks/langid_quality.py` (its docstring gives the method), one run. "
        f"{m['cpu_count']} CPUs ({m['cpu_model']}); {data['per_language']} sentences a language and set.",
        "",
        "| detector | languages | load s | sentences/s | "
        + " | ".join(
            f"{s}: covered of {v['languages_in_set']} | {s}: accuracy on the {v['languages_all_cover']} all cover"
            for s, v in data["summary"].items()
        )
        + " |",
        "|---|---:|---:|---:|" + "---:|---:|" * len(data["summary"]),
    ]
    for r in data["results"]:
        cells = []
        for v in data["summary"].values():
            cells += [str(v["covered"][r["detector"]]), f"{100 * v['accuracy_on_common'][r['detector']]:.1f}"]
        lines.append(
            f"| {r['detector']} | {r['languages']} | {r['load_seconds']} | {r['sentences_per_s']} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "Per language (accuracy %, Tatoeba / NTREX):", ""]
    langs = sorted(set().union(*(set(r["ntrex"]) | set(r["tatoeba"]) for r in data["results"])))
    lines += [
        "| language | " + " | ".join(r["detector"] for r in data["results"]) + " |",
        "|---|" + "---:|" * len(data["results"]),
    ]
    for lang in langs:
        cells = []
        for r in data["results"]:
            t, n = r["tatoeba"].get(lang), r["ntrex"].get(lang)
            cells.append(" / ".join("-" if x is None else f"{100 * x:.0f}" for x in (t, n)))
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## The cleaning check (`mlembed data --check-lang`) on tatoeba-challenge pairs",
        "",
        "| file | minimum length (units) | pairs | good pairs dropped | English on the target side caught |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in data["cleaning_check"]:
        lines.append(
            f"| {r['file']} | {r['min_units']} | {r['pairs']:,} | {r['good_dropped']} "
            f"({100 * r['good_dropped'] / r['pairs']:.2f} %) | {r['english_caught']:,} "
            f"({100 * r['english_caught'] / r['pairs']:.1f} %) |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-language", type=int, default=200)
    ap.add_argument("--check-pairs", type=int, default=3000)
    args = ap.parse_args()
    shared = require_shared()
    sets = sentences(shared, args.per_language)
    results = [
        run("lingua (high accuracy)", lambda: Lingua(low=False), sets),
        run("lingua (low accuracy)", lambda: Lingua(low=True), sets),
        run("py3langid", Py3Langid, sets),
    ]
    data = {
        "machine": machine(),
        "per_language": args.per_language,
        "results": results,
        "summary": summary(results, sets),
        "cleaning_check": cleaning_check(shared, args.check_pairs),
    }
    write_results("langid_quality", data, render(data))


if __name__ == "__main__":
    main()
