"""Docs that cannot drift: every scan option, signal, policy condition and setting is documented."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import typer

from distillwatch.cli import _register_all, app
from distillwatch.score.policy import CONDITIONS
from distillwatch.settings import LinkSettings, ScoreSettings
from distillwatch.signals.registry import BUILTIN_SIGNALS

DOCS = (Path(__file__).parents[1] / "docs" / "detector.md").read_text(encoding="utf-8")


def test_every_scan_option_is_in_the_docs():
    _register_all()
    scan = typer.main.get_command(app).commands["scan"]
    options = [opt for p in scan.params if p.param_type_name == "option"
               for opt in p.opts if opt.startswith("--") and opt != "--help"]
    assert options
    missing = [opt for opt in options if f"`{opt}`" not in DOCS]
    assert missing == []


def test_every_signal_and_policy_condition_is_in_the_docs():
    assert [name for name in BUILTIN_SIGNALS if f"`{name}`" not in DOCS] == []
    assert [name for name in CONDITIONS if f"`{name}`" not in DOCS] == []


def test_every_setting_is_documented_in_its_docstring():
    for kind in (LinkSettings, ScoreSettings):
        doc = kind.__doc__ or ""
        assert [f.name for f in fields(kind) if f"{f.name}:" not in doc] == []
