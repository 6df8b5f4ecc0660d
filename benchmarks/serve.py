"""Load test of ``mlembed serve`` on loopback, against the in-process ceiling and an unbatched floor.

Same run, same sentences (Tatoeba test sentences of every language in ``../shared/data``, shuffled):

* ``in-process``: plain ``SentenceTransformer.encode`` (its default batch of 32) on all the sentences: the ceiling
  in sentences/s (mlembed's own ``encode``, as the server's forward runs it, beside it); and one sentence per
  call: the latency of a single forward pass.
* ``mlembed serve``: the server as users start it (micro-batching on), in its own process.
* ``unbatched``: the same server with ``--max-batch 1``: one request, one forward pass (the floor).

For each server and concurrency (1, 8, 32 connections, each sending its next request when the last
is answered) ``wrk`` (a C load generator, so the client costs little CPU) runs for ``--seconds`` and
records requests/s, p50/p99 latency and errors (non-2xx and socket errors); sentences/s is
requests/s x ``--per-request``. The server's resident memory is read from ``/proc`` after warm-up
and after each level, and its ``/healthz`` counters give the mean batch of each level. Requests are ``POST /v1/embeddings`` with ``--per-request``
sentences and ``encoding_format=base64`` (what the ``openai`` client sends). Every run stops by itself.

**Alone or batched.** A server batches a request with whatever else is queued, so the same sentence may be
read alone or beside long inputs (padded to their length within a model call). For ``--consistency``
sentences, each is sent alone and then first in one request with ``--long`` long inputs (12 joined
sentences each); the two vectors are compared (max absolute difference, lowest cosine). Measured with the
server at fp32 (``MLEMBED_PRECISION=fp32``) and at the CPU's own choice (``auto``: bf16 on CPUs with native
bf16), each named by ``/info``'s ``model_dtype``.

Writes ``benchmarks/results/serve.{json,md}``. Run with ``nice -n 5 python benchmarks/serve.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, require_shared, write_results


def sentences(shared: Path, n: int) -> list[str]:
    out = []
    for path in sorted((shared / "tatoeba").glob("tatoeba.*-eng.*")):
        out += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(0).shuffle(out)
    return out[:n]


def in_process(model_name: str, texts: list[str], single: int) -> dict:
    from mlembed.models import load_model

    model = load_model(model_name)  # the plain SentenceTransformer mlembed loads
    model.encode(texts[:64])
    t0 = time.perf_counter()
    model.encode(texts)  # sentence-transformers' defaults (batch 32, sorted by length)
    rate = len(texts) / (time.perf_counter() - t0)
    from mlembed.encoding import encode

    encode(texts[:64], model)
    t0 = time.perf_counter()
    encode(texts, model)  # mlembed's own: token-budget batches, `auto` precision (the server's forward)
    mlembed_rate = len(texts) / (time.perf_counter() - t0)
    lat = []
    for text in texts[:single]:
        t = time.perf_counter()
        model.encode([text], batch_size=1)
        lat.append((time.perf_counter() - t) * 1000)
    return {
        "sentences_per_s": round(rate, 1),
        "mlembed_encode_sentences_per_s": round(mlembed_rate, 1),
        "single_forward_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "single_forward_ms_p99": round(float(np.percentile(lat, 99)), 2),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, extra: list[str], env: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "mlembed", "-q", "serve", "--model", model, "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start in 120 s")


def lua_script(texts: list[str], model: str, per_request: int, path: Path) -> Path:
    """A wrk script cycling through the sentences, ``per_request`` to a request, base64 responses."""
    bodies = []
    for i in range(0, len(texts) - per_request + 1, per_request):
        chunk = texts[i : i + per_request]
        body = {"model": model, "input": chunk if per_request > 1 else chunk[0], "encoding_format": "base64"}
        bodies.append(json.dumps(json.dumps(body, ensure_ascii=True)))
    path.write_text(
        "bodies = {\n" + ",\n".join(bodies) + "\n}\ncounter = 0\n"
        "request = function()\n  counter = counter + 1\n"
        '  return wrk.format("POST", "/v1/embeddings", {["Content-Type"] = "application/json"}, '
        "bodies[(counter % #bodies) + 1])\nend\n"
    )
    return path


def _ms(value: str) -> float:
    units = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}
    num, unit = re.fullmatch(r"([\d.]+)([a-z]+)", value).groups()
    return round(float(num) * units[unit], 2)


def load(url: str, lua: Path, concurrency: int, seconds: float) -> dict:
    """One wrk run: ``concurrency`` connections, each sending its next request when answered."""
    cmd = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds:g}s",
        "--timeout",
        "60s",
        "--latency",
        "-s",
        str(lua),
        url + "/",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    pct = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", out, re.M))
    if "50" not in pct:
        raise SystemExit(f"wrk gave no latency distribution ({' '.join(cmd)}):\n{out}")
    requests = int(re.search(r"^\s+(\d+) requests in", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {
        "concurrency": concurrency,
        "requests": requests,
        "requests_per_s": round(rps, 1),
        "p50_ms": _ms(pct["50"]),
        "p99_ms": _ms(pct["99"]),
        "errors": errors,
    }


def run_server(label: str, extra: list[str], per_request: int, lua: Path, args: argparse.Namespace) -> dict:
    import httpx

    proc, url = start_server(args.model, extra)
    try:
        load(url, lua, 4, 2.0)  # warm-up (first forwards, allocator)
        out = {"server": label, "args": extra, "per_request": per_request, "rss_mb_start": rss_mb(proc.pid)}
        out["levels"] = []
        for c in [*args.concurrency, args.concurrency[-1]]:  # the last level twice: memory must not grow on a rerun
            before = httpx.get(f"{url}/healthz").json()["batching"]
            rss_before = rss_mb(proc.pid)
            level = load(url, lua, c, args.seconds)
            after = httpx.get(f"{url}/healthz").json()["batching"]
            level["sentences_per_s"] = round(level["requests_per_s"] * per_request, 1)
            batches = max(after["batches"] - before["batches"], 1)
            level["mean_batch"] = round((after["sentences"] - before["sentences"]) / batches, 1)
            level["rss_mb_before"], level["rss_mb_after"] = rss_before, rss_mb(proc.pid)
            out["levels"].append(level)
            print(label, per_request, level, flush=True)
        out["repeat"] = out["levels"].pop()
        out["rss_mb_end"] = rss_mb(proc.pid)
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def consistency(model: str, texts: list[str], n: int, long: int, precision: str | None) -> dict:
    """The same sentences' vectors alone vs first in a batch of ``long`` long inputs, from one server."""
    import httpx

    env = {k: v for k, v in os.environ.items() if k != "MLEMBED_PRECISION"}
    if precision:
        env["MLEMBED_PRECISION"] = precision
    proc, url = start_server(model, [], env=env)
    try:
        dtype = httpx.get(f"{url}/info").json()["model_dtype"]
        name = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
        pool = texts[n:]
        longs = [" ".join(pool[i * 12 : (i + 1) * 12]) for i in range(long)]

        def vector(inputs: list[str]) -> np.ndarray:
            r = httpx.post(f"{url}/v1/embeddings", json={"model": name, "input": inputs}, timeout=120)
            r.raise_for_status()
            return np.array(r.json()["data"][0]["embedding"], dtype=np.float32)

        alone = np.stack([vector([t]) for t in texts[:n]])
        batched = np.stack([vector([t, *longs]) for t in texts[:n]])
    finally:
        proc.terminate()
        proc.wait(30)
    diff = np.abs(alone - batched).max(axis=1)
    cos = np.sum(alone * batched, axis=1)
    out = {
        "precision_env": precision or "auto (unset)",
        "model_dtype": dtype,
        "sentences": n,
        "long_inputs": long,
        "max_abs_diff": float(diff.max()),
        "median_abs_diff": float(np.median(diff)),
        "min_cosine": round(float(cos.min()), 6),
        "identical": int((diff == 0).sum()),
    }
    print("consistency", out, flush=True)
    return out


