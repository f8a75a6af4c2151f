"""Rules over the consent ledger (RULES.md "The consent ledger"): each judges the categories
a message carries against the guardian's state for (category, recipient) at that moment.

The family's triggers overlap (a precise location sent after a withdrawal was also never
separately granted; data sent after a refusal that came before any grant is also pre-consent
data), and a lab would read one problem as several. ``PRECEDENCE`` says which rule claims a
transmission × category: the most specific, once (RULES.md "Precedence"). Each rule's
function keeps its own trigger, so its fixtures still say exactly when it fires; the engine
applies ``most_specific`` to a message's hits before filing them.
"""

from __future__ import annotations

from collections.abc import Mapping

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

# Most specific first: what the guardian said about the category (took it back, said no)
# outranks when it was sent (before any grant), which outranks what the grant covered (not
# at all, or not separately). PRE_CONSENT_SDK is PRE_CONSENT_PI's case for an SDK host, so
# it claims first: for the categories it covers there, it is the one finding. MEDIA_UPLOAD is
# not in the family's order (RULES.md lists it apart): it judges the recipient's grant for
# voice and photo, and keeps its findings.
PRECEDENCE: tuple[str, ...] = (
    "AFTER_WITHDRAWAL",  # PIPL 47(1)(3); CPI 20(3); IDM 3.2, 3.8
    "AFTER_REFUSAL",  # IDM 3.2; MNR 32
    "PRE_CONSENT_SDK",  # IDM 2.1, 3.1; 41391 6.6
    "PRE_CONSENT_PI",  # PIPL 13, 31; CPI 9; IDM 3.1
    "SCOPE_EXCEEDED",  # IDM 3.3; CPI 14
    "SENSITIVE_NO_SEPARATE_CONSENT",  # PIPL 28, 29, 31
)


def most_specific(hits: Mapping[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """One message's hits (rule id -> categories) with each category left to the first rule
    of ``PRECEDENCE`` that hit it; a family rule left with no category is dropped. Rules
    outside the family pass through unchanged."""
    out = dict(hits)
    claimed: set[str] = set()
    for rule_id in PRECEDENCE:
        cats = out.get(rule_id)
        if not cats:  # no hit, or a hit about the connection rather than the data
            continue
        kept = cats - claimed
        claimed |= cats
        if kept:
            out[rule_id] = kept
        else:
            del out[rule_id]
    return out


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
