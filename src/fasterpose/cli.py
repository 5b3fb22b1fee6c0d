"""``fasterpose`` command line: one sub-command per module under ``fasterpose.commands``.

Each command module exposes ``add_arguments(parser)``, ``run(args) -> int``, ``DESCRIPTION`` and
``EXAMPLES`` (its ``--help`` epilog, or None), and is imported only when its command runs:
``fasterpose --help`` and ``fasterpose eval-results --help`` import no torch. An error caused by the
input (a bad file, key, value or path) prints as one line; ``--debug`` (or ``FASTERPOSE_DEBUG=1``)
shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Iterator

from fasterpose import __version__
from fasterpose.extras import MissingExtraError, missing_extra

# (command name, module, one-line help): a static table, so listing the commands imports none of them
COMMANDS: list[tuple[str, str, str]] = [
    ("quickstart", "fasterpose.commands.quickstart", "generate SynthPose, train, evaluate, draw (5 min CPU)"),
    ("train", "fasterpose.commands.train", "train a model from a YAML config"),
    ("eval", "fasterpose.commands.evaluate", "score a model file (or the codec oracle) on a dataset: AP or PCKh"),
    ("eval-results", "fasterpose.commands.eval_results", "score a COCO keypoint results file"),
    ("predict", "fasterpose.commands.predict", "run pose estimation on images, folders, video or webcam"),
    ("export", "fasterpose.commands.export", "export a checkpoint to ONNX, OpenVINO or a weights file"),
    ("convert", "fasterpose.commands.convert", "convert a published SimpleBaseline checkpoint to a weights file"),
    ("bench", "fasterpose.commands.bench", "params/FLOPs and latency benchmarks"),
    ("data", "fasterpose.commands.data", "SynthPose generation, annotation checks, augmented sample grids"),
    ("study", "fasterpose.commands.study", "multi-seed training study of the paper's claims on SynthPose"),
]
DESCRIPTION = """\
FasterPose: train, evaluate, export and run human pose estimation models (top-down, COCO and MPII
keypoints). Pick a command below; `fasterpose COMMAND --help` explains each one and its options."""
EXAMPLES = """\
examples:
  fasterpose quickstart                                   # make a toy dataset, train 5 min, evaluate
  fasterpose train configs/quickstart.yaml train.epochs=4 # train from a config (key=value overrides)
  fasterpose eval configs/quickstart.yaml --model runs/quickstart/last.pth
  fasterpose export --checkpoint runs/quickstart/last.pth --format onnx
  fasterpose predict photo.jpg --checkpoint runs/quickstart/last.onnx --whole-image --out drawn/
  fasterpose data check --ann data/synthpose/annotations/person_keypoints_val.json"""
# What each command needs an optional package for, in the one-line "X needs torch: pip install ..." error.
NEEDS_FOR = {
    "quickstart": "the quickstart (it trains a model)",
    "train": "training",
    "export": "export",
    "convert": "converting a checkpoint",
    "bench": "benchmarking",
    "study": "the training study",
    "data": "this data command",
    "eval": "evaluating a .pth / .safetensors model",
    "predict": "running a .pth / .safetensors model",
}
# Errors a programming mistake raises, not the user's input: still one line, with a pointer to --debug.
INTERNAL_ERRORS = (AssertionError, AttributeError, NameError, TypeError, IndexError, ImportError)


def _chosen_command(argv: list[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is not an option), if any."""
    names = {name for name, _, _ in COMMANDS}
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in names else None
    return None


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples keep their line breaks; an option with a default value shows it
    (``(default: 20)``) unless its help already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or default is None or default is False or default in (argparse.SUPPRESS, []):
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


def walk_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Yield ``(command path, parser)`` for ``parser`` and every sub-command parser below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk_parsers(child, (*path, name))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (to add its arguments, description and examples)."""
    parser = argparse.ArgumentParser(
        prog="fasterpose", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"fasterpose {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug log messages")
    parser.add_argument(
        "--debug", action="store_true", help="on an error, show the full traceback (also: FASTERPOSE_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.description = module.DESCRIPTION
            p.epilog = module.EXAMPLES
            for _, child in walk_parsers(p):
                child.formatter_class = HelpFormatter
            p.set_defaults(_run=module.run)
    return parser


def describe_error(exc: BaseException) -> str:
    """One line for the user: the message, with the path of an OS error when it has one."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        message = f"{exc.filename}: {exc.strerror}"
    else:
        message = " ".join(str(exc).split()) or exc.__class__.__name__
    if isinstance(exc, MissingExtraError):
        return message
    if isinstance(exc, INTERNAL_ERRORS):
        return f"{exc.__class__.__name__}: {message} (unexpected: run with --debug for the traceback)"
    if not isinstance(exc, ValueError | OSError | RuntimeError):  # a library's own error type
        return f"{exc.__class__.__name__}: {message}"
    return message


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("FASTERPOSE_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser(_chosen_command(argv))
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
    except Exception as exc:  # noqa: BLE001 - the one place errors become messages
        if debug:
            raise
        if isinstance(exc, ImportError):  # an optional package of an extra: say which extra to install
            exc = missing_extra(exc, NEEDS_FOR.get(args.command, f"fasterpose {args.command}")) or exc
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
