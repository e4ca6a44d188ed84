"""Hub models against a stand-in of the hub on 127.0.0.1 (tests.hub_stub): fetched once into the
user's HF cache with the user's token, gated / missing / custom-code repos refused in one line,
custom code fetched and trusted only with --trust-remote-code, never an interactive prompt.

Every command runs in a subprocess with stdin closed and no controlling terminal, HF_HOME a
temporary directory (never the real ~/.cache/huggingface) and HF_ENDPOINT the stand-in.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub_stub import HubStub, Repo

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_stub_token_123"
TINY_RUN = ["--profile", "smoke", "--methods", "lora", "--steps", "2", "--no-eval", "--no-report", "--heldout", "4"]

CUSTOM_CONFIG = ("from transformers import LlamaConfig\n\n\n"
                 "class CustomConfig(LlamaConfig):\n    model_type = 'ftbench_custom'\n")
CUSTOM_MODEL = ("from transformers import LlamaForCausalLM\n\nfrom .configuration_custom import CustomConfig\n\n\n"
                "class CustomForCausalLM(LlamaForCausalLM):\n    config_class = CustomConfig\n")


def _custom_repo(tiny: Path) -> Repo:
    config = json.loads((tiny / "config.json").read_text())
    config.update(model_type="ftbench_custom", architectures=["CustomForCausalLM"],
                  auto_map={"AutoConfig": "configuration_custom.CustomConfig",
                            "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"})
    return Repo.from_dir(tiny, extra={"config.json": json.dumps(config).encode(),
                                      "configuration_custom.py": CUSTOM_CONFIG.encode(),
                                      "modeling_custom.py": CUSTOM_MODEL.encode()})


@pytest.fixture(scope="module")
def hub():
    from bench.models.tiny import ensure_tiny_llama

    tiny = ensure_tiny_llama()
    repos = {"org/tiny": Repo.from_dir(tiny), "org/gated": Repo.from_dir(tiny, token=TOKEN),
             "org/custom": _custom_repo(tiny)}
    with HubStub(repos) as stub:
        yield stub


@pytest.fixture
def env(hub, tmp_path):
    """A user's environment as most have it: HF_HOME unset, so the HF cache and the token are under
    ~/.cache/huggingface, here with HOME a temporary directory; no token yet; the hub at the stand-in."""
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGING_FACE_", "TRANSFORMERS_OFFLINE", "XDG_CACHE_HOME"))}
    out.update(HOME=str(tmp_path / "home"), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_TELEMETRY="1",
               HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_ETAG_TIMEOUT="10",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return out


def _run(args: list, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    """A command as a user's script runs it: stdin closed, no terminal (new session), nothing to answer."""
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, start_new_session=True)


def cli(*args, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return _run([sys.executable, str(ROOT / "run_bench.py"), *map(str, args)], env, timeout)


def resolve(name: str, env: dict, **kw) -> subprocess.CompletedProcess:
    """bench.models.resolve in a fresh process, as the driver calls it (huggingface_hub reads its
    environment at import, so each case needs its own process)."""
    code = f"from bench.models.resolve import resolve; print('PATH=' + str(resolve({name!r}, **{kw!r})))"
    return _run([sys.executable, "-c", code], env, 120)


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("ftbench: error:")]
    assert len(lines) == 1, done.stderr[-2000:]
    return lines[0]


