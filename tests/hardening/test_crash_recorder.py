"""SIGKILL the recorder while it archives: no half-written blob is ever one that verify accepts.

A run writes large outputs; the moment a blob appears in the store's ``tmp/`` (it is being
copied), the recorder is killed. Afterwards every blob under ``objects/`` hashes to its name,
``labledger verify`` passes, and, as a control that verify would notice, a partial blob planted
under the final name of the file it was copying makes ``verify`` fail naming it.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from labledger.archive import hash_file
from runner.recorder_support import labledger, labledger_json, make_experiment, start_labledger

pytestmark = pytest.mark.slow

FILES = 24
FILE_MB = 6

BIG_OUTPUTS = f"""\
for i in $(seq 1 {FILES}); do
  head -c {FILE_MB}M /dev/urandom > "$LABLEDGER_OUTPUTS_DIR/out-$i.bin"
done
"""


def _temp_blobs(exp: Path) -> list[Path]:
    return [p for p in exp.joinpath(".labledger").rglob("tmp/blob-*") if p.is_file()]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed to its final name meanwhile
        return 0


def _kill_while_archiving(exp: Path) -> bool:
    """Start ``labledger run``; SIGKILL it while it copies an output. True if caught.

    Outputs are copied in 1 MiB chunks, so a temp blob of 1 MiB or more (the small config and
    script blobs never get there) means an output is half copied.
    """
    proc = start_labledger(exp, "run")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if any(_size(p) >= 1 << 20 for p in _temp_blobs(exp)):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode == -signal.SIGKILL


def _assert_every_blob_matches_its_name(objects: Path) -> None:
    for blob in (p for p in objects.rglob("*") if p.is_file()):
        digest, _ = hash_file(blob)
        assert digest == blob.parent.name + blob.name, f"half-written blob {blob}"


def test_sigkill_during_archiving_leaves_no_blob_that_verify_accepts(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run=BIG_OUTPUTS)
    caught = False
    for _attempt in range(3):
        labledger_json(exp, "new")
        if _kill_while_archiving(exp):
            caught = True
            break
        labledger(exp, "end", "-o", "not caught archiving", ok=False)
    assert caught, "the recorder finished every time before it could be killed mid-archive"
    leftovers = _temp_blobs(exp)
    assert leftovers, "killed mid-archive, so a partial temp blob should be left"

    objects = exp / ".labledger" / "objects"
    _assert_every_blob_matches_its_name(objects)

    # Control, in a copy of the folder: a partial copy planted under the final name of an
    # output not stored yet is what a store without write-then-rename would leave behind;
    # verify must refuse it. The leftover temp blob may hold a whole copy (large files are
    # copied in one call, then hashed, then named after one sync), so only its first half is
    # planted.
    copy = tmp_path / "copy"
    shutil.copytree(exp, copy, symlinks=True)
    stored = {b.parent.name + b.name for b in objects.rglob("*") if b.is_file()}
    digests = [hash_file(s)[0] for s in sorted((copy / "outputs").glob("out-*.bin"))]
    digest = next(d for d in digests if d not in stored)  # killed mid-archive: one is missing
    partial = max(leftovers, key=_size)
    planted = copy / ".labledger" / "objects" / digest[:2] / digest[2:]
    planted.parent.mkdir(exist_ok=True)
    planted.write_bytes(partial.read_bytes()[: max(_size(partial) // 2, 1)])
    refused = labledger(copy, "verify", ok=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "DAMAGED" in refused.stdout
    assert digest[2:] in refused.stdout

    verified = labledger(exp, "verify", ok=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "All good" in verified.stdout
    _assert_every_blob_matches_its_name(objects)

    # the next command recovers the killed run; gc clears the partial temp files
    labledger(exp, "end", "-o", "killed while archiving", ok=False)
    labledger(exp, "gc")
    assert _temp_blobs(exp) == []
    assert labledger(exp, "verify").returncode == 0
