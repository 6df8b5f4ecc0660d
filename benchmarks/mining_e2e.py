"""Mining from raw text, end to end: two text files in, pairs out, as a user runs ``mlembed mine``, against the
usual recipe on the same files in the same run.

**Files.** ``en.txt`` and ``xx.txt`` of ``--size`` lines each: the NTREX-128 gold pairs (English news sentences,
each with its human translation in one of ``--gold-langs``, taken in turn) hidden at random lines among
distractors: ordinary sentences (tatoeba-challenge), then software strings (the machine's gettext catalogs)
where those run out. Each distractor pair goes to one side only, by a hash of its English sentence (the English
of half of the pairs, the translations of the other half; once the target side is full, any English sentence
none of whose translations is a target), so no distractor is the known translation of another.
Gold sentences are removed from the distractors. A mined pair is correct when its two texts are a gold pair.
The real lines run short (about 160,000 English lines can go to the source side), so each side is then filled to
exactly ``--size`` distinct lines with distractors made by joining two unrelated real lines of that side (of one
language, drawn in proportion to the side's languages): no such line is the translation of a line on the other
side. The line counts are asserted; the script refuses to build fewer lines than asked for.

**Runs** (each a separate process: wall time, peak RSS of the process and the stage that held it, sampled
every 0.5 s and named by the progress bar its log shows, seconds per stage):

- ``reference``: sentence-transformers' bitext-mining example as usually run: lines read and deduplicated,
  plain ``SentenceTransformer.encode`` (fp32, batch 32) of the full student, normalised, FAISS ``IndexFlatIP``
  k=4 both ways (the example's exact path), ratio margin, each sentence used once, best score first (its
  candidate-scoring loop written with numpy: same numbers, faster), TSV written.
- ``mlembed ...``: ``python -m mlembed mine --mode max --threshold 0 --k 4 --margin ratio`` with the model,
  backend, index and neighbourhood means (``--means``) of the row; its stage seconds come from the line
  ``seconds per stage:`` it prints. ``--means exact`` (mine's default for an approximate index) gives the rows of
  every pair that can score 1.06 (the ratio margin's default threshold, the cut when the threshold is 0) or more
  their exact neighbourhoods, so every pair at or above it scores as with the exact search's means
  (:mod:`mlembed.means`); ``found`` keeps the approximate search's own, ``calibrated`` corrects them by a line
  fitted on exact samples.

**1M x 1M** (``--size 1000000``): the runs ``measured`` (the configuration this benchmark reports as the 1M run,
:data:`MEASURED_OPTIONS`) and ``exact`` (``--index flat``, whose F1 on the same files is the reference for F1).
Every ``mlembed mine`` run keeps a work folder; a run killed before it finished continues with ``--resume``
(``mine --resume``), and its wall time is the sum of its parts (a killed part ends at its log's last write).

Both write every candidate (threshold 0, mode max), and F1 x100 is taken at the best threshold of each output
(the oracle cut), so the comparison is of encoders and search, not of threshold choice. The 1M x 1M projection
(from this run's rates): encoding and the linear stages x5, the k-NN x25, as its work grows with N x N (exact
search compares every pair; an IVF index probing a fixed fraction of its lists, as mlembed's default 1/16 does,
scans that fraction of the other side per query at any N, and keeps its recall). For ivfsq rows, a second projection takes the k-NN of 1M x 1M with ``--index
ivfsq --memory-budget 1G --nprobe 16`` measured by ``benchmarks/mining_scale.py`` instead (faster; at 200k,
``benchmarks/results/mining_nprobe.md`` measures what nprobe 16 costs in F1). The Tatoeba mean of each
model (12 languages, ``../shared/data/tatoeba``) shows what a smaller encoder costs outside mining.

Writes ``benchmarks/results/mining_e2e.{json,md}`` (the 200k table, and the 1M section once its measured run has
finished); each finished run is kept in ``--work`` and ``--resume`` skips it (the run can span sessions). Needs
``../shared/data`` and the students:

    mlembed distill                                   # ./mlembed-student (the main job)
    mlembed distill --student mlembed-student --layers 6 --data tsv:../shared/data/tatoeba-challenge \\
        --max-pairs 50000 --max-minutes 30 --output student-l6
    python benchmarks/mining_e2e.py --full mlembed-student [--size 200000] [--resume]
    python benchmarks/mining_e2e.py --full mlembed-student --size 1000000 --resume   # measured, then exact in parts
    python benchmarks/mining_e2e.py --full mlembed-student --fast student-l6 --runs fast,fast-int8,reference
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from _common import (
    MLEMBED,
    RESULTS,
    cpu_flags,
    f1_of,
    load_results,
    machine,
    require_shared,
    rss_mb,
    write_results,
)

GOLD_LANGS = "deu,fra,rus,zho-CN,arb,hin,tur,vie,pol,swe,ell,heb"
#: the runs on the 200k files (the table), and on the 1M files (the measured run and the exact search's F1)
RUNS_200K = (
    "full",
    "full-means-exact",
    "full-nprobe16",
    "full-nprobe16-means-exact",
    "full-nprobe8-means-exact",
    "full-means-calibrated",
    "full-flat-fp32",
    "reference",
)
RUNS_1M = ("measured", "exact")
TABLE_SIZE, MEASURED_SIZE = 200_000, 1_000_000
#: mlembed mine's options of the measured 1M x 1M run (besides the engine, k, margin, mode and threshold)
MEASURED_OPTIONS = ["--index", "ivfsq", "--nprobe", "16", "--means", "exact", "--memory-budget", "1G"]


def build_files(shared: Path, size: int, langs: list[str], work: Path, seed: int = 0) -> dict:
    """``en.txt``, ``xx.txt`` and ``gold.tsv`` in ``work`` (reused when already built with these settings)."""
    from mlembed.data import read_pairs

    stamp = work / "files.json"
    want = {"size": size, "langs": langs, "seed": seed, "filled": "joined lines"}  # (each side filled to size)
    if stamp.exists() and json.loads(stamp.read_text())["settings"] == want:
        return json.loads(stamp.read_text())
    english = (shared / "ntrex128" / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    refs = {
        lang: (shared / "ntrex128" / f"newstest2019-ref.{lang}.txt").read_text(encoding="utf-8").splitlines()
        for lang in langs
    }
    gold: dict[str, str] = {}
    used_tgt: set[str] = set()
    for i, en in enumerate(english):
        xx = refs[langs[i % len(langs)]][i].strip()
        en = en.strip()
        if en and xx and en not in gold and xx not in used_tgt:
            gold[en] = xx
            used_tgt.add(xx)
    want_each = size - len(gold)
    if want_each < 0:
        raise SystemExit(f"--size {size}: expected at least the {len(gold)} gold pairs")
    src: dict[str, None] = {}
    tgt: dict[str, str] = {}  # line -> its language
    linked: set[str] = set()  # English sentences whose translation is a target distractor
    sources = {}
    for spec in (f"tsv:{shared}/tatoeba-challenge", "gettext:system"):
        before = (len(src), len(tgt))
        for p in read_pairs(spec):
            if len(src) >= want_each and len(tgt) >= want_each:
                break
            if p.src in gold or p.tgt in used_tgt or p.tgt == p.src:
                continue
            if zlib.crc32(p.src.encode()) % 2 and len(tgt) < want_each:
                tgt.setdefault(p.tgt, p.tgt_lang)
                linked.add(p.src)
            elif p.src not in linked and len(src) < want_each:  # (once the targets are full, any unlinked English)
                src.setdefault(p.src)
        sources[spec.replace(str(shared) + "/", "")] = [len(src) - before[0], len(tgt) - before[1]]
        if len(src) >= want_each and len(tgt) >= want_each:
            break
    tgt_set = set(tgt)
    src_lines = [s for s in src if s not in used_tgt]
    tgt_lines = [t for t in tgt if t not in gold and t not in src]  # no line on both sides
    rng = random.Random(seed)
    taken = set(src_lines) | set(tgt_lines) | set(gold) | set(gold.values())
    joined = (want_each - len(src_lines), want_each - len(tgt_lines))
    src_lines += joined_lines({"en": src_lines}, joined[0], taken, rng)
    tgt_lines += joined_lines(by_language(tgt_lines, tgt), joined[1], taken, rng)
    src_lines += list(gold)
    tgt_lines += list(gold.values())
    if (len(src_lines), len(tgt_lines)) != (size, size) or len(taken) != 2 * size:
        raise SystemExit(
            f"built {len(src_lines):,} x {len(tgt_lines):,} lines ({len(taken):,} distinct), not {size:,} x {size:,}"
        )
    rng.shuffle(src_lines)
    rng.shuffle(tgt_lines)
    work.mkdir(parents=True, exist_ok=True)
    (work / "en.txt").write_text("".join(s + "\n" for s in src_lines), encoding="utf-8")
    (work / "xx.txt").write_text("".join(t + "\n" for t in tgt_lines), encoding="utf-8")
    (work / "gold.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in gold.items()), encoding="utf-8")
    info = {
        "settings": want,
        "src_lines": len(src_lines),
        "tgt_lines": len(tgt_lines),
        "gold_pairs": len(gold),
        "distractors_from": sources,
        "mean_chars": [
            round(float(np.mean([len(s) for s in src_lines])), 1),
            round(float(np.mean([len(t) for t in tgt_lines])), 1),
        ],
        "target_distractors_dropped_as_duplicates": len(tgt_set) - len(tgt_lines) + len(gold) + joined[1],
        "joined_distractors": list(joined),
    }
    stamp.write_text(json.dumps(info, indent=1))
    return info


def by_language(lines: list[str], language: dict[str, str]) -> dict[str, list[str]]:
    """``lines`` grouped by their language."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        groups.setdefault(language[line], []).append(line)
    return groups


