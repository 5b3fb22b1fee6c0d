"""Which samples each step sees: a pure function of (seed, epoch, rank), so a resume is exact.

The order of samples is shuffled by (seed, epoch) and sharded over ranks; each sample's
augmentation draws from a generator seeded by (seed, epoch, index), whichever worker loads it.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, DistributedSampler

from fasterpose.data.dataset import TopDownDataset
from fasterpose.engine.distributed import DistInfo


class EpochSamples(Dataset[dict[str, torch.Tensor]]):
    """Training view of a dataset for one epoch: sample ``i`` is augmented with a generator seeded
    by ``(dataset.seed, epoch, i)``, whichever worker (or process) loads it. Drops ``meta``."""

    def __init__(self, dataset: TopDownDataset, epoch: int) -> None:
        self.dataset = dataset
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.dataset.item(index, self.epoch)
        return {"image": item["image"], "target": item["target"], "target_weight": item["target_weight"]}


def epoch_batches(num_samples: int, batch_size: int, epoch: int, seed: int, dist: DistInfo) -> list[list[int]]:
    """This rank's batches of sample indices for ``epoch`` (shuffled by (seed, epoch)).

    Every rank gets the same number of batches; a final batch of one sample is dropped (BatchNorm
    cannot train on it).
    """
    sampler: DistributedSampler[int] = DistributedSampler(
        range(num_samples),  # type: ignore[arg-type]  # only its length is used
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=True,
        seed=seed,
        drop_last=False,
    )
    sampler.set_epoch(epoch)
    indices = list(sampler)
    batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches
