"""Rules over the consent ledger (RULES.md: PRE_CONSENT_PI, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditor.model import Observation

if TYPE_CHECKING:
    from auditor.rules.catalogue import RuleContext


def pre_consent_pi(obs: Observation, ctx: RuleContext) -> frozenset[str]:
    """Personal data leaves the device before any guardian grant in the session."""
    if obs.transmission.direction != "up" or ctx.ledger.any_grant_before(obs.transmission.ts):
        return frozenset()
    return obs.categories
