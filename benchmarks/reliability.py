"""Reliability: faults injected into real runs, and what mlembed survived (one run, figures in the results).

- **kill -9 at random points** (seeded) of ``encode``, ``index build``, ``mine`` and ``distill``: before
  each run the output path holds a *previous* output; after the kill it must hold that previous output
  or the new complete one (never a partial file), and a rerun (``--resume`` where the verb has it) must
  give output byte-identical to an uninterrupted run (``distill``: the same steps and weights).
- **fuzzing** (hypothesis) of every reader and of the ``data`` verb with arbitrary bytes: inputs tried,
  tracebacks (goal 0), rows silently lost from well-formed files (goal 0).
- **two concurrent distill runs** sharing one teacher cache: both finish, every cached vector is the
  teacher's vector of its sentence.
- **mine on a nearly full disk** (tmpfs of several sizes, needs root): a clear error or a correct result,
  no partial output.
- **encode under ``ulimit -v``** below its peak: a clear memory error, no half-written file.
- **distill under ``ulimit -v`` 4 GB** (the main job, a short budget): a one-line error or a finished run,
  never a traceback or a half-written model.
- **serve overloaded** (a small queue, many concurrent requests) while clients hang up mid-request: every
  answer is 200 with its own rows or 503, the server stays up, logs no traceback and answers afterwards.

The kill -9 harness (run, kill, compare, rerun) and the ``ulimit -v`` cap are ``_faults.py``; this script holds
the scenarios and the report.

    sudo python benchmarks/reliability.py            # ~15 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import MLEMBED, ROOT, load_results, machine, write_results
from _faults import address_space_limit, digest, error_line, kill_trials, run_mlembed, timed


def sentences(n: int, seed: int) -> list[str]:
    """Real English UI messages from this machine's gettext catalogs (deduplicated, shuffled)."""
    from mlembed.data import read_pairs

    seen: dict[str, None] = {}
    for pair in read_pairs("gettext:system:de"):
        if 3 <= len(pair.src.split()) <= 30:
            seen.setdefault(pair.src.replace("\t", " "), None)
        if len(seen) >= 4 * n:
            break
    out = list(seen)
    random.Random(seed).shuffle(out)
    return out[:n]


