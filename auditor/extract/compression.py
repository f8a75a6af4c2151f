"""Compression layers: which one ``data`` announces, and undoing one within the limits.

Every decompression here is a stream read in steps, so a bomb is stopped as soon as its
output passes ``MAX_OUTPUT``, its ratio passes ``MAX_RATIO`` or the message's work budget
runs out (``auditor.limits``), not after it has filled memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import brotli
import zstandard

from auditor.limits import MAX_OUTPUT, MAX_RATIO, MAX_ZSTD_WINDOW, RATIO_FLOOR, Budget, Limit

_CHUNK = 64 * 1024  # decompression output per step, so a bomb is stopped early
_BROTLI_STEP = 4  # brotli input bytes per step: brotli 1.1 has no output limit of its own


def sniff_compression(data: bytes) -> str | None:
    """The compression layer announced by ``data``'s magic bytes (RFC 1952, RFC 1950,
    RFC 8878). Brotli and raw deflate have no magic; ``decompress`` tries them on request."""
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7 \
            and (data[0] << 8 | data[1]) % 31 == 0:
        return "zlib"
    return None


def decompress(data: bytes, layer: str, budget: Budget | None = None,
               path: str = "") -> bytes | None:
    """``data`` with one compression layer removed; None when it is not that format.

    Raises ``Limit`` when the output passes ``MAX_OUTPUT``, the ratio passes ``MAX_RATIO``
    (a decompression bomb) or the budget runs out. A stream cut short gives what it held.
    """
    return decompress_partial(data, layer, budget, path)[0]


def decompress_partial(data: bytes, layer: str, budget: Budget | None = None,
                       path: str = "") -> tuple[bytes | None, bool]:
    """Like ``decompress``, and whether the stream was whole (False: cut short or corrupt
    after some output, which is still returned: captures lose a trailer more than data)."""
    budget = budget if budget is not None else Budget()
    reader = _DECOMPRESSORS.get(layer)
    if reader is None:
        return None, True
    out = bytearray()

    def grow(chunk: bytes, consumed: int) -> None:
        out.extend(chunk)
        budget.spend(len(chunk), path)
        if len(out) > MAX_OUTPUT:
            raise Limit(path, f"{layer} output over {MAX_OUTPUT} bytes")
        if len(out) > RATIO_FLOOR and len(out) > MAX_RATIO * max(consumed, 1):
            raise Limit(path, f"{layer} ratio over {MAX_RATIO}:1 (decompression bomb)")

    try:
        whole = reader(data, grow)
    except (zlib.error, brotli.error, zstandard.ZstdError):
        whole = False
    return (bytes(out) if out else None), whole


_Grow = Callable[[bytes, int], None]


def _zlib_stream(wbits: int) -> Callable[[bytes, _Grow], bool]:
    def run(data: bytes, grow: _Grow) -> bool:
        d = zlib.decompressobj(wbits)
        buf = data
        while True:
            chunk = d.decompress(buf, _CHUNK)
            buf = d.unconsumed_tail
            grow(chunk, len(data) - len(buf))
            if d.eof:
                return True
            if not chunk:
                return False
    return run


def _brotli_stream(data: bytes, grow: _Grow) -> bool:
    d = brotli.Decompressor()
    for i in range(0, len(data), _BROTLI_STEP):
        grow(d.process(data[i:i + _BROTLI_STEP]), i + _BROTLI_STEP)
        if d.is_finished():
            return True
    return False


def _zstd_stream(data: bytes, grow: _Grow) -> bool:
    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW)
    with dctx.stream_reader(data, read_across_frames=True) as reader:
        while chunk := reader.read(_CHUNK):
            grow(chunk, len(data))
    return True


_DECOMPRESSORS: dict[str, Callable[[bytes, _Grow], bool]] = {
    "gzip": _zlib_stream(16 + zlib.MAX_WBITS),
    "zlib": _zlib_stream(zlib.MAX_WBITS),
    "deflate": _zlib_stream(-zlib.MAX_WBITS),
    "brotli": _brotli_stream,
    "zstd": _zstd_stream,
}

# HTTP content codings (RFC 9110 8.4.1; "deflate" is the zlib format, sent raw by some
# servers and devices) to the layers that undo them, tried in order.
CONTENT_CODINGS: dict[str, tuple[str, ...]] = {
    "gzip": ("gzip",), "x-gzip": ("gzip",), "deflate": ("zlib", "deflate"),
    "br": ("brotli",), "zstd": ("zstd",),
}
