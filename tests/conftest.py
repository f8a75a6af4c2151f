"""Shared pytest configuration for the whole suite."""

from __future__ import annotations

import os

# The real-sample tests read the shared corpus that lives outside the repository (real
# people's data): collected only when KIDAUDIT_CORPUS names it, so a plain clone shows no
# skips. Set but pointing nowhere, they fail.
collect_ignore = [] if "KIDAUDIT_CORPUS" in os.environ else ["test_watchproto_corpus.py"]
