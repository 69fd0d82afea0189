"""Metric series: named ``(step, value, timestamp)`` points of an experiment (domain models).

A series is identified by ``(experiment, name)`` and a point within it by its ``step``: posting
a step again replaces that point, so a retried batch changes nothing. A point given without a
step goes after the series' last step. Only finite numbers are stored.

Reading a long series gives it downsampled to at most ``max_points``: the step range is cut into
equal buckets and each bucket keeps its lowest and highest point, plus the very first and last
point, so spikes and the end of a curve survive (:func:`bucket_plan`).
Buckets start on block boundaries and span whole blocks, so the lowest and highest point kept
for every block as points arrive give each bucket's exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, NamedTuple, NotRequired, Protocol

from pydantic import AfterValidator, Field, StrictFloat
from typing_extensions import TypedDict

from labledger.core.idempotency import IdempotencyClaim
from labledger.core.models import LabModel
from labledger.core.records import ResultName

__all__ = [
    "DEFAULT_MAX_POINTS",
    "LEVELS",
    "MAX_BATCH",
    "MAX_MAX_POINTS",
    "MAX_STEP",
    "Block",
    "BucketPlan",
    "MetricBatch",
    "MetricPoint",
    "MetricPointIn",
    "MetricSeries",
    "MetricSeriesPoints",
    "MetricStore",
    "Point",
    "PointRow",
    "all_levels",
    "block_extremes",
    "block_size",
    "bucket_plan",
    "bucket_width",
    "level_for",
]

#: the most points one POST carries
MAX_BATCH = 100_000
#: points a series read answers with unless told otherwise, and the most it may ask for
DEFAULT_MAX_POINTS = 1_000
MAX_MAX_POINTS = 100_000
#: steps are 64-bit integers in both databases
MAX_STEP = 2**63 - 1

Step = Annotated[int, Field(ge=0, le=MAX_STEP)]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("expected a time with a time zone, e.g. 2026-01-01T00:00:00Z")
    return value


class MetricPointIn(TypedDict):
    """One point as posted: ``step`` and ``timestamp`` are optional.

    A typed dict rather than a model: a batch of 100,000 points validates several times faster
    without an object built per point.
    """

    name: ResultName
    #: strict: true/false and numeric strings are not metric values
    value: Annotated[StrictFloat, Field(allow_inf_nan=False, description="A finite number.")]
    step: NotRequired[Step | None]
    timestamp: NotRequired[
        Annotated[
            datetime | None,
            AfterValidator(_aware),
            Field(description="ISO 8601 with a time zone."),
        ]
    ]


class MetricBatch(LabModel):
    """The body of ``POST /experiment/{id}/metrics``."""

    metrics: list[MetricPointIn] = Field(min_length=1, max_length=MAX_BATCH)


class Point(NamedTuple):
    """A stored point: step, value and the time it was taken (seconds since the epoch).

    A tuple: a chart reads ``(step, value)`` as its first two items, and a tuple of numbers
    costs the garbage collector nothing once built (tens of thousands make a compare page).
    """

    step: int
    value: float
    at: float


#: a point as read in bulk: ``(step, value, at, ...)`` (a :class:`Point`, or the database's row
#: as it came, for tens of thousands of points with no object built per point)
PointRow = Sequence[float]


class MetricPoint(LabModel):
    """One point of a series as read."""

    step: int
    value: float
    timestamp: datetime


class MetricSeries(LabModel):
    """A series' summary: how many points, its range of steps, last, lowest and highest value."""

    name: str
    count: int
    first_step: int | None
    last_step: int | None
    last_value: float | None
    last_timestamp: datetime | None
    min_value: float | None
    max_value: float | None


class MetricSeriesPoints(MetricSeries):
    """A series with its points, downsampled to at most ``max_points``."""

    max_points: int
    downsampled: bool
    points: list[MetricPoint]


