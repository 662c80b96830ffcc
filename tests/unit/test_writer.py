"""BackgroundWriter: order of jobs, errors raised in the caller's thread."""

from __future__ import annotations

import threading

import pytest

from actortoken_store.writer import background_writer


def test_writer_runs_in_order() -> None:
    seen: list[tuple[int, str]] = []
    with background_writer("test") as writer:
        for number in range(20):
            writer.submit(lambda n=number: seen.append((n, threading.current_thread().name)))
        writer.wait()

    assert [number for number, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"test"}


def test_writer_raises_in_caller() -> None:
    ran: list[int] = []

    def fail() -> None:
        raise ValueError("boom")

    with background_writer("test") as writer:
        writer.submit(fail)
        writer.submit(lambda: ran.append(1))
        with pytest.raises(ValueError, match="boom"):
            writer.wait()
        writer.wait()

    assert ran == []


def test_writer_submit_after_error() -> None:
    def fail() -> None:
        raise KeyError("first")

    with background_writer("test") as writer:
        writer.submit(fail)
        writer._jobs.join()
        with pytest.raises(KeyError, match="first"):
            writer.submit(lambda: None)