def joined_lines(groups: dict[str, list[str]], count: int, taken: set[str], rng: random.Random) -> list[str]:
    """``count`` new distinct lines (none in ``taken``, which receives them), each two unrelated real lines of one
    language joined by a space: distractors where a side has fewer real lines than asked for. A language is drawn
    in proportion to its lines, so the joined lines mix the side's languages as its real lines do. None is a
    translation of a line on the other side (no such join is translated anywhere)."""
    if count <= 0:
        return []
    langs = sorted(groups)
    weights = [len(groups[lang]) for lang in langs]
    out: list[str] = []
    for _ in range(50 * count):
        if len(out) == count:
            break
        lines = groups[rng.choices(langs, weights)[0]]
        a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
        line = f"{lines[a]} {lines[b]}"
        if a != b and line not in taken:
            taken.add(line)
            out.append(line)
    if len(out) < count:
        raise SystemExit(f"could make only {len(out):,} of {count:,} distinct joined distractors")
    return out


def reference(src: str, tgt: str, model: str, output: str) -> None:
    """The bitext-mining example of sentence-transformers (exact path), timed by stage: runs in a child process."""
    import faiss
    from sentence_transformers import SentenceTransformer

    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[stage] = round(timings.get(stage, 0.0) + now - clock, 2)
        clock = now

    st = SentenceTransformer(model, device="cpu")
    lap("load")
    source = list(dict.fromkeys(line.strip() for line in open(src, encoding="utf-8") if line.strip()))
    target = list(dict.fromkeys(line.strip() for line in open(tgt, encoding="utf-8") if line.strip()))
    lap("dedupe")
    x = st.encode(source, show_progress_bar=True, convert_to_numpy=True)
    y = st.encode(target, show_progress_bar=True, convert_to_numpy=True)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    lap("encode")
    k = 4

    def knn(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = faiss.IndexFlatIP(b.shape[1])
        index.add(b)
        return index.search(a, k)

    x2y_sim, x2y_ind = knn(x, y)
    y2x_sim, y2x_ind = knn(y, x)
    lap("knn")
    x2y_mean, y2x_mean = x2y_sim.mean(axis=1), y2x_sim.mean(axis=1)
    fwd = x2y_sim / ((x2y_mean[:, None] + y2x_mean[x2y_ind]) / 2)
    bwd = y2x_sim / ((y2x_mean[:, None] + x2y_mean[y2x_ind]) / 2)
    fwd_best = x2y_ind[np.arange(len(x)), fwd.argmax(axis=1)]
    bwd_best = y2x_ind[np.arange(len(y)), bwd.argmax(axis=1)]
    indices = np.stack(
        [np.concatenate([np.arange(len(x)), bwd_best]), np.concatenate([fwd_best, np.arange(len(y))])], axis=1
    )
    scores = np.concatenate([fwd.max(axis=1), bwd.max(axis=1)])
    lap("margin")
    seen_src, seen_tgt = set(), set()
    with open(output, "w", encoding="utf-8") as out:
        for i in np.argsort(-scores):
            a, b = int(indices[i][0]), int(indices[i][1])
            if a not in seen_src and b not in seen_tgt:
                seen_src.add(a)
                seen_tgt.add(b)
                out.write(f"{scores[i]:.6f}\t{source[a].replace(chr(9), ' ')}\t{target[b].replace(chr(9), ' ')}\n")
    lap("write")
    print(f"seconds per stage: {json.dumps(timings)}")


#: progress-bar names in a run's log and the stage each belongs to (the last one seen is the current stage)
STAGE_MARKERS = {
    "encode": "encode",
    "gather": "encode",
    "index (": "knn",
    "k-NN": "knn",
    "exact means": "means",
    "calibration (": "means",
    "write": "write",
}


def sample_stages(pid: int, log: Path, peaks: dict[str, float], running: threading.Event) -> None:
    """Every 0.5 s, the resident memory of ``pid`` (MB) and the stage its log is in: ``peaks`` keeps the most
    each stage held (before the first progress bar: ``load``), so the run's peak has a name."""
    stage = "load"
    while running.is_set():
        rss = rss_mb(pid)
        if rss is None:
            break
        with open(log, "rb") as fh:
            fh.seek(max(0, log.stat().st_size - 400))
            tail = fh.read().decode(errors="replace")
        seen = [(tail.rfind(marker), name) for marker, name in STAGE_MARKERS.items() if marker in tail]
        stage = max(seen)[1] if seen else stage
        peaks[stage] = round(max(peaks.get(stage, 0.0), rss), 1)
        time.sleep(0.5)


def run_child(command: list[str], log: Path) -> dict:
    """Run a command, keep its output in ``log``; wall seconds, the child's peak RSS (and the peak of each
    stage, sampled) and its stage seconds."""
    start = time.monotonic()
    peaks: dict[str, float] = {}
    running = threading.Event()
    running.set()
    with open(log, "a") as fh:
        proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=os.environ.copy())
        sampler = threading.Thread(target=sample_stages, args=(proc.pid, log, peaks, running), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        running.clear()
        sampler.join()
    wall = time.monotonic() - start
    text = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed (see {log}):\n{text[-2000:]}")
    stages = json.loads(text.rsplit("seconds per stage: ", 1)[1].splitlines()[0])  # (the last part's)
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "peak_rss_mb_by_stage": peaks,
        "stages_s": stages,
    }


