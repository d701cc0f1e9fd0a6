"""The engine contract: register inputs, run SQL pipelines, hand back and drop tables.

Implementation of an engine:
    Subclass :class:`Engine` and implement the primitives ``_execute`` (run a statement),
    ``_fetch_arrow`` (run a query, return Arrow), ``_register_arrow`` (expose Arrow data as a
    table), ``_drop_table`` and ``_list_tables``; give it a ``Dialect``. Override
    ``_create_statement`` if ``CREATE TABLE name AS ...`` / ``CREATE VIEW name AS ...`` is not
    how the engine should hold a pipeline's result. Everything else — naming, CTE
    pipelines, debug mode, error wrapping, sinks — lives here. An engine that can append
    Arrow rows to a table it holds (``_append_arrow``) sets ``appends_in_place`` so that a
    :class:`TableSink` writes chunk by chunk instead of collecting them.
"""

from __future__ import annotations

import logging
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa

from distillwatch.engine.dialects import Dialect
from distillwatch.engine.frame import EngineFrame
from distillwatch.engine.pipeline import SqlPipeline, SqlStep
from distillwatch.exceptions import DistillwatchEngineError

logger = logging.getLogger(__name__)
SQL_LOG_LEVEL = 5  # below DEBUG: every statement, for `--verbose` debugging sessions

# Templated names are replaced by physical ones as whole identifiers only:
#   FROM __dw__profile_features p       -> replaced
#   FROM __dw__profile_features_daily   -> not this name (a longer identifier)
_IDENTIFIER_END = r"(?![A-Za-z0-9_])"


class TableSink:
    """Arrow chunks written one at a time into one table of an engine (:meth:`Engine.sink`).

    Where the engine appends in place, each chunk goes into the table as it is written, so a
    producer working chunk by chunk never holds its whole output; otherwise the chunks are
    collected and registered on :meth:`close`.
    """

    def __init__(self, engine: Engine, templated_name: str, schema: pa.Schema) -> None:
        self._engine, self._name, self.schema = engine, templated_name, schema
        self._parts: list[pa.Table] = []
        self._frame = (engine.register(templated_name, schema.empty_table())
                       if engine.appends_in_place else None)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        """Add ``table``'s rows (its columns are taken by the schema's names)."""
        table = table.select(self.schema.names).cast(self.schema)
        self.rows += table.num_rows
        if not table.num_rows:
            return
        if self._frame is not None:
            self._engine.append(self._frame.physical_name, table)
        else:
            self._parts.append(table)

    def close(self) -> EngineFrame:
        """The table, held under the sink's templated name."""
        if self._frame is None:
            data = pa.concat_tables(self._parts) if self._parts else self.schema.empty_table()
            self._parts = []
            self._frame = self._engine.register(self._name, data)
        return self._frame


