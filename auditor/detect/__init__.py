"""Detection: which categories of personal data a message's fields carry, and how sure we are."""

from __future__ import annotations

from auditor.detect.known import KnownValues
from auditor.detect.location import find_locations
from auditor.model import Detection, Field, Transmission
from auditor.profile import Profile


class Detector:
    """Everything built once per session from the profile (the automaton above all)."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.known = KnownValues.from_profile(profile)

    def detect(self, tx: Transmission, fields: list[Field]) -> list[Detection]:
        found: list[Detection] = []
        found.extend(self.known.scan(tx.id, fields))
        if self.profile.location is not None:
            found.extend(find_locations(tx.id, fields, self.profile.location))
        return dedupe(found)


def dedupe(detections: list[Detection]) -> list[Detection]:
    """One detection per (category, field, profile key): the shortest encoding chain wins,
    since it is the most direct evidence of the same fact."""
    best: dict[tuple[str, str, str], Detection] = {}
    for d in detections:
        key = (d.category, d.field, d.profile_key)
        if key not in best or len(d.encoding) < len(best[key].encoding):
            best[key] = d
    return list(best.values())
