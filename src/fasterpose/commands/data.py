"""``fasterpose data check|show|synthpose``: validate annotations, look at samples, generate SynthPose."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fasterpose.commands.argtypes import count

DESCRIPTION = """\
Work with datasets: `check` validates an annotation file (and its images) and lists every problem
training or evaluation would meet; `show` draws a grid of augmented training samples with their
target heatmaps; `synthpose` generates SynthPose, a synthetic COCO-format dataset for quick runs."""
EXAMPLES = """\
examples:
  fasterpose data check --ann data/synthpose/annotations/person_keypoints_val.json --images data/synthpose/val
  fasterpose data show configs/quickstart.yaml --n 8 --out samples.png
  fasterpose data synthpose --out data/synthpose --train 2000 --val 200 --set difficulty=0.5"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser(
        "check",
        help="validate an annotation file and its images, list every problem",
        description="Validate a COCO keypoint JSON, a COCO results-format detection file or an "
        "MPII JSON, and the images it names. Exit 1 if any problem is found.",
        epilog="example:\n  fasterpose data check --ann annotations/person_keypoints_val2017.json --images val2017",
    )
    p.add_argument("--ann", required=True, help="annotation JSON")
    p.add_argument("--images", default=None, help="image folder (default: check the JSON only)")
    p.add_argument("--max-print", type=count(0), default=200, help="print at most this many problems")
    p.set_defaults(_data_run=run_check)

    p = sub.add_parser(
        "show",
        help="grid of augmented training samples with skeletons and target heatmaps",
        description="Draw a grid of training samples as the network sees them: the augmented crop with its "
        "skeleton beside the target heatmaps, to check a config's data and augmentation by eye.",
        epilog="example:\n  fasterpose data show configs/quickstart.yaml --n 16 --out samples.png",
    )
    p.add_argument("config", help="experiment YAML")
    p.add_argument("overrides", nargs="*", help="config changes as key=value")
    p.add_argument("--n", type=count(), default=16, help="number of samples")
    p.add_argument("--out", default="samples.png", help="output image (png/jpg)")
    p.add_argument("--split", choices=("train", "val"), default="train", help="which split to draw from")
    p.add_argument("--no-augment", action="store_true", help="show evaluation crops (no augmentation)")
    p.add_argument("--seed", type=count(0), default=0, help="random seed of the sample choice and augmentation")
    p.set_defaults(_data_run=run_show)

    p = sub.add_parser(
        "synthpose",
        help="generate the SynthPose dataset (COCO format)",
        description="Generate SynthPose: images of drawn stick people with COCO-format keypoint annotations "
        "(train and val), deterministic for a seed. Generator options are set with --set KEY=VALUE.",
        epilog="example:\n  fasterpose data synthpose --out data/synthpose --train 2000 --val 200 --workers 2",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--train", type=count(0), default=2000, help="training images")
    p.add_argument("--val", type=count(0), default=200, help="validation images")
    p.add_argument("--seed", type=count(0), default=0, help="random seed (same seed, same dataset)")
    p.add_argument("--workers", type=count(), default=1, help="render with this many processes (same output)")
    p.add_argument(
        "--layout",
        default="coco17",
        choices=("coco17", "crowdpose14"),
        help="keypoint layout of the annotations: COCO's 17 joints, or a 14-joint CrowdPose-order relabelling "
        "(head, neck, 12 limb joints) for the custom-layout example",
    )
    p.add_argument(
        "--set",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra generator option (e.g. --set difficulty=0.5), repeatable (default: none)",
    )
    p.set_defaults(_data_run=run_synthpose)


def run(args: argparse.Namespace) -> int:
    return int(args._data_run(args) or 0)


def run_check(args: argparse.Namespace) -> int:
    from fasterpose.data.validate import check_annotations

    problems, counts = check_annotations(args.ann, args.images)
    for line in problems[: args.max_print]:
        print(line)
    if len(problems) > args.max_print:
        print(f"... and {len(problems) - args.max_print} more")
    what = ", ".join(f"{v} {k}" for k, v in counts.items()) or "nothing readable"
    images = "" if args.images else " (images not checked: no --images)"
    if problems:
        print(f"FAIL {args.ann}: {len(problems)} problem(s) in {what}{images}")
        return 1
    print(f"OK {args.ann}: {what}{images}")
    return 0


def _refuse_inputs_as_output(out: Path, config: str, cfg: Any, ds: Any) -> None:
    """``data show --out`` is never the config, an annotation file or one of the dataset's images."""
    from fasterpose.atomic import refuse_inputs
    from fasterpose.experiment import annotation_files

    images = {str(Path(r.image_path).resolve()) for r in ds.records}
    image = [out] if str(out.resolve()) in images else None
    refuse_inputs([out], {"config": config, "annotation file": annotation_files(cfg.data), "image": image})


def run_show(args: argparse.Namespace) -> int:
    from fasterpose.config import load_config
    from fasterpose.data import TopDownDataset
    from fasterpose.experiment import resolve
    from fasterpose.visualize import draw_heatmaps, draw_poses, make_grid, save_image

    exp = resolve(load_config(args.config, args.overrides))
    train = not args.no_augment
    ds = TopDownDataset.from_config(exp, args.split, train=train)
    rng = np.random.default_rng(args.seed)
    ds.seed = args.seed
    count = max(1, args.n)
    indices = rng.choice(len(ds), size=count, replace=count > len(ds))
    tiles = []
    for index in indices:
        sample = ds.prepare(int(index))
        target, weight = ds.codec.encode(sample.keypoints)
        scores = (weight > 0).astype(np.float32)  # draw joints whose target is on the map
        left = draw_poses(sample.crop, sample.keypoints[:, :2], scores, ds.spec, threshold=0.5)
        right = draw_heatmaps(sample.crop, target)
        tiles.append(np.concatenate([left, right], axis=1))
    grid = make_grid(tiles, cols=max(1, int(np.ceil(np.sqrt(count / 2)))))
    _refuse_inputs_as_output(Path(args.out), args.config, exp.cfg, ds)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_image(args.out, grid)
    print(f"wrote {args.out}: {count} {'augmented ' if train else ''}{args.split} samples from {len(ds)} people")
    return 0


def _parse_options(options: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for text in options:
        if "=" not in text:
            raise ValueError(f"--set expects KEY=VALUE, got {text!r}")
        key, raw = text.split("=", 1)
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ValueError(f"--set {text}: {raw!r} is not a valid value") from None
    return out


def _knob_defaults() -> dict[str, Any]:
    """Default value of every SynthPose generator knob (the fields of ``SynthPoseKnobs``)."""
    from fasterpose.data.synthpose import SynthPoseKnobs

    return {f.name: f.default for f in dataclasses.fields(SynthPoseKnobs)}


def _kind_of(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, tuple | list):
        return f"a list of {len(default)} {'integers' if all(isinstance(v, int) for v in default) else 'numbers'}"
    return type(default).__name__


def _fits(value: Any, default: Any) -> bool:
    """Whether ``value`` (as YAML parsed it) has the kind of the knob's ``default``."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, int | float) and math.isfinite(value)
    if isinstance(default, tuple | list):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(default)
            and all(_fits(v, d) for v, d in zip(value, default, strict=True))
        )
    return default is None or isinstance(value, type(default))


def check_knob_values(options: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Raise a one-line ValueError naming the first knob whose value has the wrong kind."""
    for key, value in options.items():
        if key in defaults and not _fits(value, defaults[key]):
            raise ValueError(
                f"--set {key}={value!r}: SynthPose knob {key!r} must be {_kind_of(defaults[key])} "
                f"(default {defaults[key]!r})"
            )


def run_synthpose(args: argparse.Namespace) -> int:
    from fasterpose.data import synthpose

    options = _parse_options(args.options)
    check_knob_values(options, _knob_defaults())
    if args.workers > 1:
        options["workers"] = args.workers
    result = synthpose.generate(Path(args.out), args.train, args.val, args.seed, **options)
    if args.layout != "coco17":
        from fasterpose.data.relabel import relabel_synthpose

        relabel_synthpose(args.out, args.layout)
    people = f"{result['train']['people']} / {result['val']['people']} people"
    print(
        f"wrote SynthPose to {args.out} ({args.train} train / {args.val} val images, {people}, seed {args.seed}, "
        f"{args.layout} keypoints)"
    )
    return 0
