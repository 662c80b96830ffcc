"""Opening import sources: a file path, ``-`` for standard input, or an open stream.

Gzip-compressed input is recognized by its magic bytes, so ``.gz`` files and compressed
standard input both work. Text is decoded as UTF-8 with an optional byte order mark.
Undecodable bytes are kept as the surrogate characters of Python's ``surrogateescape``
handler, so the JSON reader can reject the one record that contains them instead of the
whole input.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import sys
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import IO, Final, cast

from actortoken_store.errors import InputReadError, InvalidArgumentError

__all__ = ["STDIN", "ImportSource", "open_source", "source_name"]

STDIN: Final = "-"
"""The path that stands for standard input."""

_GZIP_MAGIC: Final = b"\x1f\x8b"
_PEEK_BYTES: Final = 16
"""Leading bytes looked at to recognize the format; peek may return fewer."""

ImportSource = str | os.PathLike[str] | IO[bytes] | IO[str]
"""A path (``-`` for standard input), a binary stream, or a text stream."""


def source_name(source: ImportSource) -> str:
    """Return a short name of ``source`` for messages: the path, or ``<stdin>``."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        return "<stdin>" if path == STDIN else path
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


@contextmanager
def open_source(source: ImportSource) -> Iterator[_GuardedText | _DecodedText]:
    """Open ``source`` for reading text; close only what this function opened.

    Raises:
        InputReadError: the file cannot be opened. Later read failures, such as a
            truncated gzip file, raise it from ``read``.
    """
    if not isinstance(source, str | os.PathLike) and not hasattr(source, "read"):
        raise InvalidArgumentError(
            "source must be a path, '-' for standard input, or a readable stream, "
            f"got {type(source).__name__}"
        )
    name = source_name(source)
    with ExitStack() as stack:
        if isinstance(source, str | os.PathLike):
            path = os.fspath(source)
            if path == STDIN:
                binary: IO[bytes] | IO[str] = sys.stdin.buffer
            else:
                try:
                    binary = stack.enter_context(open(path, "rb"))
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    raise InputReadError(f"cannot open {name!r}: {reason}") from exc
        else:
            binary = source

        if _is_text(binary):
            yield _GuardedText(cast(IO[str], binary), name)
            return

        stream = cast(IO[bytes], binary)
        if not hasattr(stream, "peek"):
            # peek() looks for the gzip header without consuming it. The reader is
            # detached afterwards, because closing it would close the caller's stream.
            reader = io.BufferedReader(cast(io.RawIOBase, stream))
            stack.callback(reader.detach)
            stream = cast(IO[bytes], reader)
        head = _peek(stream, name)
        _check_format(head, name)
        if head.startswith(_GZIP_MAGIC):
            decompressed = stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
            stream = cast(IO[bytes], decompressed)
        yield _DecodedText(stream, name)


class _GuardedText:
    """A text stream whose read failures raise `InputReadError` with the source's name."""

    def __init__(self, stream: IO[str], name: str) -> None:
        self._stream = stream
        self.name = name

    def read(self, size: int, /) -> str:
        try:
            return self._stream.read(size)
        except OSError as exc:
            raise InputReadError(f"failed to read {self.name!r}: {exc}") from exc


class _DecodedText:
    """UTF-8 text decoded from a binary stream; read failures raise `InputReadError`.

    Each read takes what one ``read1`` call returns, so the text read before a failure,
    such as the end of a truncated gzip file, still reaches the caller.
    """

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
        self.name = name

    def read(self, size: int, /) -> str:
        while True:
            try:
                data: bytes = self._stream.read1(size)  # type: ignore[attr-defined]
            except (OSError, EOFError, zlib.error) as exc:
                raise InputReadError(f"failed to read {self.name!r}: {exc}") from exc
            text = self._decoder.decode(data, final=not data)
            # A read can end inside a multi-byte character and so decode to nothing.
            if text or not data:
                return text


# Leading bytes of compressed or archive formats that the importer cannot read.
_OTHER_FORMATS: Final = (
    (b"PK\x03\x04", "a zip archive"),
    (b"BZh", "bzip2-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
)


def _check_format(head: bytes, name: str) -> None:
    """Raise `InputReadError` for input that is compressed in a format other than gzip,
    or named ``.gz`` without being gzip-compressed or JSON."""
    for magic, described in _OTHER_FORMATS:
        if head.startswith(magic):
            raise InputReadError(
                f"{name!r} is {described}, not JSON or gzip-compressed JSON; extract it first"
            )
    if name.lower().endswith(".gz") and not head.startswith(_GZIP_MAGIC):
        first = head.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
        if first not in (b"{", b"[", b""):
            raise InputReadError(
                f"{name!r} is named .gz but is not gzip-compressed: it does not start with "
                "the gzip header (1f 8b), nor with JSON"
            )


def _is_text(stream: IO[bytes] | IO[str]) -> bool:
    return isinstance(stream, io.TextIOBase)


def _peek(stream: IO[bytes], name: str) -> bytes:
    try:
        head: bytes = stream.peek(_PEEK_BYTES)  # type: ignore[attr-defined]
    except OSError as exc:
        raise InputReadError(f"failed to read {name!r}: {exc}") from exc
    return head[:_PEEK_BYTES]
