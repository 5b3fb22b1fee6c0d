"""``fasterpose bench params|latency``."""

from __future__ import annotations

import argparse
import importlib

SUBCOMMANDS = {
    "params": ("fasterpose.bench.params", "params, paper GFLOPs and true GMACs of every config"),
    "latency": ("fasterpose.bench.latency", "CPU latency of FasterPose vs SimpleBaseline across runtimes"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH")
    sub.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_bench_run=module.run)


def run(args: argparse.Namespace) -> int:
    return int(args._bench_run(args) or 0)
