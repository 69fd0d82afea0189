"""Keyboard and screen-reader basics of the UI: labelled controls, landmarks, contrast."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from labledger.core.lifecycle import ExperimentStatus
from labledger.server.ui import STATIC_DIR
from server.ui_support import start, sweep


class Controls(HTMLParser):
    """Form controls and how each is named: a wrapping <label>, aria-label, or <label for>."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # open <label> elements
        self.unnamed: list[str] = []
        self.label_for: set[str] = set()
        self.ids: dict[str, str] = {}
        self.h1 = 0
        self.landmarks: set[str] = set()
        self.lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        if tag in ("main", "nav", "header", "footer"):
            self.landmarks.add(tag)
        if tag == "h1":
            self.h1 += 1
        if tag == "label":
            self.depth += 1
            if a.get("for"):
                self.label_for.add(a["for"] or "")
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            named = self.depth > 0 or a.get("aria-label") or a.get("aria-labelledby")
            if not named:
                self.unnamed.append(a.get("id") or a.get("name") or tag)
                if a.get("id"):
                    self.ids[a["id"] or ""] = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.depth -= 1

    def problems(self) -> list[str]:
        return [name for name in self.unnamed if name not in self.label_for]


def _pages(api: TestClient) -> list[str]:
    campaign_id, ids = sweep(api, [10, 20])
    start(api, status="queued")
    return [
        "/ui/experiments",
        f"/ui/experiments/{ids[0]}",
        "/ui/campaigns",
        f"/ui/campaigns/{campaign_id}",
        f"/ui/compare?ids={ids[0]},{ids[1]}",
        "/ui/queue",
        "/ui/experiments?since=nonsense",
    ]


def test_every_page_has_landmarks_one_heading_and_named_controls(sqlite_api: TestClient) -> None:
    for url in _pages(sqlite_api):
        html = sqlite_api.get(url).text
        page = Controls()
        page.feed(html)
        assert page.lang == "en", url
        assert {"main", "nav", "header", "footer"} <= page.landmarks, url
        assert page.h1 == 1, url
        assert page.problems() == [], f"{url}: controls without a label: {page.problems()}"
        assert 'class="skip" href="#main"' in html, url
        assert 'aria-live="polite"' in html, url


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("status", list(ExperimentStatus), ids=lambda s: s.value)
def test_status_badges_have_a_readable_contrast(status: ExperimentStatus) -> None:
    css = (STATIC_DIR / "ui.css").read_text()
    match = re.search(rf"\.status-{status.value} \{{ background: (#[0-9a-f]{{6}}); \}}", css)
    assert match, f"no badge colour for {status.value}"
    assert contrast(match.group(1), "#ffffff") >= 4.5  # WCAG AA for text on the badge


def test_focus_is_always_visible() -> None:
    css = (STATIC_DIR / "ui.css").read_text()
    assert re.search(r":focus-visible \{ outline: 3px solid", css)
    assert "outline: none" not in css and "outline:0" not in css.replace(" ", "")
