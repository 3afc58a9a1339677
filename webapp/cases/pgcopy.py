"""PostgreSQL's binary COPY format, written from numpy columns without Python work per row.

A bulk load spends most of its client time turning values into text (``csv.writer``
runs Python code for every field of every row) and most of its server time parsing
that text back (timestamps, numbers, ``ST_MakePoint`` for every point). The binary
format skips both: every field is its length and the type's own wire bytes
(big-endian integers and floats, timestamps as microseconds since 2000-01-01, UTF-8
text, EWKB geometry), and here each column is written for a whole chunk of rows at
once by numpy index arithmetic.

A column is one of the classes below; :func:`encode` lays out rows ``a`` to ``b`` of a
list of columns as one COPY chunk, and :func:`copy_chunks` yields the whole stream
(header, chunks, trailer) for ``cursor.copy_expert``.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
# Seconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
PG_EPOCH_S = 946_684_800
PG_EPOCH_DAY = date(2000, 1, 1).toordinal()


def _mask(null, n: int) -> np.ndarray:
    if null is None:
        return np.zeros(n, dtype=bool)
    return np.asarray(null, dtype=bool)


def _scatter_fixed(buf: np.ndarray, pos: np.ndarray, mat: np.ndarray) -> None:
    """Write row ``i`` of the (m, w) byte matrix ``mat`` at ``buf[pos[i]:pos[i] + w]``."""
    if len(pos) == 0:
        return
    w = mat.shape[1]
    if w == 1:
        buf[pos] = mat[:, 0]
        return
    buf[pos[:, None] + np.arange(w)] = mat


def _scatter_ragged(
    buf: np.ndarray, dst: np.ndarray, blob: np.ndarray, src: np.ndarray, lengths: np.ndarray
) -> None:
    """Copy ``blob[src[i]:src[i] + lengths[i]]`` to ``buf[dst[i]:...]`` for every i at once."""
    total = int(lengths.sum())
    if total == 0:
        return
    starts = np.cumsum(lengths) - lengths
    within = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    buf[np.repeat(dst, lengths) + within] = blob[np.repeat(src, lengths) + within]


class Fixed:
    """A column of fixed-width values (``dtype`` big-endian), with an optional NULL mask."""

    def __init__(self, values, dtype: str, null=None) -> None:
        arr = np.asarray(values)
        self.null = _mask(null, len(arr))
        if self.null.any():
            arr = np.where(self.null, 0, arr)
        self.values = arr.astype(dtype)
        self.width = self.values.dtype.itemsize

    def __len__(self) -> int:
        return len(self.values)

    def lengths(self, a: int, b: int) -> np.ndarray:
        return np.where(self.null[a:b], -1, self.width)

    def write(self, buf: np.ndarray, pos: np.ndarray, a: int, b: int) -> None:
        keep = ~self.null[a:b]
        vals = np.ascontiguousarray(self.values[a:b][keep])
        _scatter_fixed(buf, pos[keep], vals.view(np.uint8).reshape(len(vals), self.width))


def int4(values, null=None) -> Fixed:
    return Fixed(values, ">i4", null)


def int8(values, null=None) -> Fixed:
    return Fixed(values, ">i8", null)


def float8(values, null=None) -> Fixed:
    return Fixed(values, ">f8", null)


def boolean(values, null=None) -> Fixed:
    return Fixed(np.asarray(values, dtype=bool), "u1", null)


def timestamptz(epoch_s, null=None) -> Fixed:
    """Instants given as Unix epoch seconds (floats), stored to the microsecond."""
    s = np.asarray(epoch_s, dtype=np.float64)
    null = _mask(null, len(s)) | ~np.isfinite(s)
    us = np.round((np.where(null, PG_EPOCH_S, s) - PG_EPOCH_S) * 1e6).astype(np.int64)
    return Fixed(us, ">i8", null)


def dates(values: Sequence[date]) -> Fixed:
    """Calendar days (``date`` objects), as ``date``'s binary form: days since 2000-01-01."""
    return Fixed(np.array([d.toordinal() - PG_EPOCH_DAY for d in values], dtype=np.int64), ">i4")


