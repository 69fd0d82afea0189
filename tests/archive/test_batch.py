"""Storing many files at once: every blob matches its digest, each content is kept once."""

from __future__ import annotations

import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import blake3
import pytest

from labledger.archive import batch as batch_module
from labledger.archive.batch import BlobBatch
from labledger.archive.manifest import STAT_CACHE, archive_tree
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


@pytest.mark.parametrize("with_stats", [False, True], ids=["paths only", "with the walk's stats"])
def test_every_blob_holds_exactly_the_content_its_digest_names(
    store: BlobStore, tmp_path: Path, with_stats: bool
) -> None:
    files = _write_files(tmp_path / "src")
    # With stats, small files are stored on this thread while threads copy the large ones.
    stats = [os.lstat(p) for p in files] if with_stats else None
    with BlobBatch(store) as batch:
        stored = batch.put_many(list(files), stats)
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


def test_a_blob_removed_after_its_folder_was_listed_is_stored_again(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any folder is listed, however large: the listing answers for the whole batch.
    monkeypatch.setattr(batch_module, "LIST_BYTES_PER_DIGEST", 1 << 40)
    content = b"kept once, then collected"
    store.create()
    digest = store.put_bytes(content).digest
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_bytes(content)
    second.write_bytes(content)
    with BlobBatch(store) as batch:
        [found] = batch.put_many([first], [os.lstat(first)])  # lists the blob's folder
        store.remove(digest)  # e.g. a garbage collection running meanwhile
        [again] = batch.put_many([second], [os.lstat(second)])
    assert not found.added
    assert again.added and again.digest == digest
    assert store.get(digest) == content


def test_a_blob_stored_by_another_writer_after_the_listing_is_kept_whole(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "LIST_BYTES_PER_DIGEST", 1 << 40)
    other, mine = os.urandom(100), os.urandom(100)
    f = tmp_path / "mine.bin"
    f.write_bytes(mine)
    g = tmp_path / "other.bin"
    g.write_bytes(other)
    with BlobBatch(store) as batch:
        batch.put_many([g], [os.lstat(g)])  # lists a folder (and stores ``other``)
        mine_digest = store.put_bytes(mine).digest  # another writer, after the listings
        [stored] = batch.put_many([f], [os.lstat(f)])
    # Not seen by the listing: written again, under the same name with the same content.
    assert stored.digest == mine_digest
    assert store.get(mine_digest) == mine
    assert sorted(store.tmp.iterdir()) == []


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


_ARCHIVE_CHILD = """
import sys
import threading
from pathlib import Path
from labledger.archive.manifest import archive_tree
from labledger.archive.store import BlobStore
archive_tree(BlobStore(Path(sys.argv[1])), Path(sys.argv[2]))
"""


def _killed_mid_batch(store: BlobStore, src: Path) -> bool:
    """Archive ``src`` in a child process and SIGKILL it once its temp files exist; False
    when it finished first."""
    child = subprocess.Popen([sys.executable, "-c", _ARCHIVE_CHILD, str(store.root), str(src)])
    try:
        while child.poll() is None:
            if store.tmp.is_dir() and any(store.tmp.iterdir()):
                child.send_signal(signal.SIGKILL)
                child.wait()
                return True
            time.sleep(0.001)
        return False
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_an_archive_killed_mid_batch_leaves_only_temp_files_and_no_cache(
    store: BlobStore, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    rnd = random.Random(9)
    for i in range(3000):
        folder = src / f"d{i // 300}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.bin").write_bytes(rnd.randbytes(1024))
    for i in range(2):
        (src / f"large{i}.bin").write_bytes(rnd.randbytes(batch_module.SMALL_FILE * 4))
    for _attempt in range(5):
        shutil.rmtree(store.root, ignore_errors=True)
        if _killed_mid_batch(store, src):
            break
    else:
        pytest.fail("the archive finished each time before it could be killed")
    # Every name under objects/ holds exactly the content its digest names; the rest is
    # temp files, and the stat cache (saved only after the batch closed) is absent.
    report = store.verify()
    assert report.ok, report
    assert not (store.root / STAT_CACHE).exists()
    # The next archive stores everything and clears nothing it should keep.
    entries, skipped = archive_tree(store, src)
    assert not skipped
    for entry in entries:
        assert entry.digest is not None
        data = (src / entry.path).read_bytes()
        assert entry.digest == blake3.blake3(data).hexdigest()
        assert store.get(entry.digest) == data
    assert store.verify().ok


def _head_start_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "labledger-head-start"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux's")
def test_the_head_start_flushes_while_small_files_are_stored_and_stops_with_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "HEAD_START_EVERY_S", 0.001)
    with batch_module._head_start(tmp_path, wanted=False):
        assert _head_start_threads() == []  # a few files: no thread
    with batch_module._head_start(tmp_path, wanted=True):
        assert len(_head_start_threads()) == 1
        time.sleep(0.02)
    assert _head_start_threads() == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux's")
def test_a_store_removed_under_the_head_start_stops_it_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "HEAD_START_EVERY_S", 0.001)
    folder = tmp_path / "tmp"
    folder.mkdir()
    with batch_module._head_start(folder, wanted=True):
        folder.rmdir()
        time.sleep(0.02)  # the thread finds it gone (an error there would fail the test run)
    assert _head_start_threads() == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_starting_the_writeback_of_a_copy_is_found_and_never_raises(tmp_path: Path) -> None:
    assert batch_module._sync_file_range() is not None
    f = tmp_path / "copy.bin"
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, os.urandom(1 << 16))
        batch_module._start_writeback(fd)
    finally:
        os.close(fd)
    batch_module._start_writeback(fd)  # closed: the kernel says EBADF, the copy goes on
    assert f.stat().st_size == 1 << 16
