"""``labledger token`` on a real database, and ``labledger serve`` refusing an open bind."""

from __future__ import annotations

import subprocess
import time

import httpx
from click.testing import CliRunner

from labledger.cli.main import cli
from labledger_fixtures import LiveServerFactory, serve_command, server_env


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_prints_the_secret_once_and_list_shows_it_without(sqlite_url: str) -> None:
    code, out, err = _run(
        "token", "create", "robot-arm", "--scope", "write", "--db-url", sqlite_url
    )
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("lbl_") and len(secret) > 40
    assert "Bearer" in err
    code, out, _ = _run("token", "list", "--db-url", sqlite_url)
    assert code == 0
    assert "robot-arm" in out and "write" in out
    assert secret not in out


def test_revoke_then_list_active_leaves_it_out(sqlite_url: str) -> None:
    _run("token", "create", "old", "--scope", "read", "--db-url", sqlite_url)
    code, out, _ = _run("token", "revoke", "old", "--db-url", sqlite_url)
    assert code == 0 and "revoked" in out
    _, listed, _ = _run("token", "list", "--active", "--db-url", sqlite_url)
    assert "old" not in listed
    _, everything, _ = _run("token", "list", "--db-url", sqlite_url)
    assert "old" in everything


def _process(*args: str) -> tuple[int, str, str]:
    """The real command in a real process (its exit codes come from the error tree)."""
    done = subprocess.run(
        [*serve_command(), *args], capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode, done.stdout, done.stderr


def test_bad_input_says_what_is_expected(sqlite_url: str) -> None:
    code, _, err = _process(
        "token", "create", "has space", "--scope", "read", "--db-url", sqlite_url
    )
    assert code == 2, err
    assert "letters, digits" in err
    _run("token", "create", "dup", "--scope", "read", "--db-url", sqlite_url)
    code, _, err = _process("token", "create", "dup", "--scope", "read", "--db-url", sqlite_url)
    assert code == 1
    assert "choose another name" in err
    code, _, err = _process("token", "revoke", "nobody", "--db-url", sqlite_url)
    assert code == 1
    assert "token list" in err
    code, _, err = _run("token", "create", "x", "--scope", "root", "--db-url", sqlite_url)
    assert code == 2
    assert "'root' is not one of" in err


def test_a_token_made_by_the_cli_locks_a_running_server(
    live_server: LiveServerFactory, sqlite_url: str
) -> None:
    server = live_server(sqlite_url)
    with httpx.Client(base_url=server.url) as http:
        assert http.get("experiments").status_code == 200
        _, out, _ = _run("token", "create", "admin", "--scope", "admin", "--db-url", sqlite_url)
        secret = out.strip().splitlines()[-1]
        # the server reads the tokens again within a second
        for _ in range(40):
            if http.get("experiments").status_code == 401:
                break
            time.sleep(0.1)
        assert http.get("experiments").status_code == 401
        authorized = http.get("experiments", headers={"Authorization": f"Bearer {secret}"})
        assert authorized.status_code == 200


def _serve(tmp_path: object, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*serve_command(), "serve", "--db-url", f"sqlite:///{tmp_path}/db.sqlite3", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env({"XDG_DATA_HOME": str(tmp_path)}),
        cwd=str(tmp_path),
        check=False,
    )


def test_serve_refuses_a_non_loopback_bind_without_access_control(tmp_path: object) -> None:
    # 192.0.2.1 (TEST-NET-1) is never this machine's: nothing is exposed even if it went wrong
    result = _serve(tmp_path, "--host", "192.0.2.1", "--port", "18555")
    assert result.returncode == 1
    assert "no access control" in result.stderr
    assert "labledger token create" in result.stderr
    assert "--insecure" in result.stderr


def test_serve_insecure_warns_loudly(tmp_path: object) -> None:
    result = _serve(tmp_path, "--host", "192.0.2.1", "--port", "18555", "--insecure")
    assert "WARNING: --insecure" in result.stderr
    assert "Every request is allowed" in result.stderr
    assert "access control: off" in result.stderr
    # it then tried to bind (and could not: the address is not ours)
    assert result.returncode != 0


def test_serve_with_a_token_starts_on_a_non_loopback_address(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite3"
    _run("token", "create", "admin", "--scope", "admin", "--db-url", url)
    result = _serve(tmp_path, "--host", "192.0.2.1", "--port", "18555")
    assert "no access control" not in result.stderr
    assert "WARNING" not in result.stderr
    # the bind itself fails on this machine, after the check passed
    assert "labledger serving on http://192.0.2.1:18555" in result.stderr
    assert "access control: on: 1 active token" in result.stderr
