"""Optimizer, learning-rate schedule and mixed-precision settings, from ``TrainConfig``."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from fasterpose.config import TrainConfig
from fasterpose.runtimes.device import has_bf16

log = logging.getLogger(__name__)


def param_groups(model: nn.Module, t: TrainConfig) -> list[dict[str, Any]]:
    """The trainable parameters as optimizer groups: one group, or with a head warm-up
    (``train.head_warmup_epochs`` > 0) the head and the rest first, then the backbone's (``model.backbone``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if t.head_warmup_epochs <= 0:
        return [{"params": params}]
    net = getattr(model, "module", model)  # a DDP wrapper holds the network as .module
    backbone = getattr(net, "backbone", None)
    if backbone is None:
        raise ValueError("train.head_warmup_epochs needs a model with a .backbone (a PoseModel)")
    ids = {id(p) for p in backbone.parameters()}
    return [{"params": [p for p in params if id(p) not in ids]}, {"params": [p for p in params if id(p) in ids]}]


def build_optimizer(model: nn.Module, t: TrainConfig) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD (momentum 0.9, Nesterov) over the trainable parameters (:func:`param_groups`)."""
    if t.head_warmup_epochs < 0 or t.head_warmup_backbone_lr < 0:
        raise ValueError(
            f"train.head_warmup_epochs and train.head_warmup_backbone_lr must be >= 0, got "
            f"{t.head_warmup_epochs} and {t.head_warmup_backbone_lr}"
        )
    params = param_groups(model, t)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay, nesterov=True)
    raise ValueError(f"unknown train.optimizer {t.optimizer!r}; valid: adam, adamw, sgd")


def lr_multiplier(step: int, iters_per_epoch: int, t: TrainConfig) -> float:
    """Step decay by epoch (x lr_factor at each of lr_steps) times a linear warmup over warmup_iters."""
    epoch = step // max(1, iters_per_epoch)
    m = t.lr_factor ** sum(epoch >= s for s in t.lr_steps)
    if t.warmup_iters > 0 and step < t.warmup_iters:
        m *= (step + 1) / t.warmup_iters
    return float(m)


def backbone_lr_multiplier(step: int, iters_per_epoch: int, t: TrainConfig) -> float:
    """:func:`lr_multiplier` for the backbone's group: times ``head_warmup_backbone_lr`` during the head warm-up."""
    warm = step // max(1, iters_per_epoch) < t.head_warmup_epochs
    return lr_multiplier(step, iters_per_epoch, t) * (t.head_warmup_backbone_lr if warm else 1.0)


def build_scheduler(optimizer: torch.optim.Optimizer, iters_per_epoch: int, t: TrainConfig) -> Any:
    """Per-iteration LambdaLR of :func:`lr_multiplier` (and :func:`backbone_lr_multiplier` for a warm-up's
    backbone group); its state_dict is plain values."""
    lambdas = [lambda s: lr_multiplier(s, iters_per_epoch, t)]
    if len(optimizer.param_groups) == 2 and t.head_warmup_epochs > 0:
        lambdas.append(lambda s: backbone_lr_multiplier(s, iters_per_epoch, t))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas if len(lambdas) > 1 else lambdas[0])


def autocast_settings(t: TrainConfig, device: torch.device) -> tuple[bool, torch.dtype]:
    """(enabled, dtype) of autocast: ``train.amp`` on CUDA (bfloat16 falls back to float16 on GPUs
    without it; float16 gets a GradScaler), ``train.cpu_amp`` on CPUs with native bfloat16."""
    dtype = getattr(torch, t.amp_dtype)
    if device.type == "cuda" and t.amp:
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            log.warning("this GPU has no bfloat16: autocast in float16 with a GradScaler")
            dtype = torch.float16
        return True, dtype
    if device.type == "cpu" and t.cpu_amp:
        if has_bf16(device):
            return True, torch.bfloat16
        log.warning("train.cpu_amp: this CPU has no native bfloat16 (it would be slower); training in float32")
    return False, dtype
