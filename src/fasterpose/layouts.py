"""Transitional names for modules not yet moved to :mod:`fasterpose.experiment` / :mod:`fasterpose.keypoints`
(the layout's home); removed once their last importer is updated."""

from __future__ import annotations

from fasterpose.config import Config, DataConfig
from fasterpose.experiment import experiment_of, load_layout, resolve
from fasterpose.keypoints import DEFAULT_SIGMA, KeypointSpec, LayoutError, check_annotation_layout

__all__ = [
    "DEFAULT_SIGMA",
    "LayoutError",
    "check_annotation_layout",
    "check_num_keypoints",
    "load_layout",
    "resolve_config_layout",
    "resolve_layout",
]


def resolve_layout(data: DataConfig) -> KeypointSpec:
    return experiment_of(data).spec


def check_num_keypoints(cfg: Config) -> int:
    return resolve(cfg).num_keypoints


def resolve_config_layout(cfg: Config) -> Config:
    return resolve(cfg).cfg
