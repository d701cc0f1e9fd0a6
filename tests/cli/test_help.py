"""Every command and every option of the command line is documented."""

from __future__ import annotations

import pytest
import typer

from distillwatch.cli import _register_all, app


def _commands():
    _register_all()
    root = typer.main.get_command(app)

    # Typer ships its own copy of click, so groups and options are recognised by shape.
    def walk(command, path: tuple[str, ...]):
        yield path, command
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))

    return list(walk(root, ()))


COMMANDS = _commands()


def test_the_expected_commands_exist():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"simulate", "evaluate", "demo", "data", "data fetch"} <= names


@pytest.mark.parametrize("path, command", COMMANDS,
                         ids=[" ".join(p) or "distillwatch" for p, _ in COMMANDS])
def test_command_and_options_have_help(path, command):
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert (param.help or "").strip(), f"{' '.join(path)} {param.opts} has no help"


def test_leaf_commands_give_an_example():
    for path, command in COMMANDS:
        if path and not hasattr(command, "commands"):
            assert "Example" in (command.help or ""), " ".join(path)
