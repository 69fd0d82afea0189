"""A small Server-Sent Events reader (the ``text/event-stream`` format) for the event follower."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

__all__ = ["SSEMessage", "SSEParser", "aparse_lines", "parse_lines"]


@dataclass(frozen=True)
class SSEMessage:
    """One dispatched event: its id, event name and data (lines joined by newlines)."""

    id: str | None
    event: str
    data: str


class SSEParser:
    """Feed lines; get a message at each blank line (comments and pings are skipped)."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, line: str) -> SSEMessage | None:
        """Take one line (without its newline); return a message when one is complete."""
        if line == "":
            if not self._data:
                self._event = ""
                return None
            message = SSEMessage(self._id, self._event or "message", "\n".join(self._data))
            self._data, self._event = [], ""
            return message
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


def parse_lines(lines: Iterator[str]) -> Iterator[SSEMessage]:
    """Messages from an iterator of lines."""
    parser = SSEParser()
    for line in lines:
        if (message := parser.feed(line.rstrip("\r"))) is not None:
            yield message


async def aparse_lines(lines: AsyncIterator[str]) -> AsyncIterator[SSEMessage]:
    """Messages from an async iterator of lines."""
    parser = SSEParser()
    async for line in lines:
        if (message := parser.feed(line.rstrip("\r"))) is not None:
            yield message
