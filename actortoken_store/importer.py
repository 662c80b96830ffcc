"""Bulk import of Clerk actor tokens from JSON, JSON Lines or gzip files.

`import_tokens` streams the input (`actortoken_store.jsonstream`), parses each record with
`ActorToken.from_clerk` (snake_case or camelCase), and stores the valid ones with
`ActorTokenRepository.save_many` in batches. An invalid record is reported with its line
and reason and never stops the others, unless the import is strict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from sqlalchemy.orm import Session

from actortoken_store.audit.context import AuditSource
from actortoken_store.dberrors import translate_database_errors
from actortoken_store.errors import InvalidActorTokenError, InvalidArgumentError
from actortoken_store.jsonstream import TextSource, read_json_records
from actortoken_store.model import ActorToken
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.results import SaveOutcome
from actortoken_store.schema import DEFAULT_SCHEMA
from actortoken_store.secrets import SecretsPolicy
from actortoken_store.sources import ImportSource, open_source, source_name
from actortoken_store.writer import BackgroundWriter, background_writer

__all__ = [
    "DEFAULT_IMPORT_BATCH_SIZE",
    "MAX_LISTED_REJECTIONS",
    "ImportReport",
    "ParsedRecord",
    "RejectedRecord",
    "import_tokens",
    "read_tokens",
]

logger = logging.getLogger(__name__)

DEFAULT_IMPORT_BATCH_SIZE: Final = 1000
"""Valid records stored per `save_many` call, and per transaction when not strict."""

MAX_LISTED_REJECTIONS: Final = 10_000
"""Rejected records listed with line and reason; further ones are only counted, so that a
large damaged input cannot fill memory."""

ProgressCallback = Callable[[int], None]
"""Called with the number of records read so far (valid and rejected)."""


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record that was not stored, with the 1-based line it starts on and the reason."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    """One input record: the valid token, or the reason it was rejected.

    Attributes:
        line: 1-based line on which the record starts.
        token: the parsed token, or None when the record is rejected.
        reason: why the record is rejected, or None for a valid one.
    """

    line: int
    token: ActorToken | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ImportReport:
    """Counts and rejected records of one import.

    Attributes:
        inserted, updated, unchanged, conflict: stored records by `SaveOutcome`. All are
            zero after a strict import that was rolled back.
        rejected: records that failed to parse or validate.
        rejections: the first `MAX_LISTED_REJECTIONS` rejected records, in input order.
        conflicts: the first `MAX_LISTED_REJECTIONS` records that were not applied because
            they contradict the stored token (`SaveOutcome.CONFLICT`), in input order.
        rolled_back: a strict import met a rejected record and stored nothing.
        records_read: records read from the input, set after a rollback, which zeroes the
            counts of valid records. None means the counts add up to it.
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    conflict: int = 0
    rejected: int = 0
    rejections: tuple[RejectedRecord, ...] = ()
    rolled_back: bool = False
    conflicts: tuple[RejectedRecord, ...] = ()
    records_read: int | None = None

    @property
    def records(self) -> int:
        """Records read from the input, valid or not, including those a rollback discarded."""
        if self.records_read is not None:
            return self.records_read
        return self.inserted + self.updated + self.unchanged + self.conflict + self.rejected

    @property
    def stored(self) -> int:
        """Records that reached the database: every outcome except rejected."""
        return self.inserted + self.updated + self.unchanged + self.conflict


def read_tokens(source: ImportSource) -> Iterator[ParsedRecord]:
    """Parse the records of ``source`` one at a time, without touching a database.

    Accepts the same inputs as `import_tokens`. Records are yielded in input order, each
    valid one as an `ActorToken` and each invalid one with its reason.

    Raises:
        InputReadError: the source cannot be opened.
    """
    with open_source(source) as text:
        yield from _parse_records(text)


