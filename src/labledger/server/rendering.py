"""Responses built straight from the domain models (no second validation pass)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pydantic_core
from fastapi.responses import FileResponse, Response
from pydantic_core import PydanticSerializationError
from starlette.responses import MalformedRangeHeader
from starlette.responses import RangeNotSatisfiable as StarletteRangeNotSatisfiable

from labledger.core.models import (
    Event,
    Experiment,
    ExperimentalCampaign,
    campaign_to_wire,
    experiment_to_wire,
)
from labledger.core.strict import clean_for_json
from labledger.errors import InvalidInput, RangeNotSatisfiable

__all__ = [
    "Download",
    "JSONBody",
    "campaign_json",
    "event_wire",
    "events_json",
    "experiment_json",
    "json_response",
]


class JSONBody(Response):
    """A JSON response rendered compactly in UTF-8 by pydantic-core (a few times faster than
    the standard library's encoder on an experiment)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            # non-finite numbers become null, as clean_for_json makes them
            return pydantic_core.to_json(content, inf_nan_mode="null")
        except PydanticSerializationError:
            # A lone surrogate in a row stored before such values were refused (or imported):
            # answer anyway.
            text = json.dumps(clean_for_json(content), separators=(",", ":"), ensure_ascii=False)
            return text.encode("utf-8")


class Download(FileResponse):
    """A file sent whole or by ``Range``; a bad or unsatisfiable Range answers the one JSON
    error body (422 naming the header, or 416 with ``Content-Range: bytes */size``) where
    Starlette answers plain text or nothing."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader as exc:
            raise InvalidInput(
                f"Range: expected bytes=START-END with START below END (e.g. bytes=0-1023); "
                f"{exc.content.removeprefix('Range header: ')}, got {http_range!r}",
                field="Range",
            ) from None
        except StarletteRangeNotSatisfiable:
            raise RangeNotSatisfiable(
                f"Range: {http_range!r} starts at or after the end of the file ({file_size} bytes)",
                size=file_size,
            ) from None


def json_response(content: Any, status_code: int = 200) -> JSONBody:
    """Any JSON value."""
    return JSONBody(content, status_code=status_code)


def experiment_json(exp: Experiment, status_code: int = 200) -> JSONBody:
    """One experiment."""
    return JSONBody(experiment_to_wire(exp), status_code=status_code)


def campaign_json(campaign: ExperimentalCampaign, status_code: int = 200) -> JSONBody:
    """One campaign."""
    return JSONBody(campaign_to_wire(campaign), status_code=status_code)


def event_wire(ev: Event) -> dict[str, Any]:
    """The JSON object of an event."""
    return {
        "event_id": ev.event_id,
        "experiment_id": ev.experiment_id,
        "campaign_id": ev.campaign_id,
        "type": ev.type.value,
        "actor": ev.actor,
        "from_status": ev.from_status,
        "to_status": ev.to_status,
        "at": ev.at.isoformat(),
        "data": ev.data,
    }


def events_json(events: Iterable[Event]) -> JSONBody:
    """A bare array of events."""
    return JSONBody([event_wire(e) for e in events])
