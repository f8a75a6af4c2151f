"""The HTML report: one self-contained page a lab hands to a manufacturer or a regulator.

``build_view`` turns the findings document into plain dicts and lists; the template only
prints them (STYLE.md point 8), so a missing optional key is handled here, once, and the
template runs under ``StrictUndefined``. Every value from the document reaches the page
through Jinja's autoescaping: captured URLs, hosts and field values are attacker-controlled.
The page reads no clock, so the same document always renders the same bytes (invariant 5).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from auditor import RULESET_VERSION, __version__

SCHEMA = "kidaudit.findings/1"
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
EVIDENCE_CAP = 20  # transmissions listed per finding; the rest are counted, not shown
DASH = "—"
ARROW = " → "

# Fixed labels of the page, per language. Keys avoid dict method names (items, values, ...)
# because the template reads them as ``t.key``.
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "html_lang": "en",
        "list_sep": ", ",
        "report_title": "Network-traffic audit report",
        "contents": "Contents",
        "summary": "Summary",
        "verdict": "Verdict",
        "findings": "Findings",
        "flows": "Data flows",
        "timeline": "Consent timeline",
        "coverage": "Coverage",
        "rules": "Appendix: rules that fired",
        "device": "Device",
        "firmware": "Firmware",
        "device_kind": "Kind",
        "session_id": "Session",
        "session_window": "Session window (UTC)",
        "tool_version": "Tool version",
        "ruleset": "Ruleset",
        "schema": "Schema",
        "inputs": "Input files",
        "hashes": "Evidence hashes (SHA-256)",
        "hash_flows": "Capture (flows)",
        "hash_profile": "Device profile",
        "hash_consent": "Consent plan",
        "masking_note": "Personal values are printed as they stand in findings.json: masked "
                        "unless the lab chose to reveal them.",
        "masked_note": "Personal values are masked.",
        "revealed_note": "Personal values are shown unmasked (--reveal): this copy is for the "
                         "lab's internal use only.",
        "overall": "Overall",
        "verdict_fail": "Rules fired: {rules}. Findings: {findings}. Inspected traffic only.",
        "verdict_info": "No violations. Informational findings: {findings}.",
        "no_findings": "No findings. No rule fired on the traffic the auditor inspected.",
        "verdict_clear": "No rule fired on the traffic the auditor inspected.",
        "rules_not_listed": "Rules not listed here did not fire on the inspected traffic; "
                            "see Coverage for what could not be inspected.",
        "result": "Result",
        "rule": "Rule",
        "severity": "Severity",
        "title_col": "Title",
        "findings_col": "Findings",
        "messages": "Messages",
        "categories": "Data categories",
        "recipient": "Recipient",
        "count": "Count",
        "first_seen": "First seen",
        "last_seen": "Last seen",
        "consent": "Consent state",
        "references": "References",
        "unverified": "unverified",
        "evidence": "Evidence",
        "time_utc": "Time (UTC)",
        "request": "Request",
        "field": "Field",
        "encoding": "Encoding chain",
        "value": "Value",
        "detection": "Detection",
        "as_sent": "as sent",
        "and_more": "and {n} more transmissions not listed",
        "no_evidence": "No transmission evidence recorded for this finding.",
        "server_to_device": "server → device",
        "domain": "Recipient domain",
        "organization": "Organisation",
        "party": "Party",
        "country": "Country",
        "flows_note": "Each cell counts the messages sent by the device to that recipient that "
                      "carried the category.",
        "no_flows": "No transmissions recorded.",
        "time": "Time",
        "event": "Event",
        "recipients": "Recipients",
        "separate": "Separate consent",
        "source": "Source",
        "all_recipients": "all",
        "no_events": "No consent events or phases were recorded for this session.",
        "legend_grant": "grant",
        "legend_refuse": "refuse",
        "legend_withdraw": "withdraw",
        "legend_phase": "phase",
        "legend_pi": "message carrying personal data",
        "connections": "Connections",
        "inspected": "Inspected",
        "uninspected": "Not inspected",
        "host": "Host",
        "reason": "Reason",
        "opaque": "Opaque payloads",
        "analysis_errors": "Analysis errors",
        "transmission": "Transmission",
        "stage": "Stage",
        "error_message": "Message",
        "coverage_note": "This report covers only the traffic the auditor could read. "
                         "Connections it could not inspect and payloads it could not decode "
                         "may carry personal data no rule could see.",
        "none": "None.",
        "footer": "Generated by kidaudit {version}, ruleset {ruleset}. Reproducible from the "
                  "evidence files whose hashes are listed in the summary.",
    },
    "zh": {
        "html_lang": "zh-CN",
        "list_sep": "、",
        "report_title": "网络流量审计报告",
        "contents": "目录",
        "summary": "概要",
        "verdict": "结论",
        "findings": "发现项",
        "flows": "数据流向",
        "timeline": "同意时间线",
        "coverage": "检测覆盖范围",
        "rules": "附录：触发的规则",
        "device": "设备",
        "firmware": "固件版本",
        "device_kind": "类型",
        "session_id": "会话",
        "session_window": "会话时间（UTC）",
        "tool_version": "工具版本",
        "ruleset": "规则集",
        "schema": "数据格式",
        "inputs": "输入文件",
        "hashes": "证据哈希（SHA-256）",
        "hash_flows": "抓包文件（flows）",
        "hash_profile": "设备配置文件",
        "hash_consent": "同意计划",
        "masking_note": "个人信息取值按 findings.json 原样显示："
                        "除非实验室选择显示原值，否则均已脱敏。",
        "masked_note": "个人信息取值均已脱敏。",
        "revealed_note": "个人信息以原值显示（--reveal）：本副本仅供实验室内部使用。",
        "overall": "总体结论",
        "verdict_fail": "在已检测的流量中，{rules} 条规则共产生 {findings} 个发现项。",
        "verdict_info": "未发现违规；共 {findings} 个提示性发现项。",
        "no_findings": "无发现项：在已检测的流量中未触发任何规则。",
        "verdict_clear": "在已检测的流量中未触发任何规则。",
        "rules_not_listed": "未列出的规则在已检测的流量中未被触发；"
                            "无法检测的部分见“检测覆盖范围”。",
        "result": "结果",
        "rule": "规则",
        "severity": "严重程度",
        "title_col": "标题",
        "findings_col": "发现项数",
        "messages": "报文数",
        "categories": "数据类别",
        "recipient": "接收方",
        "count": "次数",
        "first_seen": "首次出现",
        "last_seen": "最后出现",
        "consent": "同意状态",
        "references": "依据条款",
        "unverified": "未核实",
        "evidence": "证据",
        "time_utc": "时间（UTC）",
        "request": "请求",
        "field": "字段",
        "encoding": "编码链",
        "value": "取值",
        "detection": "检测方式",
        "as_sent": "原样",
        "and_more": "另有 {n} 条报文未列出",
        "no_evidence": "该发现项没有记录报文证据。",
        "server_to_device": "服务器 → 设备",
        "domain": "接收方域名",
        "organization": "组织",
        "party": "归属",
        "country": "国家/地区",
        "flows_note": "每格为设备发往该接收方、且包含该类别数据的报文数。",
        "no_flows": "没有记录到报文。",
        "time": "时间",
        "event": "事件",
        "recipients": "接收方",
        "separate": "单独同意",
        "source": "来源",
        "all_recipients": "全部",
        "no_events": "本会话没有记录同意事件或阶段。",
        "legend_grant": "同意",
        "legend_refuse": "拒绝",
        "legend_withdraw": "撤回",
        "legend_phase": "阶段",
        "legend_pi": "含个人信息的报文",
        "connections": "连接数",
        "inspected": "已解析",
        "uninspected": "未解析",
        "host": "主机",
        "reason": "原因",
        "opaque": "无法解码的载荷",
        "analysis_errors": "分析错误",
        "transmission": "报文",
        "stage": "环节",
        "error_message": "信息",
        "coverage_note": "本报告仅涵盖审计工具能够读取的流量。无法解析的连接和无法解码的载荷中"
                         "可能含有任何规则都无法发现的个人信息。",
        "none": "无。",
        "footer": "由 kidaudit {version} 生成，规则集 {ruleset}。"
                  "可由概要中列出哈希的证据文件复现。",
    },
}

# Words of the document's closed vocabularies, per language; unknown words print as they are.
TERMS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "severity": {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low",
                     "info": "Info"},
        "result": {"fail": "FAIL", "note": "NOTE", "clear": "NO FINDINGS"},
        "consent": {"none": "none", "granted": "granted", "refused": "refused",
                    "withdrawn": "withdrawn"},
        "action": {"grant": "grant", "refuse": "refuse", "withdraw": "withdraw",
                   "phase": "phase"},
        "party": {"first": "first party", "third": "third party", "unknown": "unknown"},
        "source": {"plan": "consent plan", "mark": "live mark", "signal": "traffic signal",
                   "command": "proxy command"},
        "method": {"known": "known value", "pattern": "pattern", "key": "key name"},
    },
    "zh": {
        "severity": {"critical": "严重", "high": "高", "medium": "中", "low": "低", "info": "提示"},
        "result": {"fail": "不通过", "note": "提示", "clear": "无发现项"},
        "consent": {"none": "无", "granted": "已同意", "refused": "已拒绝", "withdrawn": "已撤回"},
        "action": {"grant": "同意", "refuse": "拒绝", "withdraw": "撤回", "phase": "阶段"},
        "party": {"first": "第一方", "third": "第三方", "unknown": "未知"},
        "source": {"plan": "同意计划", "mark": "现场标记", "signal": "流量信号",
                   "command": "代理命令"},
        "method": {"known": "已知值", "pattern": "模式匹配", "key": "键名"},
    },
}

# Timeline drawing (SVG user units).
_SVG_W, _SVG_LEFT, _SVG_RIGHT = 1000, 20, 980
_SVG_AXIS_Y, _SVG_LABEL_ROWS = 118, 4

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("auditor.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render(doc: dict, out: Path, *, lang: str = "en") -> None:
    """Write the report for ``doc`` (a ``kidaudit.findings/1`` document) to ``out``."""
    page = render_string(doc, lang=lang)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")


def render_string(doc: dict, *, lang: str = "en") -> str:
    return _ENV.get_template("report.html.j2").render(**build_view(doc, lang=lang))


def build_view(doc: dict, *, lang: str = "en") -> dict[str, Any]:
    """The template's whole input: plain strings, numbers, lists and dicts."""
    if lang not in LABELS:
        raise ValueError(f"unknown report language {lang!r}; choose one of {sorted(LABELS)}")
    schema = doc.get("schema")
    if schema not in (None, SCHEMA):
        raise ValueError(f"findings document has schema {schema!r}; this renderer reads {SCHEMA}")
    t, terms = LABELS[lang], TERMS[lang]
    session = doc.get("session") or {}
    transmissions = {tx.get("id"): tx for tx in doc.get("transmissions") or []}
    detections: dict[Any, list[dict]] = defaultdict(list)
    for det in doc.get("detections") or []:
        detections[det.get("transmission")].append(det)
    findings = sorted(doc.get("findings") or [], key=_finding_order)
    tx_severity = _worst_severity_per_transmission(findings)
    return {
        "t": t,
        "summary": _summary(doc, session, t),
        "verdict": _verdict(findings, t, terms),
        "findings": [_finding(i, f, transmissions, detections, t, terms)
                     for i, f in enumerate(findings, 1)],
        "flows": _flows(transmissions.values(), detections, terms),
        "timeline": _timeline(doc, session, transmissions.values(), detections, tx_severity,
                              terms),
        "coverage": _coverage(doc.get("coverage") or {}),
        "rules": _rules(findings, terms),
        "footer": t["footer"].format(version=_text(session.get("tool_version")) or __version__,
                                     ruleset=_text(session.get("ruleset")) or RULESET_VERSION),
    }


