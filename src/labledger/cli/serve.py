"""``labledger serve``: run the experiment service."""

from __future__ import annotations

import click

__all__ = ["serve"]


@click.command()
@click.option("--host", default=None, help="Address to bind (default: from server_url, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: from server_url, 8002).")
@click.option("--db-url", default=None, help="Database URL (default: embedded SQLite in data_dir).")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Serve on a non-loopback address although no token or trusted network is set "
    "(anyone who reaches the port may change everything).",
)
def serve(
    host: str | None, port: int | None, db_url: str | None, log_level: str, insecure: bool
) -> None:
    """Run the experiment service (MADSci-compatible REST API, docs at /docs).

    \b
    Examples:
      labledger serve
      labledger serve --port 9000 --db-url postgresql+psycopg://lab@db.local/labledger
      EXPERIMENT_DB_URL=sqlite:///lab.sqlite3 labledger serve
      labledger serve --host 0.0.0.0   (after: labledger token create admin --scope admin)
    """
    import gc

    import uvicorn

    from labledger.cli.entry import long_running
    from labledger.server.app import create_app
    from labledger.server.security import access_summary, exposure_problem
    from labledger.settings import load_settings

    settings = load_settings(db_url=db_url)
    app = create_app(settings)
    bind_host = host or settings.host
    bind_port = port or settings.port
    token_count = len(app.state.lab.tokens.active())
    problem = exposure_problem(bind_host, settings, token_count)
    if problem and not insecure:
        app.state.lab.close()
        raise click.ClickException(problem)
    if problem:
        banner = "!" * 78
        click.secho(
            f"{banner}\nWARNING: --insecure: {problem.split('. Make')[0]}.\n"
            f"Every request is allowed, as admin. Do this only on a network you trust.\n{banner}",
            fg="red",
            bold=True,
            err=True,
        )
    click.echo(
        f"labledger serving on http://{bind_host}:{bind_port} (docs at /docs), "
        f"database {settings.public()['db_url']}",
        err=True,
    )
    click.echo(f"access control: {access_summary(settings, token_count)}", err=True)
    # What start-up built (modules, routes, models) lives as long as the process: kept out of
    # the collector's sight, a full collection walks only what requests made, instead of
    # pausing a request for tens of milliseconds.
    long_running()
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=bind_host, port=bind_port, log_level=log_level, access_log=False)
