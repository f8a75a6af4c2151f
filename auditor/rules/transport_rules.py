"""Rules over how data travels and what the auditor could see (RULES.md: transport
security, updates, remote commands, coverage).

Connection rules (WEAK_TLS, NO_CERT_VALIDATION, INSECURE_UPDATE, COVERT_MONITOR,
UNINSPECTED_TRAFFIC) are about the channel, not the data: they hit with no categories, so a
host gets one finding per rule whatever each message carried.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlsplit

from auditor.memo import memoised
from auditor.model import Observation, Transmission
from auditor.rules.base import RuleContext
from auditor.rules.common import hit, sent

CONNECTION: frozenset[str] = frozenset()  # a hit about the channel, with no categories
PASSWORD = "credentials.password"

# URL schemes anyone on the path can read, for transports that may be either (WebSocket).
CLEARTEXT_SCHEMES = frozenset({"http", "ws", "mqtt"})
# Detection locations that are part of the URL (RULES.md CREDENTIALS_EXPOSED "in a URL").
URL_LOCATIONS = frozenset({"url", "query"})
# Key names that say "password", normalised (lower case, letters and digits); a key ending
# in one of them counts too (``loginPwd``, ``user_password``). mima: pinyin of 密码.
PASSWORD_KEYS = ("password", "passwd", "passwort", "passcode", "pwd", "pswd", "psw", "mima")
PASSWORD_EXACT = frozenset({"pass", "pw", "密码"})

# TLS versions in the order of their age; RULES.md WEAK_TLS: "at most TLS 1.1".
TLS_ORDER: dict[str, int] = {
    "sslv2": 0, "sslv3": 1, "tlsv1": 2, "tlsv10": 2, "tlsv11": 3, "tlsv12": 4, "tlsv13": 5,
}
WEAKEST_ACCEPTABLE = TLS_ORDER["tlsv12"]
# Cipher-suite name tokens RULES.md names weak: NULL, EXPORT, RC4, 3DES (IANA names like
# TLS_RSA_WITH_3DES_EDE_CBC_SHA; OpenSSL names like DES-CBC3-SHA, EXP-RC4-MD5).
WEAK_SUITE = re.compile(r"(?:^|[_-])(?:NULL|EXPORT\w*|EXP|RC4|3DES|DES-CBC3)(?:[_-]|$)", re.I)

# Update fetches (INSECURE_UPDATE): image file suffixes and path segments naming an update.
UPDATE_SUFFIXES = (".bin", ".img", ".apk", ".zip", ".pkg")
UPDATE_SEGMENTS = frozenset({"ota", "fota", "firmware", "upgrade", "update", "updates"})
FIRMWARE_TAG = "firmware"
# Server -> watch commands that turn the microphone on for a silent call-back.
LISTEN_COMMANDS = frozenset({"MONITOR"})


_AUTHORITY_END = re.compile(r"[/?#]")
URLS, KEYS = 4096, 4096  # URLs and field names remembered (several rules ask per message)


@memoised(URLS)
def url_parts(url: str) -> SplitResult:
    """``urlsplit`` of a captured URL. The URL is the device's (or an attacker's) text: a
    Host header holding ``[`` makes ``urlsplit`` raise ``Invalid IPv6 URL``, and then the
    URL is cut by hand at the same marks (``://``, the first ``/?#``, ``?``, ``#``), so
    its scheme, path and query are still judged. Remembered: several rules ask per message."""
    try:
        return urlsplit(url)
    except ValueError:
        scheme, sep, rest = url.partition("://")
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
            scheme, rest = "", url
        end = _AUTHORITY_END.search(rest) if sep else None
        netloc, tail = (rest[:end.start()], rest[end.start():]) if end else (
            (rest, "") if sep else ("", rest))
        tail, _, fragment = tail.partition("#")
        path, _, query = tail.partition("?")
        return SplitResult(scheme.lower(), netloc, path, query, fragment)


def scheme(tx: Transmission) -> str:
    return url_parts(tx.url).scheme.lower()


def cleartext(tx: Transmission) -> bool:
    """HTTP, plain TCP/UDP, MQTT, DNS, or a WebSocket opened with ``ws://``."""
    return tx.cleartext or scheme(tx) in CLEARTEXT_SCHEMES


def cleartext_pi(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """Personal data over a transport anyone on the path can read."""
    return hit(sent(obs)) if cleartext(obs.transmission) else None


@memoised(KEYS)
def _password_key(key: str) -> bool:
    key = re.sub(r"\[\d+\]$", "", key).strip()
    flat = re.sub(r"[\W_]+", "", key).lower()
    return key.lower() in PASSWORD_EXACT or flat.endswith(PASSWORD_KEYS) or "密码" in key


def credentials_exposed(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """A seeded password, or any value under a password key, sent in cleartext or in a URL."""
    tx = obs.transmission
    if tx.direction != "up":
        return None
    in_clear = cleartext(tx)
    if any((d.category == PASSWORD or _password_key(d.field.rsplit(".", 1)[-1]))
           and (in_clear or d.location in URL_LOCATIONS) for d in obs.detections):
        return frozenset({PASSWORD})
    query = url_parts(tx.url).query
    if any(value and _password_key(key) for key, value in parse_qsl(query)):
        return frozenset({PASSWORD})
    return None


def weak_tls(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """The device's ClientHello offers nothing newer than TLS 1.1, or a NULL, EXPORT, RC4 or
    3DES suite."""
    tx = obs.transmission
    if tx.direction != "up":
        return None
    ranks = [r for v in tx.tls_versions
             if (r := TLS_ORDER.get(re.sub(r"[\s.]", "", v).lower())) is not None]
    old = bool(ranks) and max(ranks) < WEAKEST_ACCEPTABLE
    weak_suite = any(WEAK_SUITE.search(name) for name in tx.tls_ciphers)
    return CONNECTION if old or weak_suite else None


def no_cert_validation(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """The profile says the device does not trust the lab CA, yet its TLS was intercepted and
    read: it accepts any certificate."""
    tx = obs.transmission
    if ctx.profile.device.ca_trusted or tx.direction != "up":
        return None
    read_tls = tx.inspected and (tx.transport == "https"
                                 or scheme(tx) == "wss")
    return CONNECTION if tx.decrypted or read_tls else None


# The TLS probe's cases (``auditor/live/probe.py``), in the order it tries them on a host.
UNTRUSTED_CA, WRONG_HOST, EXPIRED, TLS10 = "untrusted-ca", "wrong-host", "expired", "tls1.0"
PROBE_CASES = (UNTRUSTED_CA, WRONG_HOST, EXPIRED, TLS10)


def probe_accepted(obs: Observation, case: str) -> frozenset[str] | None:
    """The device completed a handshake under the probe's ``case`` and this went over it:
    the categories it carried are what an attacker holding that certificate would read
    (none: the handshake alone, a hit about the connection). A case the device refused is
    recorded uninspected, and is its evidence of validating."""
    tx = obs.transmission
    if tx.probe != case or not (tx.inspected or tx.decrypted):
        return None
    return sent(obs)


def tls_cert_not_validated(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """A certificate from a CA the device has no reason to trust was accepted."""
    return probe_accepted(obs, UNTRUSTED_CA)


def tls_hostname_not_checked(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """The lab CA's certificate for another hostname was accepted: anyone with a valid
    certificate for a name of their own can read the traffic."""
    return probe_accepted(obs, WRONG_HOST)


def tls_expired_cert_accepted(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """A certificate past its not-after date was accepted."""
    return probe_accepted(obs, EXPIRED)


def tls_legacy_accepted(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """A server that offered only TLS 1.0 got a completed handshake."""
    return probe_accepted(obs, TLS10)


def is_update_fetch(obs: Observation) -> bool:
    """Tagged ``firmware`` by the extractor, or a GET whose path names an update image."""
    if FIRMWARE_TAG in obs.tags:
        return True
    tx = obs.transmission
    if tx.direction != "up" or tx.method.upper() != "GET":
        return False
    path = url_parts(tx.url).path.lower() or tx.path.split("?", 1)[0].lower()
    segments = [s for s in path.split("/") if s]
    return path.endswith(UPDATE_SUFFIXES) or any(s in UPDATE_SEGMENTS for s in segments)


def insecure_update(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """A firmware or app update fetched over plain HTTP: anyone on the path can swap it."""
    tx = obs.transmission
    over_http = tx.transport == "http" or scheme(tx) == "http"
    return CONNECTION if over_http and is_update_fetch(obs) else None


def covert_monitor(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """The server tells the watch to call a number back silently (``[3G*...*MONITOR,...]``)."""
    if obs.transmission.direction != "down":
        return None
    commands = {t.split(":", 1)[1].upper() for t in obs.tags if t.startswith("command:")}
    return CONNECTION if commands & LISTEN_COMMANDS else None


def uninspected_traffic(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """A message the auditor could not read (pinned TLS, QUIC) or whose payload a decoding
    limit stopped: listed so the report never claims more than it saw. A TLS probe case
    the device refused is not such traffic: the device refused the auditor's bad
    certificate, and the connection it then made is read."""
    tx = obs.transmission
    refused_probe = bool(tx.probe) and not tx.inspected
    return CONNECTION if (not tx.inspected and not refused_probe) or obs.opaque else None
