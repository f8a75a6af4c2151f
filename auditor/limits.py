"""What reading one message may cost: the limits every reader and decoder shares.

A device controls its bytes, so every reader in ``auditor.extract`` and every layer peeled
by ``auditor.decode`` is bounded, and the bounds live here, in one place, so extraction and
decoding cannot drift apart. A limit never raises out of the readers: it becomes a field
with location ``OPAQUE`` (path: where, value: why), which ``auditor.decode.expand`` moves
into the observation's opaque list, so the report says what was not looked into.

The limits count work, not only input: one ``Budget`` per message (``message_budget``) is
charged for bytes read and produced, nodes visited and layers peeled, so a document that
shares or repeats itself (CBOR tags 28/29, a million empty arrays) ends as early as a
decompression bomb does. Work is counted rather than timed: the clock is not read in the
core (STYLE.md 1), and counted work gives the same report on every machine, so
``kidaudit analyze`` stays reproducible.
"""

from __future__ import annotations

import zlib
from contextvars import ContextVar
from dataclasses import dataclass

from auditor.model import Field

# --- extraction (auditor.extract) ----------------------------------------------------------

MAX_BYTES = 4 * 1024 * 1024  # bytes of one payload we look into; the rest is noted opaque
MAX_FIELDS = 20_000  # fields per payload (and per HTTP request)
MAX_TREE_DEPTH = 64  # nesting inside one JSON / XML / msgpack / CBOR / protobuf document
MAX_NEST = 8  # formats inside formats: gzip in a multipart part in a msgpack bytes value
MAX_TOKENS = 64  # tokens taken out of one User-Agent or Authorization header
MAX_TEXT = 64 * 1024  # a raw payload no reader knows is kept only up to here as text
MAX_BUFFER = 1 << 20  # a watch stream buffer longer than this without a frame end is dropped

# --- decompression -------------------------------------------------------------------------

MAX_OUTPUT = 4 * 1024 * 1024  # bytes one decompression may produce
MAX_RATIO = 100  # output:input of a decompression, checked once output passes RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024
MAX_ZSTD_WINDOW = 8 * 1024 * 1024  # a zstd frame asking for a larger window is refused

# --- decoding layers inside values (auditor.decode) ----------------------------------------

MAX_LAYERS = 4  # layers peeled off one value
MAX_VALUE = 256 * 1024  # a value longer than this is matched as is, not decoded
MAX_DERIVED = 5_000  # derived fields per message

# --- work per message ----------------------------------------------------------------------

# Work per message, in units of one byte read or produced. Every reader, tree walk and
# decoding layer of one message draws on the same budget (``message_budget``).
MAX_WORK = 32 * 1024 * 1024
# What a node of a document tree costs beyond its bytes: a walk over a structure that
# shares or repeats itself (CBOR value sharing, empty containers, nulls) produces nothing
# but still takes time, so visiting a node is charged like reading this many bytes.
NODE_COST = 32
LAYER_COST = 256  # one decoding layer peeled off a value (auditor.decode)

# --- paths ---------------------------------------------------------------------------------

# A key longer than this is shortened in paths (``segment``): every leaf under it repeats
# its path, so a 1 MB key over 1,500 leaves would otherwise hold 1.5 GB of paths.
MAX_SEGMENT = 256
# A whole path longer than this (a long name the HTTP reader took as it came, segments piled
# up by nesting) is shortened the same way (``bounded``), keeping its start and its end
# (the key a field sits under), with room for the layers decoded below it.
MAX_PATH = 1024

OPAQUE = "opaque"  # the location of a field that records a limit, not a value


