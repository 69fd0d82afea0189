"""The stat cache: unchanged files skip hashing, but no change of content is ever missed."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import blake3
import pytest

from labledger.archive import statcache
from labledger.archive import store as store_module
from labledger.archive.batch import BlobBatch
from labledger.archive.manifest import STAT_CACHE, FileEntry, archive_tree
from labledger.archive.statcache import StatCache
from labledger.archive.store import BlobStore


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    s = BlobStore(tmp_path / "store")
    s.create()
    return s


def _digests(entries: list[FileEntry]) -> dict[str, str | None]:
    return {e.path: e.digest for e in entries}


def test_a_remembered_stat_survives_a_reload_and_any_write_invalidates_it(tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"one")
    st = os.stat(f)
    cache = StatCache(tmp_path / "cache.sqlite")
    cache.record(str(f), st, "d" * 64, hashed_at_ns=max(st.st_mtime_ns, st.st_ctime_ns) + 10**10)
    cache.save()
    again = StatCache(tmp_path / "cache.sqlite")
    again.load()
    assert again.lookup(str(f), os.stat(f)) == "d" * 64
    assert again.lookup(str(tmp_path / "other"), os.stat(f)) is None
    # Same size, modification time put back: the change time still gives the write away.
    f.write_bytes(b"two")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(f).st_mtime_ns == st.st_mtime_ns
    assert again.lookup(str(f), os.stat(f)) is None


def test_a_hash_taken_right_after_a_change_is_not_trusted(tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"one")
    st = os.stat(f)
    cache = StatCache(tmp_path / "cache.sqlite")
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    cache.record(str(f), st, "d" * 64, hashed_at_ns=changed + statcache.SETTLED_NS - 1)
    assert cache.lookup(str(f), st) is None  # not saved yet either way
    cache.save()
    cache.load()
    assert cache.lookup(str(f), st) is None  # within the settling time: read it again


def _stat_at(st: os.stat_result, mtime_ns: int, ctime_ns: int) -> os.stat_result:
    """``st`` with other modification and change times (as another file system stamps them)."""
    return os.stat_result(tuple(st), {"st_mtime_ns": mtime_ns, "st_ctime_ns": ctime_ns})


@pytest.mark.parametrize(
    ("changed", "settle"),
    [
        (1_700_000_000_123_456_789, statcache.SETTLED_NS),  # nanosecond stamps
        (1_700_000_000_000_000_000, statcache.SETTLED_COARSE_NS),  # whole seconds, as on FAT
    ],
    ids=["fine-stamps", "whole-second-stamps"],
)
def test_how_long_a_hash_must_follow_a_change_depends_on_the_stamps(
    tmp_path: Path, changed: int, settle: int
) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"one")
    st = _stat_at(os.stat(f), changed, changed)
    assert statcache.settling_time(st) == settle
    cache = StatCache(tmp_path / "cache.sqlite")
    cache.record(str(f), st, "a" * 64, hashed_at_ns=changed + settle - 1)
    cache.record(str(tmp_path / "g.bin"), st, "b" * 64, hashed_at_ns=changed + settle)
    cache.save()
    cache.load()
    assert cache.lookup(str(f), st) is None  # a moment too soon: read it again
    assert cache.lookup(str(tmp_path / "g.bin"), st) == "b" * 64


def test_looking_up_many_files_at_once_answers_as_one_at_a_time(tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"one")
    st = os.stat(f)
    fine, coarse = 1_700_000_000_123_456_789, 1_700_000_000_000_000_000
    cases = {  # path: (stat recorded, stat looked up with, hashed at)
        "settled": (st, st, max(st.st_mtime_ns, st.st_ctime_ns) + statcache.SETTLED_NS),
        "too-soon": (st, st, max(st.st_mtime_ns, st.st_ctime_ns) + statcache.SETTLED_NS - 1),
        "changed": (st, _stat_at(st, st.st_mtime_ns, st.st_ctime_ns + 1), 2 * 10**18),
        "coarse-settled": (
            _stat_at(st, coarse, coarse),
            _stat_at(st, coarse, coarse),
            coarse + statcache.SETTLED_COARSE_NS,
        ),
        "coarse-too-soon": (
            _stat_at(st, coarse, coarse),
            _stat_at(st, coarse, coarse),
            coarse + statcache.SETTLED_COARSE_NS - 1,
        ),
        "fine-settled": (_stat_at(st, fine, fine), _stat_at(st, fine, fine), fine + 10**8),
    }
    cache = StatCache(tmp_path / "cache.sqlite")
    for i, (path, (recorded, _, hashed_at)) in enumerate(cases.items()):
        cache.record(path, recorded, f"{i:x}" * 64, hashed_at_ns=hashed_at)
    cache.save()
    cache.load()
    paths = [*cases, "unknown"]
    stats = [now for _, now, _ in cases.values()] + [st]
    one_by_one = [cache.lookup(p, s) for p, s in zip(paths, stats, strict=True)]
    assert cache.lookup_many(paths, stats) == one_by_one
    assert one_by_one == ["0" * 64, None, None, "3" * 64, None, "5" * 64, None]


def test_a_file_hashed_a_moment_after_it_was_written_is_trusted_by_the_next_archive(
    store: BlobStore, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha")
    written = os.stat(src / "a.txt")
    while time.time_ns() - max(written.st_mtime_ns, written.st_ctime_ns) < statcache.SETTLED_NS:
        time.sleep(0.01)
    archive_tree(store, src)
    cache = StatCache(store.root / STAT_CACHE)
    cache.load()
    assert cache.lookup(str(src / "a.txt"), os.stat(src / "a.txt")) == (
        blake3.blake3(b"alpha").hexdigest()
    )


def test_an_unreadable_cache_is_dropped_and_rebuilt(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statcache, "SETTLED_NS", 0)
    (store.root / STAT_CACHE).write_bytes(b"not a database at all" * 100)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha")
    entries, _ = archive_tree(store, src)
    assert _digests(entries) == {"a.txt": blake3.blake3(b"alpha").hexdigest()}
    cache = StatCache(store.root / STAT_CACHE)
    cache.load()  # a real database again, holding what was just hashed
    assert cache.lookup(str(src / "a.txt"), os.stat(src / "a.txt")) == entries[0].digest


def test_rewriting_a_file_with_its_old_size_and_mtime_is_archived_anew(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No settling time, so only the stat decides: the worst case for the cache.
    monkeypatch.setattr(statcache, "SETTLED_NS", 0)
    src = tmp_path / "src"
    src.mkdir()
    small, large = src / "small.txt", src / "large.bin"
    small.write_bytes(b"a" * 100)
    large.write_bytes(b"x" * (3 << 20))
    first, _ = archive_tree(store, src)
    for f, content in ((small, b"b" * 100), (large, b"y" * (3 << 20))):
        st = os.stat(f)
        f.write_bytes(content)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    second, _ = archive_tree(store, src)
    assert _digests(second) == {
        "small.txt": blake3.blake3(b"b" * 100).hexdigest(),
        "large.bin": blake3.blake3(b"y" * (3 << 20)).hexdigest(),
    }
    assert _digests(first) != _digests(second)


def test_a_cached_file_whose_blob_was_removed_is_stored_again(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statcache, "SETTLED_NS", 0)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha")
    entries, _ = archive_tree(store, src)
    digest = entries[0].digest
    assert digest is not None
    store.gc(set())  # e.g. the run that kept it was deleted
    assert not store.has(digest)
    again, _ = archive_tree(store, src)
    assert again[0].digest == digest
    assert store.get(digest) == b"alpha"


def test_unchanged_files_give_the_same_manifest_and_add_nothing(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statcache, "SETTLED_NS", 0)
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(20):
        (src / "d" / f"f{i}").write_bytes(os.urandom(100 + i * 50_000))
    first, _ = archive_tree(store, src)
    blobs = sorted(store.iter_digests())
    with BlobBatch(store, StatCache(store.root / STAT_CACHE)) as batch:
        results = batch.put_many(sorted((src / "d").iterdir()))
    assert not any(r.added for r in results)
    second, _ = archive_tree(store, src)
    assert second == first
    assert sorted(store.iter_digests()) == blobs
    assert sorted(store.tmp.iterdir()) == []


def test_a_walk_gets_the_digest_and_size_that_put_many_gives(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statcache, "SETTLED_NS", 0)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}").write_bytes(os.urandom(10 + i * 700_000))
    (src / "same").write_bytes((src / "f0").read_bytes())
    paths = sorted(str(p) for p in src.iterdir())
    with BlobBatch(store, StatCache(store.root / STAT_CACHE)) as batch:
        first = batch.put_files(paths, [os.lstat(p) for p in paths])  # stored now
    with BlobBatch(store, StatCache(store.root / STAT_CACHE)) as batch:
        again = batch.put_files(paths, [os.lstat(p) for p in paths])  # from the cache
    with BlobBatch(store) as batch:
        expected = [(b.digest, b.size) for b in batch.put_many(paths)]
    assert first == again == expected
    assert expected[0][0] == expected[-1][0]
    assert all(store.get(d) == Path(p).read_bytes() for p, (d, _) in zip(paths, first, strict=True))


@pytest.mark.parametrize(
    "size", [10, 5_000, 3 << 20], ids=["shrank", "grew-a-little", "grew-large"]
)
def test_a_file_that_changed_size_since_the_walk_is_stored_as_it_is_and_not_remembered(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(statcache, "SETTLED_NS", 0)
    f = tmp_path / "f.bin"
    f.write_bytes(b"a" * 1000)
    walked = os.lstat(f)  # the walk's stat, then the file changes before it is read
    content = os.urandom(size)
    f.write_bytes(content)
    cache = StatCache(store.root / STAT_CACHE)
    with BlobBatch(store, cache) as batch:
        [(digest, stored_size)] = batch.put_files([str(f)], [walked])
    assert (digest, stored_size) == (blake3.blake3(content).hexdigest(), size)
    assert store.get(digest) == content
    again = StatCache(store.root / STAT_CACHE)
    again.load()
    assert again.lookup(str(f), walked) is None  # the walk's stat never vouches for it


def test_entries_of_deleted_files_are_forgotten(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "kept.txt").write_text("kept")
    (src / "gone.txt").write_text("gone")
    archive_tree(store, src)
    (src / "gone.txt").unlink()
    (src / "new.txt").write_text("new")
    archive_tree(store, src)
    with sqlite3.connect(store.root / STAT_CACHE) as conn:
        paths = sorted(Path(row[0]).name for row in conn.execute("SELECT path FROM files"))
    assert paths == ["kept.txt", "new.txt"]


def test_a_deleted_file_is_forgotten_when_every_other_file_is_unchanged(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statcache, "SETTLED_NS", 0)  # every hash counts as settled at once
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (src / name).write_text(name)
    archive_tree(store, src)
    (src / "b.txt").unlink()
    archive_tree(store, src)  # nothing new to record: only found and deleted entries
    with sqlite3.connect(store.root / STAT_CACHE) as conn:
        paths = sorted(Path(row[0]).name for row in conn.execute("SELECT path FROM files"))
    assert paths == ["a.txt", "c.txt"]


def test_a_re_archive_listing_the_store_stores_again_exactly_the_blobs_removed(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Many unchanged files: the store is asked about all their blobs at once, by listing its
    # shard folders (forced here for every folder); a digest is trusted only while its blob
    # is there.
    monkeypatch.setattr(statcache, "SETTLED_NS", 0)
    monkeypatch.setattr(store_module, "LIST_FROM", 1)
    monkeypatch.setattr(store_module, "LIST_BYTES_PER_DIGEST", 1 << 40)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(120):
        (src / f"f{i}.txt").write_text(f"file {i}")
    first, _ = archive_tree(store, src)
    removed = {e.digest for e in first[::9]}
    for digest in removed:
        assert digest is not None
        store.remove(digest)
    with BlobBatch(store, StatCache(store.root / STAT_CACHE)) as batch:
        again = batch.put_many(sorted(src.iterdir()))
    by_name = sorted(first, key=lambda e: e.path)
    assert [b.digest for b in again] == [e.digest for e in by_name]
    assert {b.digest for b in again if b.added} == removed
    for entry in first:
        assert entry.digest is not None
        assert store.get(entry.digest) == (src / entry.path).read_bytes()


def _cached_paths(store: BlobStore) -> list[str]:
    with sqlite3.connect(store.root / STAT_CACHE) as conn:
        return sorted(row[0] for row in conn.execute("SELECT path FROM files"))


def test_a_cache_scoped_to_a_folder_loads_only_that_folders_files(
    store: BlobStore, tmp_path: Path
) -> None:
    # "runs/a0" and "runs/a-b" sort next to "runs/a/..." but are other folders.
    for name in ("a", "a0", "a-b", "b"):
        folder = tmp_path / "runs" / name
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "f.txt").write_text(name)
        (folder / "g.txt").write_text(name * 2)
        archive_tree(store, folder)
    cache = StatCache(store.root / STAT_CACHE, scope=str(tmp_path / "runs" / "a"))
    cache.load()
    loaded = [p for p in _cached_paths(store) if p in cache]
    a = tmp_path / "runs" / "a"
    assert loaded == [str(a / "g.txt"), str(a / "sub" / "f.txt")]
    unscoped = StatCache(store.root / STAT_CACHE)
    unscoped.load()
    assert all(p in unscoped for p in _cached_paths(store))
    assert len(_cached_paths(store)) == 8


def test_a_scoped_archive_still_trusts_only_unchanged_files(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statcache, "SETTLED_NS", 0)
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "same.txt").write_text("same")
        (folder / "changed.txt").write_text("before")
        archive_tree(store, folder)
    st = os.stat(a / "changed.txt")
    (a / "changed.txt").write_text("after!")  # same size, mtime put back
    os.utime(a / "changed.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    entries, _ = archive_tree(store, a)
    assert _digests(entries) == {
        "changed.txt": blake3.blake3(b"after!").hexdigest(),
        "same.txt": blake3.blake3(b"same").hexdigest(),
    }


def test_gone_files_of_other_folders_are_forgotten_once_a_sweep_is_due(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "kept.txt").write_text(folder.name)
    (b / "gone.txt").write_text("gone")
    archive_tree(store, a)
    archive_tree(store, b)  # the cache's first sweep: nothing is gone yet
    (b / "gone.txt").unlink()
    (a / "new.txt").write_text("new")
    archive_tree(store, a)  # swept a moment ago: b's entries are left alone
    assert str(b / "gone.txt") in _cached_paths(store)
    monkeypatch.setattr(statcache, "SWEEP_EVERY_NS", 0)
    (a / "newer.txt").write_text("newer")
    archive_tree(store, a)
    assert _cached_paths(store) == sorted(
        str(p) for p in (a / "kept.txt", a / "new.txt", a / "newer.txt", b / "kept.txt")
    )


def test_a_scoped_cache_loads_a_linked_outside_folder_when_asked(
    store: BlobStore, tmp_path: Path
) -> None:
    outside, src = tmp_path / "outside", tmp_path / "src"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "f.txt").write_text("f")
    (tmp_path / "outside-not").mkdir()
    (tmp_path / "outside-not" / "g.txt").write_text("g")
    src.mkdir()
    (src / "own.txt").write_text("own")
    for folder in (outside, tmp_path / "outside-not", src):
        archive_tree(store, folder)
    cache = StatCache(store.root / STAT_CACHE, scope=str(src))
    cache.load()
    assert str(outside / "sub" / "f.txt") not in cache
    cache.load_more(str(outside))
    assert str(outside / "sub" / "f.txt") in cache
    assert str(tmp_path / "outside-not" / "g.txt") not in cache
    assert str(src / "own.txt") in cache


def test_files_reached_through_a_link_out_are_not_read_again_when_unchanged(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statcache, "SETTLED_NS", 0)
    outside, src = tmp_path / "outside", tmp_path / "src"
    outside.mkdir()
    (outside / "data.csv").write_text("a,b\n")
    (outside / "one.txt").write_text("one")
    src.mkdir()
    (src / "to_dir").symlink_to(outside)
    (src / "to_file").symlink_to(outside / "one.txt")
    first, _ = archive_tree(store, src)
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: str, *args: int) -> int:
        opened.append(str(path))
        return real_open(path, *args)

    monkeypatch.setattr(os, "open", counting_open)
    again, _ = archive_tree(store, src)
    assert again == first
    assert not [p for p in opened if p.startswith(str(outside))]
