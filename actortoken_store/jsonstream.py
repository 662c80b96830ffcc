"""Streaming reader of JSON records, each with the line it starts on.

Three layouts are read: a JSON array of records, JSON Lines (one record per line), and
records written one after another, such as a single object or objects pretty-printed by
``jq``. Memory stays bounded: the reader keeps one chunk of input plus the record being
decoded in memory, never the whole input.

A record that cannot be decoded (a syntax error, invalid UTF-8, a truncated line) comes
back as a `JsonRecord` with ``error`` set, and reading goes on with the next record:

- In JSON Lines, the next record starts on the next line.
- In an array, or in a sequence of pretty-printed records, the next record starts on the
  next line whose first non-blank character is ``{``. Lines skipped on the way are not
  reported one by one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol

from actortoken_store.errors import InputReadError

__all__ = ["CHUNK_CHARS", "MAX_RECORD_CHARS", "JsonRecord", "TextSource", "read_json_records"]

CHUNK_CHARS: Final = 64 * 1024
"""Characters requested from the input per read."""

MAX_RECORD_CHARS: Final = 1024 * 1024
"""Largest record accepted. A Clerk actor token is about 2 KB, so a record beyond this size
is a damaged input, and the limit keeps it from filling memory."""

_NON_WHITESPACE: Final = re.compile(r"[^ \t\r\n]")
_NON_BLANK: Final = re.compile(r"[^ \t\r]")
_OBJECT_LINE: Final = re.compile(r"\n[ \t\r]*\{")
# Undecodable bytes, as the "surrogateescape" error handler turns them into characters.
_ESCAPED_BYTES: Final = re.compile("[\udc80-\udcff]")
# A JSON decoding error this close to the end of the buffered text may only mean that the
# record continues in the next chunk (the longest such token is a \uXXXX escape).
_INCOMPLETE_MARGIN: Final = 8


class TextSource(Protocol):
    """Anything with ``read(size) -> str``, such as a text file.

    Undecodable bytes must come through as the surrogate characters of Python's
    ``surrogateescape`` error handler, and read failures as `InputReadError`.
    """

    def read(self, size: int, /) -> str: ...


@dataclass(frozen=True, slots=True)
class JsonRecord:
    """One decoded JSON value, or the reason it could not be decoded.

    Attributes:
        line: 1-based line on which the record starts.
        value: the decoded value; None when ``error`` is set (or for a JSON ``null``).
        error: why the record could not be decoded, or None.
    """

    line: int
    value: Any = None
    error: str | None = None


def read_json_records(
    source: TextSource,
    *,
    chunk_chars: int = CHUNK_CHARS,
    max_record_chars: int = MAX_RECORD_CHARS,
) -> Iterator[JsonRecord]:
    """Yield the records of ``source`` one at a time, in input order.

    A top-level JSON array yields its elements. Any other input yields each top-level
    value. Values of every JSON type are yielded, so the caller decides what a valid
    record is. An empty input yields nothing.

    A failure to read the input ends the iteration with one last record whose ``error``
    gives the cause.
    """
    reader = _Reader(source, chunk_chars, max_record_chars)
    first = reader.skip_whitespace()
    if first == "[":
        yield from _read_array(reader)
    elif first:
        yield from _read_sequence(reader)
    if reader.read_error is not None:
        yield JsonRecord(reader.line, error=reader.read_error)


def _read_sequence(reader: _Reader) -> Iterator[JsonRecord]:
    records_span_lines = False
    while reader.skip_whitespace():
        line = reader.line
        decoded = reader.decode()
        if isinstance(decoded, str):
            yield JsonRecord(line, error=decoded)
            # A record that opens on a line of its own is pretty-printed, not JSON Lines.
            if records_span_lines or reader.rest_of_line_is_opening():
                reader.skip_to_object_line()
            else:
                reader.skip_line()
            continue
        value, end = decoded
        records_span_lines = records_span_lines or reader.newline_before(end)
        reader.advance(end)
        # Only whitespace or the start of another record may follow on the same line.
        # Other data (a stray NUL, a trailing comma) damages this record, and reporting it
        # as a record of its own would count one damaged line twice.
        following = reader.next_on_line()
        if following and following not in "{[":
            yield JsonRecord(line, error=_not_json(f"unexpected {following!r} after the record"))
            reader.skip_line()
            continue
        yield JsonRecord(line, value=value)


def _read_array(reader: _Reader) -> Iterator[JsonRecord]:
    reader.advance(reader.pos + 1)
    char = reader.skip_whitespace()
    if char == "]":
        reader.advance(reader.pos + 1)
        yield from _check_end(reader)
        return

    while True:
        if not char:
            yield JsonRecord(reader.line, error=_missing_bracket())
            return

        line = reader.line
        decoded = reader.decode()
        if isinstance(decoded, str):
            yield JsonRecord(line, error=decoded)
            char = "{" if reader.skip_to_object_line() else ""
            if not char:
                return
            continue
        value, end = decoded
        reader.advance(end)
        yield JsonRecord(line, value=value)

        char = reader.skip_whitespace()
        if char == ",":
            reader.advance(reader.pos + 1)
            char = reader.skip_whitespace()
            if char == "]":
                yield JsonRecord(reader.line, error=_not_json("trailing comma before ']'"))
                reader.advance(reader.pos + 1)
                break
            continue
        if char == "]":
            reader.advance(reader.pos + 1)
            break
        if not char:
            yield JsonRecord(reader.line, error=_missing_bracket())
            return
        yield JsonRecord(
            reader.line,
            error=_not_json(
                f"expected ',' or ']' after the array element that starts at line {line}"
            ),
        )
        char = "{" if reader.skip_to_object_line() else ""
        if not char:
            return

    yield from _check_end(reader)


def _check_end(reader: _Reader) -> Iterator[JsonRecord]:
    if reader.skip_whitespace():
        yield JsonRecord(reader.line, error=_not_json("unexpected data after the JSON array"))


def _not_json(problem: str) -> str:
    return f"invalid actor token: <record>: not valid JSON: {problem}"


def _missing_bracket() -> str:
    return _not_json("the input ends inside the JSON array, before its closing ']'")


class _Reader:
    """A sliding window over the input with the line number of the current position.

    ``pos`` indexes into ``text`` and ``line`` is the 1-based line of ``pos``. Consumed
    text is dropped when the next chunk is read, so memory is bounded by one chunk plus
    one record. The start of the current line is kept when it is near, so that error
    columns can be computed. ``dropped_columns`` counts the characters of the line at
    ``text[0]`` that were dropped before it.
    """

    def __init__(self, source: TextSource, chunk_chars: int, max_record_chars: int) -> None:
        self.source = source
        self.chunk_chars = chunk_chars
        self.max_record_chars = max_record_chars
        self.text = ""
        self.pos = 0
        self.line = 1
        self.dropped_columns = 0
        self.eof = False
        self.read_error: str | None = None
        self._constant: str | None = None
        self._duplicate_key: str | None = None
        self._decoder = json.JSONDecoder(
            parse_constant=self._note_constant, object_pairs_hook=self._build_object
        )

    def fill(self) -> bool:
        """Append the next chunk to ``text``; return False at the end of the input."""
        if self.eof:
            return False
        line_start = self.text.rfind("\n", 0, self.pos) + 1
        keep_from = line_start if self.pos - line_start <= self.chunk_chars else self.pos
        if keep_from:
            if line_start:
                self.dropped_columns = keep_from - line_start
            else:
                self.dropped_columns += keep_from
            self.text = self.text[keep_from:]
            self.pos -= keep_from
        try:
            chunk = self.source.read(self.chunk_chars)
        except InputReadError as exc:
            self.read_error = str(exc)
            chunk = ""
        if not chunk:
            self.eof = True
            return False
        self.text += chunk
        return True

    def advance(self, new_pos: int) -> None:
        self.line += self.text.count("\n", self.pos, new_pos)
        self.pos = new_pos

    def newline_before(self, end: int) -> bool:
        return self.text.find("\n", self.pos, end) >= 0

    def skip_whitespace(self) -> str:
        """Move to the next non-whitespace character and return it; "" at the end."""
        while True:
            match = _NON_WHITESPACE.search(self.text, self.pos)
            if match is not None:
                self.advance(match.start())
                return self.text[self.pos]
            self.advance(len(self.text))
            if not self.fill():
                return ""

    def rest_of_line_is_opening(self) -> bool:
        """Return whether the line has nothing after the ``{`` or ``[`` at ``pos``."""
        if self.text[self.pos] not in "{[":
            return False
        offset = 1
        while True:
            match = _NON_BLANK.search(self.text, self.pos + offset)
            if match is not None:
                return match.group() == "\n"
            offset = len(self.text) - self.pos
            if not self.fill():
                return True

    def next_on_line(self) -> str:
        """Return the first non-blank character after ``pos`` on its line, or "" if none.

        ``pos`` does not move.
        """
        offset = 0
        while True:
            match = _NON_BLANK.search(self.text, self.pos + offset)
            if match is not None:
                return "" if match.group() == "\n" else match.group()
            offset = len(self.text) - self.pos
            if not self.fill():
                return ""

    def skip_line(self) -> None:
        """Move to the start of the next line, or to the end of the input."""
        while True:
            newline = self.text.find("\n", self.pos)
            if newline >= 0:
                self.advance(newline + 1)
                return
            self.advance(len(self.text))
            if not self.fill():
                return

    def skip_to_object_line(self) -> bool:
        """Move to the ``{`` that starts a later line; return False at the end instead."""
        while True:
            match = _OBJECT_LINE.search(self.text, self.pos)
            if match is not None:
                self.advance(match.end() - 1)
                return True
            # Keep the last, unfinished line: the pattern may complete in the next chunk.
            # Without a newline nothing can match yet, so all the text read can go.
            last_newline = self.text.rfind("\n", self.pos)
            self.advance(last_newline if last_newline >= 0 else len(self.text))
            if not self.fill():
                self.advance(len(self.text))
                return False

    def decode(self) -> tuple[Any, int] | str:
        """Decode the JSON value at ``pos``; return it with its end, or the error message.

        ``pos`` does not move, so the caller decides where reading goes on.
        """
        while True:
            self._constant = None
            self._duplicate_key = None
            try:
                value, end = self._decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                if self._may_continue(exc) and not self._too_large():
                    self.fill()
                    continue
                return self._syntax_error(exc)
            except RecursionError:
                return _not_json("nested too deeply")
            except ValueError as exc:
                # Raised by int() for numbers beyond Python's digit limit.
                return _not_json(str(exc))

            # A number or a literal that ends the buffered text may go on in the next chunk.
            if end == len(self.text) and not self.eof and not self._too_large():
                self.fill()
                continue
            if self._constant is not None:
                return _not_json(f"{self._constant} is not a JSON number")
            if self._duplicate_key is not None:
                key = repr(self._duplicate_key)
                shown = key if len(key) <= 60 else key[:60] + "..."
                return (
                    "invalid actor token: <record>: not valid JSON for a token: "
                    f"an object has the key {shown} twice"
                )
            # isascii() reads a flag of the string, so ASCII input skips the scan.
            if not self.text.isascii() and _ESCAPED_BYTES.search(self.text, self.pos, end):
                return "invalid actor token: <record>: not valid UTF-8"
            return value, end

    def _note_constant(self, name: str) -> float:
        self._constant = name
        return float(name)

    def _build_object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # The decoder would keep the last of two equal keys, so the meant value is unknown.
        built = dict(pairs)
        if len(built) < len(pairs) and self._duplicate_key is None:
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    self._duplicate_key = key
                    break
                seen.add(key)
        return built

    def _may_continue(self, error: json.JSONDecodeError) -> bool:
        if self.eof:
            return False
        return (
            error.msg.startswith("Unterminated string")
            or error.pos >= len(self.text) - _INCOMPLETE_MARGIN
        )

    def _too_large(self) -> bool:
        return len(self.text) - self.pos > self.max_record_chars

    def _syntax_error(self, error: json.JSONDecodeError) -> str:
        if self._too_large():
            return _not_json(f"the record is longer than {self.max_record_chars} characters")
        if self.eof and (
            error.msg.startswith("Unterminated string") or error.pos >= len(self.text.rstrip())
        ):
            return _not_json("the input ends before the record is complete")
        if _ESCAPED_BYTES.search(self.text, self.pos, error.pos + 1):
            return "invalid actor token: <record>: not valid UTF-8"
        line = self.line + self.text.count("\n", self.pos, error.pos)
        newline = self.text.rfind("\n", 0, error.pos)
        if (
            line > self.line
            and self.text.startswith("{", error.pos)
            and not self.text[newline + 1 : error.pos].strip(" \t\r")
        ):
            # The decoder stopped at a "{" opening a later line: the record was cut short
            # at the end of its own line, and the next record starts there.
            return _not_json(
                f"the record is incomplete at the end of line {self.line}, "
                f"and line {line} starts another record"
            )
        column = error.pos - newline + (self.dropped_columns if newline < 0 else 0)
        # The decoder's messages end in "at" because they expect a position to follow.
        message = error.msg.removesuffix(" at").removesuffix(" starting")
        return _not_json(f"{message} (line {line}, column {column})")