class Point:
    """Points as EWKB (``geometry(Point, srid)``'s binary input), from lon/lat arrays."""

    _DTYPE = np.dtype([("o", "u1"), ("t", "<u4"), ("s", "<u4"), ("x", "<f8"), ("y", "<f8")])

    def __init__(self, lon, lat, srid: int = 4326) -> None:
        lon = np.asarray(lon, dtype=np.float64)
        rec = np.empty(len(lon), dtype=self._DTYPE)
        rec["o"] = 1  # little-endian
        rec["t"] = 0x20000001  # Point with an SRID
        rec["s"] = srid
        rec["x"] = lon
        rec["y"] = np.asarray(lat, dtype=np.float64)
        self.bytes = rec.view(np.uint8).reshape(len(rec), 25)

    def __len__(self) -> int:
        return len(self.bytes)

    def lengths(self, a: int, b: int) -> np.ndarray:
        return np.full(b - a, 25, dtype=np.int64)

    def write(self, buf: np.ndarray, pos: np.ndarray, a: int, b: int) -> None:
        _scatter_fixed(buf, pos, self.bytes[a:b])


class Ascii:
    """Fixed-width ASCII text given as an (n, w) byte matrix (phone numbers, ID numbers)."""

    def __init__(self, matrix: np.ndarray, null=None) -> None:
        self.matrix = np.ascontiguousarray(matrix, dtype=np.uint8)
        self.null = _mask(null, len(self.matrix))

    def __len__(self) -> int:
        return len(self.matrix)

    def lengths(self, a: int, b: int) -> np.ndarray:
        return np.where(self.null[a:b], -1, self.matrix.shape[1])

    def write(self, buf: np.ndarray, pos: np.ndarray, a: int, b: int) -> None:
        keep = ~self.null[a:b]
        _scatter_fixed(buf, pos[keep], self.matrix[a:b][keep])


class Categorical:
    """Text drawn from a small vocabulary: ``codes`` index ``vocab``; a negative code is NULL."""

    def __init__(self, codes, vocab: Sequence[str]) -> None:
        self.codes = np.asarray(codes, dtype=np.int64)
        encoded = [v.encode("utf-8") for v in vocab]
        if any(b"\x00" in e for e in encoded):
            raise ValueError("text cannot contain NUL characters")
        self.vlen = np.array([len(e) for e in encoded], dtype=np.int64)
        self.vstart = np.cumsum(self.vlen) - self.vlen
        self.blob = np.frombuffer(b"".join(encoded) or b"\x00", dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.codes)

    def lengths(self, a: int, b: int) -> np.ndarray:
        c = self.codes[a:b]
        return np.where(c < 0, -1, self.vlen[np.maximum(c, 0)])

    def write(self, buf: np.ndarray, pos: np.ndarray, a: int, b: int) -> None:
        c = self.codes[a:b]
        keep = c >= 0
        c = c[keep]
        _scatter_ragged(buf, pos[keep], self.blob, self.vstart[c], self.vlen[c])


class Text:
    """Any text: a sequence of ``str`` or ``None`` (encoded chunk by chunk)."""

    def __init__(self, values: Sequence[str | None]) -> None:
        self.values = values
        self._chunk: tuple[int, int, np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.values)

    def _encode(self, a: int, b: int):
        if self._chunk is not None and self._chunk[:2] == (a, b):
            return self._chunk[2:]
        part = self.values[a:b]
        null = np.fromiter((v is None for v in part), dtype=bool, count=b - a)
        joined = "\x00".join("" if v is None else v for v in part).encode("utf-8")
        blob = np.frombuffer(joined + b"\x00", dtype=np.uint8)
        ends = np.flatnonzero(blob == 0)
        if len(ends) != b - a:
            raise ValueError("text cannot contain NUL characters")
        starts = np.concatenate([[0], ends[:-1] + 1])
        lengths = np.where(null, -1, ends - starts)
        self._chunk = (a, b, blob, starts, lengths)
        return blob, starts, lengths

    def lengths(self, a: int, b: int) -> np.ndarray:
        return self._encode(a, b)[2]

    def write(self, buf: np.ndarray, pos: np.ndarray, a: int, b: int) -> None:
        blob, starts, lengths = self._encode(a, b)
        keep = lengths >= 0
        _scatter_ragged(buf, pos[keep], blob, starts[keep], lengths[keep])
        self._chunk = None