def test_public_model_downloads_once_into_the_users_cache_and_trains(hub, env, tmp_path):
    done = cli("run", *TINY_RUN, "--models", "org/tiny", "--out", tmp_path / "out", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "model org/tiny: fetching from" in done.stdout  # the progress line
    record = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[0])
    assert record["status"] == "ok" and len(record["loss"]) == 2
    snapshot = Path(record["model_path"])
    assert snapshot.is_relative_to(tmp_path / "home" / ".cache" / "huggingface" / "hub")  # the user's, not .cache/hf
    assert record["config"]["model_source"] == {"hub_id": "org/tiny", "revision": hub.repos["org/tiny"].sha,
                                                "path": str(snapshot)}
    fetched = len(hub.file_gets("org/tiny"))
    assert fetched >= 3  # config, weights, tokenizer
    again = resolve("org/tiny", env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"PATH={snapshot}" in again.stdout
    assert len(hub.file_gets("org/tiny")) == fetched  # already cached: no file downloaded again


@pytest.mark.parametrize("hf_home", [None, "custom_hf_home"])
def test_token_saved_by_hf_auth_login_reaches_the_hub(hub, env, tmp_path, hf_home):
    hub.requests.clear()
    if hf_home:
        env["HF_HOME"] = str(tmp_path / hf_home)
    token_file = Path(env.get("HF_HOME") or Path(env["HOME"]) / ".cache" / "huggingface") / "token"  # `hf auth login`
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(TOKEN)
    done = resolve("org/gated", env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "/models--org--gated/snapshots/" in done.stdout
    sent = {auth for method, path, auth in hub.requests if path.startswith("/org/gated/resolve/")}
    assert sent == {f"Bearer {TOKEN}"}


def test_gated_model_without_token_says_how_to_get_access(hub, env):
    line = _one_line_error(cli("run", *TINY_RUN, "--models", "org/gated", env=env))
    assert "gated" in line and "HF_TOKEN" in line and "hf auth login" in line
    assert f"{hub.url}/org/gated" in line  # the licence page


@pytest.mark.parametrize("name", ["org/no-such-model", "checkpoints/my-model"])
def test_missing_hub_id_is_not_found(env, name):
    line = _one_line_error(cli("run", *TINY_RUN, "--models", name, env=env))
    assert "not found on the hub" in line and "no local directory" in line


def test_unreachable_hub_says_so(env, tmp_path):
    closed = dict(env, HF_ENDPOINT="http://127.0.0.1:9")  # discard port: nothing listens
    line = _one_line_error(cli("run", *TINY_RUN, "--models", "org/tiny", env=closed))
    assert "the hub (http://127.0.0.1:9) could not be reached" in line


def test_offline_without_the_model_cached_says_so(env):
    line = _one_line_error(cli("run", *TINY_RUN, "--models", "org/tiny", env=dict(env, HF_HUB_OFFLINE="1")))
    assert "HF_HUB_OFFLINE is set" in line


@pytest.mark.parametrize("name", ["./no-such-dir", "no/such/dir", "~/no-such-dir-ftbench"])
def test_missing_local_path_says_it_does_not_exist(env, name):
    line = _one_line_error(cli("run", *TINY_RUN, "--models", name, env=env))
    assert "does not exist" in line and "the hub" not in line


def test_planner_preset_name_suggests_its_shape(env):
    line = _one_line_error(cli("run", *TINY_RUN, "--models", "qwen2.5-0.5b", env=env))
    assert "shape:qwen2.5-0.5b" in line


def test_custom_code_without_flag_is_refused_before_download(hub, env):
    hub.requests.clear()
    line = _one_line_error(cli("run", *TINY_RUN, "--models", "org/custom", env=env))
    assert "--trust-remote-code" in line
    assert hub.file_gets("org/custom") == ["/org/custom/resolve/main/config.json"]  # neither code nor weights


def test_custom_code_with_flag_fetches_code_and_trains_without_prompt(hub, env, tmp_path):
    done = cli("run", *TINY_RUN, "--models", "org/custom", "--trust-remote-code", "--out", tmp_path / "out", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "custom code" not in done.stderr.lower()  # transformers' "Do you wish to run the custom code?"
    record = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[0])
    assert record["status"] == "ok", record["error"]
    assert {"modeling_custom.py", "configuration_custom.py"} <= {p.name for p in Path(record["model_path"]).iterdir()}
    assert record["config"]["trust_remote_code"] is True


def test_plan_takes_hub_ids_and_local_dirs(hub, env):
    done = cli("plan", "--memory", "8GB", "--models", "org/tiny", "--methods", "lora", "--json", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout)["rows"]
    assert rows and {r["model"] for r in rows} == {"org/tiny"}
    assert "/org/tiny/resolve/main/config.json" in hub.file_gets("org/tiny") or \
        any(path == "/org/tiny/resolve/main/config.json" for _, path, _ in hub.requests)
    line = _one_line_error(cli("plan", "--memory", "8GB", "--models", "./no-such-dir", env=env))
    assert "does not exist" in line
    line = _one_line_error(cli("plan", "--memory", "8GB", "--models", "org/no-such-model", env=env))
    assert "not found on the hub" in line
