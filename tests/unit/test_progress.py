"""The import's progress line: what it shows, how often it redraws, how it ends."""

from __future__ import annotations

import io

from actortoken_store.cli.progress import REDRAW_SECONDS, ProgressDisplay, stream_size


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_render_with_size() -> None:
    display = ProgressDisplay(io.StringIO(), 1000, lambda: 250, clock=FakeClock())

    line = display.render(5000, 10.0)

    assert line.startswith("[######..................]  25%")
    assert "5,000 records" in line
    assert "500 records/s" in line
    assert line.endswith("ETA 0:30")


def test_render_without_size() -> None:
    display = ProgressDisplay(io.StringIO(), None, lambda: None, clock=FakeClock())

    line = display.render(1200, 2.0)

    assert line == "1,200 records  600 records/s"


def test_render_long_eta() -> None:
    display = ProgressDisplay(io.StringIO(), 10_000, lambda: 1, clock=FakeClock())

    assert display.render(10, 1.0).endswith("ETA 2:46:39")


def test_update_throttled() -> None:
    out = io.StringIO()
    clock = FakeClock()
    display = ProgressDisplay(out, None, lambda: None, clock=clock)

    display.update(1)
    clock.now += REDRAW_SECONDS / 2
    display.update(2)
    clock.now += REDRAW_SECONDS
    display.update(3)

    assert out.getvalue().count("\r") == 2
    assert "3 records" in out.getvalue()
    assert "2 records" not in out.getvalue()


def test_finish_erases_line() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, None, lambda: None, clock=FakeClock())
    display.finish()
    assert out.getvalue() == ""

    display.update(7)
    display.finish()
    assert out.getvalue().endswith("\r\x1b[K")


def test_stream_size_of_pipe() -> None:
    assert stream_size(io.BytesIO(b"abc")) is None
