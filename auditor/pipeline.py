"""One message through the pure stages: extract -> decode -> detect -> attribute."""

from __future__ import annotations

from dataclasses import dataclass, replace

from auditor import decode
from auditor.detect import Detector
from auditor.extract import extract
from auditor.limits import message_budget
from auditor.model import Field, Observation, Profile, Transmission
from auditor.recipients import Recipients, SdkTable


@dataclass
class Pipeline:
    """Built once per session: the detector's automaton and the recipient table."""

    detector: Detector
    recipients: Recipients

    @classmethod
    def for_profile(cls, profile: Profile, sdks: SdkTable) -> Pipeline:
        """``sdks``: the SDK table the edge loaded (``auditor.data.load_sdks()``)."""
        return cls(Detector(profile), Recipients(profile.first_party, sdks,
                                                 organisations=profile.organisations))

    def observe(self, tx: Transmission) -> Observation:
        recipient = self.recipients.attribute(tx.host, tx.ip)
        if not tx.inspected:
            return Observation(tx, recipient)
        opaque: list[str] = []
        with message_budget():  # one work budget for the message's readers and layers
            fields = decode.expand(extract(tx), opaque)
        detections = self.detector.detect(tx, fields)
        return Observation(tx, recipient, tuple(detections), tuple(opaque), tags(fields))

    def failed(self, tx: Transmission, exc: Exception) -> Observation:
        """What is kept of a message ``observe`` failed on: committed as opaque, without its
        content, so the report lists it and counts the error (live and ``analyze`` alike)."""
        return Observation(without_content(tx), self.recipients.attribute(tx.host, tx.ip),
                           opaque=(f"*: analysis failed ({type(exc).__name__})",))


def without_content(tx: Transmission) -> Transmission:
    """The transmission without its body, payload and headers: what is kept of a message
    beyond its analysis (a failed one, or one the live alerts' rules hold)."""
    return replace(tx, body=b"", payload=b"", headers=())


def tags(fields: list[Field]) -> tuple[str, ...]:
    """Extractors report protocol facts as fields with location ``command`` (the command a
    server sent a watch, ``MONITOR``) or ``tag`` (``firmware``); rules see them as tags."""
    out = [f"command:{f.value}" if f.location == "command" else f.value
           for f in fields if f.location in ("command", "tag")]
    return tuple(dict.fromkeys(out))
