"""Reading documents from the user's files, in bounded memory.

Formats by file name: `.jsonl` / `.json` / `.ndjson` (one JSON object per line), `.parquet`,
anything else is plain text. `.gz` and `.zst` compression is read transparently. A directory
is walked recursively in sorted order. Plain text is one document per file, or one per
blank-line-separated block with `split_on_blank_lines`.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mixer.errors import MixerError

JSON_SUFFIXES = {".jsonl", ".json", ".ndjson"}
_SNIFF_BYTES = 8192


@dataclass
class ReadOptions:
    text_field: str = "text"
    split_on_blank_lines: bool = False
    skip_bad_lines: bool = False


@dataclass
class ReadStats:
    files: int = 0
    bad_lines: int = 0
    empty_docs: int = 0
    sources: list[str] = field(default_factory=list)


def _open_binary(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # raises EOFError where the file ends mid-stream
    if path.suffix == ".zst":
        return _ZstdFrames(path)
    return open(path, "rb")


class _ZstdFrames(io.RawIOBase):
    """Every frame of a .zst file, decompressed, as a raw binary stream. A file that ends
    inside a frame (a half-finished download) raises EOFError, as gzip does; zstandard's
    own `stream_reader` ends there silently, which would ingest part of the data."""

    def __init__(self, path: Path):
        import zstandard

        self._file = open(path, "rb")
        self._decompressor = zstandard.ZstdDecompressor()
        self._frame = self._decompressor.decompressobj()
        self._out, self._at, self._started = b"", 0, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._at == len(self._out):
            compressed = self._file.read(1 << 17)
            if not compressed:
                if self._started and not self._frame.eof:
                    raise EOFError("the file ends inside a zstd frame")
                return 0  # the end (an empty file: "is empty")
            self._started = True
            self._out, self._at = self._decompress(compressed), 0
        n = min(len(buffer), len(self._out) - self._at)
        buffer[:n] = self._out[self._at:self._at + n]
        self._at += n
        return n

    def _decompress(self, compressed: bytes) -> bytes:
        pieces = []
        while compressed:
            if self._frame.eof:  # the next frame of a multi-frame file
                self._frame = self._decompressor.decompressobj()
            pieces.append(self._frame.decompress(compressed))
            compressed = self._frame.unused_data if self._frame.eof else b""
        return b"".join(pieces)

    def close(self) -> None:
        self._file.close()
        super().close()


def _format_of(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s not in (".gz", ".zst")]
    last = suffixes[-1] if suffixes else ""
    if last in JSON_SUFFIXES:
        return "jsonl"
    if last == ".parquet":
        return "parquet"
    return "text"


def _check_not_binary(head: bytes, path: Path) -> None:
    if b"\x00" in head:
        raise MixerError(f"{path} looks like a binary file (NUL bytes), not text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multi-byte character cut at the sniff boundary is fine
            raise MixerError(f"{path} is not UTF-8 text (bad byte at offset {exc.start})") from None


def _text_stream(path: Path) -> io.TextIOBase:
    raw = _open_binary(path)
    buffered = io.BufferedReader(raw) if not isinstance(raw, io.BufferedReader) else raw
    head = buffered.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
    if not head:
        buffered.close()
        raise MixerError(f"{path} is empty")
    _check_not_binary(head, path)
    return io.TextIOWrapper(buffered, encoding="utf-8", errors="strict", newline=None)


def _read_jsonl(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[str]:
    with _text_stream(path) as stream:
        try:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    if opts.skip_bad_lines:
                        stats.bad_lines += 1
                        continue
                    raise MixerError(f"{path}:{number}: not valid JSON ({exc.msg}); "
                                     "use --skip-bad-lines to skip such lines") from None
                if not isinstance(record, dict) or opts.text_field not in record:
                    if opts.skip_bad_lines:
                        stats.bad_lines += 1
                        continue
                    raise MixerError(f"{path}:{number}: no field '{opts.text_field}' "
                                     "(choose it with --text-field)")
                text = record[opts.text_field]
                if not isinstance(text, str):
                    if opts.skip_bad_lines:
                        stats.bad_lines += 1
                        continue
                    raise MixerError(f"{path}:{number}: field '{opts.text_field}' is not a string; "
                                     "use --skip-bad-lines to skip such lines")
                yield text
        except UnicodeDecodeError as exc:
            raise MixerError(f"{path} is not UTF-8 text ({exc.reason})") from None


def _read_parquet(path: Path, opts: ReadOptions) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types
        raise MixerError(f"cannot read Parquet file {path}: {str(exc).splitlines()[0]}") from None
    if opts.text_field not in parquet.schema_arrow.names:
        raise MixerError(f"{path}: no column '{opts.text_field}' "
                         f"(columns: {', '.join(parquet.schema_arrow.names)}); choose it with --text-field")
    for batch in parquet.iter_batches(columns=[opts.text_field], batch_size=4096):
        yield from (t for t in batch.column(0).to_pylist() if t is not None)


def _read_text(path: Path, opts: ReadOptions) -> Iterator[str]:
    with _text_stream(path) as stream:
        try:
            if not opts.split_on_blank_lines:
                yield stream.read()
                return
            block: list[str] = []
            for line in stream:
                if line.strip():
                    block.append(line)
                elif block:
                    yield "".join(block).rstrip("\n")
                    block = []
            if block:
                yield "".join(block).rstrip("\n")
        except UnicodeDecodeError as exc:
            raise MixerError(f"{path} is not UTF-8 text ({exc.reason})") from None


def _files(source: Path) -> list[Path]:
    if not source.exists():
        raise MixerError(f"source not found: {source}")
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise MixerError(f"directory {source} has no files")
        return files
    return [source]


def read_documents(sources: list[Path], opts: ReadOptions, stats: ReadStats) -> Iterator[str]:
    """Every non-empty document of every source, in a deterministic order."""
    for source in sources:
        for path in _files(Path(source)):
            stats.files += 1
            stats.sources.append(str(path))
            fmt = _format_of(path)
            if fmt == "jsonl":
                docs = _read_jsonl(path, opts, stats)
            elif fmt == "parquet":
                docs = _read_parquet(path, opts)
            else:
                docs = _read_text(path, opts)
            try:
                for doc in docs:
                    if doc.strip():
                        yield doc
                    else:
                        stats.empty_docs += 1
            except _corrupt_archive_errors() as exc:
                raise MixerError(f"{path}: corrupt or truncated {path.suffix} file "
                                 f"({str(exc) or type(exc).__name__})") from None


def _corrupt_archive_errors() -> tuple[type[BaseException], ...]:
    """What gzip and zstandard raise on a corrupt or cut-off stream (EOFError: a file that
    ends mid-stream, as a half-finished download does)."""
    import zlib

    import zstandard

    return EOFError, gzip.BadGzipFile, zlib.error, zstandard.ZstdError