# -- helpers -------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A document value as display text; None and missing become ''."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _or_dash(value: Any) -> str:
    return _text(value) or DASH


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _fmt_ts(value: Any) -> str:
    """ISO 8601 → ``2026-11-28 10:02:11`` (UTC, milliseconds only when present)."""
    ts = _parse_ts(value)
    if ts is None:
        return _or_dash(value)
    text = ts.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{ts.microsecond // 1000:03d}" if ts.microsecond else text


def _severity(value: Any) -> str:
    """A CSS-safe severity key: one of SEVERITIES or 'unknown'."""
    return value if value in SEVERITIES else "unknown"


def _sev_rank(value: Any) -> int:
    return SEVERITIES.index(value) if value in SEVERITIES else len(SEVERITIES)


def _finding_order(f: dict) -> tuple:
    """Worst severity first, then the most frequent, then stable by rule and recipient."""
    count = _int(f.get("count"), len(_list(f.get("transmissions"))))
    return (_sev_rank(f.get("severity")), -count, _text(f.get("rule")), _text(f.get("recipient")))


def _term(terms: dict[str, dict[str, str]], kind: str, value: Any) -> str:
    return terms[kind].get(_text(value), _or_dash(value))


def _anchor(prefix: str, value: Any) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "_", _text(value))


