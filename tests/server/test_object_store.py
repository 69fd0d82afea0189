"""Replicas sharing one PostgreSQL and one S3-compatible store serve each other's files.

Everything is real: two ``labledger serve`` processes with separate data folders, a throwaway
PostgreSQL cluster, moto's S3 server in its own process, and the recorder's ``labledger push``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import blake3
import httpx
import pytest

from labledger_fixtures import LiveServer, LiveServerFactory, S3Server
from runner.recorder_support import labledger, labledger_json, make_experiment

pytestmark = pytest.mark.postgres


@pytest.fixture
def replicas(
    pg_url: str, s3_server: S3Server, live_server: LiveServerFactory
) -> tuple[LiveServer, LiveServer, str]:
    bucket = s3_server.create_bucket()
    env = {**s3_server.env(), "EXPERIMENT_BLOB_URL": f"s3://{bucket}/labledger"}
    first = live_server(pg_url, env=env)
    second = live_server(pg_url, env=env)
    assert first.workdir != second.workdir
    return first, second, bucket


def _experiment(http: httpx.Client) -> str:
    made = http.post("experiment", json={"experiment_design": {"experiment_name": "Scan"}})
    assert made.status_code == 200, made.text
    experiment_id: str = made.json()["_id"]
    return experiment_id


def test_a_file_uploaded_to_one_replica_downloads_from_the_other(
    replicas: tuple[LiveServer, LiveServer, str], tmp_path: Path
) -> None:
    first, second, _bucket = replicas
    data = os.urandom(24 << 20) + b"tail"
    digest = blake3.blake3(data).hexdigest()
    source = tmp_path / "scan.tiff"
    source.write_bytes(data)
    with (
        httpx.Client(base_url=first.url, timeout=60) as a,
        httpx.Client(base_url=second.url, timeout=60) as b,
    ):
        experiment_id = _experiment(a)
        with source.open("rb") as fh:
            up = a.post(
                f"experiment/{experiment_id}/files/scan",
                files={"file": ("scan.tiff", fh, "image/tiff")},
                data={"digest": digest},
            )
        assert up.status_code == 201, up.text
        assert up.json()["digest"] == digest
        whole = b.get(f"experiment/{experiment_id}/files/scan")
        assert whole.status_code == 200
        assert whole.content == data
        assert whole.headers["x-content-blake3"] == digest
        assert whole.headers["content-type"] == "image/tiff"
        assert "scan.tiff" in whole.headers["content-disposition"]
        part = b.get(f"experiment/{experiment_id}/files/scan", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        tail = b.get(f"experiment/{experiment_id}/files/scan", headers={"Range": "bytes=-4"})
        assert (tail.status_code, tail.content) == (206, b"tail")
        past = b.get(
            f"experiment/{experiment_id}/files/scan", headers={"Range": f"bytes={len(data)}-"}
        )
        assert past.status_code == 416
        assert past.headers["content-range"] == f"bytes */{len(data)}"


def test_a_refused_upload_leaves_nothing_in_the_store(
    replicas: tuple[LiveServer, LiveServer, str], s3_server: S3Server
) -> None:
    first, second, bucket = replicas
    with httpx.Client(base_url=first.url, timeout=30) as a:
        experiment_id = _experiment(a)
        bad = a.post(
            f"experiment/{experiment_id}/files/scan",
            files={"file": ("scan.bin", b"what was sent", "application/octet-stream")},
            data={"digest": blake3.blake3(b"what was meant").hexdigest()},
        )
        assert bad.status_code == 422, bad.text
        large = os.urandom(20 << 20)  # several parts, sent to the store while they arrive
        meant = blake3.blake3(b"something else").hexdigest()
        announced = a.post(
            f"experiment/{experiment_id}/files/scan",
            files={"file": ("scan.bin", large, "application/octet-stream")},
            data={"digest": meant},  # before the file: parts go under that digest's key
        )
        assert announced.status_code == 422, announced.text
        said_after = a.post(
            f"experiment/{experiment_id}/files/scan",
            content=_multipart([("file", large), ("digest", meant.encode())]),
            headers={"Content-Type": f"multipart/form-data; boundary={_BOUNDARY}"},
        )
        assert said_after.status_code == 422, said_after.text
        assert said_after.json()["error"]["field"] == "digest"
        body = b"a pushed blob"
        wrong = a.put(f"blobs/{blake3.blake3(b'another').hexdigest()}", content=body)
        assert wrong.status_code == 422, wrong.text
        assert a.get(f"experiment/{experiment_id}/results/scan").status_code == 404
    client: Any = s3_server.client()
    listed = client.list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) == 0, listed.get("Contents")
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads"), "all aborted"
    for replica in (first, second):
        spool = replica.workdir / "results" / "tmp"
        assert not spool.exists() or not list(spool.iterdir())


def test_a_run_pushed_to_one_replica_is_served_by_the_other(
    replicas: tuple[LiveServer, LiveServer, str], tmp_path: Path
) -> None:
    first, second, _bucket = replicas
    exp = make_experiment(
        tmp_path / "exp", run='mkdir -p results && printf "%s" "measured" > results/out.txt\n'
    )
    run = labledger_json(exp, "new", "--name", "base", "--hypothesis", "it measures")
    labledger(exp, "run")
    labledger(exp, "end", "--observations", "it did")
    pushed = labledger_json(exp, "push", "--server", first.url)
    assert [p["outcome"] for p in pushed] == ["new"] and pushed[0]["blobs_sent"] > 0
    with httpx.Client(base_url=second.url, timeout=30) as b:
        got = b.get(f"experiment/{run['run_id']}").json()
        assert got["metadata"]["recorder"]["observations"] == "it did"
        outputs = got["metadata"]["recorder"]["files"]["outputs"]
        output = next(e for e in outputs if e["path"].endswith("out.txt"))
        blob = b.get(f"blobs/{output['digest']}")
        assert (blob.status_code, blob.content) == (200, b"measured")
        missing = b.post("blobs/missing", json={"digests": [output["digest"], "0" * 64]})
        assert missing.json() == {"missing": ["0" * 64]}
    again = labledger_json(exp, "push", "--server", second.url)
    assert [p["outcome"] for p in again] == ["unchanged"] and again[0]["blobs_sent"] == 0


def test_settings_show_the_store_with_secrets_redacted(
    replicas: tuple[LiveServer, LiveServer, str], live_server: LiveServerFactory
) -> None:
    first, _second, bucket = replicas
    shown = httpx.get(f"{first.url}settings").json()["settings"]
    assert shown["blob_url"] == f"s3://{bucket}/labledger"
    keyed = live_server(
        env={
            "EXPERIMENT_S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "EXPERIMENT_S3_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-very-secret",
        }
    )
    text = httpx.get(f"{keyed.url}settings").text
    assert "wJalrXUtnFEMI" not in text
    assert (
        httpx.get(f"{keyed.url}settings").json()["settings"]["s3_secret_access_key"] == "**********"
    )


_BOUNDARY = "labledger-test-boundary"


def _multipart(fields: list[tuple[str, bytes]]) -> bytes:
    """A multipart/form-data body with the fields in this order (the file named 'file')."""
    out = b""
    for name, value in fields:
        filename = '; filename="scan.bin"' if name == "file" else ""
        out += (
            (
                f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'
            ).encode()
            + value
            + b"\r\n"
        )
    return out + f"--{_BOUNDARY}--\r\n".encode()
