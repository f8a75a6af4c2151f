"""Rules over how data travels (RULES.md: CLEARTEXT_PI, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditor.model import Observation

if TYPE_CHECKING:
    from auditor.rules.catalogue import RuleContext


def cleartext_pi(obs: Observation, ctx: RuleContext) -> frozenset[str]:
    """Personal data over a transport anyone on the path can read."""
    if obs.transmission.direction != "up" or not obs.transmission.cleartext:
        return frozenset()
    return obs.categories