def _references(refs: Any) -> list[dict[str, Any]]:
    """RULES.md marks unconfirmed clause numbers with ``*``: shown as unverified, not hidden."""
    out = []
    for ref in _list(refs):
        text = _text(ref).strip()
        if text:
            out.append({"text": text.rstrip("*").rstrip(), "unverified": text.endswith("*")})
    return out


def _device(session: dict) -> dict[str, str]:
    device = session.get("device")
    if isinstance(device, dict):
        return {"name": _or_dash(device.get("name")), "firmware": _or_dash(device.get("firmware")),
                "kind": _or_dash(device.get("kind"))}
    return {"name": _or_dash(device), "firmware": DASH, "kind": DASH}


def _worst_severity_per_transmission(findings: list[dict]) -> dict[Any, str]:
    worst: dict[Any, str] = {}
    for f in findings:
        sev = _severity(f.get("severity"))
        for tid in _list(f.get("transmissions")):
            if tid not in worst or _sev_rank(sev) < _sev_rank(worst[tid]):
                worst[tid] = sev
    return worst


# -- sections ------------------------------------------------------------------------------


def _summary(doc: dict, session: dict, t: dict[str, str]) -> dict[str, Any]:
    return {
        "device": _device(session),
        "session_id": _or_dash(session.get("id")),
        "started": _fmt_ts(session.get("started")),
        "ended": _fmt_ts(session.get("ended")),
        "tool_version": _or_dash(session.get("tool_version")),
        "ruleset": _or_dash(session.get("ruleset")),
        "schema": _or_dash(doc.get("schema")),
        "inputs": [_text(i) for i in _list(session.get("inputs")) if _text(i)],
        "revealed": session.get("masked") is False,
        "masking": {True: t["masked_note"], False: t["revealed_note"]}.get(
            session.get("masked"), t["masking_note"]),
        "hashes": [
            {"label": t["hash_flows"], "value": _or_dash(session.get("flows_sha256"))},
            {"label": t["hash_profile"], "value": _or_dash(session.get("profile_sha256"))},
            {"label": t["hash_consent"], "value": _or_dash(session.get("consent_sha256"))},
        ],
    }