class MetricStore(Protocol):
    """Where metric series are kept."""

    def add_points(
        self,
        experiment_id: str,
        points: Sequence[MetricPointIn],
        now: float,
        *,
        claim: IdempotencyClaim | None = None,
    ) -> int:
        """Store points (a step given again replaces its point); returns how many were given.

        ``claim`` is the request's Idempotency-Key claim, tied to the batch in its transaction.

        Raises :class:`labledger.errors.ExperimentNotFound` for an unknown or trashed experiment.
        """

    def list_series(self, experiment_id: str) -> list[MetricSeries]:
        """The experiment's series by name."""

    def read_series(self, experiment_id: str, name: str, max_points: int) -> MetricSeriesPoints:
        """One series downsampled to at most ``max_points``; ``NotFound`` naming it if none."""

    def last_values(self, experiment_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """experiment id -> series name -> last value, for the experiments given."""

    def read_many(
        self, experiment_ids: Sequence[str], max_points: int
    ) -> dict[str, dict[str, list[PointRow]]]:
        """experiment id -> series name -> its points downsampled to at most ``max_points``,
        every series of the experiments given, read in a few queries (not one per series)."""


#: block levels: level ``n`` groups ``16**n`` consecutive steps (see ``block_extremes``)
LEVELS = (1, 2, 3)


def block_size(level: int) -> int:
    """Steps per block at ``level``."""
    return 1 << (4 * level)


def level_for(width: int) -> int:
    """The coarsest block level with at least two blocks per bucket of ``width`` steps (0: none,
    read the points themselves)."""
    chosen = 0
    for level in LEVELS:
        if 2 * block_size(level) <= width:
            chosen = level
    return chosen


@dataclass(slots=True)
class Block:
    """How many points a block of steps holds, and its lowest and highest point."""

    count: int
    low: Point
    high: Point

    def add(self, point: Point) -> None:
        self.count += 1
        if point.value < self.low.value:
            self.low = point
        if point.value > self.high.value:
            self.high = point


def block_extremes(points: Iterable[Point], level: int) -> dict[int, Block]:
    """Block number -> :class:`Block` of ``points`` at ``level`` (a tie keeps the earlier)."""
    shift = 4 * level
    blocks: dict[int, Block] = {}
    for point in points:
        number = point.step >> shift
        block = blocks.get(number)
        if block is None:
            blocks[number] = Block(1, point, point)
        else:
            block.add(point)
    return blocks


def coarser(blocks: dict[int, Block]) -> dict[int, Block]:
    """The blocks of the next level (16 times as many steps) made of ``blocks``."""
    out: dict[int, Block] = {}
    for number, block in blocks.items():
        parent = out.get(number >> 4)
        if parent is None:
            out[number >> 4] = Block(block.count, block.low, block.high)
            continue
        parent.count += block.count
        if block.low.value < parent.low.value:
            parent.low = block.low
        if block.high.value > parent.high.value:
            parent.high = block.high
    return out


def all_levels(points: Iterable[Point]) -> dict[int, dict[int, Block]]:
    """Level -> block number -> :class:`Block`, for every level of :data:`LEVELS`."""
    levels = {LEVELS[0]: block_extremes(points, LEVELS[0])}
    for level in LEVELS[1:]:
        levels[level] = coarser(levels[level - 1])
    return levels


def bucket_width(first_step: int, last_step: int, max_points: int) -> int:
    """Steps per bucket, so that two points per bucket plus the ends fit in ``max_points``."""
    buckets = max(1, (max_points - 2) // 2)
    span = last_step - first_step + 1
    return max(1, -(-span // buckets))


@dataclass(frozen=True, slots=True)
class BucketPlan:
    """How a series is cut: bucket ``i`` holds steps ``origin + i * width`` up to the next
    bucket's start, read from the blocks of ``level`` (0: from the points themselves)."""

    level: int
    origin: int
    width: int

    def bucket(self, step: int) -> int:
        return (step - self.origin) // self.width


def bucket_plan(first_step: int, last_step: int, max_points: int) -> BucketPlan:
    """Buckets of whole blocks covering ``[first_step, last_step]``, few enough that two points
    per bucket plus the ends fit in ``max_points``."""
    buckets = max(1, (max_points - 2) // 2)
    level = level_for(bucket_width(first_step, last_step, max_points))
    size = block_size(level) if level else 1
    origin = first_step // size * size
    span = last_step - origin + 1
    width = -(-span // buckets)
    width = -(-width // size) * size  # whole blocks
    return BucketPlan(level, origin, width)
