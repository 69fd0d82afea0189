"""How the CLI reports errors: a message that says what to do, and the error's exit code."""

from __future__ import annotations

import click

from labledger.errors import LabledgerError

__all__ = ["run_cli"]


def run_cli(group: click.Group) -> int:
    """Run ``group`` in standalone mode, turning labledger errors into messages."""
    try:
        group.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except LabledgerError as exc:
        click.secho(f"Error: {exc.message}", fg="red", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return 0