def _verdict(findings: list[dict], t: dict[str, str], terms: dict) -> dict[str, Any]:
    by_sev = Counter(_severity(f.get("severity")) for f in findings)
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:  # already worst-first, so a rule's first finding sets its severity
        rule = _or_dash(f.get("rule"))
        row = rules.setdefault(rule, {
            "rule": rule, "anchor": _anchor("rule-", rule), "title": _or_dash(f.get("title")),
            "severity": _severity(f.get("severity")),
            "severity_label": _term(terms, "severity", f.get("severity")),
            "findings": 0, "messages": 0,
        })
        row["findings"] += 1
        row["messages"] += _int(f.get("count"), len(_list(f.get("transmissions"))))
    for row in rules.values():
        row["result_key"] = "note" if row["severity"] == "info" else "fail"
        row["result"] = terms["result"][row["result_key"]]
    failing = [r for r in rules.values() if r["result_key"] == "fail"]
    if failing:
        status, sentence = "fail", t["verdict_fail"].format(
            findings=sum(r["findings"] for r in failing), rules=len(failing))
    elif findings:
        status, sentence = "note", t["verdict_info"].format(findings=len(findings))
    else:
        status, sentence = "clear", t["verdict_clear"]
    return {
        "status": status,
        "status_label": terms["result"][status],
        "sentence": sentence,
        "counts": [{"severity": s, "label": terms["severity"][s], "n": by_sev.get(s, 0)}
                   for s in SEVERITIES],
        "rules": sorted(rules.values(), key=lambda r: (_sev_rank(r["severity"]), -r["findings"],
                                                       -r["messages"], r["rule"])),
    }


def _request_text(tx: dict) -> str:
    method, url = _text(tx.get("method")), _text(tx.get("url"))
    if url:
        return f"{method} {url}".strip()
    transport = _text(tx.get("transport")).upper()
    host, port = _text(tx.get("host")), _text(tx.get("port"))
    where = f"{host}:{port}" if host and port else host or _text(tx.get("ip"))
    return " ".join(p for p in (transport, method, where) if p) or DASH


