"""The web UI: Jinja2 templates, static assets and SVG charts, all shipped inside the package.

Pages are rendered on the server from the same service calls as their JSON twins, then kept live
by a small script that polls those JSON endpoints (``static/ui.js``). No CDN, no build step.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATIC_DIR", "TEMPLATE_DIR"]

STATIC_DIR = Path(__file__).with_name("static")
TEMPLATE_DIR = Path(__file__).with_name("templates")
