"""Live consent marks written as a URL on the magic host ``kidaudit.mark``.

One spelling serves every way a mark arrives: the magic host a tester opens from any
browser behind the proxy, ``kidaudit mark``, and the mitmproxy command ``kidaudit.mark``.
The addon also writes each mark into ``flows.mitm`` as a request to this URL, so the raw
evidence alone rebuilds the session's consent timeline. A saved capture of any kind (a
``.mitm``, a HAR from mitmproxy's ``hardump`` or a browser, a pcap of plain HTTP) holds the
magic-host requests themselves: ``mark_of`` reads them back as the same events, so a mark
is never mistaken for data sent to a third party named ``kidaudit.mark``.

    http://kidaudit.mark/grant?categories=all-disclosed&separate=location.precise
    http://kidaudit.mark/withdraw?categories=location.precise&recipients=amap.com
    http://kidaudit.mark/phase?name=idle
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from auditor.categories import is_category_spec
from auditor.model import ConsentEvent, Transmission

MARK_HOST = "kidaudit.mark"
ACTIONS = ("grant", "refuse", "withdraw", "phase")


def _split(values: list[str]) -> tuple[str, ...]:
    return tuple(p.strip() for v in values for p in v.split(",") if p.strip())


def parse_mark(path: str, ts: float, source: str = "mark") -> ConsentEvent:
    """``/grant?categories=a,b`` -> ConsentEvent; ValueError with a readable reason."""
    parts = urlsplit(path)
    action = parts.path.strip("/")
    if action not in ACTIONS:
        raise ValueError(f"unknown mark action {action!r}: use one of {', '.join(ACTIONS)}")
    query = parse_qs(parts.query)
    categories = _split(query.get("categories", []))
    separate = _split(query.get("separate", []))
    name = ",".join(query.get("name", []))
    if action == "phase":
        if not name:
            raise ValueError("a phase mark needs name=..., e.g. /phase?name=idle")
    elif not categories:
        raise ValueError(f"a {action} mark needs categories=..., e.g. categories=all-disclosed")
    bad = [c for c in (*categories, *separate) if not is_category_spec(c)]
    if bad:
        raise ValueError(f"unknown category {bad[0]!r}")
    return ConsentEvent(ts=ts, action=action, categories=categories,
                        recipients=_split(query.get("recipients", [])), separate=separate,
                        name=name, source=source)


def is_mark_host(host: str) -> bool:
    """The magic host, spelt as the live addon's ``is_mark`` takes it, so a saved capture
    calls a mark exactly what the live run called one."""
    return host == MARK_HOST


def mark_of(tx: Transmission, source: str = "mark") -> ConsentEvent | None:
    """A saved request to the magic host as the event the live addon recorded for it, at
    the request's time; None for any other transmission. A malformed mark raises the
    ValueError the live addon answered with 400, so the caller counts it as an error,
    never as data that left the device."""
    if not tx.method or tx.transport not in ("http", "https") or not is_mark_host(tx.host):
        return None
    return parse_mark(tx.path, tx.ts, source)


def mark_path(ev: ConsentEvent) -> str:
    """The inverse of ``parse_mark``: the path a mark is written as."""
    query = {"categories": ",".join(ev.categories), "recipients": ",".join(ev.recipients),
             "separate": ",".join(ev.separate), "name": ev.name}
    return f"/{ev.action}?" + urlencode({k: v for k, v in query.items() if v})


def parse_words(action: str, words: list[str], ts: float, source: str) -> ConsentEvent:
    """Command-line form: ``grant all-disclosed --separate ...`` is written by the CLI as
    ``grant categories=all-disclosed separate=location.precise``; bare words are categories
    (or, for ``phase``, the phase name)."""
    query: dict[str, list[str]] = {}
    for w in words:
        key, eq, value = w.partition("=")
        if not eq:
            key, value = ("name" if action == "phase" else "categories"), w
        query.setdefault(key, []).append(value)
    return parse_mark(f"/{action}?" + urlencode(query, doseq=True), ts, source)