def _finding(index: int, f: dict, transmissions: dict, detections: dict, t: dict[str, str],
             terms: dict) -> dict[str, Any]:
    tx_ids = _list(f.get("transmissions"))
    count = _int(f.get("count"), len(tx_ids))
    categories = [_text(c) for c in _list(f.get("categories"))]
    wanted = set(categories)
    shown = sorted(tx_ids, key=lambda tid: (_text((transmissions.get(tid) or {}).get("ts")),
                                            _text(tid)))[:EVIDENCE_CAP]
    rows = []
    for tid in shown:
        tx = transmissions.get(tid) or {}
        dets = [d for d in detections.get(tid, [])
                if not wanted or _text(d.get("category")) in wanted]
        rows.append({
            "id": _or_dash(tid),
            "time": _fmt_ts(tx.get("ts")),
            "request": _request_text(tx) if tx else DASH,
            "down": tx.get("direction") == "down",
            "details": [{
                "field": _or_dash(d.get("field")),
                "category": _or_dash(d.get("category")),
                "encoding": ARROW.join(_text(e) for e in _list(d.get("encoding"))) or t["as_sent"],
                "value": _or_dash(d.get("value")),
                "method": _term(terms, "method", d.get("method")),
                "confidence": (f"{d['confidence']:.2f}"
                               if isinstance(d.get("confidence"), (int, float)) else ""),
            } for d in dets],
        })
    more = max(count, len(tx_ids)) - len(shown)
    sev = _severity(f.get("severity"))
    return {
        "anchor": f"finding-{index}",
        "id": _or_dash(f.get("id")),
        "rule": _or_dash(f.get("rule")),
        "rule_anchor": _anchor("rule-", f.get("rule")),
        "severity": sev,
        "severity_label": _term(terms, "severity", f.get("severity")),
        "title": _or_dash(f.get("title")),
        "categories": categories,
        "recipient": _or_dash(f.get("recipient")),
        "count": count,
        "first_seen": _fmt_ts(f.get("first_seen")),
        "last_seen": _fmt_ts(f.get("last_seen")),
        "consent": [_term(terms, "consent", c) for c in _list(f.get("consent"))],
        "references": _references(f.get("references")),
        "evidence": rows,
        "more": t["and_more"].format(n=more) if more > 0 else "",
    }


def _flows(transmissions, detections: dict, terms: dict) -> dict[str, Any]:
    """Recipient domain × category, counting device-sent messages that carried the category."""
    rows: dict[str, dict[str, Any]] = {}
    seen_categories: set[str] = set()
    for tx in transmissions:
        if tx.get("direction", "up") != "up":
            continue
        rcp = tx.get("recipient") or {}
        domain = _text(rcp.get("domain")) or _text(tx.get("host")) or _text(tx.get("ip")) or DASH
        row = rows.setdefault(domain, {
            "domain": domain, "organization": _or_dash(rcp.get("organization")),
            "party_key": _text(rcp.get("party")) or "unknown",
            "party": _term(terms, "party", rcp.get("party") or "unknown"),
            "country": _or_dash(rcp.get("country")), "messages": 0, "cells": Counter(),
        })
        row["messages"] += 1
        cats = {_text(d.get("category")) for d in detections.get(tx.get("id"), [])}
        cats.discard("")
        row["cells"].update(cats)
        seen_categories |= cats
    columns = sorted(seen_categories)
    party_order = {"third": 0, "unknown": 1, "first": 2}
    ordered = sorted(rows.values(), key=lambda r: (party_order.get(r["party_key"], 1),
                                                   -sum(r["cells"].values()), r["domain"]))
    return {
        "columns": columns,
        "rows": [{**{k: v for k, v in r.items() if k != "cells"},
                  "party_class": r["party_key"] if r["party_key"] in party_order else "unknown",
                  "cells": [r["cells"].get(c, 0) for c in columns]} for r in ordered],
    }


def _timeline(doc: dict, session: dict, transmissions, detections: dict,
              tx_severity: dict, terms: dict) -> dict[str, Any]:
    events = []
    for ev in doc.get("events") or []:
        action = _text(ev.get("action"))
        events.append({
            "ts": _parse_ts(ev.get("ts")),
            "time": _fmt_ts(ev.get("ts")),
            "action_key": action if action in TERMS["en"]["action"] else "other",
            "action": _term(terms, "action", action),
            "name": _text(ev.get("name")),
            "categories": [_text(c) for c in _list(ev.get("categories"))],
            "recipients": [_text(r) for r in _list(ev.get("recipients"))],
            "separate": [_text(s) for s in _list(ev.get("separate"))],
            "source": _term(terms, "source", ev.get("source")) if ev.get("source") else DASH,
        })
    far = datetime.max.replace(tzinfo=UTC)
    events.sort(key=lambda e: (e["ts"] or far, e["time"]))
    pi_times = [(ts, tx_severity.get(tx.get("id"), "none")) for tx in transmissions
                if detections.get(tx.get("id")) and (ts := _parse_ts(tx.get("ts")))]
    return {"events": [{k: v for k, v in e.items() if k != "ts"} for e in events],
            "svg": _timeline_svg(session, events, pi_times)}


