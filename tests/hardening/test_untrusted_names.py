"""Property tests for untrusted input: config files of any bytes, file names of any bytes in
archives, crafted manifest paths on restore, and any file name or result name in uploads.

The invariant everywhere: either a clear labledger error, or the work done, and never a write
outside the folder it belongs in.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import tomli_w
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from labledger.archive import BlobStore, FileEntry, archive_tree, restore_entries
from labledger.errors import ConfigError, IntegrityError, InvalidInput
from labledger.runner.config import load_experiment_config, load_run_config
from labledger.server.app import create_app
from labledger.settings import Settings

LOADERS = [load_run_config, load_experiment_config]


def _everything_under(root: Path) -> set[Path]:
    return {Path(dirpath) / name for dirpath, dirs, files in os.walk(root) for name in dirs + files}


# ------------------------------------------------------------------------------ config files


@settings(max_examples=120, deadline=None)
@given(data=st.binary(max_size=400), which=st.sampled_from(LOADERS))
def test_a_config_file_of_any_bytes_loads_or_raises_a_config_error(
    data: bytes, which: object
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.toml"
        path.write_bytes(data)
        try:
            which(path)  # type: ignore[operator]
        except ConfigError as exc:
            assert str(path) in exc.message


toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
keys = st.sampled_from(
    ["name", "description", "variables", "runners", "hypothesis", "observations", "capture_env"]
) | st.text(max_size=12)


@settings(max_examples=150, deadline=None)
@given(doc=st.dictionaries(keys, toml_values, max_size=6), which=st.sampled_from(LOADERS))
def test_any_toml_document_loads_or_names_the_file_and_field(
    doc: dict[str, object], which: object
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labledger.toml"
        path.write_text(tomli_w.dumps(doc), encoding="utf-8")
        try:
            which(path)  # type: ignore[operator]
        except ConfigError as exc:
            assert str(path) in exc.message
            assert exc.field is not None
            assert exc.field in exc.message


def test_a_folder_or_unreadable_path_as_config_is_a_config_error(tmp_path: Path) -> None:
    for load in LOADERS:
        with pytest.raises(ConfigError, match="cannot be read"):
            load(tmp_path)
    latin1 = tmp_path / "run.toml"
    latin1.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_run_config(latin1)


# ------------------------------------------------------------------------------ archive names

# one path component as the kernel takes it: 1-255 bytes, no '/', no NUL, not '.' or '..'
name_bytes = (
    st.binary(min_size=1, max_size=255)
    .map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_"))
    .filter(lambda b: b not in (b".", b".."))
)
name_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/\x00"),
    min_size=1,
    max_size=60,
).filter(lambda s: s not in (".", "..") and len(s.encode()) <= 255)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(name_bytes | name_text.map(os.fsencode), min_size=1, max_size=5))
def test_files_with_any_names_archive_and_restore_faithfully_inside_the_folder(
    names: list[bytes],
) -> None:
    assume(len({n for n in names}) == len(names))
    with tempfile.TemporaryDirectory() as tmp:
        root, src, dest = Path(tmp), Path(tmp) / "src", Path(tmp) / "dest"
        src.mkdir()
        for i, name in enumerate(names):
            with open(os.path.join(os.fsencode(src), name), "wb") as fh:
                fh.write(b"content %d" % i)
        store = BlobStore(root / "store")
        store.create()
        entries, skipped = archive_tree(store, src)
        utf8 = {n for n in names if _is_utf8(n)}
        assert {os.fsencode(e.path) for e in entries} == utf8
        assert len(skipped) == len(names) - len(utf8)
        before = _everything_under(root)
        restore_entries(store, entries, dest)
        added = _everything_under(root) - before
        assert all(p == dest or dest in p.parents for p in added)
        for i, name in enumerate(names):
            if name in utf8:
                assert (dest / os.fsdecode(name)).read_bytes() == b"content %d" % i


def _is_utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


crafted_paths = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["..", ".", "", "a", "b", "/", "etc", "x.txt"]), max_size=6).map(
        "/".join
    ),
    st.sampled_from(["../escape", "/tmp/abs-escape", "a/../../b", "a//b", "./a", "a/./b", ".."]),
)


@settings(max_examples=200, deadline=None)
@given(paths=st.lists(crafted_paths, min_size=1, max_size=4), link=st.booleans())
def test_a_crafted_manifest_never_writes_outside_its_folder(paths: list[str], link: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = BlobStore(root / "store")
        store.create()
        blob = store.put_bytes(b"crafted")
        entries = [FileEntry(path=p, digest=blob.digest, size=7) for p in paths]
        if link:
            # a link out of the folder, and a file meant to be written through it
            entries.append(FileEntry(path="out", kind="symlink", target=str(root)))
            entries.append(FileEntry(path="out/through-link", digest=blob.digest, size=7))
        dest = root / "dest"
        before = _everything_under(root)
        with contextlib.suppress(IntegrityError, InvalidInput):
            restore_entries(store, entries, dest)
        added = _everything_under(root) - before
        outside = [p for p in added if p != dest and dest not in p.parents]
        assert outside == []
        assert not (root / "through-link").exists()
        assert not Path("/tmp/abs-escape").exists()


# ------------------------------------------------------------------------------ uploads


@pytest.fixture(scope="module")
def upload_api() -> Iterator[tuple[TestClient, Path, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        app = create_app(Settings(db_url=f"sqlite:///{data / 'db.sqlite3'}", data_dir=data))
        with TestClient(app) as client:
            exp = client.post("/experiment", json={"experiment_design": {"experiment_name": "u"}})
            yield client, root, exp.json()["_id"]


upload_names = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        ["../../escape", "/tmp/abs-escape", "..", "a/../../b", "%2e%2e%2fx", "\\..\\x"]
    ),
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(filename=upload_names, name=upload_names)
@example(filename="../../escape", name="data.csv")
@example(filename="/tmp/abs-escape", name="raw")
@example(filename="..", name="spectrum")
def test_an_upload_with_any_names_stays_in_the_result_store(
    upload_api: tuple[TestClient, Path, str], filename: str, name: str
) -> None:
    client, root, exp_id = upload_api
    before = _everything_under(root)
    response = client.post(
        f"/experiment/{exp_id}/files/{quote(name, safe='')}",
        files={"file": (filename, b"data of " + filename.encode("utf-8", "replace"))},
    )
    assert response.status_code < 500, response.text
    assert response.status_code in {201, 404, 405, 422}, response.text
    data = root / "data"
    added = _everything_under(root) - before
    assert all(data in p.parents for p in added), added
    for candidate in (filename, name):
        if candidate.startswith("/"):
            assert not Path(candidate).exists() or Path(candidate) in before
    if name in {"data.csv", "raw", "spectrum"}:
        assert response.status_code == 201, response.text
    if response.status_code == 201:
        stored = response.json()
        assert "/" not in (stored.get("filename") or "")
        got = client.get(f"/experiment/{exp_id}/files/{quote(name, safe='')}")
        assert got.status_code == 200
        disposition = got.headers.get("content-disposition", "")
        assert "\r" not in disposition and "\n" not in disposition


def test_a_manifest_asking_for_a_folder_where_it_put_a_file_is_refused(tmp_path: Path) -> None:
    """Found by the property test above: it was a bare FileExistsError."""
    store = BlobStore(tmp_path / "store")
    store.create()
    blob = store.put_bytes(b"x")
    entries = [FileEntry(path=p, digest=blob.digest, size=1) for p in ("0", "0/inside")]
    with pytest.raises(IntegrityError, match="is a file, not a folder"):
        restore_entries(store, entries, tmp_path / "dest")
