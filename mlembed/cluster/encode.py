"""``mlembed encode --ray``: text files -> ``.npy`` shards plus a manifest, encoded by a Ray actor pool.

The driver cuts the inputs into shards of ``shard_size`` lines (one pass counting newlines, keeping the
byte offset of each shard's first line). The shards still to do become a Ray dataset; ``map_batches``
runs them on a pool of actors, each loading the model once, and each shard is written by
:func:`mlembed.encoding.encode_to_npy` (atomic) with a small JSON beside it. A rerun, or Ray retrying a
killed actor's shard, skips shards whose JSON exists; ``manifest.json`` is written last, when all are
there. Rows are those single-process ``mlembed encode`` writes for the concatenated inputs, in order.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlembed.encoding import DEFAULT_TOKEN_BUDGET
from mlembed.files import DataError, atomic_open

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DEFAULT_SHARD_SIZE = 50_000


def plan_shards(files: Sequence[str | os.PathLike], shard_size: int = DEFAULT_SHARD_SIZE) -> list[dict]:
    """Shards of ``shard_size`` lines: ``{shard, file, first_line, offset, lines}``, files in the given order.

    Example:
        >>> import tempfile; p = os.path.join(tempfile.mkdtemp(), "s.txt")
        >>> _ = open(p, "w").write("a\\nbb\\nccc\\n")
        >>> [(s["first_line"], s["offset"], s["lines"]) for s in plan_shards([p], 2)]
        [(1, 0, 2), (3, 5, 1)]
    """
    if shard_size < 1:
        raise ValueError(f"--shard-size {shard_size}: expected a positive number of lines")
    shards: list[dict] = []
    for file in files:
        starts, line, offset, last = [0], 0, 0, b"\n"  # byte offsets of the shards' first lines
        with open(file, "rb") as fh:
            while block := fh.read(1 << 24):
                newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
                # the line after newline number line + i is line + i + 1 (0-based): a shard starts at multiples
                for i in range(-(line + 1) % shard_size, len(newlines), shard_size):
                    starts.append(offset + int(newlines[i]) + 1)
                line, offset, last = line + len(newlines), offset + len(block), block[-1:]
        total = line + (last != b"\n")  # a last line without a newline counts too
        for i, start in enumerate(starts):
            lines = min(shard_size, total - i * shard_size)
            if lines > 0:
                shards.append(
                    {
                        "shard": len(shards),
                        "file": str(file),
                        "first_line": i * shard_size + 1,
                        "offset": start,
                        "lines": lines,
                    }
                )
    return shards


class _ShardEncoder:
    """A Ray Data actor: loads the model once, then encodes each shard it is given into its own files."""

    def __init__(self, model: str, backend: str, output: str, options: dict):
        import torch

        from mlembed.backends import load_backend
        from mlembed.models import load_model

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))  # Ray's CPUs for this actor
        self.model = load_backend(load_model(model), backend, options["precision"])
        self.output, self.options = Path(output), options

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from mlembed.cluster import peak_rss_mb
        from mlembed.encoding import encode_to_npy
        from mlembed.files import read_lines
        from mlembed.windows import LengthReport, model_window

        rows = []
        for shard, file, first_line, offset, lines in zip(
            batch["shard"], batch["file"], batch["first_line"], batch["offset"], batch["lines"]
        ):
            stamp = self.output / f"shard-{int(shard):05d}.json"
            if not stamp.exists():  # a retried task may find its shard already done
                texts = [
                    t
                    for _, t in read_lines(
                        str(file), self.options["on_bad_line"], int(offset), int(first_line), int(lines)
                    )
                ]
                report = LengthReport(self.options["overflow"], model_window(self.model))
                encode_to_npy(
                    texts,
                    stamp.with_suffix(".npy"),
                    self.model,
                    count=len(texts),
                    normalize=self.options["normalize"],
                    dtype=self.options["dtype"],
                    precision=self.options["precision"],
                    token_budget=self.options["token_budget"],
                    overflow=self.options["overflow"],
                    report=report,
                    show_progress=False,
                )
                report.shift(int(first_line) - 1)  # inputs numbered by line of their file, from 0
                with atomic_open(stamp) as fh:
                    json.dump(
                        {
                            "rows": len(texts),
                            "pid": os.getpid(),
                            "peak_rss_mb": peak_rss_mb(),
                            "overflow": report.to_dict(),
                        },
                        fh,
                    )
            rows.append(json.loads(stamp.read_text())["rows"])
        return {"shard": np.asarray(batch["shard"]), "rows": np.asarray(rows)}


def encode_ray(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    model: str = "minilm-en",
    backend: str = "torch",
    address: str | None = None,
    actors: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    normalize: bool = False,
    dtype: str = "float32",
    precision: str = "auto",
    token_budget: int | None = DEFAULT_TOKEN_BUDGET,
    on_bad_line: str = "error",
    show_progress: bool = True,
    overflow: str = "split",
) -> dict:
    """Encode text files (one sentence a line) on a Ray cluster into ``output``: shards and ``manifest.json``.

    Args:
        inputs: text files, encoded in this order (rows of the shards follow it).
        model: a name or folder every worker can load; ``backend`` as in :mod:`mlembed.backends`
            (``auto`` is decided once, here, then the workers use that backend).
        address: the Ray cluster (``None``: ``$RAY_ADDRESS`` or a new local one).
        actors: encoders running at once (default: one per CPU of the cluster, each on one thread).
        shard_size: lines per shard, the unit of work, retry and resume.
        overflow: inputs longer than the model's window (:mod:`mlembed.windows`); each shard's counts are kept
            in its stamp and summed in the manifest's ``overflow`` (and logged).

    Returns:
        The manifest: model fingerprint, dimension, and per shard its file, line range and row range.

    Example:
        >>> encode_ray(["corpus.txt"], "corpus.emb")  # doctest: +SKIP
    """
    import ray
    from tqdm.auto import tqdm

    from mlembed.cluster import connect
    from mlembed.models import embedding_dim, fingerprint, load_model
    from mlembed.windows import LengthReport

    output = Path(output)
    files = [str(Path(f).resolve()) for f in inputs]
    for file in files:
        if not Path(file).is_file():
            raise DataError("no such file (expected a text file, one sentence a line)", file)
    options = {
        "normalize": normalize,
        "dtype": dtype,
        "precision": precision,
        "token_budget": token_budget,
        "on_bad_line": on_bad_line,
        "overflow": overflow,
    }
    if backend == "auto":  # decided once, here: every actor then runs the same engine
        from mlembed.backends import choose_backend

        backend = choose_backend(load_model(model), precision=precision)
    want = {
        "model": str(model),
        "fingerprint": fingerprint(model),
        "backend": backend,
        "files": files,
        "shard_size": shard_size,
        **options,
    }
    output.mkdir(parents=True, exist_ok=True)
    settings = output / "settings.json"
    if settings.exists() and json.loads(settings.read_text()) != want:
        raise DataError(
            "holds shards of another encoding (model, backend, files or options differ): use a new folder or "
            "remove it",
            output,
        )
    with atomic_open(settings) as fh:
        json.dump(want, fh, indent=1)
    shards = plan_shards(files, shard_size)
    todo = [s for s in shards if not (output / f"shard-{s['shard']:05d}.json").exists()]
    if todo:
        cpus = connect(address)
        actors = max(1, min(actors or cpus, len(todo)))
        per_actor = max(1, cpus // actors)
        dataset = ray.data.from_items(todo, override_num_blocks=len(todo)).map_batches(
            _ShardEncoder,
            fn_constructor_args=(str(model), backend, str(output), options),
            batch_size=1,
            concurrency=actors,
            num_cpus=per_actor,  # Ray Data restarts a killed actor and retries its shard (its defaults)
        )
        bar = tqdm(
            total=len(shards),
            initial=len(shards) - len(todo),
            unit="shard",
            desc="encode (ray)",
            disable=not show_progress,
        )
        for _ in dataset.iter_rows():
            bar.update(1)
        bar.close()
    manifest = _manifest(output, shards, want)
    LengthReport(**manifest["overflow"]).log("lines")
    manifest["dimension"] = manifest["dimension"] or embedding_dim(load_model(model))
    with atomic_open(output / MANIFEST) as fh:
        json.dump(manifest, fh, indent=1)
    return manifest


def _manifest(output: Path, shards: list[dict], want: dict) -> dict:
    from mlembed.windows import LengthReport

    entries, row = [], 0
    dim = None
    overflow = LengthReport(want["overflow"], None)
    for s in shards:
        name = f"shard-{s['shard']:05d}.npy"
        stamp = json.loads((output / name).with_suffix(".json").read_text())
        arr = np.load(output / name, mmap_mode="r")
        dim = int(arr.shape[1])
        entries.append(
            {
                "file": name,
                "source": s["file"],
                "lines": [s["first_line"], s["first_line"] + s["lines"] - 1],
                "rows": [row, row + stamp["rows"]],
                "worker_peak_rss_mb": stamp.get("peak_rss_mb"),
            }
        )
        row += stamp["rows"]
        if stamp.get("overflow"):
            shard_report = LengthReport(**stamp["overflow"])
            overflow.window = shard_report.window
            overflow.merge(shard_report)
    return {**want, "count": row, "dimension": dim, "shards": entries, "overflow": overflow.to_dict()}


def read_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of a finished ``encode --ray`` folder (DataError when it is missing or incomplete).

    Example:
        >>> read_manifest("corpus.emb")["count"]  # doctest: +SKIP
        1000000
    """
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise DataError(f"no {MANIFEST}: not a finished `mlembed encode --ray` output (rerun it to finish)", folder)
    return json.loads(path.read_text())


def shards_to_npy(folder: str | os.PathLike, output: str | os.PathLike, block: int = 1 << 24) -> Path:
    """Concatenate a shard folder's rows into one ``.npy`` (streamed, atomic), as single-process encode writes.

    Example:
        >>> shards_to_npy("corpus.emb", "corpus.npy")  # doctest: +SKIP
    """
    from mlembed.files import atomic_path

    folder, output = Path(folder), Path(output)
    manifest = read_manifest(folder)
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(manifest["dtype"])),
        "fortran_order": False,
        "shape": (manifest["count"], manifest["dimension"]),
    }
    with atomic_path(output, suffix=".npy") as tmp, open(tmp, "wb") as out:
        np.lib.format.write_array_header_1_0(out, header)
        for shard in manifest["shards"]:
            arr = np.load(folder / shard["file"], mmap_mode="r")
            with open(folder / shard["file"], "rb") as src:
                src.seek(arr.offset)
                while buf := src.read(block):
                    out.write(buf)
    return output
