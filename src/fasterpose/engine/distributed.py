"""The few distributed helpers the training loop needs: start/stop, rank facts, reductions.

Training runs as one process per device, started by ``torchrun`` (which sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). Backend: NCCL on CUDA, gloo on
CPU. Without those variables everything here degrades to a single process (rank 0 of 1), so the
same loop serves both cases.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fasterpose.runtimes.device import resolve_device

__all__ = [
    "DistInfo",
    "all_reduce",
    "barrier",
    "cleanup_distributed",
    "init_distributed",
    "resolve_device",
    "unwrap",
    "wrap_model",
]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, on ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files, prints progress and evaluates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device_name: str = "auto") -> DistInfo:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1), else run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
        # Rank 0 evaluates alone while the others wait at a barrier: allow a long evaluation.
        dist.init_process_group(
            backend=backend, rank=rank, world_size=world_size, timeout=timedelta(minutes=60), **kwargs
        )
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def cleanup_distributed() -> None:
    """Leave the process group (no-op when alone)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce(values: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Reduce a tensor across processes in place and return it (identity when alone).

    ``op``: "sum" | "mean" | "max".
    """
    if not (dist.is_available() and dist.is_initialized()):
        return values
    if op == "max":
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    else:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        if op == "mean":
            values /= dist.get_world_size()
    return values


def barrier() -> None:
    """Wait for every process (no-op when alone)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def wrap_model(model: nn.Module, info: DistInfo, sync_bn: bool = False) -> nn.Module:
    """Move to the device; under ``torchrun`` convert to SyncBN if asked and wrap in DDP."""
    if sync_bn and info.distributed:
        if info.device.type == "cpu":
            raise ValueError(
                "train.sync_bn=true needs CUDA: PyTorch's SyncBatchNorm has no CPU kernel; "
                "set train.sync_bn=false for CPU runs"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(info.device)
    if info.distributed:
        ids = [info.device.index] if info.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (the model itself when not wrapped)."""
    return model.module if isinstance(model, DistributedDataParallel) else model
