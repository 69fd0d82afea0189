"""Every recorder command documents itself with an example; `labledger --help` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from labledger.cli.main import COMMANDS, cli

RECORDER = [
    "init", "new", "run", "end", "show", "logs", "ls", "compare", "list", "export",
    "verify", "gc", "reindex", "checkout", "rerun",
]  # fmt: skip


@pytest.mark.parametrize("name", RECORDER)
def test_recorder_command_has_help_with_an_example(name: str) -> None:
    assert name in COMMANDS
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_top_level_help_imports_neither_pydantic_nor_rich_nor_the_recorder() -> None:
    code = (
        "import sys\n"
        "from labledger.cli.main import cli\n"
        "try:\n"
        "    cli.main(['--help'], standalone_mode=False)\n"
        "finally:\n"
        "    heavy = [m for m in sys.modules if m.split('.')[0] in ('pydantic', 'rich', 'blake3')\n"
        "             or m.startswith(('labledger.runner', 'labledger.archive'))]\n"
        "    print('HEAVY', sorted(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
