"""Decoding a tracking request body: size limits, gzip, JSON, and the Segment envelope."""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import zstandard

from storeloop.ingestion.validation import InvalidEvent, parse_timestamp
from storeloop.kit.errors import StoreloopError


class BodyTooLarge(StoreloopError):
    status_code = 413
    code = "body_too_large"


class UnsupportedEncoding(StoreloopError):
    status_code = 415
    code = "unsupported_encoding"


class InvalidBody(StoreloopError):
    """The body as a whole could not be read; the code says how (invalid_json, invalid_utf8...).
    The offending field is the body itself unless a part of it is named."""

    def __init__(self, code: str, message: str, *, field: str | None = "body") -> None:
        super().__init__(message, field=field)
        self.code = code  # type: ignore[misc]


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Undo Content-Encoding, refusing anything that inflates beyond ``max_bytes``."""
    if not encoding or encoding.strip().lower() == "identity":
        return body
    if encoding.strip().lower() not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding!r} is not supported; use gzip or none",
            field="Content-Encoding",
        )
    wbits = zlib.MAX_WBITS | 32  # accepts both gzip and zlib headers
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body, max_bytes + 1)
        if len(data) <= max_bytes and not inflater.unconsumed_tail:
            data += inflater.flush()
    except zlib.error as exc:
        raise InvalidBody("invalid_gzip", f"the body is not valid gzip: {exc}") from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise BodyTooLarge(f"the decompressed body is larger than {max_bytes} bytes")
    return data


# The inbox keeps bodies zstd-compressed before they are sealed (ADR 0012): a 100-event body of
# about 100 KB becomes about 9 KB for 0.07 ms of CPU, so a group commit writes a twelfth of the
# bytes (PostgreSQL, 2 API processes: 97k -> 115k events/s, p99 198 -> 24 ms).
# A frame starts with zstd's magic number, which no JSON body can (0x28 is
# "(", not a JSON value); bodies stored before, and quarantine replays, are plain JSON.
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_codecs = threading.local()  # zstandard's (de)compressors are not shared between threads


def pack_body(data: bytes) -> bytes:
    """The body as the inbox keeps it (before sealing): a zstd frame."""
    compressor = getattr(_codecs, "compressor", None)
    if compressor is None:
        compressor = _codecs.compressor = zstandard.ZstdCompressor(level=1)
    return bytes(compressor.compress(data))


def unpack_body(stored: bytes, max_bytes: int = 64 * 1024 * 1024) -> bytes:
    """The body an inbox entry holds (after opening): the JSON sent, whether packed or not.
    (Sealed entries are authenticated, so only this service wrote them; ``max_bytes`` is a
    backstop, far above any body size limit.)"""
    if not stored.startswith(_ZSTD_MAGIC):
        return stored
    decompressor = getattr(_codecs, "decompressor", None)
    if decompressor is None:
        decompressor = _codecs.decompressor = zstandard.ZstdDecompressor()
    try:
        return bytes(decompressor.decompress(stored, max_output_size=max_bytes))
    except zstandard.ZstdError as exc:
        raise InvalidBody("invalid_body", f"the stored body does not decompress: {exc}") from None


def parse_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as utf8_error:
            raise InvalidBody(
                "invalid_utf8", f"the body is not valid UTF-8 at byte {utf8_error.start}"
            ) from None
        if "depth limit" in str(exc) or "recursion" in str(exc):
            raise InvalidBody("too_deep", "the body nests too deeply") from None
        if "surrogate" in str(exc):
            # Valid UTF-8 bytes, but an escape such as \ud800 stands for no character.
            raise InvalidBody(
                "invalid_utf8",
                "the body escapes a lone surrogate (\\ud800-\\udfff without its pair), which is"
                f" no Unicode character, at position {exc.pos}",
            ) from None
        if "UTF-8" in str(exc):
            raise InvalidBody("invalid_utf8", f"the body is not valid UTF-8: {exc}") from None
        raise InvalidBody(
            "invalid_json", f"the body is not valid JSON: {exc.msg} at position {exc.pos}"
        ) from None


@dataclass(frozen=True, slots=True)
class Envelope:
    """The messages of one request, the batch-level sentAt, and a writeKey found in the body."""

    messages: list[Any]
    sent_at: datetime | None
    write_key: str | None
    is_batch: bool


def _body_write_key(document: dict[str, Any]) -> str | None:
    key = document.get("writeKey")
    return key if isinstance(key, str) and key else None


def read_envelope(document: Any, *, is_batch: bool) -> Envelope:
    if not isinstance(document, dict):
        raise InvalidBody("invalid_body", "the body must be a JSON object")
    if not is_batch:
        return Envelope([document], None, _body_write_key(document), False)
    batch = document.get("batch")
    if batch is None:
        raise InvalidBody("missing_field", "batch is required", field="batch")
    if not isinstance(batch, list):
        raise InvalidBody("wrong_type", "batch must be an array", field="batch")
    try:
        sent_at = parse_timestamp(document.get("sentAt"), "sentAt")
    except InvalidEvent as exc:
        raise InvalidBody(exc.rejection.code, exc.rejection.message, field="sentAt") from None
    return Envelope(batch, sent_at, _body_write_key(document), True)
