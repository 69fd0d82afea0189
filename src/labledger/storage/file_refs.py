"""Which stored files (blobs, by BLAKE3 digest) the records still refer to.

A file is referred to by a file result (``results.digest``), or from an experiment's
metadata: a run pushed by the recorder lists its scripts, logs and outputs there by digest.
Experiments in the trash still refer to their files; only a purge lets them go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection

from sqlalchemy import Engine, String, cast, or_, select

from labledger.storage.engine import read_transaction
from labledger.storage.tables import experiments, results

__all__ = ["experiment_digests", "referenced_digests"]

_DIGEST = re.compile(r"[0-9a-f]{64}")


def referenced_digests(engine: Engine, candidates: Collection[str] | None = None) -> set[str]:
    """The digests (of ``candidates``, or all) that some record refers to.

    Anything in an experiment's metadata that looks like a digest counts, so a file is kept
    whenever in doubt.
    """
    found: set[str] = set()
    with read_transaction(engine) as conn:
        files = select(results.c.digest).where(results.c.digest.is_not(None)).distinct()
        if candidates is not None:
            if not candidates:
                return set()
            files = files.where(results.c.digest.in_(sorted(candidates)))
        found.update(d for (d,) in conn.execute(files))
        meta = select(experiments.c.metadata)
        if candidates is not None:
            text = cast(experiments.c.metadata, String)
            meta = meta.where(or_(*(text.contains(d, autoescape=True) for d in candidates)))
        for (data,) in conn.execution_options(yield_per=1000).execute(meta):
            found.update(_DIGEST.findall(json.dumps(data)))
    return found if candidates is None else found & set(candidates)


def experiment_digests(engine: Engine, experiment_id: str) -> set[str]:
    """The digests the experiment ``experiment_id`` refers to (in the trash too)."""
    with read_transaction(engine) as conn:
        found = {
            d
            for (d,) in conn.execute(
                select(results.c.digest).where(
                    results.c.experiment_id == experiment_id, results.c.digest.is_not(None)
                )
            )
        }
        for (data,) in conn.execute(
            select(experiments.c.metadata).where(experiments.c.id == experiment_id)
        ):
            found.update(_DIGEST.findall(json.dumps(data)))
    return found
