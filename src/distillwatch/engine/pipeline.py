"""A queue of SQL steps run as one query of common table expressions (CTEs), used once.

Each step is a SELECT that may read earlier steps by their templated names (``__dw__...``)
and tables the engine already holds. The engine runs the queue as

    WITH step1 AS (...), step2 AS (...) SELECT * FROM last_step

or, in debug mode, step by step, materialising each one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SqlStep:
    """One SELECT and the templated name of its result, e.g. ``__dw__profile_features``."""

    sql: str
    output: str


class SqlPipeline:
    """Steps queued by a stage; spent once an engine has run it."""

    def __init__(self) -> None:
        self._steps: list[SqlStep] = []
        self._spent = False

    def enqueue(self, sql: str, output: str) -> None:
        """Add a step.

        Raises:
            ValueError: If the pipeline has already been used, or ``output`` repeats a name.
        """
        self._check_usable()
        if any(step.output == output for step in self._steps):
            raise ValueError(f"The pipeline already has a step named '{output}'")
        self._steps.append(SqlStep(sql, output))

    def extend(self, steps: list[SqlStep]) -> None:
        for step in steps:
            self.enqueue(step.sql, step.output)

    @classmethod
    def of(cls, steps: list[SqlStep]) -> SqlPipeline:
        """A pipeline of ``steps``."""
        pipeline = cls()
        pipeline.extend(steps)
        return pipeline

    @property
    def steps(self) -> tuple[SqlStep, ...]:
        return tuple(self._steps)

    @property
    def output(self) -> str:
        """The templated name of the final result."""
        if not self._steps:
            raise ValueError("The pipeline has no steps")
        return self._steps[-1].output

    def cte_sql(self) -> str:
        """The whole pipeline as one statement."""
        self._check_usable()
        if not self._steps:
            raise ValueError("The pipeline has no steps")
        *earlier, last = self._steps
        if not earlier:
            return last.sql
        ctes = ",\n".join(f"{step.output} AS (\n{step.sql}\n)" for step in earlier)
        return f"WITH {ctes},\n{last.output} AS (\n{last.sql}\n)\nSELECT * FROM {last.output}"

    def mark_spent(self) -> None:
        self._check_usable()
        self._spent = True

    def _check_usable(self) -> None:
        if self._spent:
            raise ValueError("This pipeline has already been used")