class Limit(Exception):
    """A limit stopped reading at ``path``; the reason is the message."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


@dataclass
class Budget:
    """Work left for one message: bytes read and produced, nodes visited, layers peeled.
    Plain integer arithmetic, so charging it costs nothing next to the work it counts."""

    work: int = MAX_WORK

    def spend(self, n: int, path: str) -> None:
        """Charge ``n`` units; ``Limit`` (recorded as opaque at ``path``) once none are left."""
        self.work -= n
        if self.work < 0:
            raise Limit(path, f"work budget used up ({MAX_WORK} units a message, one part "
                        "at most half of what is left; bytes read and produced, nodes "
                        "visited, layers peeled)")

    @property
    def used_up(self) -> bool:
        """Nothing is left: later readers of the same message stop at once."""
        return self.work < 0

    def share(self) -> _Share:
        """A budget for one part of the message (a payload, a multipart part, a value read
        as a format of its own): half of what is left, so a bomb in one part spends its
        share and stops, and the parts after it are still read with the rest. What the
        part spent is charged here, so the message's total stays within its budget."""
        return _Share(self)


class _Share:
    """``Budget.share``'s context: the part's budget, given when the ``with`` is entered,
    charged to the message when it is left, however it is left. A class, not a
    ``contextmanager`` generator: entered once for every payload and nested part, where
    the generator's machinery cost more than the arithmetic (the same steps, in order)."""

    __slots__ = ("_whole", "_given", "_part")

    def __init__(self, whole: Budget) -> None:
        self._whole = whole

    def __enter__(self) -> Budget:
        self._given = max(self._whole.work, 0) // 2
        self._part = Budget(self._given)
        return self._part

    def __exit__(self, *exc: object) -> None:
        # A charge past the share was refused, not done: the share is the most.
        self._whole.work -= self._given - max(self._part.work, 0)


_MESSAGE: ContextVar[Budget | None] = ContextVar("kidaudit_message_budget", default=None)


def message_budget() -> _MessageBudget:
    """One budget for everything read out of one message (extraction and decoding), so
    a message's parts and layers cannot each spend a budget of their own. Readers called
    outside it get a fresh budget per call."""
    return _MessageBudget()


class _MessageBudget:
    """``message_budget``'s context (a class for the reason ``_Share`` is one): a fresh
    budget, the current one while the ``with`` lasts, the one before it after."""

    __slots__ = ("_token",)

    def __enter__(self) -> Budget:
        budget = Budget()
        self._token = _MESSAGE.set(budget)
        return budget

    def __exit__(self, *exc: object) -> None:
        _MESSAGE.reset(self._token)


def current_budget() -> Budget:
    """The budget of the message being read, or a fresh one outside ``message_budget``."""
    budget = _MESSAGE.get()
    return budget if budget is not None else Budget()


def segment(key: str) -> str:
    """``key`` as one path segment: a key longer than ``MAX_SEGMENT`` keeps its start,
    its length and a CRC-32 of the whole (two long keys stay two paths), because every
    field below it repeats its path and memory must not grow with the key times the
    leaves."""
    if len(key) <= MAX_SEGMENT:
        return key
    return shortened(key)


def shortened(key: str) -> str:
    """A key past ``MAX_SEGMENT`` as ``segment`` writes it (callers that checked the length
    inline, on a hot path, call this directly)."""
    digest = zlib.crc32(key.encode("utf-8", errors="surrogatepass"))
    return f"{key[:MAX_SEGMENT // 2]}…[{len(key)} characters, crc32 {digest:08x}]"


def bounded(f: Field) -> Field:
    """``f`` with a path of at most ``MAX_PATH`` characters: a longer one keeps its first
    and last few hundred characters, its length and a CRC-32 of the whole, so fields stay
    apart and their key readable, and memory no longer grows with the path times the
    fields (the detector's readings and key tables remember paths)."""
    path = f.path
    if len(path) <= MAX_PATH:
        return f
    digest = zlib.crc32(path.encode("utf-8", errors="surrogatepass"))
    short = (f"{path[:MAX_PATH // 4]}…[{len(path)} characters, crc32 {digest:08x}]…"
             f"{path[-MAX_PATH // 8:]}")
    return Field(f.location, short, f.value, f.encoding)
