"""`import_tokens` called from Python: session forms, progress, strict mode."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from actortoken_store.errors import InvalidArgumentError
from actortoken_store.importer import ImportReport, import_tokens
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.schema import ActorTokenRecord
from actortoken_store.secrets import SecretsMode, SecretsPolicy
from tests.conftest import TEST_SECRETS, load_jsonl


def jsonl(records: list[dict[str, object]]) -> io.BytesIO:
    return io.BytesIO("\n".join(json.dumps(record) for record in records).encode())


def row_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(ActorTokenRecord)) or 0


def test_import_with_session(clean_engine: Engine) -> None:
    records = load_jsonl("actor_tokens.jsonl")[:25]
    with Session(clean_engine) as session:
        report = import_tokens(session, jsonl(records), batch_size=10)
    assert report == ImportReport(inserted=25)
    assert report.records == 25
    assert row_count(clean_engine) == 25


def test_import_session_in_transaction(clean_engine: Engine) -> None:
    with (
        Session(clean_engine) as session,
        session.begin(),
        pytest.raises(InvalidArgumentError, match="no open transaction"),
    ):
        import_tokens(session, jsonl(load_jsonl("actor_tokens.jsonl")[:1]))


def test_import_progress_calls(clean_engine: Engine) -> None:
    records = load_jsonl("actor_tokens.jsonl")[:25]
    seen: list[int] = []
    import_tokens(sessionmaker(clean_engine), jsonl(records), batch_size=10, progress=seen.append)
    assert seen == [10, 20, 25]


def test_import_batches_committed(clean_engine: Engine) -> None:
    records = load_jsonl("actor_tokens.jsonl")[:30]
    source = jsonl(records)
    committed: list[int] = []

    def progress(done: int) -> None:
        # Another connection can read each batch as soon as it is reported.
        committed.append(row_count(clean_engine))

    import_tokens(sessionmaker(clean_engine), source, batch_size=10, progress=progress)
    assert committed == [10, 20, 30, 30]


def test_import_strict_report(clean_engine: Engine) -> None:
    records: list[dict[str, object]] = list(load_jsonl("actor_tokens.jsonl")[:30])
    records.insert(25, {"object": "actor_token", "id": "act_broken"})
    report = import_tokens(sessionmaker(clean_engine), jsonl(records), strict=True, batch_size=10)
    assert report.rolled_back
    assert report.rejected == 1
    assert report.stored == 0
    assert [(item.line, item.reason) for item in report.rejections] == [
        (26, "invalid actor token: status: missing")
    ]
    assert row_count(clean_engine) == 0


def test_import_bad_batch_size(clean_engine: Engine) -> None:
    for size in (0, -1, True):
        with pytest.raises(InvalidArgumentError, match="batch_size"):
            import_tokens(sessionmaker(clean_engine), io.BytesIO(b""), batch_size=size)


def test_import_secrets_policy(clean_engine: Engine) -> None:
    records = [r for r in load_jsonl("actor_tokens.jsonl") if r["status"] == "pending"][:3]
    digest_only = SecretsPolicy(SecretsMode.DIGEST)
    report = import_tokens(sessionmaker(clean_engine), jsonl(records), secrets=digest_only)
    assert report == ImportReport(inserted=3)
    with Session(clean_engine) as session:
        repository = ActorTokenRepository(session, secrets=TEST_SECRETS)
        stored = [repository.get_one(record["id"]) for record in records]
    assert all(record["token"] for record in records)
    assert [token.token for token in stored] == [None, None, None]
