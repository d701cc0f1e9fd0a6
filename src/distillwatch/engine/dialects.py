"""SQL differences between engines, one subclass per engine, looked up by name.

Stage SQL asks the dialect for anything that is not the same on DuckDB and Spark; adding an
engine means adding one subclass here, with no edits to the stages.

Beyond the functions here, stage SQL keeps to a subset both engines read the same way:

- Ratios and rates are DOUBLE: ``CAST(count(x) AS DOUBLE) / count(*)`` and
  ``avg(CASE WHEN ... THEN 1 ELSE 0 END)``. A literal such as ``1.0`` is a DECIMAL on both
  engines; DuckDB turns decimal division and averages into DOUBLE, Spark keeps DECIMAL and
  rounds (``avg`` of ``DECIMAL(2,1)`` has 5 decimal places).
- ``concat`` only over values that cannot be NULL: DuckDB skips a NULL, Spark returns NULL.
- Regular expressions are anchored and free of backslashes: Spark unescapes ``'\\.'`` in
  string literals to ``'.'``, which matches any character, and DuckDB's regexp_replace
  replaces the first match where Spark's replaces every one.
- Counts that feed a score or a decision are exact (``count(DISTINCT ...)``): the engines'
  HyperLogLog sketches give different estimates.
- No result depends on row order: Python sorts what it reads (or the SQL orders with full
  tie-breaking), and window orderings are unique (``ORDER BY ts, exchange_id``).
- Divisions never divide by zero (``nullif``): DuckDB's ``/`` returns infinity where Spark
  raises (ANSI mode) or returns NULL (without it); ``%`` raises on both.
"""

from __future__ import annotations

from typing import ClassVar

from distillwatch.exceptions import DistillwatchConfigError


class Dialect:
    """The SQL of one engine."""

    name: ClassVar[str]
    _registry: ClassVar[dict[str, type[Dialect]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        Dialect._registry[cls.name] = cls

    @classmethod
    def from_string(cls, name: str) -> Dialect:
        """The dialect registered as ``name`` (``duckdb``, ``spark``).

        Raises:
            DistillwatchConfigError: If there is none.
        """
        if name not in cls._registry:
            raise DistillwatchConfigError(
                f"Dialect '{name}' not found; known dialects: {', '.join(sorted(cls._registry))}")
        return cls._registry[name]()

    def _missing(self, what: str) -> DistillwatchConfigError:
        return DistillwatchConfigError(f"Backend '{self.name}' does not have a '{what}' function")

    def epoch_seconds(self, expression: str) -> str:
        """Seconds since 1970 of a timestamp expression, as a double."""
        raise self._missing("epoch_seconds")

    def array_length(self, expression: str) -> str:
        raise self._missing("array_length")

    def approx_distinct(self, expression: str) -> str:
        """An approximate distinct count (HyperLogLog); estimates differ between engines, so
        never let one decide anything that must agree across engines."""
        raise self._missing("approx_distinct")

    def median(self, expression: str) -> str:
        raise self._missing("median")

    def explode(self, expression: str) -> str:
        """One row per element of a list column (a SELECT-list expression)."""
        raise self._missing("explode")

    def timestamp_literal(self, iso: str) -> str:
        """An instant (ISO 8601 with offset) as a literal comparable with ``ts``."""
        raise self._missing("timestamp_literal")

    @property
    def string_type(self) -> str:
        """The name of the text type in casts."""
        raise self._missing("string_type")

    def hash64(self, expression: str) -> str:
        """A 64-bit hash for bucketing inside one engine; values differ between engines, so
        never store them or compare them across engines."""
        raise self._missing("hash64")

    def unit_hash(self, expression: str) -> str:
        """A number in [0, 1) from the MD5 of a text expression (its first 52 bits), the same
        on every engine: for orders and samples that must agree across engines."""
        raise self._missing("unit_hash")

    # -- shared SQL: written once so that every engine reads it the same way ----------------
    def in_share(self, expression: str, shares: int, number: int) -> str:
        """A condition true for share ``number`` of ``shares`` of the values of
        ``expression`` (by ``hash64``): a statement run once per share sees each value once.
        """
        if shares == 1:
            return "TRUE"
        hashed = self.hash64(expression)
        return f"((({hashed}) % {shares}) + {shares}) % {shares} = {number}"


class DuckDBDialect(Dialect):
    name = "duckdb"

    def epoch_seconds(self, expression: str) -> str:
        return f"(epoch_us({expression}) / 1e6)"

    def array_length(self, expression: str) -> str:
        return f"len({expression})"

    def approx_distinct(self, expression: str) -> str:
        return f"approx_count_distinct({expression})"

    def median(self, expression: str) -> str:
        return f"quantile_cont({expression}, 0.5)"

    def hash64(self, expression: str) -> str:
        return f"hash({expression})"

    def unit_hash(self, expression: str) -> str:
        return (f"(CAST(CAST(('0x' || substr(md5({expression}), 1, 13)) AS BIGINT) AS DOUBLE)"
                f" / {2.0 ** 52})")

    def explode(self, expression: str) -> str:
        return f"unnest({expression})"

    def timestamp_literal(self, iso: str) -> str:
        return f"TIMESTAMPTZ '{iso}'"

    @property
    def string_type(self) -> str:
        return "VARCHAR"


class SparkDialect(Dialect):
    name = "spark"

    def epoch_seconds(self, expression: str) -> str:
        return f"(unix_micros({expression}) / 1e6)"

    def array_length(self, expression: str) -> str:
        return f"size({expression})"

    def approx_distinct(self, expression: str) -> str:
        return f"approx_count_distinct({expression})"

    def median(self, expression: str) -> str:
        return f"percentile({expression}, 0.5)"

    def hash64(self, expression: str) -> str:
        return f"xxhash64({expression})"

    def unit_hash(self, expression: str) -> str:
        return (f"(CAST(CAST(conv(substr(md5({expression}), 1, 13), 16, 10) AS BIGINT) AS DOUBLE)"
                f" / {2.0 ** 52})")

    def explode(self, expression: str) -> str:
        return f"explode({expression})"

    def timestamp_literal(self, iso: str) -> str:
        return f"TIMESTAMP '{iso}'"

    @property
    def string_type(self) -> str:
        return "STRING"
