"""Check that the docs are true to the tree and to the CLI.

Two checks over README.md and docs/**/*.md:

* every relative link and image (``[text](path)``, ``![alt](path)``) names a file that exists, and
  a ``#anchor`` on a Markdown target names one of its headings (GitHub's slug rule);
* every ``fasterpose ...`` command line quoted in a code block or an inline code span names a real
  subcommand, and every ``--flag`` on it is one that subcommand's ``--help`` lists.

Usage: ``python scripts/check_docs.py [--root DIR]``; prints one line per problem and exits 1 when
there is any. ``tests/test_docs.py`` runs the same functions.
"""

from __future__ import annotations

import argparse
import functools
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
FLAG = re.compile(r"(?<![\w-])(--[a-zA-Z][\w-]*)")
SEPARATOR = re.compile(r"\s(?:\|\||&&|\||;)\s")


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def doc_files(root: Path) -> list[Path]:
    """README.md and every Markdown file under docs/."""
    files = [root / "README.md"] if (root / "README.md").is_file() else []
    return files + sorted((root / "docs").rglob("*.md"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    out: set[str] = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


def check_links(path: Path) -> list[Problem]:
    """Relative links and images of one Markdown file that do not resolve."""
    problems = []
    in_code = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            if not dest.exists():
                problems.append(Problem(path, n, f"link target {target!r} does not exist"))
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(Problem(path, n, f"link {target!r}: no heading with anchor #{anchor} in {dest.name}"))
    return problems


def command_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each ``fasterpose ...`` invocation quoted in code."""
    found: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    in_code = False
    pending = ""
    start = 0
    for n, line in enumerate(lines, start=1):
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            text = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
            if pending:
                pending += " " + text.strip()
            else:
                pending, start = text, n
            if pending.rstrip().endswith("\\"):
                pending = pending.rstrip()[:-1]
                continue
            found.extend((start, part) for part in _invocations(pending))
            pending = ""
        else:
            for span in INLINE_CODE.findall(line):
                found.extend((n, part) for part in _invocations(span))
    return found


def _invocations(text: str) -> list[str]:
    """The ``fasterpose ...`` invocations of a shell line, as the words after ``fasterpose``.

    A segment (split at ``|``, ``&&``, ``;``) is an invocation when its first word is ``fasterpose``
    (or a path ending in it), or when ``-m fasterpose`` appears in it (``python -m``, ``torchrun -m``).
    """
    out = []
    for segment in SEPARATOR.split(f" {text} "):
        words = segment.split()
        for i, word in enumerate(words):
            named = word == "fasterpose" or word.endswith("/fasterpose")
            if named and (i == 0 or words[i - 1] == "-m") and i + 1 < len(words) and words[i + 1][0].isalpha():
                out.append(" ".join(words[i + 1 :]))
                break
    return out


@functools.cache
def help_text(words: tuple[str, ...]) -> str | None:
    """``fasterpose WORDS --help`` output, or None when the command does not exist."""
    proc = subprocess.run(
        [sys.executable, "-m", "fasterpose", *words, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.stdout if proc.returncode == 0 else None


def subcommand_choices(help_out: str) -> set[str]:
    """Sub-sub-command names of a help text: ``{a,b}`` or the indented list under a metavar."""
    m = re.search(r"\{([a-z][\w,-]*)\}", help_out)
    listed = set(m.group(1).split(",")) if m else set()
    return listed | set(re.findall(r"^ {4}([a-z][\w-]*)(?: {2,}|$)", help_out, flags=re.MULTILINE))


def check_command(path: Path, line: int, command: str) -> list[Problem]:
    try:
        tokens = shlex.split(command.replace("|", " | "), comments=False)
    except ValueError:
        tokens = command.split()
    if not tokens:
        return []
    words = (tokens[0],)
    top = help_text(())
    if top is None or help_text(words) is None:
        return [Problem(path, line, f"`fasterpose {tokens[0]}` is not a fasterpose command")]
    text = help_text(words) or ""
    if len(tokens) > 1 and tokens[1] in subcommand_choices(text):
        words = (tokens[0], tokens[1])
        text = help_text(words) or ""
    problems = []
    for flag in FLAG.findall(" ".join(tokens[len(words) :])):
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text):
            problems.append(Problem(path, line, f"`fasterpose {' '.join(words)}` has no option {flag}"))
    return problems


def check(root: Path) -> list[Problem]:
    problems: list[Problem] = []
    for path in doc_files(root):
        problems.extend(check_links(path))
        for line, command in command_lines(path):
            problems.extend(check_command(path, line, command))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="project root")
    args = parser.parse_args(argv)
    problems = check(args.root)
    for p in problems:
        print(p)
    print(f"{len(problems)} problem(s) in {len(doc_files(args.root))} Markdown files")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
