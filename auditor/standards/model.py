"""The plain dataclasses of a standards catalogue, shared by the loader, the conformance
table and the procedure. Pure: nothing here reads files."""

from __future__ import annotations

from dataclasses import dataclass

# How far a clause's number and wording were checked against the standard's own text
# (the catalogue says which source). RULES.md marks the unverified ones with `*`.
VERIFIED, UNVERIFIED = "verified", "not verified"
# A standard whose number itself could not be confirmed is still listed, so a lab sees it
# was considered; it has no items.
NUMBER_NOT_CONFIRMED = "number not confirmed"

# What can evidence an item: the traffic (rules), or only documents / the maker's statement.
TRAFFIC, DOCUMENT = "traffic", "document"


@dataclass(frozen=True)
class Text:
    """One phrase in both report languages."""

    en: str
    zh: str

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class Item:
    """One test item of a standard.

    ``rules`` are the kidaudit rule ids whose findings fail it; ``steps`` the session steps
    (``steps.STEPS`` ids) without which silence proves nothing. ``evidence`` is ``traffic``
    or ``document``: a ``document`` item is listed as *not testable by traffic*.
    ``note`` is an optional justification (EN 18031's "not applicable" decision, say)."""

    clause: str
    title: Text
    summary: Text
    rules: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    evidence: str = TRAFFIC
    clause_status: str = VERIFIED
    note: Text | None = None


@dataclass(frozen=True)
class Standard:
    """A catalogue: one standard (or one programme's document) and its items."""

    id: str
    number: str
    title: Text
    status: str  # VERIFIED, UNVERIFIED or NUMBER_NOT_CONFIRMED
    source: str  # where the clauses were checked (publication, URL), in our words
    items: tuple[Item, ...] = ()
    default_for: tuple[str, ...] = ()  # profile jurisdictions this standard is the default for