class Engine(ABC):
    """Runs relational work for the stages; the only code that touches a database.

    Args:
        dialect: The engine's SQL dialect.
        debug_mode: Run pipelines step by step, materialising each step (slower; for
            inspecting intermediate tables).
    """

    def __init__(self, dialect: Dialect, debug_mode: bool = False) -> None:
        self.dialect = dialect
        self.debug_mode = debug_mode
        self._frames: dict[str, EngineFrame] = {}

    appends_in_place = False  # ``_append_arrow`` works on the tables ``register`` makes

    # -- primitives each engine implements ---------------------------------------------------
    @abstractmethod
    def _execute(self, sql: str) -> None: ...

    @abstractmethod
    def _fetch_arrow(self, sql: str) -> pa.Table: ...

    @abstractmethod
    def _register_arrow(self, physical_name: str, data: pa.Table | pa.RecordBatchReader
                        ) -> None: ...

    @abstractmethod
    def _drop_table(self, physical_name: str, is_view: bool) -> None: ...

    def _append_arrow(self, table: str, data: pa.Table) -> None:
        """Insert Arrow rows (columns in the table's order) into a durable table."""
        raise NotImplementedError(f"{type(self).__name__} cannot append to tables")

    @abstractmethod
    def _list_tables(self) -> list[tuple[str, bool]]:
        """(name, is_view) of every table and view in the database."""

    # -- shared behaviour --------------------------------------------------------------------
    def physical(self, sql: str, local_names: Iterable[str] = ()) -> str:
        """``sql`` with the templated names of held tables replaced by physical names."""
        local = set(local_names)
        for templated, frame in sorted(self._frames.items(), key=lambda kv: -len(kv[0])):
            if templated in local or templated == frame.physical_name:
                continue
            sql = re.sub(re.escape(templated) + _IDENTIFIER_END, frame.physical_name, sql)
        return sql

    def execute(self, sql: str, context: str = "statement") -> None:
        """Run a statement (templated names resolved); wraps failures with the SQL."""
        final = self.physical(sql)
        logger.log(SQL_LOG_LEVEL, "%s:\n%s", context, final)
        try:
            self._execute(final)
        except Exception as error:
            raise DistillwatchEngineError(
                f"Error executing the following SQL for {context}:\n{final}\n{error}") from error

    def fetch_arrow(self, sql: str, context: str = "query") -> pa.Table:
        """Run a query (templated names resolved) and return its result as Arrow."""
        final = self.physical(sql)
        logger.log(SQL_LOG_LEVEL, "%s:\n%s", context, final)
        try:
            return self._fetch_arrow(final)
        except Exception as error:
            raise DistillwatchEngineError(
                f"Error executing the following SQL for {context}:\n{final}\n{error}") from error

    def register(self, templated_name: str, data: pa.Table | pa.RecordBatchReader
                 ) -> EngineFrame:
        """Expose Arrow data under ``templated_name``."""
        physical = self._new_physical_name(templated_name)
        self._register_arrow(physical, data)
        return self._remember(templated_name, physical)

    def append(self, table: str, data: pa.Table) -> None:
        """Insert Arrow rows into the durable table ``table`` (one committed statement)."""
        try:
            self._append_arrow(table, data)
        except Exception as error:
            raise DistillwatchEngineError(
                f"Error appending {data.num_rows} rows to '{table}': {error}") from error

    @contextmanager
    def sink(self, templated_name: str, schema: pa.Schema) -> Iterator[TableSink]:
        """A table written chunk by chunk: ``with engine.sink(name, schema) as out:
        out.write(chunk)``; held under ``templated_name`` once the block ends."""
        out = TableSink(self, templated_name, schema)
        yield out
        out.close()

    @contextmanager
    def lend_memory(self, nbytes: int) -> Iterator[None]:
        """Lend ``nbytes`` of the engine's memory budget to the driver for the block: a
        stage that fetches chunks and works on them in this process (the link stage's
        passes over pairs and edges) would otherwise add its working set on top of an
        engine already at its limit. Engines whose memory is not this process's, or that
        cannot change it, lend nothing."""
        yield

    def adopt(self, name: str) -> EngineFrame:
        """A durable table that already exists in the database, held under its own name."""
        return self._remember(name, name)

    def run(self, pipeline: SqlPipeline, materialise: bool = True) -> EngineFrame:
        """Run a pipeline; its result becomes a table under the pipeline's output name.

        Args:
            pipeline: Used up by this call.
            materialise: Create a table (True) or a view (False) for the result.
        """
        if self.debug_mode:
            steps = pipeline.steps
            pipeline.mark_spent()
            frame = None
            for step in steps:
                single = SqlPipeline()
                single.enqueue(step.sql, step.output)
                frame = self._create(single, materialise=True)
            assert frame is not None  # a pipeline has at least one step
            return frame
        return self._create(pipeline, materialise)

    def parts_for(self, rows: int, rows_per_part: int) -> int:
        """How many parts (``run_parts``) an aggregation over ``rows`` rows runs in: one per
        ``rows_per_part`` where the engine appends in place, else one (elsewhere, as on
        Spark, the engine plans its own partitions and a part costs a whole pass)."""
        if not self.appends_in_place:
            return 1
        return max(1, -(-rows // rows_per_part))

    def run_parts(self, parts: list[list[SqlStep]]) -> EngineFrame:
        """Run one pipeline per part, all with the same output and columns, into one table:
        the first part creates it, each later one is inserted into it (an aggregation split
        into parts of its rows that do not depend on each other, so that each fits in memory).
        """
        frame = None
        output = parts[0][-1].output
        for steps in parts:
            if frame is None:
                frame = self.run(SqlPipeline.of(steps))
                continue
            scratch = f"{output}_part"
            part = self.run(SqlPipeline.of([*steps[:-1], SqlStep(steps[-1].sql, scratch)]))
            self.execute(f"INSERT INTO {output} SELECT * FROM {scratch}", f"{output}: part")
            self.drop(part)
        assert frame is not None, "run_parts needs one part at least"
        return frame

    def _create(self, pipeline: SqlPipeline, materialise: bool) -> EngineFrame:
        output = pipeline.output
        local = [step.output for step in pipeline.steps]
        sql = self.physical(pipeline.cte_sql(), local_names=local)
        pipeline.mark_spent()
        physical = self._new_physical_name(output)
        statement = self._create_statement(physical, sql, materialise)
        logger.log(SQL_LOG_LEVEL, "%s:\n%s", output, statement)
        try:
            self._execute(statement)
        except Exception as error:
            raise DistillwatchEngineError(
                f"Error executing the following SQL for table '{output}':\n{statement}\n"
                f"{error}") from error
        if output in self._frames:
            self.drop(self._frames[output])
        return self._remember(output, physical, is_view=not materialise)

    def _create_statement(self, physical_name: str, sql: str, materialise: bool) -> str:
        """The statement that makes a pipeline's result a table (or a view) called
        ``physical_name``; engines whose tables need more (a format, a temporary view)
        override it."""
        kind = "TABLE" if materialise else "VIEW"
        return f"CREATE {kind} {physical_name} AS\n{sql}"

    def drop(self, frame: EngineFrame) -> None:
        """Drop a table this engine made (durable tables adopted by name are left alone)."""
        if frame.physical_name != frame.templated_name:
            self._drop_table(frame.physical_name, frame.is_view)
        self._frames.pop(frame.templated_name, None)

    def drop_all(self) -> None:
        """Drop every intermediate table this engine made."""
        for frame in list(self._frames.values()):
            self.drop(frame)

    def drop_held(self, prefix: str, keep: Iterable[str] = ()) -> None:
        """Drop every held table whose templated name starts with ``prefix`` but those in
        ``keep`` (a stage's intermediate tables, once it no longer reads them: on DuckDB they
        are temporary tables, spilled to disk beyond the memory limit)."""
        kept = set(keep)
        for name in [n for n in self._frames if n.startswith(prefix) and n not in kept]:
            self.drop(self._frames[name])

    def table_names(self) -> set[str]:
        """Names of every table and view in the database."""
        return {name for name, _ in self._list_tables()}

    def drop_leftovers(self) -> int:
        """Drop intermediate tables an earlier, interrupted run left in a durable store.

        Intermediate tables have templated names with a 10-hex-digit suffix
        (``__dw__profile_features_1a2b3c4d5e``); durable tables (``features``, ``accounts``)
        are never touched. Returns how many were dropped.
        """
        held = {frame.physical_name for frame in self._frames.values()}
        dropped = 0
        for name, is_view in self._list_tables():
            if re.fullmatch(r"__dw__\w+_[0-9a-f]{10}", name) and name not in held:
                self._drop_table(name, is_view)
                dropped += 1
        return dropped

    def frame(self, templated_name: str) -> EngineFrame:
        """The held table called ``templated_name``.

        Raises:
            DistillwatchEngineError: If no such table is held.
        """
        if templated_name not in self._frames:
            raise DistillwatchEngineError(
                f"No table '{templated_name}'; held: {', '.join(sorted(self._frames)) or 'none'}")
        return self._frames[templated_name]

    def _remember(self, templated: str, physical: str, is_view: bool = False) -> EngineFrame:
        frame = EngineFrame(templated, physical, self, is_view)
        self._frames[templated] = frame
        return frame

    @staticmethod
    def _new_physical_name(templated: str) -> str:
        return f"{templated}_{uuid.uuid4().hex[:10]}"