def earlier_parts(parts_file: Path, log: Path) -> list[dict]:
    """The parts of a run killed before it finished (kept in ``parts_file``): each part's start and its end,
    the last time its log was written (a killed part never recorded its end). A run in parts counts the sum of
    its parts as its wall time."""
    parts = json.loads(parts_file.read_text()) if parts_file.exists() else []
    for part in parts:
        part.setdefault("ended", log.stat().st_mtime if log.exists() else part["started"])
    return parts


def prepare_engine(model: str, backend: str) -> float:
    """Seconds of the one-time work of ``--backend`` for ``model`` on this CPU: export (and int8 calibration)
    and, for ``auto``, the mining probe; made before the timed run, as a user's second run finds them cached."""
    start = time.monotonic()
    code = "import sys; from mlembed.backends import load_backend; from mlembed.models import load_model; "
    code += "load_backend(load_model(sys.argv[1]), sys.argv[2], task='mining')"
    subprocess.run([sys.executable, "-c", code, model, backend], check=True)
    return round(time.monotonic() - start, 1)


def engine_used(log: Path, options: list[str] | None) -> str:
    """The engine a run encoded with: from ``mlembed mine``'s log line, or torch fp32 for the reference."""
    if options is None:
        return "torch fp32 (sentence-transformers)"
    text = log.read_text(errors="replace")
    marker = " on "
    for line in text.splitlines():
        if "encoding with" in line and marker in line:
            return line.split(marker, 1)[1].split(" ")[0]
    return options[1]


