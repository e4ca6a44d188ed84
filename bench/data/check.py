"""Pre-flight for the `data` setting, so bad data stops the matrix before any run starts.

    check(source=, data_format=, tokenizer_path=, seq_len=, ...)   # in the driver: no torch
    python -m bench.data.check '{"source": ..., "tokenizer_path": ..., ...}'   # the child it runs

The driver must not import torch, and loading a tokenizer through `AutoTokenizer` does
(transformers 5.24: `from transformers import AutoTokenizer` imports torch). So the cheap
checks (a known built-in, an existing file with a known extension, a valid format name) run
in the driver, and everything that needs the tokenizer (chat template, truncation, the share
left unsupervised) runs `prepare` in a child, the same code the worker runs. The child prints
one JSON line: {"data": the record's data block, "token_lengths": {...}} or {"error": "..."}.
"""

import json
import math
import os
import subprocess
import sys

from bench.data import formats, sources
from bench.util import paths
from bench.util.errors import BenchError

ARGS = ("source", "data_format", "tokenizer_path", "seq_len", "train_on_prompt", "packing", "heldout",
        "max_unsupervised_pct", "keep_duplicates", "trust_remote_code", "skip_bad_rows")


def _child_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(paths.REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HOME", str(paths.hf_home()))
    return env


def check(*, source: str, data_format: str = "auto", tokenizer_path, seq_len: int, train_on_prompt: bool = False,
          packing: bool = False, heldout: int = 64, max_unsupervised_pct: float = 10.0, keep_duplicates: bool = False,
          trust_remote_code: bool = False, skip_bad_rows: bool = False, timeout_s: float = 600) -> dict:
    """{"data": the `data` block runs will record, "token_lengths": {...}}; BenchError if unusable.
    `trust_remote_code` is passed to transformers as given, never left unset: unset, transformers
    asks on stdin whether to run a model's own code."""
    resolved = sources.resolve(source)
    if data_format not in formats.FORMATS:
        raise BenchError(f"unknown data format {data_format!r}; valid choices: {', '.join(formats.FORMATS)}")
    args = dict(source=resolved, data_format=data_format, tokenizer_path=str(tokenizer_path), seq_len=seq_len,
                train_on_prompt=train_on_prompt, packing=packing, heldout=heldout,
                max_unsupervised_pct=max_unsupervised_pct, keep_duplicates=keep_duplicates,
                trust_remote_code=trust_remote_code, skip_bad_rows=skip_bad_rows)
    try:
        done = subprocess.run([sys.executable, "-m", "bench.data.check", json.dumps(args)], capture_output=True,
                              stdin=subprocess.DEVNULL,
                              text=True, timeout=timeout_s, env=_child_env(), cwd=paths.REPO_ROOT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"data check of {resolved} did not finish within {timeout_s:g} s") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"data check of {resolved} failed (exit {done.returncode}): {tail[:200]}") from None
    if "error" in answer:
        raise BenchError(answer["error"])
    return answer


def length_summary(lengths: list) -> dict:
    """Median, p95, p99 and max of token counts (nearest rank), and the seq_len keeping 99% whole."""
    from bench.data.prepared import whole_len

    ordered = sorted(lengths)

    def rank(q):
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {"n": len(ordered), "median": rank(0.5), "p95": rank(0.95), "p99": rank(0.99), "max": ordered[-1],
            "seq_len_99pct_whole": whole_len(ordered)}


def _child(args: dict) -> dict:
    from transformers import AutoTokenizer

    from bench.data.prepared import prepare

    tokenizer = AutoTokenizer.from_pretrained(args.pop("tokenizer_path"),
                                              trust_remote_code=bool(args.pop("trust_remote_code", False)))
    prepared = prepare(tokenizer=tokenizer, **args)
    return {"data": prepared.info, "token_lengths": length_summary(prepared.lengths())}


def main(argv=None) -> int:
    raw = (argv if argv is not None else sys.argv[1:])
    try:
        args = json.loads(raw[0])
        if not isinstance(args, dict) or set(args) - set(ARGS):
            raise ValueError(f"expected a JSON object with keys among {', '.join(ARGS)}")
        print(json.dumps(_child(args)), flush=True)
        return 0
    except BenchError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 2
    except Exception as exc:  # a bug or a broken tokenizer: still one line for the driver
        print(json.dumps({"error": f"data check failed: {exc.__class__.__name__}: {' '.join(str(exc).split())[:300]}"}),
              flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