def render(data: dict) -> str:
    ip = data["in_process"]
    lines = [
        "# `mlembed serve` under load (loopback)",
        "",
        "Produced by `benchmarks/serve.py` (its docstring gives the method).",
        "",
        f"Model `{data['model']}`, base64 responses, {data['seconds']:g} s per level, load by {data['load_generator']}; "
        f"{data['machine']['cpu_count']} CPUs ({data['machine']['cpu_model']}; flags "
        f"{', '.join(data['machine']['cpu_flags'])}), native bf16: {data['machine']['native_bf16']}, the server's "
        f"precision: {data['server_dtype']}; the load generator shares the CPUs with the server.",
        "",
        f"In-process ceiling (plain `SentenceTransformer.encode` of all the sentences, default batch 32): "
        f"**{ip['sentences_per_s']} sentences/s** (mlembed's `encode`, token-budget batches at `auto` precision as the "
        f"server runs: {ip['mlembed_encode_sentences_per_s']} sentences/s); a single forward pass of one sentence: p50 "
        f"{ip['single_forward_ms_p50']} ms, p99 {ip['single_forward_ms_p99']} ms.",
        "",
        "| server | sentences per request | connections | requests/s | sentences/s | x in-process | x mlembed encode | "
        "p50 ms | p99 ms | p99 / single forward p50 | mean batch | errors | RSS MB after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in data["servers"]:
        for lv in run["levels"]:
            lines.append(
                f"| {run['server']} | {run['per_request']} | {lv['concurrency']} | {lv['requests_per_s']} | "
                f"{lv['sentences_per_s']} | {lv['sentences_per_s'] / ip['sentences_per_s']:.2f} | "
                f"{lv['sentences_per_s'] / ip['mlembed_encode_sentences_per_s']:.2f} | {lv['p50_ms']} | "
                f"{lv['p99_ms']} | {lv['p99_ms'] / ip['single_forward_ms_p50']:.2f} | {lv['mean_batch']} | "
                f"{lv['errors']} | {lv['rss_mb_after']} |"
            )
    lines += [
        "",
        "Server memory (RSS MB): after warm-up -> at the end; and over a second run of the last level "
        "(a leak grows with every request; a warm allocator does not):",
        "",
    ]
    for run in data["servers"]:
        r = run["repeat"]
        lines.append(
            f"- {run['server']}, {run['per_request']} per request: {run['rss_mb_start']} -> {run['rss_mb_end']} MB; "
            f"rerun of {r['concurrency']} connections ({r['requests']:,} requests, {r['errors']} errors): "
            f"{r['rss_mb_before']} -> {r['rss_mb_after']} MB"
        )
    lines += [
        "",
        "The same sentence alone and first in a request with long inputs (vectors L2-normalised):",
        "",
        "| server precision | sentences | long inputs beside it | max abs diff | median abs diff | lowest cosine | identical |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in data["consistency"]:
        lines.append(
            f"| {c['model_dtype']} ({c['precision_env']}) | {c['sentences']} | {c['long_inputs']} | "
            f"{c['max_abs_diff']:.2e} | {c['median_abs_diff']:.2e} | {c['min_cosine']} | {c['identical']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm-en")
    ap.add_argument("--concurrency", type=int, nargs="*", default=[1, 8, 32])
    ap.add_argument("--seconds", type=float, default=15.0, help="per level [%(default)s]")
    ap.add_argument("--per-request", type=int, nargs="*", default=[1, 8], help="sentences per request [%(default)s]")
    ap.add_argument("--sentences", type=int, default=4000)
    ap.add_argument("--consistency", type=int, default=64, help="sentences sent alone and batched [%(default)s]")
    ap.add_argument("--long", type=int, default=15, help="long inputs beside each of them [%(default)s]")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("benchmarks/serve.py drives the load with wrk: apt-get install wrk")
    texts = sentences(require_shared(), args.sentences)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    data = {
        "machine": machine(),
        "model": args.model,
        "seconds": args.seconds,
        "load_generator": " ".join(version.split()[:2]),
        "in_process": in_process(args.model, texts, 200),
        "servers": [],
    }
    print("in-process", data["in_process"], flush=True)
    data["consistency"] = [consistency(args.model, texts, args.consistency, args.long, p) for p in ("fp32", None)]
    data["server_dtype"] = data["consistency"][-1]["model_dtype"]
    work = Path(tempfile.mkdtemp())
    for per_request in args.per_request:
        lua = lua_script(texts, args.model, per_request, work / f"load-{per_request}.lua")
        for label, extra in (("mlembed serve", []), ("unbatched (--max-batch 1)", ["--max-batch", "1"])):
            data["servers"].append(run_server(label, extra, per_request, lua, args))
    write_results("serve", data, render(data))


if __name__ == "__main__":
    main()
