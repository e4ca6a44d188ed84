"""After loading, every parameter and buffer is on the run's device (bench.training.methods.check_placed).

No GPU here, so the stand-in for "a device other than the CPU" is meta: a shape model loaded
for meta must have its buffers there too (the CPU-made rotary inv_freq included), and a model
whose buffer or parameter stayed behind is refused by name at build time."""

import json

import pytest
import torch

from bench.models import resolve
from bench.training import methods
from tests.test_shape import LLAMA


def _stray(where: str):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    model[0].register_buffer("scale", torch.ones(2, device=where), persistent=False)
    return model


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_model_with_a_buffer_left_on_another_device_is_refused_by_name(monkeypatch, method):
    monkeypatch.setitem(methods.METHODS, method, lambda spec: _stray("meta"))
    with pytest.raises(RuntimeError, match=r"buffer 0\.scale is on meta, not on the run's device cpu"):
        methods.build({"method": method, "device": "cpu"})


def test_a_parameter_left_on_meta_is_refused_and_a_placed_model_passes(monkeypatch):
    monkeypatch.setitem(methods.METHODS, "full", lambda spec: torch.nn.Linear(2, 2, device=spec["device"]))
    assert isinstance(methods.build({"method": "full", "device": "cpu"}), torch.nn.Linear)
    monkeypatch.setitem(methods.METHODS, "full", lambda spec: torch.nn.Linear(2, 2, device="meta"))
    with pytest.raises(RuntimeError, match="parameter weight is on meta"):
        methods.build({"method": "full", "device": "cpu"})


def test_a_gpu_index_must_match_when_the_run_names_one():
    model = torch.nn.Linear(2, 2, device="meta")
    methods.check_placed(model, "meta")
    with pytest.raises(RuntimeError, match="not on the run's device cuda:1"):
        methods.check_placed(model, "cuda:1")


def test_a_shape_model_puts_its_buffers_on_the_run_s_device(tmp_path):
    """The meta build makes rotary inv_freq on the CPU; on a GPU run it must not stay there."""
    from bench.models.shape_load import load_shape

    config = tmp_path / "shape.json"
    config.write_text(json.dumps(LLAMA))
    model = load_shape(resolve(f"shape:{config}"), dtype=torch.bfloat16, device="meta")
    buffers = dict(model.named_buffers())
    assert any(name.endswith("inv_freq") for name in buffers)
    methods.check_placed(model, "meta")
