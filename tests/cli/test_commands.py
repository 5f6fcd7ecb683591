"""`tlcore` subcommands are plugin commands: registered through `tlcore_register_commands`, imported lazily."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable
from pathlib import Path

import pytest

import tlcore
from tlcore._cli import main
from tlcore.plugins import CommandInfo, hookimpl, register_plugin

pytestmark = pytest.mark.usefixtures("fresh_plugins")


def _command_plugin(*commands: CommandInfo) -> types.SimpleNamespace:
    plugin = types.SimpleNamespace()

    @hookimpl
    def tlcore_register_commands(register: Callable[[CommandInfo], None]) -> None:
        for command in commands:
            register(command)

    plugin.tlcore_register_commands = tlcore_register_commands
    return plugin


def _greet_configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True)


def _greet_run(args: argparse.Namespace) -> int:
    print(f"hello {args.name}")
    return 3


def test_an_in_process_plugin_adds_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    register_plugin(_command_plugin(CommandInfo("greet", "say hello", _greet_configure, _greet_run)), name="greeter")
    assert main(["greet", "--name", "world"]) == 3
    assert capsys.readouterr().out == "hello world\n"
    assert tlcore.load_plugins().commands["greet"].plugin == "greeter"


def test_plugins_lists_the_command_with_its_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    register_plugin(_command_plugin(CommandInfo("greet", "say hello", _greet_configure, _greet_run)), name="greeter")
    assert main(["plugins"]) == 0
    printed = capsys.readouterr().out
    commands = printed.split("Commands\n", 1)[1]
    assert "greet" in commands and "from greeter" in commands and "say hello" in commands
    assert "bench" in commands and "from bench" in commands


def test_help_lists_every_command_and_imports_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tlcore_test_lazy_command.py").write_text(
        textwrap.dedent(
            """
            def configure(parser):
                parser.add_argument("--times", type=int, default=1)

            def run(args):
                print("lazy " * args.times)
                return 0
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tlcore_test_lazy_command", raising=False)
    lazy = CommandInfo("lazy", "a command in its own module", "tlcore_test_lazy_command:configure",
                       "tlcore_test_lazy_command:run")  # fmt: skip
    register_plugin(_command_plugin(lazy), name="lazy-plugin")
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    listing = capsys.readouterr().out
    for name in ("plugins", "run", "convert", "bench", "lazy"):
        assert f"    {name} " in listing, name
    assert "tlcore_test_lazy_command" not in sys.modules, "--help must not import a command's module"
    assert main(["lazy", "--times", "2"]) == 0
    assert capsys.readouterr().out.split() == ["lazy", "lazy"]


def test_help_imports_no_command_module_of_the_benchmark() -> None:
    code = (
        "import sys, contextlib, io\nfrom tlcore._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        "print('bench' in out.getvalue(), sorted(m for m in sys.modules if m.startswith('tlcore_bench')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True ['tlcore_bench', 'tlcore_bench.plugin']"


def test_a_command_that_cannot_be_imported_names_its_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    broken = CommandInfo("broken", "cannot load", "tlcore_no_such_module_xyz:configure", _greet_run)
    register_plugin(_command_plugin(broken), name="broken-plugin")
    assert main(["broken"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("tlcore: error: PluginError: cannot import 'tlcore_no_such_module_xyz:configure'")
    assert "command 'broken' from plugin 'broken-plugin'" in error and "Traceback" not in error


def test_a_run_function_that_is_missing_names_its_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    missing = CommandInfo("missing", "no run", _greet_configure, "argparse:no_such_function_xyz")
    register_plugin(_command_plugin(missing), name="sloppy-plugin")
    assert main(["missing", "--name", "x"]) == 2
    error = capsys.readouterr().err
    assert "tlcore: error: PluginError:" in error and "'sloppy-plugin'" in error and "no_such_function_xyz" in error


def test_a_command_module_that_fails_on_import_names_its_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tlcore_test_crashing_command.py").write_text("raise RuntimeError('no config file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    crashing = CommandInfo("crash", "fails on import", "tlcore_test_crashing_command:configure", _greet_run)
    register_plugin(_command_plugin(crashing), name="crashing-plugin")
    assert main(["crash"]) == 2
    error = capsys.readouterr().err
    assert "'crashing-plugin'" in error and "RuntimeError: no config file" in error


def test_a_tlcore_error_from_a_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    def fail(args: argparse.Namespace) -> int:
        raise tlcore.ConfigError("bad option")

    register_plugin(_command_plugin(CommandInfo("fail", "always fails", lambda parser: None, fail)), name="failing")
    assert main(["fail"]) == 2
    assert capsys.readouterr().err == "tlcore: error: ConfigError: bad option\n"


def test_a_command_of_a_plugin_that_failed_to_load_is_explained(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = importlib.metadata.EntryPoint("extras", "tlcore_no_such_module_xyz", "tlcore")
    real = importlib.metadata.entry_points

    def entry_points(**kwargs: str) -> list[importlib.metadata.EntryPoint]:
        return [*real(**kwargs), broken] if kwargs.get("group") == "tlcore" else list(real(**kwargs))

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    with pytest.warns(RuntimeWarning, match="tlcore plugin 'extras'"):
        assert main(["bnech"]) == 2
    error = capsys.readouterr().err
    assert "tlcore: error: PluginError: no command 'bnech'. Did you mean 'bench'?" in error
    assert "extras (ModuleNotFoundError" in error
    assert "Available commands: bench, convert, export, layers, plugins, run." in error


def test_an_unknown_command_is_an_argparse_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TLCORE_LOAD_PLUGINS", "bench")  # no plugin fails to load: argparse's own message
    with pytest.raises(SystemExit) as done:
        main(["plugns"])
    assert done.value.code == 2
    assert "invalid choice: 'plugns'" in capsys.readouterr().err
