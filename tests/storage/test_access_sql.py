"""Tokens and idempotency keys in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, insert, select

from labledger.core.access import Scope, hash_secret
from labledger.core.idempotency import IdempotencyClaim
from labledger.core.ids import new_ulid, utcnow
from labledger.core.models import Event, EventType, Experiment, ExperimentDesign
from labledger.errors import AlreadyExists, DuplicateRequest, InvalidInput, NotFound
from labledger.storage.access_sql import TokenStore
from labledger.storage.engine import WRITE, create_db_engine
from labledger.storage.idempotency_sql import IdempotencyStore, record_key
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore
from labledger.storage.tables import experiments, idempotency_keys


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = create_db_engine(db_url)
    ensure_ready(made, db_url)
    yield made
    made.dispose()


def _experiment() -> Experiment:
    now = utcnow()
    return Experiment(
        _id=new_ulid(),
        experiment_design=ExperimentDesign(experiment_name="x"),
        created_at=now,
        updated_at=now,
    )


def _claim(key: str = "k-1") -> IdempotencyClaim:
    return IdempotencyClaim(
        principal="", key=key, method="POST", path="/experiment", fingerprint="f" * 64
    )


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_tokens_are_made_listed_and_revoked(engine: Engine) -> None:
    tokens = TokenStore(engine)
    made, secret = tokens.create("arm", "write", note="robot", created_by="cli:me")
    assert made.scope is Scope.WRITE and made.active
    assert tokens.active() == {hash_secret(secret): ("arm", Scope.WRITE)}
    revoked = tokens.revoke("arm")
    assert revoked.revoked_at is not None
    assert tokens.active() == {}
    assert [t.name for t in tokens.list()] == ["arm"]
    assert tokens.list(include_revoked=False) == []
    # revoking twice changes nothing; the name stays taken
    assert tokens.revoke("arm").revoked_at == revoked.revoked_at
    with pytest.raises(AlreadyExists, match="choose another name"):
        tokens.create("arm", "read")


def test_bad_token_input_names_the_field(engine: Engine) -> None:
    tokens = TokenStore(engine)
    with pytest.raises(InvalidInput) as bad_name:
        tokens.create("../x", "read")
    assert bad_name.value.field == "name"
    with pytest.raises(InvalidInput) as bad_scope:
        tokens.create("ok", "root")
    assert bad_scope.value.field == "scope"
    with pytest.raises(NotFound):
        tokens.revoke("nobody")


def test_touch_records_the_last_use(engine: Engine) -> None:
    tokens = TokenStore(engine)
    tokens.create("arm", "read")
    at = utcnow()
    tokens.touch({"arm"}, at)
    assert tokens.get("arm").last_used_at == at


def test_a_second_create_with_the_same_key_rolls_back_whole(engine: Engine) -> None:
    store = SqlStore(engine)
    first, second = _experiment(), _experiment()
    created = Event(type=EventType.CREATED, experiment_id=first.experiment_id)
    claim = _claim()
    store.experiments.insert(first, [created], claim=claim)
    assert (claim.resource_kind, claim.resource_id) == ("experiment", first.experiment_id)
    twin = _claim()
    with pytest.raises(DuplicateRequest):
        store.experiments.insert(
            second, [created.model_copy(update={"experiment_id": "x"})], claim=twin
        )
    assert twin.lost
    assert _count(engine, experiments) == 1
    found = IdempotencyStore(engine).find("", "k-1")
    assert found is not None and found.resource_id == first.experiment_id


def test_a_key_is_kept_only_if_its_transaction_commits(engine: Engine) -> None:
    with (
        pytest.raises(RuntimeError),
        engine.connect().execution_options(**WRITE) as conn,
        conn.begin(),
    ):
        conn.execute(insert(experiments), [_row()])
        record_key(conn, _claim("k-2"), "experiment", "01JAAAAAAAAAAAAAAAAAAAAAAA")
        raise RuntimeError("the process dies before the commit")
    assert IdempotencyStore(engine).find("", "k-2") is None
    assert _count(engine, experiments) == 0


def _row() -> dict[str, object]:
    now = utcnow()
    return {
        "id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
        "status": "in_progress",
        "name": "x",
        "ownership": {},
        "parameters": {},
        "metadata": {},
        "priority": 0,
        "attempts": 0,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def test_answers_are_stored_once_and_old_keys_forgotten(engine: Engine) -> None:
    store = SqlStore(engine)
    keys = IdempotencyStore(engine)
    exp = _experiment()
    store.experiments.insert(exp, [], claim=_claim("k-3"))
    keys.store_answers([("", "k-3", 200, '{"a":1}')])
    keys.store_answers([("", "k-3", 500, "later answers never replace the first")])
    found = keys.find("", "k-3")
    assert found is not None
    assert (found.status_code, found.response_body) == (200, '{"a":1}')
    assert keys.forget_before(utcnow() - timedelta(hours=1)) == 0
    assert keys.forget_before(utcnow() + timedelta(seconds=1)) == 1
    assert _count(engine, idempotency_keys) == 0
