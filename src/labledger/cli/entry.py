"""The ``labledger`` process: the garbage collector set up for a command that lives a moment.

Start-up imports make tens of thousands of objects that live as long as the process. With
Python's default threshold (a young-generation collection every 700 new objects) a recorder
command runs about forty collections that find nothing to free, and at exit the interpreter
walks every object once more. A command line sets a higher threshold before its imports and,
once its command is done, freezes what is left so that exit does not walk it. A command that
runs for long (a server, a worker) puts Python's thresholds back with :func:`long_running`.
"""

from __future__ import annotations

import gc
import sys

__all__ = ["SHORT_LIVED_THRESHOLD", "long_running", "main"]

#: young-generation threshold of a command line (objects allocated between collections)
SHORT_LIVED_THRESHOLD = 20_000

_PYTHON_THRESHOLDS = gc.get_threshold()


def main() -> None:
    """Run the command line; domain errors print a message and exit with their code."""
    gc.set_threshold(SHORT_LIVED_THRESHOLD, *_PYTHON_THRESHOLDS[1:])
    from labledger.cli.errors import run_cli
    from labledger.cli.main import cli

    code = run_cli(cli)
    # Cycles left now are freed by the process's exit; the collector need not find them.
    gc.freeze()
    sys.exit(code)


def long_running() -> None:
    """Python's own collection thresholds, for a command that serves until it is stopped."""
    gc.set_threshold(*_PYTHON_THRESHOLDS)
