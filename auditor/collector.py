"""The garbage collector's setting for batch work: ``analyze``, ``report`` and the
``--jobs`` worker processes.

A run builds and drops millions of small containers (fields, detections, rows). CPython's
default threshold starts a young-generation collection every 700 new containers, and each
older collection walks every object alive, mitmproxy's and the modules' own included: about
5 % of an ``analyze`` run on the bench's capture went to collecting, where almost nothing is
cyclic garbage (reference counting frees it). So batch work freezes what is alive once
started (the imported modules, the profile: never garbage) out of every later collection,
and collects the young generation every 50,000 new containers. Cyclic garbage is still
collected, later: at most a threshold's worth of it waits, a few MB, whatever the size of
the capture. The live worker keeps the default: it runs for days at a low rate.
"""

from __future__ import annotations

import gc

# (young, middle, old): young every 50,000 allocations net of frees, the middle generation
# every 20 young collections, the old every 100 middle ones (and CPython's own rule that a
# full collection waits until a quarter of the old generation is new).
BATCH_THRESHOLD = (50_000, 20, 100)


def for_batch() -> None:
    """Freeze what is alive now and collect less often (see the module's docstring)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*BATCH_THRESHOLD)


__all__ = ["BATCH_THRESHOLD", "for_batch"]
