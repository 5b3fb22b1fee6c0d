"""The device a model runs on, and whether it has bfloat16 arithmetic. torch is imported only to
resolve a torch device or to ask a GPU; the CPU check reads the CPU's own flags."""

from __future__ import annotations

import platform
from functools import cache
from typing import TYPE_CHECKING

from fasterpose import cpuinfo

if TYPE_CHECKING:
    import torch

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 (Linux /proc/cpuinfo names); ARM: "bf16" in Features


def auto_device() -> str:
    """What ``auto`` means for a torch model: ``cuda`` when torch sees a GPU, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str, local_rank: int = 0, key: str = "train.device") -> torch.device:
    """``"auto"`` -> CUDA (this process's GPU) when available, else CPU; a clear error naming the
    setting ``key`` (e.g. ``--device``) for missing CUDA. Selects the CUDA device for this process."""
    import torch

    if name == "auto":
        name = auto_device()
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"{key}={name}: not a device (auto, cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"{key}={name}: CUDA is not available on this machine; use {key}=cpu")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    return dev


@cache
def has_bf16(device: str | torch.device = "cpu") -> bool:
    """The device has native bfloat16 arithmetic: a CUDA GPU that torch says supports it, or a CPU with
    bf16 instructions (AVX512-BF16 or AMX-BF16 on x86, BF16 on ARM; where the CPU flags cannot be read,
    oneDNN's bf16 support as torch reports it, else no)."""
    kind = device if isinstance(device, str) else device.type
    if kind.startswith("cuda"):
        import torch

        return bool(torch.cuda.is_bf16_supported())
    flags = cpuinfo.cpu_flags()
    if flags is not None:
        arm = platform.machine().lower() in ("aarch64", "arm64")
        return any(f in flags for f in CPU_BF16_FLAGS) or (arm and "bf16" in flags)
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
