"""Write the sync client from the async one, so the calls are written once.

``src/labledger/client/aio.py`` and ``lab_aio.py`` are the source; ``sync.py`` and
``lab_sync.py`` are generated from them by the substitutions below, then formatted with
``ruff format``. As httpcore does with its ``scripts/unasync.py``.

    python scripts/unasync.py           # rewrite the generated modules
    python scripts/unasync.py --check   # exit 1 if a generated module is stale

``tests/client/test_sync_generated.py`` runs the check.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "src" / "labledger" / "client"

#: async source -> generated sync module
FILES = {CLIENT / "aio.py": CLIENT / "sync.py", CLIENT / "lab_aio.py": CLIENT / "lab_sync.py"}

#: (pattern, replacement), applied in this order
SUBSTITUTIONS: list[tuple[str, str]] = [
    (r"^import asyncio$", "import time"),
    (r"\bawait asyncio\.to_thread\((\w+), ", r"\1("),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"\basync (def|with|for)\b", r"\1"),
    (r"\bawait ", ""),
    (r"\bAsyncExperimentClient\b", "ExperimentClient"),
    (r"\bAsyncLabMethods\b", "LabMethods"),
    (r"\bAsyncMetricMethods\b", "MetricMethods"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    (r"\bhttpx\.AsyncBaseTransport\b", "httpx.BaseTransport"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\baread\b", "read"),
    (r"\baiter_bytes\b", "iter_bytes"),
    (r"\baiter_lines\b", "iter_lines"),
    (r"\baparse_lines\b", "parse_lines"),
    (r"\basync_chunks\b", "sync_chunks"),
    (r"\blab_aio\b", "lab_sync"),
    (r"\basynchronous\b", "synchronous"),
]

HEADER = "# Generated from {source} by scripts/unasync.py: edit that file, then run the script.\n"


def unasync(text: str, source: Path) -> str:
    """The sync twin of the async module ``text`` (not yet formatted)."""
    for pattern, replacement in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    return HEADER.format(source=source.name) + text


def _ruff(*args: str, text: str, target: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(target), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return done.stdout


def formatted(text: str, target: Path) -> str:
    """``text`` with its imports sorted and formatted as ruff does with the project's settings."""
    text = _ruff("check", "--fix", "--select", "I", "--quiet", text=text, target=target)
    return _ruff("format", "--quiet", text=text, target=target)


def generated(source: Path, target: Path) -> str:
    """What ``target`` should hold."""
    return formatted(unasync(source.read_text(encoding="utf-8"), source), target)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for source, target in FILES.items():
        text = generated(source, target)
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if text == current:
            continue
        stale.append(target)
        if not check:
            target.write_text(text, encoding="utf-8")
    for target in stale:
        rel = target.relative_to(ROOT)
        print(f"{rel} is stale: run python scripts/unasync.py" if check else f"wrote {rel}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
