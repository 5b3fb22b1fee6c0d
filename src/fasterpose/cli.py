"""``fasterpose`` command line: one sub-command per module under ``fasterpose.commands``.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# (command name, module, one-line help)
COMMANDS: list[tuple[str, str, str]] = [
    ("quickstart", "fasterpose.commands.quickstart", "generate SynthPose, train, evaluate, draw (5 min CPU)"),
    ("train", "fasterpose.commands.train", "train a model from a YAML config"),
    ("eval", "fasterpose.commands.evaluate", "evaluate a checkpoint (or the codec oracle) on a dataset"),
    ("eval-results", "fasterpose.commands.eval_results", "score a COCO keypoint results file"),
    ("predict", "fasterpose.commands.predict", "run pose estimation on images, folders, video or webcam"),
    ("export", "fasterpose.commands.export", "export a checkpoint to ONNX or OpenVINO"),
    ("bench", "fasterpose.commands.bench", "params/FLOPs and latency benchmarks"),
    ("data", "fasterpose.commands.data", "SynthPose generation, annotation checks, augmented sample grids"),
    ("study", "fasterpose.commands.study", "multi-seed training study of the paper's claims on SynthPose"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fasterpose", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name, help_text in COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # command not shipped in this build
            raise
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse cannot take `key=value` positionals after options (CONFIG --flag a=b); commands with
    # an `overrides` list get them here, in order, and anything else stays an error.
    stray = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
