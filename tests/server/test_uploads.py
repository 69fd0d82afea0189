"""File uploads are parsed as they stream in and reach the store only when whole and checked."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import blake3
import httpx
from fastapi.testclient import TestClient

from labledger.archive.store import BlobStore
from labledger.server.app import create_app
from labledger.settings import Settings
from labledger_fixtures import LiveServerFactory

BOUNDARY = "labledger-test-boundary"


def _multipart(fields: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for name, value in fields:
        filename = '; filename="scan.bin"\r\nContent-Type: image/tiff' if name == "file" else ""
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'
        out += head.encode() + value + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def _post(api: TestClient, exp: str, body: bytes, name: str = "scan") -> httpx.Response:
    response: httpx.Response = api.post(
        f"/experiment/{exp}/files/{name}",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    return response


def _nothing_left(store: BlobStore) -> None:
    assert list(store.iter_digests()) == []
    assert not store.tmp.exists() or list(store.tmp.iterdir()) == []


def test_the_digest_may_follow_the_file_and_is_checked(db_url: str, tmp_path: Path) -> None:
    settings = Settings(db_url=db_url, data_dir=tmp_path)
    store = BlobStore(settings.results_path)
    app = create_app(settings)
    data = os.urandom(9 << 20) + b"end"  # more than one piece handed to the store
    digest = blake3.blake3(data).hexdigest()
    with TestClient(app) as api:
        exp = api.post("/experiment", json={"experiment_design": {"experiment_name": "x"}})
        exp = exp.json()["_id"]
        wrong = blake3.blake3(b"other").hexdigest()
        bad = _post(api, exp, _multipart([("file", data), ("digest", wrong.encode())]))
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["field"] == "digest"
        _nothing_left(store)
        assert api.get(f"/experiment/{exp}/results/scan").status_code == 404

        good = _post(api, exp, _multipart([("file", data), ("digest", digest.encode())]))
        assert good.status_code == 201, good.text
        assert good.json()["digest"] == digest
        down = api.get(f"/experiment/{exp}/files/scan")
        assert down.content == data and down.headers["content-type"] == "image/tiff"
        assert "scan.bin" in down.headers["content-disposition"]
        assert list(store.iter_digests()) == [digest]
    app.state.lab.close()


def test_a_body_without_a_file_or_over_the_limit_stores_nothing(
    db_url: str, tmp_path: Path
) -> None:
    settings = Settings(db_url=db_url, data_dir=tmp_path, max_upload_bytes=1 << 20)
    store = BlobStore(settings.results_path)
    app = create_app(settings)
    with TestClient(app) as api:
        exp = api.post("/experiment", json={"experiment_design": {"experiment_name": "x"}})
        exp = exp.json()["_id"]
        no_file = _post(api, exp, _multipart([("digest", b"0" * 64)]))
        assert no_file.status_code == 422
        assert no_file.json()["error"]["field"] == "file"
        not_multipart = api.post(f"/experiment/{exp}/files/scan", json={"file": "x"})
        assert not_multipart.status_code == 422
        assert not_multipart.json()["error"]["field"] == "file"
        bad_digest = _post(api, exp, _multipart([("digest", b"xyz"), ("file", b"data")]))
        assert bad_digest.status_code == 422
        assert bad_digest.json()["error"]["field"] == "digest"
        too_big = _post(api, exp, _multipart([("file", os.urandom(2 << 20))]))
        assert too_big.status_code == 413
        _nothing_left(store)
        assert api.get(f"/experiment/{exp}/results/scan").status_code == 404
    app.state.lab.close()


def test_a_digest_before_the_file_is_checked_however_the_body_is_cut(
    live_server: LiveServerFactory,
) -> None:
    """The body arrives in pieces the network chooses: here one ends inside the header of the
    file's part, right after the digest field (sent to a real server, the second piece a
    moment later). The digest must still be the one checked."""
    server = live_server()
    data = os.urandom(1 << 20)
    digest = blake3.blake3(data).hexdigest()
    wrong = blake3.blake3(b"other").hexdigest()

    def pieces(said: str) -> Iterator[bytes]:
        body = _multipart([("digest", said.encode()), ("file", data)])
        cut = body.index(b'name="file"') - len("form-data; ")  # inside the file part's header
        assert b"Content-Disposition" in body[body.index(said.encode()) : cut]
        yield body[:cut]
        time.sleep(0.3)  # the server has read and parsed the first piece alone by now
        yield body[cut:]

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    with httpx.Client(base_url=server.url, timeout=30) as api:
        exp = api.post("/experiment", json={"experiment_design": {"experiment_name": "x"}})
        url = f"/experiment/{exp.json()['_id']}/files/scan"
        bad = api.post(url, content=pieces(wrong), headers=headers)
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["field"] == "digest"
        assert api.get(url.replace("/files/", "/results/")).status_code == 404

        good = api.post(url, content=pieces(digest), headers=headers)
        assert good.status_code == 201, good.text
        assert good.json()["digest"] == digest