def tatoeba_mean(model: str, shared: Path, backend: str, limit: int | None, work: Path) -> float:
    """Mean Tatoeba accuracy (both directions, 12 languages, ``limit`` pairs each) of ``model`` on ``backend``,
    measured once per model, backend and limit (kept in ``work``)."""
    from mlembed.backends import load_backend
    from mlembed.evaluation import evaluate, parse_task
    from mlembed.models import fingerprint, load_model

    kept = work / f"tatoeba-{fingerprint(model)}-{backend}-{limit}.json"
    if kept.exists():
        return json.loads(kept.read_text())["mean"]
    encoder = load_backend(load_model(model), backend)
    task = parse_task(f"tatoeba:{shared}/tatoeba", limit=limit)
    [(_, result)] = evaluate({"m": encoder}, [task], show_progress=False)
    kept.write_text(json.dumps({"mean": round(result.main_score, 2)}))
    return round(result.main_score, 2)


def knn_1m_seconds() -> tuple[float, int]:
    """Wall seconds of the 1M x 1M k-NN (ivfsq, 1G budget) measured by mining_scale, and the nprobe it ran at."""
    rows = load_results("mining_scale").get("runs", [])
    for row in rows:
        if row.get("n") == 1_000_000 and row.get("index") == "ivfsq":
            return float(row["mlembed"]["wall_s"]), int(row["nprobe"])
    raise SystemExit("mining_scale.json has no 1M ivfsq row: run benchmarks/mining_scale.py --approx-sizes 1000000")


