"""The command line: lazy imports (no torch for help or eval-results), --version, one-line errors, --debug."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fasterpose import __version__, cli

SRC = Path(__file__).resolve().parents[1] / "src"


def _importtime(*args: str) -> tuple[int, list[str], str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fasterpose", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    modules = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return proc.returncode, modules, proc.stdout


@pytest.mark.parametrize("args", [("--help",), ("eval-results", "--help")])
def test_help_imports_no_torch(args: tuple[str, ...]) -> None:
    """``python -X importtime -m fasterpose ...`` lists no torch module (importtime does not list a
    module imported through importlib itself, so which command modules loaded is read from sys.modules)."""
    rc, modules, out = _importtime(*args)
    assert rc == 0 and "fasterpose.cli" in modules
    assert not [m for m in modules if m == "torch" or m.startswith("torch.")], "help imported torch"
    script = (
        f"import sys; from fasterpose.cli import main\ntry: main({list(args)!r})\nexcept SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('torch', 'fasterpose.commands.'))), file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    loaded = proc.stderr.strip().splitlines()[-1]
    if args == ("--help",):
        assert all(name in out for name, _, _ in cli.COMMANDS)
        assert loaded == "[]"  # no command module at all
    else:
        assert "--ann" in out and loaded == "['fasterpose.commands.eval_results']"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"fasterpose {__version__}"


@pytest.fixture
def failing_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A command ``boom`` whose run raises the exception named by its first argument."""
    (tmp_path / "boom_command.py").write_text(
        textwrap.dedent("""
        class DecodeError(Exception):
            pass

        ERRORS = {
            "permission": PermissionError(13, "Permission denied", "/data/out/results.json"),
            "library": DecodeError("Error parsing message with type 'onnx.ModelProto'"),
            "value": ValueError("data.root: folder not found: /nowhere"),
            "bug": TypeError("unsupported operand"),
        }

        DESCRIPTION = "fail on purpose"
        EXAMPLES = None

        def add_arguments(parser):
            parser.add_argument("kind")

        def run(args):
            raise ERRORS[args.kind]
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, ("boom", "boom_command", "fail on purpose")])
    monkeypatch.delenv("FASTERPOSE_DEBUG", raising=False)
    return "boom"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("permission", "error: /data/out/results.json: Permission denied"),
        ("library", "error: DecodeError: Error parsing message with type 'onnx.ModelProto'"),
        ("value", "error: data.root: folder not found: /nowhere"),
        ("bug", "error: TypeError: unsupported operand (unexpected: run with --debug for the traceback)"),
    ],
)
def test_errors_are_one_line(
    failing_command: str, kind: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([failing_command, kind]) == 1
    err = capsys.readouterr().err
    assert err.strip() == expected


def test_debug_shows_the_traceback(failing_command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PermissionError):
        cli.main(["--debug", failing_command, "permission"])
    with pytest.raises(ValueError):
        cli.main([failing_command, "value", "--debug"])
    monkeypatch.setenv("FASTERPOSE_DEBUG", "1")
    with pytest.raises(TypeError):
        cli.main([failing_command, "bug"])


def test_config_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  batch_size: 4\n")
    for override, key in [
        ("train.batch_size=0", "train.batch_size=0"),
        ("loss.name=rse", "loss.name"),
        ("train.lr=[1", "train.lr"),
        ("data.heatmap_size=[1,1]", "data.heatmap_size"),
    ]:
        assert cli.main(["train", str(cfg), override]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and key in err and str(cfg) in err, err
