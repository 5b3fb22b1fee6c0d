"""Every command's ``--help`` explains itself: a plain description, examples, and a help line with the
default for every option (walks every sub-command parser, nested ones included)."""

from __future__ import annotations

import argparse

import pytest

from fasterpose import cli

CHECKED = [name for name, _, _ in cli.COMMANDS]
DEVELOPER_MARKUP = ("``", ":mod:", ":func:", ":class:", "Args:", "Returns:")
NO_HELP_NEEDED = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def _problems(path: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    where = "fasterpose " + " ".join(path)
    problems = []
    description = parser.description or ""
    if not description or any(m in description for m in DEVELOPER_MARKUP):
        problems.append(f"{where}: description missing or developer text: {description[:60]!r}")
    formatter = cli.HelpFormatter(prog=where)
    one_of = {id(a) for g in parser._mutually_exclusive_groups if g.required for a in g._group_actions}
    for action in parser._actions:
        if isinstance(action, NO_HELP_NEEDED):
            continue
        name = "/".join(action.option_strings) or action.dest
        if not action.help or action.help == argparse.SUPPRESS:
            problems.append(f"{where}: {name} has no help")
            continue
        takes_value = action.option_strings and action.nargs != 0 and not action.required and id(action) not in one_of
        if takes_value and "default" not in formatter._get_help_string(action).lower():
            problems.append(f"{where}: {name} does not say its default")
    try:
        parser.format_help()
    except (ValueError, TypeError, KeyError) as exc:  # a stray % in a help line
        problems.append(f"{where}: help does not render ({exc})")
    return problems


def test_top_level_help_is_for_users() -> None:
    parser = cli.build_parser()
    assert _problems((), parser) == []
    assert "examples:" in (parser.epilog or "") and "fasterpose train" in parser.epilog
    text = parser.format_help()
    assert all(name in text for name, _, _ in cli.COMMANDS)


@pytest.mark.parametrize("command", CHECKED)
def test_every_option_has_help_and_default(command: str) -> None:
    parser = dict(cli.walk_parsers(cli.build_parser(command)))[(command,)]
    walked = list(cli.walk_parsers(parser, (command,)))
    problems = [p for path, sub in walked for p in _problems(path, sub)]
    assert problems == []
    assert f"fasterpose {command}" in (parser.epilog or ""), f"{command}: no examples in the epilog"
    for path, sub in walked[1:]:  # nested actions (bench latency, data check, ...) show an example too
        assert "fasterpose " + " ".join(path) in (sub.epilog or ""), f"{path}: no example"


def test_defaults_are_shown_in_the_rendered_help() -> None:
    parser = dict(cli.walk_parsers(cli.build_parser("bench")))[("bench", "latency")]
    text = " ".join(parser.format_help().split())
    assert "(default: 20)" in text and "(default: 1,32)" in text
