"""Removing wrong rows from the offline store (job mode `repair`): the rows a selection names (entities,
a date range, or both: the intersection) are deleted, and every later row whose rolling windows held a
deleted day is recomputed without it, with the machinery of incremental runs (the history slice around
the deleted days, compute_features, only the affected rows kept). Both sets go to Delta in one MERGE
(offline_store.repair_rows); job.py publishes the result online."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from . import offline_store
from .feature_view import FeatureView
from .features import rows_around


class RepairSelectionError(ValueError):
    """A selection that cannot name rows of the view (an entity id the view could never store)."""


@dataclass(frozen=True)
class RepairSelection:
    """Which rows are wrong. Empty entities: every entity; no dates: every date. At least one is set
    (the argument parser makes sure); dates are inclusive."""

    entities: tuple[str, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def check(self, view: FeatureView) -> None:
        pattern = re.compile(view.entity_id_pattern)
        bad = [e for e in self.entities if not pattern.match(e)]
        if bad:
            raise RepairSelectionError(
                f"--repair-entity {', '.join(bad)} does not match the view's id pattern {view.entity_id_pattern}"
            )

    def describe(self) -> dict:
        return {
            "entities": list(self.entities),
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
        }


def selected_rows(
    spark: SparkSession, table_uri: str, version: int, view: FeatureView, selection: RepairSelection
) -> DataFrame:
    """The rows to delete, in table layout, from one table version. A date range prunes months."""
    entity, date = view.entity_column, view.event_date_column
    table = offline_store.read_version(spark, table_uri, version)
    condition = F.lit(True)
    if selection.entities:
        condition = condition & F.col(entity).isin(list(selection.entities))
    if selection.date_from is not None:
        condition = condition & (F.col(date) >= F.lit(selection.date_from.isoformat()).cast("date"))
    if selection.date_to is not None:
        condition = condition & (F.col(date) <= F.lit(selection.date_to.isoformat()).cast("date"))
    return table.where(condition).select(*offline_store.table_columns(view))


def recomputed_rows(
    spark: SparkSession,
    table_uri: str,
    version: int,
    view: FeatureView,
    doomed: DataFrame,
    date_range: tuple[dt.date, dt.date],
    updated_at,
    run_id: str,
) -> DataFrame:
    """Every remaining row, in table layout, whose windows held a deleted day, recomputed without the
    deleted rows. doomed: the rows to delete (entity, date, ...); date_range: their first and last date.

    Per entity with deleted days first..last, the rows dated first..last + W - 1 (W: the longest window)
    are the only ones whose windows can reach a deleted day; their windows need the rows back to
    first - (W - 1). Exact arithmetic makes them equal to a full recompute without the deleted rows.
    Rows in that range that no deleted day reached come out unchanged, and the MERGE leaves them be."""
    entity, date = view.entity_column, view.event_date_column
    window = view.max_window_days
    keys = doomed.select(entity, date)
    bounds = doomed.groupBy(entity).agg(F.min(date).alias("_first"), F.max(date).alias("_last"))
    if window <= 0:  # passthrough features only: no row depends on another
        return doomed.limit(0)
    # Both without the deleted rows: the windows' history, and the rows that can change.
    around = offline_store.read_around(spark, table_uri, view, bounds, date_range, version=version)
    history, later = (rows.join(keys, [entity, date], "left_anti") for rows in around)
    affected = rows_around(history, later, bounds, view)
    return offline_store.to_table_rows(affected, later, view, updated_at, run_id)