def nprobe_cost(nprobe: int) -> str:
    """F1 points an ivfsq k-NN at ``nprobe`` lost against exact search in mining_nprobe's run ("?" without it)."""
    rows = {(r["index"], r["nprobe"]): r["f1"] for r in load_results("mining_nprobe").get("rows", [])}
    if ("flat", "default") in rows and ("ivfsq", str(nprobe)) in rows:
        return f"{rows[('flat', 'default')] - rows[('ivfsq', str(nprobe))]:.1f}"
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", required=True, help="the full student (folder)")
    parser.add_argument("--fast", help="the layer-reduced student (mlembed distill --layers); for the fast runs")
    parser.add_argument("--size", type=int, default=200_000, help="lines per file [%(default)s]")
    parser.add_argument("--gold-langs", default=GOLD_LANGS, help="NTREX codes of the gold translations")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlembed-mining-e2e"))
    parser.add_argument(
        "--runs",
        default=None,
        help="which runs, in order [200k: " + ",".join(RUNS_200K) + "; 1M: " + ",".join(RUNS_1M) + "]",
    )
    parser.add_argument("--resume", action="store_true", help="keep finished runs of an earlier invocation")
    parser.add_argument("--tatoeba-limit", type=int, default=None, help="Tatoeba pairs per language [all 1,000]")
    args = parser.parse_args()
    args.runs = args.runs or ",".join(RUNS_1M if args.size == MEASURED_SIZE else RUNS_200K)
    if args.fast is None and any(r.startswith("fast") for r in args.runs.split(",")):
        parser.error("--fast is needed for the runs fast and fast-int8 (or leave them out of --runs)")
    shared = require_shared()
    langs = args.gold_langs.split(",")
    work = work_of(args, args.size)
    info = build_files(shared, args.size, langs, work)
    gold = dict(line.split("\t") for line in (work / "gold.tsv").read_text(encoding="utf-8").splitlines())
    src, tgt = str(work / "en.txt"), str(work / "xx.txt")
    index = ["--index", "ivfsq", "--memory-budget", "1G"]
    exact_means = ["--means", "exact"]
    runs = {
        "reference": ("sentence-transformers example (flat)", args.full, None),
        "full": (
            "mlembed mine, full student, auto, ivfsq, means as found",
            args.full,
            ["--backend", "auto", *index, "--means", "found"],
        ),
        "full-nprobe16": (
            "mlembed mine, full student, auto, ivfsq, nprobe 16, means as found",
            args.full,
            ["--backend", "auto", *index, "--nprobe", "16", "--means", "found"],
        ),
        "full-means-exact": (
            "mlembed mine, full student, auto, ivfsq, exact means above the cut",
            args.full,
            ["--backend", "auto", *index, *exact_means],
        ),
        "full-nprobe16-means-exact": (
            "mlembed mine, full student, auto, ivfsq, nprobe 16, exact means above the cut",
            args.full,
            ["--backend", "auto", *index, "--nprobe", "16", *exact_means],
        ),
        "full-nprobe8-means-exact": (
            "mlembed mine, full student, auto, ivfsq, nprobe 8, exact means above the cut",
            args.full,
            ["--backend", "auto", *index, "--nprobe", "8", *exact_means],
        ),
        "full-means-calibrated": (
            "mlembed mine, full student, auto, ivfsq, calibrated means",
            args.full,
            ["--backend", "auto", *index, "--means", "calibrated"],
        ),
        "measured": (
            "mlembed mine, full student, auto, " + " ".join(MEASURED_OPTIONS).replace("--", ""),
            args.full,
            ["--backend", "auto", *MEASURED_OPTIONS],
        ),
        "exact": (
            "mlembed mine, full student, auto, flat (exact search)",
            args.full,
            ["--backend", "auto", "--index", "flat", "--knn-precision", "fp32", "--memory-budget", "1G"],
        ),
        "full-ivf128": (
            "mlembed mine, full student, auto, ivf, nprobe 128",
            args.full,
            ["--backend", "auto", "--index", "ivf", "--nprobe", "128", "--memory-budget", "1G"],
        ),
        "full-flat": (
            "mlembed mine, full student, auto, flat (int8 candidates, exact rescoring)",
            args.full,
            ["--backend", "auto", "--index", "flat", "--memory-budget", "1G"],
        ),
        "full-flat-fp32": (
            "mlembed mine, full student, auto, flat (fp32 candidates, exact rescoring)",
            args.full,
            ["--backend", "auto", "--index", "flat", "--knn-precision", "fp32", "--memory-budget", "1G"],
        ),
        "fast": ("mlembed mine, 6-layer student, auto, ivfsq", args.fast, ["--backend", "auto", *index]),
        "fast-int8": (
            "mlembed mine, 6-layer student, openvino-int8, ivfsq",
            args.fast,
            ["--backend", "openvino-int8", *index],
        ),
    }
    done_dir = work / "runs"
    done_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name in args.runs.split(","):
        done = done_dir / f"{name}.json"
        if args.resume and done.exists():
            results[name] = json.loads(done.read_text())
            continue
        label, model, options = runs[name]
        output = work / f"{name}.tsv"
        print(f"[mining_e2e] {name}: {label}", flush=True)
        probe_s = prepare_engine(model, options[1]) if options else None
        log, parts_file, workdir = work / f"{name}.log", work / f"{name}.parts.json", work / f"{name}.work"
        if options is None:
            code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import mining_e2e as m; m.reference(*sys.argv[1:])"
            command = [sys.executable, "-c", code, src, tgt, model, str(output)]
        else:
            command = MLEMBED + ["mine", "--src", src, "--tgt", tgt, "-o", str(output), "--model", model]
            command += ["--mode", "max", "--threshold", "0", "--k", "4", "--margin", "ratio", *options]
            command += ["--workdir", str(workdir)]
        parts = earlier_parts(parts_file, log) if args.resume and options and workdir.exists() else []
        if parts:
            command.append("--resume")  # a run killed in an earlier part continues where it stopped
        else:
            log.unlink(missing_ok=True)
        parts.append({"started": time.time()})
        parts_file.write_text(json.dumps(parts))
        row = {"label": label, "model": model, "command": " ".join(command[-22:]), "machine": machine()}
        row["load_average_before"] = round(os.getloadavg()[0], 2)  # > 2 on 2 cores: another job shared them
        row.update(run_child(command, log))
        row["load_average_after"] = round(os.getloadavg()[0], 2)
        parts[-1]["ended"] = time.time()
        if len(parts) > 1:
            row["parts_s"] = [round(p["ended"] - p["started"], 1) for p in parts]
            row["wall_s"] = round(sum(row["parts_s"]), 1)
            row["recorded"] = (
                f"ran in {len(parts)} parts ({', '.join(f'{x:.0f} s' for x in row['parts_s'])}), resumed with --resume; wall = their sum; stage seconds and peak RSS are the last part's"
            )
        parts_file.unlink()
        row["backend"] = engine_used(work / f"{name}.log", options)
        row["engine_setup_s"] = probe_s
        row.update(f1_of(output, gold))
        encode_s = row["stages_s"].get("encode")
        lines = info["src_lines"] + info["tgt_lines"]
        row["encode_sentences_per_s"] = round(lines / encode_s, 1) if encode_s and "parts_s" not in row else None
        backend = (options or ["--backend", "torch"])[1]
        row["tatoeba_mean"] = tatoeba_mean(
            model, shared, "torch" if backend == "auto" else backend, args.tatoeba_limit, args.work
        )
        done.write_text(json.dumps(row, indent=1))
        results[name] = row
    report(args, shared)