def fuzz(examples: int) -> dict:
    """Run the fuzz targets of tests/fuzzing.py with ``examples`` inputs each; count outcomes."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    sys.path.insert(0, str(ROOT / "tests"))
    from fuzzing import SEPARATORS, cli_data, read_bytes, tsv_round_trip

    chunks = st.sampled_from(
        [b"\x00", b"\r\n", b"\t", b"\xff", b"\xef\xbb\xbf", b"\n", b"a" * 1_000_000, b"Hallo", b"\xe4\xbd"]
    )
    raw = st.one_of(st.binary(max_size=2000), st.lists(chunks, max_size=40).map(b"".join))
    field = st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters=SEPARATORS), min_size=1, max_size=60
    )
    conf = settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    out: dict[str, dict] = {}

    def reader_target(kind: str, counts: dict):
        @conf
        @given(data=raw, other=raw)
        def target(data, other):
            counts["tried"] += 1
            try:
                counts["read" if read_bytes(kind, data, other) == "ok" else "clear_error"] += 1
            except Exception as exc:  # noqa: BLE001 - what we count
                counts["tracebacks"] += 1
                print(f"fuzz {kind}: {type(exc).__name__}: {exc} on {data[:80]!r}", flush=True)

        return target

    for kind in ("tsv", "pair", "jsonl", "gettext"):
        counts = {"tried": 0, "read": 0, "clear_error": 0, "tracebacks": 0}
        reader_target(kind, counts)()
        out[f"reader {kind}"] = counts
    lost = {"tried": 0, "rows": 0, "rows_lost": 0, "tracebacks": 0}

    @conf
    @given(
        rows=st.lists(st.tuples(field, field).filter(lambda r: r[0].strip() and r[1].strip()), min_size=1, max_size=50)
    )
    def round_trip(rows):
        lost["tried"] += 1
        lost["rows"] += len(rows)
        try:
            lost["rows_lost"] += tsv_round_trip(rows)
        except Exception as exc:  # noqa: BLE001
            lost["tracebacks"] += 1
            print(f"fuzz round trip: {exc}", flush=True)

    round_trip()
    out["well-formed tsv round trip"] = lost
    cli = {"tried": 0, "exit_0": 0, "exit_2": 0, "tracebacks": 0}

    @settings(
        max_examples=max(20, examples // 10), deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(data=raw)
    def verb(data):
        cli["tried"] += 1
        try:
            cli[f"exit_{cli_data(data)}"] += 1
        except AssertionError as exc:
            cli["tracebacks"] += 1
            print(f"fuzz data verb: {exc}", flush=True)

    verb()
    out["data verb"] = cli
    return out


def concurrent_distill(work: Path, corpus: Path) -> dict:
    """Two distill runs at once on one teacher cache; then every cached row is checked against the teacher."""
    from mlembed.encoding import encode
    from mlembed.models import load_model
    from mlembed.teacher_cache import TeacherCache

    cache = work / "shared-cache"
    base = [
        "distill",
        "--student",
        "auto",
        "--data",
        f"tsv:{corpus}",
        "--max-steps",
        "4",
        "--max-minutes",
        "0",
        "--batch-size",
        "8",
        "--new-tokens",
        "300",
        "--eval-pairs",
        "8",
        "--no-table",
        "--cache-dir",
        str(cache),
    ]
    procs = [
        subprocess.Popen(
            MLEMBED + base + ["--output", str(work / f"c{i}"), "--seed", str(i)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    codes = [p.wait() for p in procs]
    errs = [p.stderr.read() for p in procs]
    teacher = load_model("minilm-en")
    english = [line.split("\t")[0] for line in corpus.read_text().splitlines()[1:]]
    tc = TeacherCache(cache, teacher)
    rows = tc.rows(english, show_progress=False)
    want = encode(english, teacher, precision="fp32")
    got = np.asarray(tc.vectors()[rows])
    cos = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
    return {
        "exit_codes": codes,
        "tracebacks": sum("Traceback" in e for e in errs),
        "cached_rows": len(tc),
        "sentences": len(english),
        "recomputed_after": tc.computed,
        "min_cosine_to_teacher": round(float(cos.min()), 5),
    }


def full_disk(work: Path, src: Path, tgt: Path, reference: str) -> dict:
    """``mine`` with its output and work folder on tmpfs mounts of several sizes."""
    out = {"runs": 0, "correct": 0, "clear_errors": 0, "partial_outputs": 0, "tracebacks": 0, "skipped": None}
    for size_kb in (64, 512, 1536, 3072, 65536):
        mnt = work / f"tmpfs-{size_kb}k"
        mnt.mkdir(exist_ok=True)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mnt)], capture_output=True
        )
        if mounted.returncode != 0:
            out["skipped"] = f"cannot mount tmpfs (needs root): {mounted.stderr.decode().strip()}"
            return out
        try:
            done = run_mlembed(
                ["mine", "--src", str(src), "--tgt", str(tgt), "-o", str(mnt / "out.tsv"), "--threshold", "1.0"]
            )
            out["runs"] += 1
            out["tracebacks"] += "Traceback" in done.stderr
            if done.returncode == 0 and digest(mnt / "out.tsv") == reference:
                out["correct"] += 1
            elif done.returncode == 2 and not (mnt / "out.tsv").exists():
                out["clear_errors"] += 1
                out.setdefault("messages", []).append(
                    next((line for line in reversed(done.stderr.splitlines()) if "error:" in line), "?")[:200]
                )
            else:
                out["partial_outputs"] += 1
        finally:
            subprocess.run(["umount", str(mnt)], capture_output=True)
    return out


def memory_limit(work: Path, src: Path) -> dict:
    """``encode`` with its address space capped below what it needs (``--backend auto``'s one-time probe made
    first, without a cap: the rows measure encoding, not exporting every engine)."""
    run_mlembed(["encode", str(src), "-o", str(work / "warm.npy")])
    results = []
    for limit_gb in (1.5, 2.5, 3.5):
        target = work / f"mem-{limit_gb}.npy"
        done = subprocess.run(
            MLEMBED + ["encode", str(src), "-o", str(target)],
            capture_output=True,
            text=True,
            preexec_fn=address_space_limit(limit_gb),
        )
        results.append(
            {
                "limit_gb": limit_gb,
                "exit_code": done.returncode,
                "traceback": "Traceback" in done.stderr,
                "output": "complete"
                if done.returncode == 0 and target.exists()
                else "absent"
                if not target.exists()
                else "PARTIAL",
                "stray_temporaries": len([p for p in work.glob(f".{target.name}*")]),
                "last_line": error_line(done.stderr),
            }
        )
        print(f"memory limit {limit_gb} GB: {results[-1]}", flush=True)
    return {"runs": results}


def distill_memory_limit(work: Path, env: dict, limit_gb: float = 4.0) -> dict:
    """The main job (``mlembed distill``, a 1-minute budget) with its address space capped at ``limit_gb``."""
    target = work / "limited-student"
    done = subprocess.run(
        MLEMBED + ["distill", "--output", str(target), "--max-minutes", "1", "--no-table"],
        capture_output=True,
        text=True,
        preexec_fn=address_space_limit(limit_gb),
        env=env,
    )
    complete = all((target / f).exists() for f in ("modules.json", "mlembed.json", "model.safetensors"))
    result = {
        "limit_gb": limit_gb,
        "exit_code": done.returncode,
        "traceback": "Traceback" in done.stderr,
        "output": "complete" if complete else "absent" if not target.exists() else "PARTIAL",
        "last_line": error_line(done.stderr),
    }
    print(f"distill under {limit_gb} GB: {result}", flush=True)
    return result


def serve_overload(work: Path, env: dict, clients: int = 64, hangups: int = 24, seed: int = 0) -> dict:
    """``mlembed serve`` with an 8,192-sentence queue hit by ``clients`` concurrent requests of 512 sentences,
    ``hangups`` of them closing their connection right after sending; then one ordinary request."""
    import socket
    import threading

    import httpx

    rng = random.Random(seed)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (work / "serve.log").open("w")
    server = subprocess.Popen(
        MLEMBED + ["serve", "--model", "minilm-en", "--port", str(port), "--max-queue", "8192"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:  # wait for the state (health answers), not for a time
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        outcomes = {"200 correct rows": 0, "200 wrong rows": 0, "503": 0, "hung up": 0}  # + "other (why)"
        lock = threading.Lock()

        def client(i: int) -> None:
            texts = [f"request {i} sentence {j} about {rng.random():.6f}" for j in range(512)]
            body = json.dumps({"input": texts, "model": "minilm-en", "encoding_format": "float"}).encode()
            if i < hangups:  # send the whole request, then close without reading the answer
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    head = "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                    time.sleep(rng.random() * 0.5)
                with lock:
                    outcomes["hung up"] += 1
                return
            try:
                headers = {"Content-Type": "application/json"}
                r = httpx.post(f"{url}/v1/embeddings", content=body, headers=headers, timeout=300)
                key = f"other ({r.status_code})"
                if r.status_code == 200:
                    rows = r.json()["data"]
                    ok = len(rows) == 512 and [d["index"] for d in rows] == list(range(512))
                    key = "200 correct rows" if ok else "200 wrong rows"
                elif r.status_code == 503:
                    key = "503"
            except httpx.HTTPError as exc:
                key = f"other ({type(exc).__name__})"
            with lock:
                outcomes[key] = outcomes.get(key, 0) + 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = httpx.post(f"{url}/v1/embeddings", json={"input": "still here?", "model": "minilm-en"}, timeout=120)
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    text = (work / "serve.log").read_text(errors="replace")
    result = {
        "clients": clients,
        "hangups": hangups,
        "outcomes": outcomes,
        "server_alive": alive,
        "answers_after": after.status_code,
        "tracebacks": text.count("Traceback"),
    }
    print(f"serve overload: {result}", flush=True)
    return result


#: sections ``--redo`` measures again alone (memory_limit reads the en.txt a full run left in --work)
REDOABLE: dict[str, Callable[[Path, dict, int], dict]] = {
    "memory_limit": lambda work, env, seed: memory_limit(work, work / "en.txt"),
    "distill_memory_limit": lambda work, env, seed: distill_memory_limit(work, env),
    "serve_overload": lambda work, env, seed: serve_overload(work, env, seed=seed),
}


def measure(args: argparse.Namespace, env: dict) -> dict:
    """Every section, from an empty ``--work``."""
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    rng = random.Random(args.seed)
    n_encode, n_index, n_mine, n_distill = (int(x) for x in args.kills.split(","))

    w = args.work
    text = sentences(3000, args.seed)
    (w / "en.txt").write_text("\n".join(text[:2000]) + "\n")
    (w / "old.txt").write_text("\n".join(text[2000:2100]) + "\n")
    (w / "a.txt").write_text("\n".join(text[:1500]) + "\n")
    (w / "b.txt").write_text("\n".join(text[700:2200]) + "\n")  # 800 lines in common: pairs to mine
    (w / "pairs.eng-deu.tsv").write_text("eng\tdeu\n" + "".join(f"{s}\t{s[::-1]}\n" for s in text[:160]))
    faults: dict[str, dict] = {}

    # encode
    timed(["encode", str(w / "old.txt"), "-o", str(w / "previous.npy")], env)
    secs = timed(["encode", str(w / "en.txt"), "-o", str(w / "reference.npy")], env)
    enc = ["encode", str(w / "en.txt"), "-o", str(w / "out" / "e.npy")]
    (w / "out").mkdir()
    faults["encode"] = kill_trials(
        "encode",
        enc,
        w / "out" / "e.npy",
        w / "previous.npy",
        digest(w / "reference.npy"),
        secs,
        n_encode,
        rng,
        enc,
        env,
    )
    # index build
    timed(["index", "build", "--input", str(w / "old.txt"), "-o", str(w / "previous-index"), "--type", "ivf"], env)
    idx = ["index", "build", "--input", str(w / "en.txt"), "-o", str(w / "ref-index"), "--type", "ivf"]
    secs = timed(idx, env)
    (w / "idx").mkdir()
    idx_out = ["index", "build", "--input", str(w / "en.txt"), "-o", str(w / "idx" / "index"), "--type", "ivf"]
    ref_digest = digest(w / "ref-index")
    meta = json.loads((w / "ref-index" / "meta.json").read_text())
    faults["index build"] = kill_trials(
        "index", idx_out, w / "idx" / "index", w / "previous-index", ref_digest, secs, n_index, rng, idx_out, env
    )
    faults["index build"]["note"] = f"{meta['count']} sentences, {meta['factory']}"
    # mine: small shards so a kill lands between saved shards; --resume continues
    mine = ["mine", "--src", str(w / "a.txt"), "--tgt", str(w / "b.txt"), "--threshold", "1.0", "--shard-size", "100"]
    timed(mine + ["-o", str(w / "previous.tsv"), "--k", "2"], env)
    secs = timed(mine + ["-o", str(w / "reference.tsv")], env)
    (w / "mine").mkdir()
    out_tsv = w / "mine" / "pairs.tsv"
    faults["mine"] = kill_trials(
        "mine",
        mine + ["-o", str(out_tsv)],
        out_tsv,
        w / "previous.tsv",
        digest(w / "reference.tsv"),
        secs,
        n_mine,
        rng,
        mine + ["-o", str(out_tsv), "--resume"],
        env,
        workdirs=(w / "mine" / "pairs.tsv.work",),
    )
    # distill: a tiny auto student, checkpoints every 2 steps. Learning its vocabulary is not reproducible
    # across processes (the tokenizers trainer breaks count ties in hash-map order), so every trial starts from
    # one prepared run (plan, data, initial student) and must end on the weights of that run trained straight.
    dist = [
        "distill",
        "--student",
        "auto",
        "--data",
        f"tsv:{w / 'pairs.eng-deu.tsv'}",
        "--max-steps",
        "8",
        "--max-minutes",
        "0",
        "--batch-size",
        "8",
        "--save-steps",
        "2",
        "--eval-steps",
        "100",
        "--eval-pairs",
        "8",
        "--new-tokens",
        "300",
        "--no-table",
    ]
    timed(dist + ["--output", str(w / "previous-student"), "--max-steps", "2"], env)
    timed(dist + ["--output", str(w / "prepared"), "--keep-work"], env)
    shutil.rmtree(w / "prepared" / "_distill" / "checkpoints")

    def weights(folder: Path) -> str:  # model weights only; the card records wall-clock seconds
        return digest(folder / "model.safetensors") if (folder / "model.safetensors").exists() else "absent"

    def staged(target: Path, base: Path) -> None:  # base's files plus the prepared work folder, as after a kill
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(base, target, ignore=shutil.ignore_patterns("_distill"))
        shutil.copytree(w / "prepared" / "_distill", target / "_distill")

    staged(w / "ref-student", w / "previous-student")
    secs = timed(dist + ["--output", str(w / "ref-student"), "--resume"], env)
    reference = weights(w / "ref-student")
    (w / "dist").mkdir()
    target = w / "dist" / "student"
    resume = dist + ["--output", str(target), "--resume"]
    faults["distill"] = kill_trials(
        "distill",
        resume,
        target,
        w / "previous-student",
        reference,
        secs,
        n_distill,
        rng,
        resume,
        env,
        setup=lambda: staged(target, w / "previous-student"),
        measure=weights,
    )

    fuzzed = fuzz(args.fuzz_examples)
    concurrent = concurrent_distill(w, w / "pairs.eng-deu.tsv")
    disk = full_disk(w, w / "a.txt", w / "b.txt", digest(w / "reference.tsv"))
    memory = memory_limit(w, w / "en.txt")
    distill_memory = distill_memory_limit(w, env)
    overload = serve_overload(w, env, seed=args.seed)
    return {
        "kills": faults,
        "fuzz": fuzzed,
        "concurrent_distill": concurrent,
        "full_disk": disk,
        "memory_limit": memory,
        "distill_memory_limit": distill_memory,
        "serve_overload": overload,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mlembed-reliability")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fuzz-examples", type=int, default=1500, help="inputs per fuzz target")
    parser.add_argument("--kills", default="20,10,20,10", help="kill trials of encode,index,mine,distill")
    parser.add_argument(
        "--redo",
        default="",
        help=f"comma-separated sections to measure again ({', '.join(REDOABLE)}); the others are kept from "
        "benchmarks/results/reliability.json (a fixed fault is remeasured without the 75-minute rest)",
    )
    args = parser.parse_args()
    redo = [r for r in args.redo.split(",") if r]
    if any(r not in REDOABLE for r in redo):
        raise SystemExit(f"--redo {args.redo}: expected sections among {', '.join(REDOABLE)}")
    info = machine()
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        MLEMBED_CACHE=str(args.work / "cache"),
    )
    t_start = time.time()
    if redo:
        kept = load_results("reliability")
        if not kept:
            raise SystemExit("--redo: no benchmarks/results/reliability.json to keep the other sections from")
        args.work.mkdir(parents=True, exist_ok=True)
        sections = {r: REDOABLE[r](args.work, env, args.seed) for r in redo}
        results = {
            **kept,
            **sections,
            "redone": {"sections": redo, "machine": info, "date": time.strftime("%Y-%m-%d")},
        }
        minutes = kept["minutes"]
        args.seed, args.fuzz_examples, args.kills = (kept["args"][k] for k in ("seed", "fuzz_examples", "kills"))
        info = kept["machine"]
    else:
        results = measure(args, env)
        minutes = round((time.time() - t_start) / 60)
    faults, fuzzed, concurrent = results["kills"], results["fuzz"], results["concurrent_distill"]
    disk, memory, distill_memory = results["full_disk"], results["memory_limit"], results["distill_memory_limit"]
    overload = results["serve_overload"]

    injected = sum(f["trials"] for f in faults.values())
    survived = sum(f["trials"] - f["partial_outputs"] - f["rerun_failed"] for f in faults.values())
    tracebacks = (
        sum(f["tracebacks"] for f in faults.values())
        + sum(f["tracebacks"] for f in fuzzed.values())
        + concurrent["tracebacks"]
        + disk["tracebacks"]
        + sum(r["traceback"] for r in memory["runs"])
        + distill_memory["traceback"]
        + overload["tracebacks"]
    )
    lost = (
        fuzzed["well-formed tsv round trip"]["rows_lost"]
        + sum(f["partial_outputs"] for f in faults.values())
        + (distill_memory["output"] == "PARTIAL")
        + overload["outcomes"]["200 wrong rows"]
    )
    inputs = sum(f["tried"] for f in fuzzed.values())
    rows = [
        f"| kill -9 of `{k}` | {f['trials']} | {f['killed_mid_run']} | {f['partial_outputs']} | "
        f"{f['rerun_identical']}/{f['trials']} | {f['stray_after_kill']} | {f['stray_temporaries']} | {f['tracebacks']} |"
        for k, f in faults.items()
    ]
    fz = [
        f"| {k} | {f['tried']:,} | "
        + ", ".join(f"{kk} {vv:,}" for kk, vv in f.items() if kk not in ("tried", "tracebacks"))
        + f" | {f['tracebacks']} |"
        for k, f in fuzzed.items()
    ]
    md = [
        "# Reliability: faults injected and survived (one run)",
        "",
        f"Machine: {info['cpu_count']} CPU cores, native bf16: {'yes' if info['native_bf16'] else 'no'}; "
        f"load average at start {', '.join(map(str, info['load_average_1_5_15']))}; seed {args.seed}; "
        f"{minutes} min."
        + (
            f" Measured again on {results['redone']['date']} ({', '.join(results['redone']['sections'])}; native "
            f"bf16: {'yes' if results['redone']['machine']['native_bf16'] else 'no'}), after a fix; the rest is that "
            "run's."
            if "redone" in results
            else ""
        ),
        "",
        "| faults injected | survived | bad inputs tried | tracebacks (goal 0) | bytes lost (goal 0) |",
        "|---:|---:|---:|---:|---:|",
        f"| {injected} | {survived} | {inputs:,} | {tracebacks} | {lost} |",
        "",
        "*Survived*: after the kill the output path held the previous output or the complete new one, and the "
        "rerun succeeded. *Bytes lost*: partial outputs plus rows of well-formed files not read back.",
        "",
        "## kill -9 at a random moment (uniform over 10-95 % of an uninterrupted run's time)",
        "",
        "| fault | trials | killed mid-run | partial outputs | rerun identical to uninterrupted | temporaries after the kill | "
        "left after the rerun | tracebacks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Temporaries: hidden files or staging folders a killed process leaves beside the output (kill -9 runs no "
        "cleanup; SIGTERM and Ctrl-C remove them, tested). They never replace the output; the next run removes "
        "those of dead processes (their names carry the writer's PID).",
        "",
        "## Fuzzing (hypothesis, arbitrary bytes: NUL, CR, BOM, invalid UTF-8, 1 MB lines, mismatched files)",
        "",
        "| target | inputs | outcomes | tracebacks |",
        "|---|---:|---|---:|",
        *fz,
        "",
        "## Two distill runs at once on one teacher cache",
        "",
        f"Exit codes {concurrent['exit_codes']}, tracebacks {concurrent['tracebacks']}; {concurrent['sentences']} "
        f"English sentences, {concurrent['cached_rows']} cached rows, {concurrent['recomputed_after']} to recompute "
        f"afterwards; lowest cosine of a cached row to the teacher's vector of its sentence: {concurrent['min_cosine_to_teacher']}.",
        "",
        "## mine with its output on a nearly full disk (tmpfs of 64 KB to 64 MB)",
        "",
        (
            f"Skipped: {disk['skipped']}"
            if disk["skipped"]
            else f"{disk['runs']} runs: {disk['correct']} correct, {disk['clear_errors']} clear errors, "
            f"{disk['partial_outputs']} partial outputs, {disk['tracebacks']} tracebacks. Messages: "
            + "; ".join(f"`{m}`" for m in disk.get("messages", []))
        ),
        "",
        "## encode under `ulimit -v`",
        "",
        "| address-space limit | exit code | output | stray temporaries | message |",
        "|---:|---:|---|---:|---|",
        *[
            f"| {r['limit_gb']} GB | {r['exit_code']} | {r['output']} | {r['stray_temporaries']} | `{r['last_line']}` |"
            for r in memory["runs"]
        ],
        "",
        f"## `mlembed distill` (the main job, 1-minute budget) under `ulimit -v` {distill_memory['limit_gb']:g} GB",
        "",
        f"Exit code {distill_memory['exit_code']}, output {distill_memory['output']}, traceback "
        f"{'yes' if distill_memory['traceback'] else 'no'}; last line: `{distill_memory['last_line']}`.",
        "",
        f"## `mlembed serve` overloaded: {overload['clients']} concurrent requests of 512 sentences on an 8,192-sentence "
        f"queue, {overload['hangups']} clients hanging up mid-request",
        "",
        "Outcomes: "
        + ", ".join(f"{k} {v}" for k, v in overload["outcomes"].items())
        + f"; server alive afterwards: {'yes' if overload['server_alive'] else 'NO'}, next request answered "
        f"{overload['answers_after']}; tracebacks in its log: {overload['tracebacks']}.",
        "",
        f"Command: `python benchmarks/reliability.py --seed {args.seed} --fuzz-examples {args.fuzz_examples} --kills {args.kills}`",
    ]
    data = {
        "benchmark": "reliability",
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "summary": {
            "faults_injected": injected,
            "survived": survived,
            "bad_inputs": inputs,
            "tracebacks": tracebacks,
            "bytes_lost": lost,
        },
        "minutes": minutes,
        **{k: v for k, v in results.items() if k not in ("benchmark", "machine", "args", "summary", "minutes")},
    }
    write_results("reliability", data, "\n".join(md))


if __name__ == "__main__":
    main()