def _timeline_svg(session: dict, events: list[dict], pi_times: list) -> dict[str, Any] | None:
    """Positions for the inline SVG: phase bands, consent markers, ticks for personal data."""
    times = [e["ts"] for e in events if e["ts"]] + [ts for ts, _ in pi_times]
    start = _parse_ts(session.get("started")) or (min(times) if times else None)
    end = _parse_ts(session.get("ended")) or (max(times) if times else None)
    if start is None or end is None:
        return None
    start, end = min([start, *times]), max([end, *times])
    span = (end - start).total_seconds() or 1.0

    def x(ts: datetime) -> float:
        return round(_SVG_LEFT + (ts - start).total_seconds() / span * (_SVG_RIGHT - _SVG_LEFT), 1)

    phases, markers = [], []
    timed = [e for e in events if e["ts"]]
    phase_events = [e for e in timed if e["action_key"] == "phase"]
    for i, e in enumerate(phase_events):
        until = phase_events[i + 1]["ts"] if i + 1 < len(phase_events) else end
        phases.append({"x": x(e["ts"]), "w": max(round(x(until) - x(e["ts"]), 1), 1.0),
                       "name": e["name"] or e["action"], "shade": i % 2})
    for i, e in enumerate(e for e in timed if e["action_key"] != "phase"):
        label = " ".join(p for p in (e["action"], ", ".join(e["categories"])) if p)
        markers.append({"x": x(e["ts"]), "kind": e["action_key"],
                        "label": label if len(label) <= 48 else label[:47] + "…",
                        "y": 20 + (i % _SVG_LABEL_ROWS) * 16,
                        "anchor": "end" if x(e["ts"]) > _SVG_W * 0.7 else "start"})
    ticks = [{"x": x(ts), "severity": sev} for ts, sev in sorted(pi_times, key=lambda p: p[0])]
    grid = [{"x": x(at), "label": at.strftime("%H:%M:%S" if span < 86400 else "%m-%d %H:%M")}
            for at in (start + (end - start) * k / 4 for k in (1, 2, 3))]
    return {
        "width": _SVG_W, "height": _SVG_AXIS_Y + 38, "axis_y": _SVG_AXIS_Y,
        "left": _SVG_LEFT, "right": _SVG_RIGHT,
        "start": _fmt_ts(start.isoformat()), "end": _fmt_ts(end.isoformat()),
        "phases": phases, "markers": markers, "ticks": ticks, "grid": grid,
    }


def _coverage(cov: dict) -> dict[str, Any]:
    errors = []
    for err in _list(cov.get("errors")):
        err = err if isinstance(err, dict) else {"message": err}
        errors.append({"transmission": _or_dash(err.get("transmission")),
                       "stage": _or_dash(err.get("stage")),
                       "message": _or_dash(err.get("message"))})
    uninspected = []
    for u in _list(cov.get("uninspected")):
        u = u if isinstance(u, dict) else {"host": u}
        uninspected.append({"host": _or_dash(u.get("host")), "reason": _or_dash(u.get("reason"))})
    return {
        "connections": _or_dash(cov.get("connections")),
        "inspected": _or_dash(cov.get("inspected")),
        "uninspected_n": len(uninspected),
        "uninspected": uninspected,
        "opaque": _or_dash(cov.get("opaque_payloads")),
        "analysis_errors": _or_dash(cov.get("analysis_errors", len(errors) if errors else None)),
        "errors": errors,
    }


def _rules(findings: list[dict], terms: dict) -> list[dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:
        rule = _or_dash(f.get("rule"))
        row = rules.setdefault(rule, {
            "rule": rule, "anchor": _anchor("rule-", rule), "title": _or_dash(f.get("title")),
            "severity": _severity(f.get("severity")),
            "severity_label": _term(terms, "severity", f.get("severity")),
            "references": [],
        })
        for ref in _references(f.get("references")):
            if ref not in row["references"]:
                row["references"].append(ref)
    return sorted(rules.values(), key=lambda r: (_sev_rank(r["severity"]), r["rule"]))


__all__ = ["EVIDENCE_CAP", "LABELS", "TERMS", "build_view", "render", "render_string"]
