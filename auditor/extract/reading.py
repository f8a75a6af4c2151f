"""What every format reader shares: the state of one payload being read, and the rule that
a limit inside a nested part marks only that part opaque.

Formats nest (gzip in a multipart part in a msgpack bytes value), so a reader hands a part
that is a format of its own back to the sniffer (``ReadContext.read``, set by
``auditor.extract.bodies``); passing it in the context keeps the format modules free of
an import back up to the sniffer.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from auditor.limits import MAX_TREE_DEPTH, OPAQUE, Budget, Limit
from auditor.model import Field

Encoding = tuple[str, ...]


@dataclass
class ReadContext:
    location: str
    budget: Budget
    # The sniffer, ``read(data, prefix, ctx, encoding, content_type, nest, text_path)``
    # (auditor.extract.bodies): what a part in a format of its own goes to.
    read: Callable[..., Iterator[Field]]
    strict: bool = False  # a value decoded from base64: binary formats need some text in them
    text_leaves: int = 0  # strings of 4+ characters seen in binary documents


# A binary format's reader: its fields (read lazily, as the caller takes them), or None
# when ``data`` is not that format, so the sniffer tries the next one.
Reader = Callable[[bytes, str, ReadContext, Encoding, int], "Iterator[Field] | None"]
# A text format's reader, given the text and its bytes: a generator of its fields that
# returns False when the text was not that format after all (it may have noted why, as
# opaque, first), so the sniffer lets the next format try.
TextReader = Callable[[str, bytes, str, ReadContext, Encoding, int],
                      Generator[Field, None, bool]]


def too_deep(path: str, encoding: Encoding) -> Field:
    return Field(OPAQUE, path, f"nested more than {MAX_TREE_DEPTH} deep, the rest not read",
                 encoding)


def guarded(fields: Iterator[Field], path: str, encoding: Encoding, ctx: ReadContext
            ) -> Iterator[Field]:
    """A nested reader (not started yet) whose limit marks only its own part opaque, not
    the parts after it: it reads with a share of the budget (``Budget.share``)."""
    outer = ctx.budget
    with outer.share() as part:
        ctx.budget = part
        try:
            yield from fields
        except Limit as e:
            yield Field(OPAQUE, e.path, e.reason, encoding)
        except RecursionError:
            yield Field(OPAQUE, path, "nested too deep", encoding)
        finally:
            ctx.budget = outer