def minutes_cell(row: dict) -> str:
    """The run's wall minutes ("-" where they were not recorded)."""
    return f"{row['wall_s'] / 60:.1f}" if row.get("wall_s") else "-"


def peak_cell(row: dict) -> str:
    """The run's peak RSS (MB) and, where it was sampled, the stage that held it."""
    by_stage = row.get("peak_rss_mb_by_stage")
    if not row.get("peak_rss_mb"):
        return "-"
    return f"{row['peak_rss_mb']} ({max(by_stage, key=by_stage.get)})" if by_stage else str(row["peak_rss_mb"])


def finished_runs(work: Path) -> dict[str, dict]:
    """The finished runs kept in a size's work folder, by name."""
    folder = work / "runs"
    return {f.stem: json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))} if folder.exists() else {}


def ordered(results: dict[str, dict], names: tuple[str, ...]) -> dict[str, dict]:
    """``results`` in the order of ``names`` (other runs after them)."""
    return {n: results[n] for n in [*names, *sorted(set(results) - set(names))] if n in results}


def measured_1m(work: Path) -> dict:
    """The 1M x 1M section: the measured run's minutes, peak RSS and F1 against the exact search's on the same
    files (``{}`` before the measured run has finished)."""
    runs = finished_runs(work / str(MEASURED_SIZE))
    run, exact = runs.get("measured"), runs.get("exact")
    if run is None:
        return {}
    return {
        "run": run["label"],
        "machine": run["machine"],
        "minutes": round(run["wall_s"] / 60, 1),
        "peak_rss_mb": run["peak_rss_mb"],
        "stages_s": run["stages_s"],
        "f1": run["f1"],
        "exact_f1": exact["f1"] if exact else None,
        "exact_minutes": round(exact["wall_s"] / 60, 1) if exact and exact.get("wall_s") else None,
        "exact_recorded": exact.get("recorded") if exact else None,
        "f1_delta_vs_exact": round(run["f1"] - exact["f1"], 2) if exact else None,
        "files": json.loads((work / str(MEASURED_SIZE) / "files.json").read_text()),
        "runs": runs,
    }


