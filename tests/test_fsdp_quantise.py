"""Where FSDP-QLoRA's rank 0 quantises (bench.training.fsdp_load.quantise_device, quantising_on).

No GPU here: meta stands in for it. bitsandbytes quantises a Params4bit where it is moved; inside
quantising_on(X), moving a weight to the CPU must hand it to the quantiser on X, not on the CPU."""

import pytest
import torch

from bench.training import fsdp_load


def test_a_cuda_run_quantises_on_the_rank_s_gpu_and_a_cpu_run_on_the_cpu():
    assert fsdp_load.quantise_device({"device": "cuda:1"}) == torch.device("cuda", 1)
    assert fsdp_load.quantise_device({"device": "cpu"}) == torch.device("cpu")


class Reached(Exception):
    pass


def _weight(values=None):
    from bitsandbytes.nn import Params4bit

    values = torch.randn(64, 64, dtype=torch.bfloat16) if values is None else values
    return Params4bit(values.clone(), requires_grad=False, blocksize=64,
                      quant_type="nf4", quant_storage=torch.bfloat16)


def test_inside_quantising_on_a_device_the_weight_reaches_the_quantiser_there(monkeypatch):
    import bitsandbytes

    def quantiser(w, **kwargs):
        raise Reached(str(w.device))

    monkeypatch.setattr(bitsandbytes.functional, "quantize_4bit", quantiser)
    with pytest.raises(Reached, match="cpu"):  # outside: where it is moved
        _weight().to("cpu")
    with fsdp_load.quantising_on(torch.device("meta")), pytest.raises(Reached, match="meta"):
        _weight().to("cpu")
    with pytest.raises(Reached, match="cpu"):  # the library's own behaviour is back afterwards
        _weight().to("cpu")


def test_quantising_on_the_cpu_is_bitsandbytes_own_quantisation():
    values = torch.randn(64, 64, dtype=torch.bfloat16)
    with fsdp_load.quantising_on(torch.device("cpu")):
        packed = _weight(values).to("cpu")
    reference = _weight(values).to("cpu")
    assert packed.bnb_quantized and packed.device.type == "cpu"
    assert (torch.equal(packed.data.view(torch.uint8), reference.data.view(torch.uint8))
            and torch.equal(packed.quant_state.absmax, reference.quant_state.absmax))
