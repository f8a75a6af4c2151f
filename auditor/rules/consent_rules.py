"""Rules over the consent ledger (RULES.md "The consent ledger"): each judges the categories
a message carries against the guardian's state for (category, recipient) at that moment."""

from __future__ import annotations

from auditor.consent import GRANTED, NONE, REFUSED, WITHDRAWN, ConsentState
from auditor.model import Observation
from auditor.rules.base import RuleContext
from auditor.rules.common import (
    IDENTIFIERS_OR_LOCATION,
    MEDIA,
    NEEDS_SEPARATE_GRANT,
    hit,
    is_sdk_host,
    sent,
)


def _state(obs: Observation, ctx: RuleContext, category: str) -> ConsentState:
    tx = obs.transmission
    return ctx.ledger.state(category, obs.recipient, tx.ts, tx.host)


def _in_state(obs: Observation, ctx: RuleContext, status: str,
              among: frozenset[str] | None = None) -> frozenset[str] | None:
    cats = sent(obs) if among is None else sent(obs) & among
    return hit({c for c in cats if _state(obs, ctx, c).status == status})


def pre_consent_pi(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """Personal data leaves the device before any guardian grant in the session."""
    if ctx.ledger.any_grant_before(obs.transmission.ts):
        return None
    return hit(sent(obs))


def pre_consent_sdk(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """A third-party SDK host receives an identifier or location before any grant."""
    if not is_sdk_host(obs, ctx) or ctx.ledger.any_grant_before(obs.transmission.ts):
        return None
    return hit(sent(obs) & IDENTIFIERS_OR_LOCATION)


def scope_exceeded(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """After a grant, a category no event ever covered for this recipient (IDM 3.3)."""
    if not ctx.ledger.any_grant_before(obs.transmission.ts):
        return None  # before any grant it is PRE_CONSENT_PI
    return _in_state(obs, ctx, NONE)


def after_refusal(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """A category sent while the guardian's latest word on it was a refusal."""
    return _in_state(obs, ctx, REFUSED)


def after_withdrawal(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """A withdrawn category (or recipient) still sent once the grace window is over; the
    ledger applies the window (``withdrawal_grace_s``)."""
    return _in_state(obs, ctx, WITHDRAWN)


def sensitive_no_separate_consent(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """Precise location, voice, photo, contacts or a national id without a grant that names
    the category separately (PIPL 29), whatever else the guardian agreed to."""
    return hit({c for c in sent(obs) & NEEDS_SEPARATE_GRANT
                if not _separately_granted(_state(obs, ctx, c))})


def _separately_granted(state: ConsentState) -> bool:
    return state.status == GRANTED and state.separate


def media_upload(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """Voice or photo sent to a recipient with no grant in effect for it."""
    return hit({c for c in sent(obs) & MEDIA if _state(obs, ctx, c).status != GRANTED})
