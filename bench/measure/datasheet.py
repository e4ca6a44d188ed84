"""Vendors' dense peak FLOP/s per device and dtype: the datasheet figure recorded beside the
measured calibration (bench.measure.matmul), so an MFU can be read against either.

Dense rates only: NVIDIA's datasheets print tensor-core figures "with sparsity" (2:4 structured
sparsity doubles them), which no training matmul here uses, so each figure below is the printed
sparse one halved where the sheet prints only that. 16-bit figures are with FP32 accumulation,
which is what torch's bf16/fp16 matmuls use (the GeForce cards run FP16 accumulation twice as
fast, but torch does not use it). float32 is the TF32 tensor-core rate when torch allows TF32
for matmuls, else the plain FP32 rate. A device not in the table gets None: no guess.
Names are what `torch.cuda.get_device_name()` returns, matched whole (case-insensitive).
"""

import re

H100_SXM = ("NVIDIA H100 datasheet (nvidia.com/en-us/data-center/h100), H100 SXM column: "
            "FP32 67 TF, TF32 989 TF and BF16/FP16 1,979 TF with sparsity")
H100_NVL = "NVIDIA H100 / H200 datasheets, NVL columns: FP32 60 TF, TF32 835 TF and BF16/FP16 1,671 TF with sparsity"
H100_PCIE = "NVIDIA H100 PCIe datasheet (2022): FP32 51 TF, TF32 756 TF and BF16/FP16 1,513 TF with sparsity"
H200 = ("NVIDIA H200 datasheet (nvidia.com/en-us/data-center/h200), H200 SXM column: "
        "FP32 67 TF, TF32 989 TF and BF16/FP16 1,979 TF with sparsity")
A100 = "NVIDIA A100 datasheet (2021), all form factors: FP32 19.5 TF, TF32 156 TF, BF16/FP16 312 TF dense"
L40S = "NVIDIA L40S datasheet: FP32 91.6 TF, TF32 183 TF, BF16/FP16 362.05 TF dense"
RTX4090 = ("NVIDIA Ada GPU architecture whitepaper, GeForce RTX 4090: FP32 82.6 TF, TF32 82.6 TF, "
           "BF16/FP16 with FP32 accumulate 165.2 TF dense")
RTX3090 = ("NVIDIA Ampere GA102 GPU architecture whitepaper, GeForce RTX 3090: FP32 35.6 TF, TF32 35.6 TF, "
           "BF16/FP16 with FP32 accumulate 71 TF dense")

# (name pattern, {"fp32", "tf32", "bf16"} in TFLOP/s dense, source)
TABLE = [
    (r"nvidia h100 80gb hbm3|nvidia h100 sxm.*", {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5}, H100_SXM),
    (r"nvidia h100 pcie", {"fp32": 51.0, "tf32": 378.0, "bf16": 756.5}, H100_PCIE),
    (r"nvidia h1[02]0 nvl", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}, H100_NVL),
    (r"nvidia h200", {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5}, H200),
    (r"nvidia a100[- ].*", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}, A100),
    (r"nvidia l40s", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05}, L40S),
    (r"nvidia geforce rtx 4090", {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2}, RTX4090),
    (r"nvidia geforce rtx 3090", {"fp32": 35.6, "tf32": 35.6, "bf16": 71.0}, RTX3090),
]


def peak_gflops(name: str, *, dtype: str, tf32: bool = False) -> dict | None:
    """{"gflops", "source"} for device `name` computing in `dtype`; None for an unknown device
    or a dtype without a listed rate."""
    column = {"bfloat16": "bf16", "float16": "bf16", "float32": "tf32" if tf32 else "fp32"}.get(dtype)
    for pattern, rates, source in TABLE:
        if column and re.fullmatch(pattern, (name or "").strip().lower()):
            return {"gflops": rates[column] * 1e3, "source": source}
    return None