def report(args: argparse.Namespace, shared: Path) -> None:
    table = work_of(args, TABLE_SIZE)
    info = json.loads((table / "files.json").read_text()) if (table / "files.json").exists() else None
    results = ordered(finished_runs(table), RUNS_200K)
    ref = results.get("reference")
    knn_1m, knn_1m_nprobe = knn_1m_seconds()
    scale = 1_000_000 / TABLE_SIZE
    for row in results.values():
        s = row["stages_s"]
        rest = s.get("load", 0) + sum(v for k, v in s.items() if k not in ("knn", "means", "load")) * scale
        row["projected_1m_minutes"] = round((rest + (s["knn"] + s.get("means", 0)) * scale**2) / 60, 1)
        if "ivfsq" in row["label"]:
            row[f"projected_1m_minutes_nprobe{knn_1m_nprobe}"] = round((rest + knn_1m) / 60, 1)
        if ref:
            row["speedup_vs_reference"] = round(ref["wall_s"] / row["wall_s"], 2)
            row["f1_delta_vs_reference"] = round(row["f1"] - ref["f1"], 2)
    fastest = min((r for n, r in results.items() if n != "reference"), key=lambda r: r["wall_s"], default=None)
    summary: dict = {}
    if fastest and ref:
        within = [r for n, r in results.items() if n != "reference" and r["f1_delta_vs_reference"] >= -0.5]
        best = min(within, key=lambda r: r["wall_s"]) if within else fastest
        summary = {
            "run": best["label"],
            "within_0_5_f1": bool(within),
            "speedup_vs_reference": best["speedup_vs_reference"],
            "f1_delta_vs_reference": best["f1_delta_vs_reference"],
            "projected_1m_minutes": best["projected_1m_minutes"],
            "peak_rss_mb": best["peak_rss_mb"],
        }
    summary["measured_1m"] = big = measured_1m(args.work)
    data = {
        "machine": machine(),
        "cpu_flags": cpu_flags(),
        "size": TABLE_SIZE,
        "files": info,
        "knn_1m_seconds_measured": {"seconds": knn_1m, "nprobe": knn_1m_nprobe, "source": "mining_scale.json"},
        "runs": results,
        "summary": summary,
    }
    stage_names = ["load", "dedupe", "encode", "knn", "means", "margin", "write"]
    lines = ["# Mining from raw text, end to end", ""]
    if info:
        lines += [
            f"Produced by `benchmarks/mining_e2e.py` (its docstring gives the method). {info['src_lines']:,} x "
            f"{info['tgt_lines']:,} lines ({info['gold_pairs']:,} NTREX gold pairs in {len(args.gold_langs.split(','))} "
            f"languages among distractors, {info.get('joined_distractors', [0, 0])[0]:,} / "
            f"{info.get('joined_distractors', [0, 0])[1]:,} of them joined from two real lines; mean "
            f"{info['mean_chars'][0]} / {info['mean_chars'][1]} characters a line). "
            f"{data['machine']['cpu_model']}, {data['machine']['cpu_count']} CPUs, native bf16: "
            f"{data['machine']['native_bf16']} (flags: {', '.join(data['cpu_flags'])}). *load*: the 1-minute load "
            "average before and after each run (about 2 = the run alone on 2 cores; more: another job shared them, "
            "and the run is slower than it would be alone). F1 x100 at each output's best threshold. Ratios are to "
            "the reference in the same run. *means*: exact neighbourhood means for the rows of every pair that can "
            "score the cut (1.06, the ratio margin's default threshold) or more, or means calibrated on exact samples "
            "(mlembed/means.py). The one-time engine setup (export, int8 calibration, `auto`'s mining probe; per "
            "model and CPU) ran before the timed runs, as a user's second run finds it cached: "
            + ", ".join(
                f"{n} {r['engine_setup_s']} s" for n, r in results.items() if r.get("engine_setup_s") is not None
            )
            + ". 1M x 1M projected from this run's rates: linear stages x5, k-NN and means x25 (exact search, and IVF "
            "probing the same fraction of its lists, so at the same recall, grow with N x N); *nprobe "
            f"{knn_1m_nprobe}*: the same with the 1M x 1M ivfsq k-NN at nprobe {knn_1m_nprobe} of 2,048 lists measured "
            f"by benchmarks/mining_scale.py ({knn_1m / 60:.1f} min, on the CPU named there).",
            "",
            "| run | engine | load before / after | wall s | "
            + " | ".join(f"{s} s" for s in stage_names)
            + " | encode sent/s | peak RSS MB (stage) | F1 | "
            "P | R | gold among candidates | x reference | Δ F1 | Tatoeba mean | 1M x 1M min (projected) | "
            f"1M x 1M min, nprobe {knn_1m_nprobe} |",
            "|---|---|---|" + "---:|" * (len(stage_names) + 12),
        ]
    for row in results.values():
        s = row["stages_s"]
        lines.append(
            f"| {row['label']} | {row['backend']} | {row['load_average_before']} / {row['load_average_after'] or '-'} | "
            f"{row['wall_s']} | "
            + " | ".join(str(s.get(k, "-")) for k in stage_names)
            + f" | {row['encode_sentences_per_s'] or '-'} | {peak_cell(row)} | {row['f1']} | {row['precision']} | "
            f"{row['recall']} | {row.get('gold_candidates', '-')} | {row.get('speedup_vs_reference', '-')} | "
            f"{row.get('f1_delta_vs_reference', '-')} | {row['tatoeba_mean']} | {row['projected_1m_minutes']} | "
            f"{row.get(f'projected_1m_minutes_nprobe{knn_1m_nprobe}', '-')} |"
        )
    lines += [f"\n*{row['label']}*: {row['recorded']}." for row in results.values() if row.get("recorded")]
    commits = [f"{row['label']} {row['machine'].get('commit') or '(not recorded)'}" for row in results.values()]
    lines += [
        "",
        "The code each row ran (mlembed's commit; rows of an earlier invocation kept by --resume): "
        + "; ".join(commits)
        + ".",
    ]
    if "run" in summary:
        which = (
            "Fastest run within 0.5 F1 of the reference"
            if summary["within_0_5_f1"]
            else "No run within 0.5 F1 of the reference; the fastest"
        )
        lines += [
            "",
            f"{which}: **{summary['run']}**, {summary['speedup_vs_reference']}x "
            f"the reference, Δ F1 {summary['f1_delta_vs_reference']}, 1M x 1M projected "
            f"{summary['projected_1m_minutes']} min.",
        ]
    previous = load_results("mining_e2e")
    if not results and previous.get("runs"):  # no 200k run here yet: the table stays as its own run wrote it
        data = previous | {"summary": previous.get("summary", {}) | {"measured_1m": big}}
        old_md = (RESULTS / "mining_e2e.md").read_text(encoding="utf-8")
        lines = [old_md.split("\n## 1M x 1M")[0].rstrip("\n")]
    if big:
        files, here = big["files"], big["machine"]
        lines += [
            "",
            "## 1M x 1M, measured",
            "",
            f"{here['cpu_model']}, {here['cpu_count']} CPUs (flags: {', '.join(here['cpu_flags'])}). "
            f"{files['src_lines']:,} x {files['tgt_lines']:,} lines: the {files['gold_pairs']:,} NTREX gold pairs "
            f"planted among real distractors, each side filled with {files['joined_distractors'][0]:,} / "
            f"{files['joined_distractors'][1]:,} distinct lines joined from two unrelated real lines of that side "
            f"(mean {files['mean_chars'][0]} / {files['mean_chars'][1]} characters a line). One run each, end to end "
            "from the text files; the exact search's F1 on the same files is the reference for F1.",
            "",
            "| run | wall min | "
            + " | ".join(f"{s} s" for s in stage_names)
            + " | peak RSS MB (stage) | F1 | P | R | gold among candidates |",
            "|---|---:|" + "---:|" * (len(stage_names) + 5),
        ]
        for row in big["runs"].values():
            s = row["stages_s"]
            lines.append(
                f"| {row['label']} | {minutes_cell(row)} | "
                + " | ".join(str(s.get(k, "-")) for k in stage_names)
                + f" | {peak_cell(row)} | {row['f1']} | {row['precision']} | {row['recall']} | {row.get('gold_candidates', '-')} |"
            )
        lines += [f"\n*{row['label']}*: {row['recorded']}." for row in big["runs"].values() if row.get("recorded")]
        commits = [
            f"{row['label']} {row['machine'].get('commit') or '(not recorded)'}" for row in big["runs"].values()
        ]
        lines += ["", "The code each run ran (mlembed's commit): " + "; ".join(commits) + "."]
        delta = big["f1_delta_vs_exact"]
        lines += [
            "",
            f"Measured: **{big['minutes']} min**, peak RSS **{big['peak_rss_mb']:,.0f} MB**, F1 {big['f1']}"
            + (
                f", Δ F1 vs the exact search **{delta:+.2f}**."
                if delta is not None
                else " (the exact search's F1: not yet measured)."
            ),
        ]
    write_results("mining_e2e", data, "\n".join(lines))


def work_of(args: argparse.Namespace, size: int) -> Path:
    """The work folder of the files of ``size`` lines a side."""
    return args.work / str(size)


if __name__ == "__main__":
    RESULTS.mkdir(parents=True, exist_ok=True)
    main()
