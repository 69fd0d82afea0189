"""Manifests: archive a folder (symlinks as links) and restore it, never outside the target."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labledger.archive.manifest import FileEntry, archive_tree, check_entry_path, restore_entries
from labledger.archive.store import BlobStore
from labledger.errors import IntegrityError, LabledgerError


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    s = BlobStore(tmp_path / "store")
    s.create()
    return s


def _tree(root: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = path.read_bytes()
            elif not any(path.iterdir()):
                found[rel] = "(empty dir)"
    return found


def test_archive_then_restore_gives_the_same_tree(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "top.txt").write_text("top")
    (src / "a" / "b" / "deep.txt").write_text("deep")
    (src / "a" / "link").symlink_to("b/deep.txt")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)

    entries, skipped = archive_tree(store, src)
    assert skipped == []
    dest = tmp_path / "dest"
    restore_entries(store, entries, dest)
    assert _tree(dest) == _tree(src)
    assert os.access(dest / "run.sh", os.X_OK)


def test_links_out_of_the_folder_keep_what_they_point_to_and_say_so(
    store: BlobStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "data.csv").write_text("a,b\n1,2\n")
    (outside / "sub" / "more.txt").write_text("more")
    src = tmp_path / "src"
    src.mkdir()
    (src / "kept.txt").write_text("kept")
    (src / "to_dir").symlink_to(outside)
    (src / "to_file").symlink_to(outside / "data.csv")
    (src / "inside_abs").symlink_to(src / "kept.txt")  # absolute, but inside the folder
    (src / "nowhere").symlink_to(tmp_path / "missing.txt")

    notes: list[str] = []
    entries, skipped = archive_tree(store, src, notes=notes)

    by_path = {e.path: e for e in entries}
    assert store.get(by_path["to_file"].digest or "") == b"a,b\n1,2\n"
    assert store.get(by_path["to_dir/data.csv"].digest or "") == b"a,b\n1,2\n"
    assert store.get(by_path["to_dir/sub/more.txt"].digest or "") == b"more"
    assert (by_path["inside_abs"].kind, by_path["inside_abs"].target) == ("symlink", "kept.txt")
    assert "nowhere" not in by_path and skipped == ["nowhere"]
    assert len(notes) == 3
    assert any("to_file" in n and "archived the file" in n for n in notes)
    assert any("to_dir" in n and "archived the folder" in n for n in notes)
    assert any("nowhere" in n and "not kept" in n for n in notes)


def test_a_link_looping_back_is_not_followed_forever(store: BlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_text("x")
    (outside / "back").symlink_to(outside)  # a folder that contains itself
    src = tmp_path / "src"
    src.mkdir()
    (src / "out").symlink_to(outside)
    notes: list[str] = []
    entries, _ = archive_tree(store, src, notes=notes)
    assert {e.path for e in entries} == {"out/x.txt"}
    assert any("loops back" in n for n in notes)


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("link", "/etc"),
        ("link", ".."),
        ("a/link", "../../x"),
        ("a/b/link", "../x/../../../y"),
        ("link", ""),
    ],
)
def test_restore_never_makes_a_link_that_leads_out(
    store: BlobStore, tmp_path: Path, path: str, target: str
) -> None:
    refused: list[str] = []
    dest = tmp_path / "dest"
    restore_entries(
        store, [FileEntry(path=path, kind="symlink", target=target)], dest, refused=refused
    )
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    assert refused == [f"{path} -> {target}"]


def test_restore_makes_links_that_stay_inside(store: BlobStore, tmp_path: Path) -> None:
    blob = store.put_bytes(b"payload")
    entries = [
        FileEntry(path="a/b/file.txt", size=7, digest=blob.digest),
        FileEntry(path="a/link", kind="symlink", target="b/file.txt"),
        FileEntry(path="a/b/up", kind="symlink", target="../b/./file.txt"),
    ]
    dest = tmp_path / "dest"
    assert restore_entries(store, entries, dest) == 3
    assert (dest / "a" / "link").read_bytes() == b"payload"
    assert (dest / "a" / "b" / "up").read_bytes() == b"payload"


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "", "a//b", "./a", "a/./b", "a\0b"],
)
def test_restore_refuses_paths_that_could_leave_the_folder(
    store: BlobStore, tmp_path: Path, path: str
) -> None:
    blob = store.put_bytes(b"payload")
    entry = FileEntry(path=path, size=7, digest=blob.digest)
    dest = tmp_path / "dest" / "inner"
    with pytest.raises(IntegrityError):
        restore_entries(
            store, [FileEntry(path="fine.txt", size=7, digest=blob.digest), entry], dest
        )
    assert not dest.exists()  # every path is checked before anything is written
    assert not (tmp_path / "dest" / "escape.txt").exists()


def test_restore_never_writes_through_a_symlink_the_manifest_made(
    store: BlobStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    blob = store.put_bytes(b"payload")
    entries = [
        FileEntry(path="link", kind="symlink", target=str(outside)),
        FileEntry(path="link/planted.txt", size=7, digest=blob.digest),
    ]
    # files are written before links, so the link's name is taken by a folder and the
    # crafted link is refused rather than followed
    with pytest.raises(LabledgerError, match="overwrite"):
        restore_entries(store, entries, tmp_path / "dest")
    assert list(outside.iterdir()) == []
    assert (tmp_path / "dest" / "link" / "planted.txt").read_bytes() == b"payload"
    assert not (tmp_path / "dest" / "link").is_symlink()


def test_restore_refuses_to_pass_through_an_existing_symlink(
    store: BlobStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    blob = store.put_bytes(b"payload")
    with pytest.raises(IntegrityError, match="symlink"):
        restore_entries(store, [FileEntry(path="sub/x.txt", size=7, digest=blob.digest)], dest)
    assert list(outside.iterdir()) == []


@given(st.text(max_size=60))
def test_an_accepted_entry_path_always_stays_inside_its_folder(path: str) -> None:
    root = Path("/base/folder")
    try:
        rel = check_entry_path(path)
    except IntegrityError:
        return
    resolved = os.path.normpath(root / rel)
    assert resolved.startswith(str(root) + os.sep)


names = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/\0"),
    min_size=1,
    max_size=40,
).filter(lambda n: n not in (".", "..") and len(n.encode()) <= 255)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=st.dictionaries(names, st.binary(max_size=64), min_size=1, max_size=5))
def test_any_file_names_archive_and_restore_unchanged(
    tmp_path_factory: pytest.TempPathFactory, files: dict[str, bytes]
) -> None:
    base = tmp_path_factory.mktemp("names")
    store = BlobStore(base / "store")
    src = base / "src"
    (src / "sub").mkdir(parents=True)
    for name, data in files.items():
        (src / "sub" / name).write_bytes(data)
    entries, skipped = archive_tree(store, src)
    assert skipped == []
    restore_entries(store, entries, base / "dest")
    assert _tree(base / "dest") == _tree(src)


def test_a_name_that_is_not_utf8_is_reported_not_mangled(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("fine")
    with open(os.path.join(os.fsencode(src), b"bad\xff.txt"), "wb") as fh:
        fh.write(b"latin-1 name")
    entries, skipped = archive_tree(store, src)
    assert [e.path for e in entries] == ["ok.txt"]
    assert skipped == ["bad\ufffd.txt"]


def test_a_manifest_naming_a_path_both_file_and_folder_is_refused(
    store: BlobStore, tmp_path: Path
) -> None:
    blob = store.put_bytes(b"payload")
    entries = [
        FileEntry(path="0", size=7, digest=blob.digest),
        FileEntry(path="0/x", size=7, digest=blob.digest),
    ]
    with pytest.raises(IntegrityError, match="both"):
        restore_entries(store, entries, tmp_path / "dest")


@pytest.mark.parametrize("what", ["empty", "missing", "a-file"])
def test_an_empty_or_missing_folder_archives_to_nothing_without_touching_the_store(
    store: BlobStore, tmp_path: Path, what: str
) -> None:
    root = tmp_path / "outputs"
    if what == "empty":
        root.mkdir()
    elif what == "a-file":
        root.write_text("not a folder")
    assert archive_tree(store, root, prefix="outputs/") == ([], [])
    assert not (store.root / "statcache.sqlite").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "empty-folder").mkdir()  # not empty: its empty folder is kept
    entries, _ = archive_tree(store, tmp_path / "other")
    assert [(e.path, e.kind) for e in entries] == [("empty-folder", "dir")]