def uuids(values: Sequence[uuid.UUID | str | None]) -> Fixed | Ascii:
    """A uuid column from ``UUID`` objects, their strings, or ``None``."""
    n = len(values)
    null = np.fromiter((v is None for v in values), dtype=bool, count=n)
    raw = b"".join(b"\x00" * 16 if v is None else _uuid(v).bytes for v in values)
    return Ascii(np.frombuffer(raw, dtype=np.uint8).reshape(n, 16), null)


def _uuid(v) -> uuid.UUID:
    return v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))


def epoch_seconds(values: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(epoch seconds, NULL mask) of ``datetime``s or ISO 8601 strings (naive means UTC)."""
    out = np.zeros(len(values), dtype=np.float64)
    null = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None or v == "":
            null[i] = True
            continue
        d = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
        if d.tzinfo is None:
            d = d.replace(tzinfo=UTC)
        out[i] = d.timestamp()
    return out, null


def encode(columns: Sequence, a: int, b: int) -> np.ndarray:
    """Rows ``a`` to ``b`` (exclusive) of ``columns`` as binary COPY tuples (a byte array)."""
    m = b - a
    k = len(columns)
    lengths = [np.asarray(c.lengths(a, b), dtype=np.int64) for c in columns]
    sizes = [4 + np.maximum(n, 0) for n in lengths]
    row_size = 2 + np.sum(sizes, axis=0)
    row_start = np.cumsum(row_size) - row_size
    buf = np.empty(int(row_size.sum()), dtype=np.uint8)
    _scatter_fixed(buf, row_start, np.full(m, k, dtype=">i2").view(np.uint8).reshape(m, 2))
    pos = row_start + 2
    for col, n, size in zip(columns, lengths, sizes, strict=True):
        _scatter_fixed(buf, pos, n.astype(">i4").view(np.uint8).reshape(m, 4))
        col.write(buf, pos + 4, a, b)
        pos = pos + size
    return buf


def copy_chunks(columns: Sequence, chunk: int = 50_000) -> Iterator[bytes]:
    """The binary COPY stream of ``columns``: header, tuples in chunks, trailer."""
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError("columns differ in length")
    return copy_rows(columns, chunks(0, n, chunk))


def chunks(a: int, b: int, chunk: int = 50_000) -> Iterator[tuple[int, int]]:
    """Rows ``a`` to ``b`` (exclusive) as consecutive slices of at most ``chunk`` rows."""
    for lo in range(a, b, chunk):
        yield lo, min(lo + chunk, b)


def copy_rows(columns: Sequence, slices: Iterable[tuple[int, int]]) -> Iterator[bytes]:
    """The binary COPY stream of the rows ``slices`` name (start, stop), a chunk each."""
    yield HEADER
    for a, b in slices:
        yield encode(columns, a, b).tobytes()
    yield TRAILER


def ahead(chunks: Iterator[bytes], depth: int = 3) -> Iterator[bytes]:
    """Produce ``chunks`` in a thread of their own, up to ``depth`` ahead of the consumer.

    The encoding (numpy, mostly outside the GIL) then overlaps with the server parsing
    the previous chunk, instead of each waiting for the other. An exception in the
    producer is raised in the consumer; a consumer that stops early stops the producer.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put((chunk, None)):
                    return
            put((done, None))
        except BaseException as exc:  # handed to the consumer
            put((done, exc))

    worker = threading.Thread(target=produce, name="copy-encoder", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        worker.join()


class ChunkReader:
    """A file-like object over an iterator of byte chunks, for ``cursor.copy_expert``.

    ``read`` may answer fewer bytes than asked (psycopg2 sends what it gets and stops
    at an empty answer), so no chunk is ever copied again to fill a request.
    """

    def __init__(self, chunks: Iterator[bytes], on_chunk=None) -> None:
        self._chunks = chunks
        self._current = memoryview(b"")
        self._offset = 0
        self._on_chunk = on_chunk

    def read(self, size: int = -1) -> bytes:
        while self._offset >= len(self._current):
            try:
                piece = next(self._chunks)
            except StopIteration:
                return b""
            if self._on_chunk is not None:
                self._on_chunk(piece)
            self._current, self._offset = memoryview(piece), 0
        end = len(self._current) if size < 0 else self._offset + size
        out = self._current[self._offset : end]
        self._offset += len(out)
        return bytes(out)

    def readline(self, size: int = -1) -> bytes:  # pragma: no cover - binary COPY reads no lines
        return self.read(size)
