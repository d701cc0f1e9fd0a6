"""Any program as a scanner: run a command template per scan (and per replay cutoff)."""

from __future__ import annotations

import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from distillwatch.evaluate.scanners import Scanner
from distillwatch.exceptions import DistillwatchConfigError, DistillwatchInputError

PLACEHOLDERS = ("{world}", "{out}", "{until}")
_TAIL = 600


class CommandScanner(Scanner):
    """Runs ``command`` with ``{world}``, ``{out}`` and ``{until}`` filled in.

    ``{until}`` becomes an RFC 3339 UTC time, or an empty string for a scan of everything; the
    program must write the scan output contract into ``{out}`` and exit 0.

    Example:
        ``--scanner command --param "command=mytool scan {world} --before '{until}' -o {out}"``
    """

    NAME = "command"
    DESCRIPTION = "an external program, run per scan: command=... with {world} {out} {until}"
    DEFAULT_PARAMS = {"command": "", "timeout_s": 3600.0}

    def __init__(self, **params) -> None:
        super().__init__(**params)
        template = self.params["command"]
        if "{world}" not in template or "{out}" not in template:
            raise DistillwatchConfigError(
                "The command scanner needs command=... containing {world} and {out} "
                "(and {until} to support --replay)")

    def scan(self, world_dir: Path, out_dir: Path, until: datetime | None = None) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if until else ""
        argv = [part.replace("{world}", str(world_dir)).replace("{out}", str(out_dir))
                .replace("{until}", stamp) for part in shlex.split(self.params["command"])]
        try:
            result = subprocess.run(argv, capture_output=True, text=True,
                                    timeout=self.params["timeout_s"])
        except (OSError, subprocess.TimeoutExpired) as error:
            raise DistillwatchInputError(f"Scanner command failed to run: {error}",
                                         argv[0]) from error
        if result.returncode != 0:
            raise DistillwatchInputError(
                f"Scanner command exited with {result.returncode}: "
                f"{(result.stderr or result.stdout)[-_TAIL:].strip()}", " ".join(argv))
