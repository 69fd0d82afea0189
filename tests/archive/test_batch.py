"""Storing many files at once: every blob matches its digest, each content is kept once."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import blake3
import pytest

from labledger.archive import batch as batch_module
from labledger.archive.batch import BlobBatch
from labledger.archive.store import BlobStore


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def _write_files(folder: Path) -> dict[Path, bytes]:
    """Small and large files (both sides of the small-file limit), two with the same content."""
    rnd = random.Random(5)
    folder.mkdir()
    contents = {
        "empty.bin": b"",
        "small.txt": b"a few bytes\n",
        "at-limit.bin": rnd.randbytes(batch_module.SMALL_FILE),
        "just-over.bin": rnd.randbytes(batch_module.SMALL_FILE + 1),
        "large.bin": rnd.randbytes(5 << 20),
    }
    contents["large-copy.bin"] = contents["large.bin"]
    files = {}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
        files[folder / name] = data
    return files


def test_every_blob_holds_exactly_the_content_its_digest_names(
    store: BlobStore, tmp_path: Path
) -> None:
    files = _write_files(tmp_path / "src")
    with BlobBatch(store) as batch:
        stored = batch.put_many(list(files))
    for (path, data), blob in zip(files.items(), stored, strict=True):
        assert blob.digest == blake3.blake3(data).hexdigest(), path.name
        assert blob.size == len(data)
        assert store.get(blob.digest) == data
        assert not stat.S_IMODE(store.path_of(blob.digest).stat().st_mode) & 0o222
    # The content shared by two files is stored once, by whichever thread got there first.
    by_name = {p.name: b for p, b in zip(files, stored, strict=True)}
    assert by_name["large.bin"].digest == by_name["large-copy.bin"].digest
    assert [by_name["large.bin"].added, by_name["large-copy.bin"].added].count(True) == 1
    assert sorted(store.iter_digests()) == sorted({b.digest for b in stored})
    assert list(store.tmp.iterdir()) == []


def test_storing_content_that_is_stored_already_adds_nothing(
    store: BlobStore, tmp_path: Path
) -> None:
    files = _write_files(tmp_path / "src")
    with BlobBatch(store) as batch:
        batch.put_many(list(files))
    before = sorted(store.iter_digests())
    with BlobBatch(store) as batch:  # no stat cache: every file is read again
        again = batch.put_many(list(files))
    assert not any(b.added for b in again)
    assert sorted(store.iter_digests()) == before
    assert list(store.tmp.iterdir()) == []


def test_a_temp_name_left_behind_by_a_crashed_process_is_not_reused(
    store: BlobStore, tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(batch_module.SMALL_FILE * 2)
    src.write_bytes(data)
    batch = BlobBatch(store)
    with batch:
        # the name this batch would give its first temp file, already taken
        leftover = store.tmp / f"blob-{os.getpid()}-{id(batch):x}-0"
        leftover.write_bytes(b"left by a crash")
        blob = batch.put_file(src)
    assert store.get(blob.digest) == data
    assert leftover.read_bytes() == b"left by a crash"