def import_tokens(
    sessions: Session | Callable[[], Session],
    source: ImportSource,
    *,
    strict: bool = False,
    batch_size: int = DEFAULT_IMPORT_BATCH_SIZE,
    schema: str = DEFAULT_SCHEMA,
    secrets: SecretsPolicy | None = None,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Read actor tokens from ``source`` and store them, reporting each rejected record.

    The input is one JSON object, a JSON array, or JSON Lines, optionally gzip-compressed,
    with (
        open_source(source) as text,
        _session_from(sessions) as session,
        background_writer("actortoken-store import") as writer,
    ):
        repository = ActorTokenRepository(session, schema=schema, secrets=secrets)

    Unlike the repository, the importer ends transactions itself:

    - Not strict (default): each batch is committed when stored. Saving is idempotent, so
      running the same import again after a failure converges on the same rows.
    - Strict: everything happens in one transaction. The first rejected record rolls it
      back, so nothing is stored; the rest of the input is still read to list every
      rejected record.

    Args:
        sessions: a session factory (such as a `sessionmaker`), or a session without an open
            transaction. The importer commits and rolls back on it.
        source: a path, ``"-"`` for standard input, or a binary or text stream.
        strict: store nothing if any record is rejected.
        batch_size: valid records per `save_many` call and per commit.
        schema: the PostgreSQL schema holding the store's tables.
        secrets: how tickets are stored; None builds the policy from the environment, as
            `ActorTokenRepository` does.
        progress: called with the number of records read up to the end of a batch, once
            that batch is stored (and committed unless strict), and once at the end. Calls
            for batches come from the importer's worker thread.

    Raises:
        InvalidArgumentError: ``batch_size`` is below 1, ``sessions`` or ``source`` is of
            another type, or the session has an open transaction.
        InputReadError: the source cannot be opened.
        ActorTokenStoreError: a database error, translated; batches committed before it
            stay stored.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(
            f"batch_size must be an integer of at least 1, got {batch_size!r}"
        )

    if not isinstance(sessions, Session) and not callable(sessions):
        raise InvalidArgumentError(
            "sessions must be a SQLAlchemy Session or a session factory such as a "
            f"sessionmaker, got {type(sessions).__name__}"
        )

    name = source_name(source)
    tally = _Tally()
    with (
        open_source(source) as text,
        _session_from(sessions) as session,
        background_writer("actortoken-store import") as writer,
    ):
        repository = ActorTokenRepository(session, schema=schema, secrets=secrets)
        batch: list[tuple[int, ActorToken]] = []
        # The events of imported tokens record source "import".
        with repository.audit_context(source=AuditSource.IMPORT):
            try:
                for record in _parse_records(text):
                    tally.records += 1
                    token = record.token
                    if token is None:
                        tally.reject(record.line, record.reason or "")
                        if strict and tally.rejected == 1:
                            logger.info(
                                "Rolling back the strict import of %s: a record was rejected", name
                            )
                            writer.wait()
                            _rollback(session)
                            batch.clear()
                        continue
                    if strict and tally.rejected:
                        continue
                    batch.append((record.line, token))
                    if len(batch) >= batch_size:
                        # The worker stores this batch while the loop parses the next one.
                        job = partial(_store, repository, batch, tally, commit=not strict)
                        writer.submit(_then_report(job, progress, tally.records))
                        batch = []
                if not (strict and tally.rejected):
                    writer.submit(partial(_store, repository, batch, tally, commit=True))
                writer.wait()
            except BaseException:
                _stop_quietly(writer)
                _rollback_after_error(session)
                raise

    if progress is not None:
        progress(tally.records)
    report = tally.report(rolled_back=strict and tally.rejected > 0)
    logger.info(
        "Imported %s: %d inserted, %d updated, %d unchanged, %d conflict, %d rejected",
        name,
        report.inserted,
        report.updated,
        report.unchanged,
        report.conflict,
        report.rejected,
    )
    return report


@dataclass
class _Tally:
    records: int = 0
    outcomes: dict[SaveOutcome, int] = field(default_factory=lambda: dict.fromkeys(SaveOutcome, 0))
    rejected: int = 0
    rejections: list[RejectedRecord] = field(default_factory=list)
    conflicts: list[RejectedRecord] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_LISTED_REJECTIONS:
            self.rejections.append(RejectedRecord(line, reason))

    def conflicted(self, line: int, token_id: str) -> None:
        if len(self.conflicts) < MAX_LISTED_REJECTIONS:
            reason = (
                f"not applied: the snapshot of {token_id} contradicts the stored token "
                "(another user or creation time, or a status change of a final token)"
            )
            self.conflicts.append(RejectedRecord(line, reason))

    def report(self, *, rolled_back: bool) -> ImportReport:
        if rolled_back:
            return ImportReport(
                rejected=self.rejected,
                rejections=tuple(self.rejections),
                rolled_back=True,
                records_read=self.records,
            )
        return ImportReport(
            inserted=self.outcomes[SaveOutcome.INSERTED],
            updated=self.outcomes[SaveOutcome.UPDATED],
            unchanged=self.outcomes[SaveOutcome.UNCHANGED],
            conflict=self.outcomes[SaveOutcome.CONFLICT],
            rejected=self.rejected,
            rejections=tuple(self.rejections),
            conflicts=tuple(self.conflicts),
        )


def _parse_records(text: TextSource) -> Iterator[ParsedRecord]:
    for record in read_json_records(text):
        if record.error is not None:
            yield ParsedRecord(record.line, reason=record.error)
            continue
        # from_clerk would decode a string as JSON text, but a record must be an object.
        if not isinstance(record.value, dict):
            problem = f"expected a JSON object, got {_json_type(record.value)}"
            yield ParsedRecord(record.line, reason=str(InvalidActorTokenError("<record>", problem)))
            continue
        try:
            yield ParsedRecord(record.line, token=ActorToken.from_clerk(record.value))
        except InvalidActorTokenError as exc:
            yield ParsedRecord(record.line, reason=str(exc))


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


def _store(
    repository: ActorTokenRepository,
    batch: list[tuple[int, ActorToken]],
    tally: _Tally,
    *,
    commit: bool,
) -> None:
    if batch:
        report = repository.save_many([token for _, token in batch])
        for outcome, count in report.counts().items():
            tally.outcomes[outcome] += count
        # The report lists outcomes in input order, so it lines up with the batch.
        for (line, _), result in zip(batch, report.results, strict=True):
            if result.outcome is SaveOutcome.CONFLICT:
                tally.conflicted(line, result.token_id)
        batch.clear()
    if commit:
        with translate_database_errors():
            repository.session.commit()


def _then_report(
    job: Callable[[], None], progress: ProgressCallback | None, records: int
) -> Callable[[], None]:
    def run() -> None:
        job()
        if progress is not None:
            progress(records)

    return run


def _rollback(session: Session) -> None:
    with translate_database_errors():
        session.rollback()


def _stop_quietly(writer: BackgroundWriter) -> None:
    # The error being handled is the one to report, not a later one of the worker.
    try:
        writer.wait()
    except BaseException:
        logger.debug("A store job failed after the import had already failed", exc_info=True)


def _rollback_after_error(session: Session) -> None:
    # The error that led here matters more than a failed rollback, which the caller's
    # traceback would otherwise show instead.
    try:
        session.rollback()
    except Exception:
        logger.warning("Rollback after a failed import also failed", exc_info=True)


@contextmanager
def _session_from(sessions: Session | Callable[[], Session]) -> Iterator[Session]:
    if isinstance(sessions, Session):
        if sessions.in_transaction():
            raise InvalidArgumentError(
                "import_tokens commits per batch, so the session must have no open "
                "transaction: commit or roll back first, or pass a session factory"
            )
        yield sessions
        return
    with sessions() as session:
        yield session
