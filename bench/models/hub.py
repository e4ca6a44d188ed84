"""Models from the Hugging Face hub, fetched once by the driver into the user's own HF cache.

    snapshot(repo_id, trust_remote_code=)   # the local snapshot directory (config, weights, tokenizer)
    config_file(repo_id)                    # config.json alone (the planner)
    source_of(path)                         # {"hub_id", "revision", "path"} for a snapshot, else None

The cache and the token are the user's, read by huggingface_hub as it always reads them
(HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_TOKEN_PATH, the token `hf auth login` saved), so a model
already cached is not downloaded again and a gated model the user may read is readable here.
Runs in the driver before any child starts; the children then read the snapshot directory
offline. No torch here.
"""

from contextlib import contextmanager
from pathlib import Path

from bench.util.errors import BenchError

# what a run reads; a model's own code (*.py) only when the user allows it to run
PATTERNS = ("*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.jinja")
CODE_PATTERNS = ("*.py",)


def snapshot(repo_id: str, *, trust_remote_code: bool = False, echo=print) -> Path:
    """The snapshot directory of `repo_id` at its default branch: files the cache lacks are
    downloaded (huggingface_hub's progress bars), files it holds are not; with the hub
    unreachable, the cached snapshot as it is."""
    from huggingface_hub import constants, snapshot_download

    patterns = [*PATTERNS, *(CODE_PATTERNS if trust_remote_code else ())]
    echo(f"model {repo_id}: fetching from {constants.ENDPOINT} into the HF cache {constants.HF_HUB_CACHE} "
         "(files already cached are not downloaded again) ...", flush=True)
    with _hub_errors(repo_id):
        path = Path(snapshot_download(repo_id, allow_patterns=patterns, etag_timeout=10))
    echo(f"model {repo_id}: revision {path.name} at {path}", flush=True)
    return path


def config_file(repo_id: str) -> Path:
    """`repo_id`'s config.json, from the user's HF cache or fetched into it."""
    from huggingface_hub import hf_hub_download

    with _hub_errors(repo_id):
        return Path(hf_hub_download(repo_id, "config.json", etag_timeout=10))


def source_of(path) -> dict | None:
    """Where a hub snapshot came from, read off the cache layout
    (<cache>/models--<org>--<name>/snapshots/<commit sha>), or None for any other directory."""
    path = Path(path)
    repo = path.parent.parent.name
    if path.parent.name != "snapshots" or not repo.startswith("models--"):
        return None
    return {"hub_id": repo[len("models--"):].replace("--", "/"), "revision": path.name, "path": str(path)}


@contextmanager
def _hub_errors(repo_id: str):
    """huggingface_hub's exceptions as one line each: gated, not found, unreachable."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    try:
        yield
    except GatedRepoError:
        raise BenchError(
            f"model {repo_id!r} is gated on the hub and this machine has no access to it: set HF_TOKEN or run "
            f"`hf auth login` (token file {constants.HF_TOKEN_PATH}), and accept the licence at "
            f"{constants.ENDPOINT}/{repo_id}") from None
    except RepositoryNotFoundError:
        raise BenchError(
            f"model {repo_id!r} not found on the hub ({constants.ENDPOINT}), and no local directory of that name "
            "exists; check the id (a private repo also needs HF_TOKEN or `hf auth login`)") from None
    except RevisionNotFoundError as exc:
        raise BenchError(f"model {repo_id!r}: revision not found on the hub ({_first_line(exc)})") from None
    except LocalEntryNotFoundError as exc:  # unreachable (or HF_HUB_OFFLINE) and not complete in the cache
        if constants.HF_HUB_OFFLINE:
            raise BenchError(f"model {repo_id!r} is not complete in the HF cache {constants.HF_HUB_CACHE} and "
                             "HF_HUB_OFFLINE is set; unset it to fetch the model from the hub") from None
        raise BenchError(
            f"model {repo_id!r}: the hub ({constants.ENDPOINT}) could not be reached and the model is not complete "
            f"in the HF cache {constants.HF_HUB_CACHE}, nor is there a local directory of that name "
            f"({_cause(exc)})") from None
    except HfHubHTTPError as exc:
        raise BenchError(f"model {repo_id!r}: the hub ({constants.ENDPOINT}) answered "
                         f"{exc.response.status_code}: {_first_line(exc)}") from None
    except (OSError, ConnectionError) as exc:
        raise BenchError(f"model {repo_id!r}: the hub ({constants.ENDPOINT}) could not be reached "
                         f"({exc.__class__.__name__}: {_first_line(exc)})") from None
    except Exception as exc:  # httpx's transport errors (a dropped connection mid-download, a proxy)
        if exc.__class__.__module__.startswith(("httpx", "httpcore")):
            raise BenchError(f"model {repo_id!r}: the hub ({constants.ENDPOINT}) could not be reached "
                             f"({exc.__class__.__name__}: {_first_line(exc)})") from None
        raise


def _cause(exc: Exception) -> str:
    inner = exc.__cause__ or exc
    return f"{inner.__class__.__name__}: {_first_line(inner)}"


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else "no message")[:200]
