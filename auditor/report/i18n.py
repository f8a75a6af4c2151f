"""Every word the reports print, per language: page labels, the closed vocabularies of the
findings document, and a title and a one-line explanation for every rule id in RULES.md.

Tables, not branches (STYLE.md point 5): a language is a complete set of keys, checked by
``tests/test_report_html.py``. An unknown rule id falls back to the finding's own title.
"""

from __future__ import annotations

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
        "timeline": "Timeline",
        "coverage": "Coverage",
        "rules": "Appendix: rules that fired",
        "device": "Device",
        "firmware": "Firmware",
        "device_kind": "Kind",
        "session_id": "Session",
        "session_window": "Session window (UTC)",
        "resumed": "Capture resumed (UTC)",
        "resumed_note": "The capture was interrupted and continued in the same folder with the "
                        "same profile and plan (capture --resume): traffic during the gap was "
                        "not seen.",
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
        "verdict_clean": "No violation in the {inspected} connections read (of {connections}).",
        "verdict_empty": "The capture holds no traffic: nothing was judged.",
        "verdict_nothing_inspected": "None of the {connections} connections could be read: "
                                     "nothing was judged.",
        "verdict_mostly_uninspected": "{uninspected} of {connections} connections could not "
                                      "be read: silence on the rest proves little.",
        "not_exercised_list": "Not exercised (the session never gave these rules something "
                              "to judge):",
        "not_covered": "Plan steps the session did not cover:",
        "why": "Why",
        "clause_legend": "Abbreviations in the references",
        "capture_modes": "Capture modes",
        "operator": "Operator",
        "clock_sync": "Host clock synchronised",
        "versions": "Versions",
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
        "addresses": "Addresses",
        "category_extent": "{n} transmissions, {first} to {last}",
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
        "and_more": "and {n} more transmissions not listed; findings.json and detections.csv "
                    "list every one",
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
        "clock_note": "Clock:",
        "clock_default": "Timestamps are the auditor host's UTC clock as it stood during the "
                         "capture; the lab must record that host's NTP state with this report.",
        "country_source": "Country source",
        "country_unknown_source": "not recorded",
        "explanation": "What it means",
        "sdk": "SDK",
        "transports": "Transport",
        "encodings_seen": "Encodings seen",
        "flow_details": "Each recipient and category",
        "timeline_svg": "Transmissions over time",
        "lanes_capped": "{n} more categories not drawn; all are listed in Data flows.",
        "legend_finding": "message in a finding (colour: worst severity)",
        "legend_plain": "message with personal data, no finding",
        "legend_state": "consent state under which the category was judged:",
        "opaque_list": "Opaque payloads",
        "opaque_fields": "Undecoded fields and why",
        "more_rows": "and {n} more not listed",
        "more_listed": "and {n} more not listed; findings.json lists every one",
        "rules_applied_note": "Rules without a finding passed on the inspected traffic.",
        "none": "None.",
        "conformance": "Conformance",
        "conf_intro": "Each test item of the standard, judged on this session: fail (with the "
                      "findings), pass (exercised: every step it needs was performed and one "
                      "of its rules had something to judge, nothing found), not exercised (the "
                      "session lacked a step it needs, named), not testable by traffic (needs "
                      "document review or the maker's statement). A finding fails an item "
                      "even in a short session.",
        "conf_none": "No standard was chosen for this session (give --standard ID; kidaudit "
                     "standards lists them).",
        "conf_number_not_confirmed": "The number of this standard could not be confirmed; it "
                                     "is listed without test items.",
        "conf_clause": "Clause",
        "conf_item": "Test item",
        "conf_status": "Status",
        "conf_evidence": "Evidence",
        "conf_fail": "FAIL",
        "conf_pass": "PASS",
        "conf_not_exercised": "NOT EXERCISED",
        "conf_not_testable": "NOT TESTABLE BY TRAFFIC",
        "conf_counts": "{fail} fail, {passed} pass, {not_exercised} not exercised, "
                       "{not_testable} not testable by traffic",
        "conf_missing": "Missing steps:",
        "conf_also_missing": "Steps not yet performed:",
        "conf_exercised": "Exercised, nothing found:",
        "conf_unverified": "* The clause's number or wording was not verified against the "
                           "standard's own text.",
        "steps": "Session steps",
        "steps_intro": "The steps of the test procedure (kidaudit procedure) and whether this "
                       "session performed each, long enough.",
        "step": "Step",
        "step_result": "Result",
        "step_performed": "performed",
        "step_missed": "missed",
        "step_at": "From (UTC)",
        "step_lasted": "Lasted",
        "step_why": "Why missed",
        "step_minutes": "{m} min",
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
        "timeline": "时间线",
        "coverage": "检测覆盖范围",
        "rules": "附录：触发的规则",
        "device": "设备",
        "firmware": "固件版本",
        "device_kind": "类型",
        "session_id": "会话",
        "session_window": "会话时间（UTC）",
        "resumed": "抓包续接时间（UTC）",
        "resumed_note": "抓包曾中断，并以相同的设备配置文件和同意计划在同一文件夹中继续"
                        "（capture --resume）：中断期间的流量未被观察到。",
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
        "verdict_clean": "在已读取的 {inspected} 个连接（共 {connections} 个）中未发现违规。",
        "verdict_empty": "捕获中没有任何流量：未作任何判定。",
        "verdict_nothing_inspected": "{connections} 个连接均无法读取：未作任何判定。",
        "verdict_mostly_uninspected": "{connections} 个连接中有 {uninspected} 个无法读取："
                                      "其余部分未发现问题并不足以说明合规。",
        "not_exercised_list": "未被检验（本次会话没有出现这些规则的前提条件）：",
        "not_covered": "本次会话未覆盖的计划步骤：",
        "why": "原因",
        "clause_legend": "依据中的缩写",
        "capture_modes": "抓包方式",
        "operator": "操作人员",
        "clock_sync": "主机时钟同步状态",
        "versions": "软件版本",
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
        "addresses": "地址",
        "category_extent": "{n} 条报文，{first} 至 {last}",
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
        "and_more": "另有 {n} 条报文未列出；findings.json 和 detections.csv 列出全部",
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
        "clock_note": "时钟：",
        "clock_default": "时间戳取自抓包期间审计主机的 UTC 时钟；"
                         "实验室须随本报告记录该主机的 NTP 同步状态。",
        "country_source": "国家/地区来源",
        "country_unknown_source": "未记录",
        "explanation": "说明",
        "sdk": "SDK",
        "transports": "传输方式",
        "encodings_seen": "出现的编码",
        "flow_details": "按接收方和类别",
        "timeline_svg": "报文时间分布",
        "lanes_capped": "另有 {n} 个类别未绘出；全部类别见“数据流向”。",
        "legend_finding": "属于发现项的报文（颜色：最高严重程度）",
        "legend_plain": "含个人信息但无发现项的报文",
        "legend_state": "判定该类别时的同意状态：",
        "opaque_list": "无法解码的载荷",
        "opaque_fields": "未解码字段及原因",
        "more_rows": "另有 {n} 条未列出",
        "more_listed": "另有 {n} 条未列出；findings.json 列出全部",
        "rules_applied_note": "未产生发现项的规则在已检测的流量上通过。",
        "none": "无。",
        "conformance": "符合性",
        "conf_intro": "按本次会话逐项判定标准的测试项：不通过（附发现项）；"
                      "通过（已检验：所需步骤均已执行，且至少一条相关规则有可判定的内容，"
                      "未发现问题）；未检验（会话缺少所需步骤，已列出）；"
                      "不可通过流量检验（需审阅文档或厂商声明）。"
                      "即使会话较短，发现项也使测试项不通过。",
        "conf_none": "本次会话未选择任何标准"
                     "（使用 --standard ID；kidaudit standards 列出全部标准）。",
        "conf_number_not_confirmed": "该标准的编号未能确认；仅列出，不含测试项。",
        "conf_clause": "条款",
        "conf_item": "测试项",
        "conf_status": "状态",
        "conf_evidence": "证据",
        "conf_fail": "不通过",
        "conf_pass": "通过",
        "conf_not_exercised": "未检验",
        "conf_not_testable": "不可通过流量检验",
        "conf_counts": "不通过 {fail} 项，通过 {passed} 项，未检验 {not_exercised} 项，"
                       "不可通过流量检验 {not_testable} 项",
        "conf_missing": "缺少的步骤：",
        "conf_also_missing": "尚未执行的步骤：",
        "conf_exercised": "已检验，未发现问题：",
        "conf_unverified": "* 该条款的编号或措辞未与标准原文核对。",
        "steps": "会话步骤",
        "steps_intro": "测试规程（kidaudit procedure）的各个步骤，"
                       "以及本次会话是否已执行且时长足够。",
        "step": "步骤",
        "step_result": "结果",
        "step_performed": "已执行",
        "step_missed": "未执行",
        "step_at": "开始时间（UTC）",
        "step_lasted": "持续",
        "step_why": "未执行原因",
        "step_minutes": "{m} 分钟",
        "footer": "由 kidaudit {version} 生成，规则集 {ruleset}。"
                  "可由概要中列出哈希的证据文件复现。",
    },
}

# Words of the document's closed vocabularies, per language; unknown words print as they are.
TERMS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "severity": {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low",
                     "info": "Info"},
        "result": {"fail": "FAIL", "note": "NOTE", "clear": "NO FINDINGS", "pass": "PASS",
                   "inconclusive": "INCONCLUSIVE", "not exercised": "NOT EXERCISED"},
        "consent": {"none": "none", "granted": "granted",
                    "granted (separate)": "granted (separate)", "refused": "refused",
                    "withdrawn": "withdrawn"},
        "action": {"grant": "grant", "refuse": "refuse", "withdraw": "withdraw",
                   "phase": "phase"},
        "party": {"first": "first party", "third": "third party", "unknown": "unknown"},
        "source": {"plan": "consent plan", "mark": "live mark", "signal": "traffic signal",
                   "command": "proxy command"},
        "method": {"known": "known value", "pattern": "pattern", "key": "key name"},
        "clock": {"synchronized": "synchronised (the OS says so)",
                  "not synchronized": "not synchronised (the OS says so)",
                  "unknown": "unknown (the OS did not say)"},
    },
    "zh": {
        "severity": {"critical": "严重", "high": "高", "medium": "中", "low": "低", "info": "提示"},
        "result": {"fail": "不通过", "note": "提示", "clear": "无发现项", "pass": "通过",
                   "inconclusive": "无法判定", "not exercised": "未检验"},
        "consent": {"none": "无", "granted": "已同意", "granted (separate)": "已单独同意",
                    "refused": "已拒绝", "withdrawn": "已撤回"},
        "action": {"grant": "同意", "refuse": "拒绝", "withdraw": "撤回", "phase": "阶段"},
        "party": {"first": "第一方", "third": "第三方", "unknown": "未知"},
        "source": {"plan": "同意计划", "mark": "现场标记", "signal": "流量信号",
                   "command": "代理命令"},
        "method": {"known": "已知值", "pattern": "模式匹配", "key": "键名"},
        "clock": {"synchronized": "已同步（据操作系统）",
                  "not synchronized": "未同步（据操作系统）",
                  "unknown": "未知（操作系统未给出）"},
    },
}


# Why a rule was not exercised (``auditor.rules.exercise.PRECONDITIONS``' ``missing``), as
# the page says it in each language other than English; unknown texts print as written.
NOT_EXERCISED_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "no personal data was seen": "未发现个人信息",
        "no known SDK received personal data": "没有已知 SDK 收到个人信息",
        "no grant happened": "未发生同意",
        "no refusal happened": "未发生拒绝",
        "no withdrawal happened": "未发生撤回",
        "no sensitive category was seen": "未发现敏感个人信息类别",
        "no voice or photo was seen": "未发现语音或照片",
        "no personal data went to a third party": "没有个人信息发往第三方",
        "personal data reached one organisation only": "个人信息只发往一个组织",
        "no advertising or attribution host received personal data":
            "没有广告或归因主机收到个人信息",
        "no recipient's country was known": "没有接收方的国家或地区可知",
        "no idle phase happened": "未出现空闲阶段",
        "no personal data went over a cleartext transport": "没有个人信息经明文传输",
        "no TLS handshake was seen": "未发现 TLS 握手",
        "no TLS connection was read": "未读取任何 TLS 连接",
        "no update was fetched": "未发生更新下载",
        "no server command to the device was seen": "未发现服务器发给设备的指令",
        "no traffic was seen": "未发现任何流量",
    },
}


# The plan's steps a session did not cover (``auditor.rules.exercise.not_covered``'s lines:
# a pattern whose group is the step, an action word and maybe a quoted name), as each
# language other than English says them; a line no pattern matches prints as written.
NOT_COVERED_TEXT: dict[str, tuple[tuple[str, str], ...]] = {
    "zh": ((r"planned (.+) came after the last message", "计划中的“{step}”在最后一条报文之后"),
           (r"signalled (.+) never happened", "由流量信号触发的“{step}”始终未发生")),
}


# The abbreviation a reference starts with (RULES.md "Abbreviations") -> its full title:
# the instrument, its number and year, and what the number after it counts. The report's
# legend lists those its references use, so a reader needs no other document.
CLAUSE_TITLES: dict[str, dict[str, str]] = {
    "PIPL": {"en": "Personal Information Protection Law of the PRC (2021), article",
             "zh": "《中华人民共和国个人信息保护法》（2021），条"},
    "CPI": {"en": "Provisions on the Cyber Protection of Children's Personal Information "
                  "(CAC, 2019), article",
            "zh": "《儿童个人信息网络保护规定》（国家互联网信息办公室，2019），条"},
    "MNR": {"en": "Regulations on the Protection of Minors Online (State Council, 2024), "
                  "article",
            "zh": "《未成年人网络保护条例》（国务院，2024），条"},
    "IDM": {"en": "Methods for Identifying the Illegal Collection and Use of Personal "
                  "Information by Apps (2019), section.item (IDM 3.1 = section 3, item 1)",
            "zh": "《App违法违规收集使用个人信息行为认定方法》（2019），章.项（IDM 3.1 = 三.1）"},
    "35273": {"en": "GB/T 35273-2020 Information security technology — Personal information "
                    "security specification, clause",
              "zh": "GB/T 35273-2020《信息安全技术 个人信息安全规范》，条款"},
    "41391": {"en": "GB/T 41391-2022 Information security technology — Basic requirements "
                    "for collecting personal information in mobile internet applications, "
                    "clause",
              "zh": "GB/T 41391-2022《信息安全技术 移动互联网应用程序（App）收集个人信息基本要求》"
                    "，条款"},
    "ETSI": {"en": "ETSI EN 303 645 V2.1.1 (2020) Cyber security for consumer IoT, provision",
             "zh": "ETSI EN 303 645 V2.1.1（2020）《消费类物联网网络安全基线要求》，条款"},
    "18031": {"en": "EN 18031-2:2024 Common security requirements for radio equipment "
                    "(personal data protection), requirement id",
              "zh": "EN 18031-2:2024《无线电设备通用安全要求》（个人数据保护），要求编号"},
    "AADC": {"en": "UK ICO Age Appropriate Design Code (2020), standard",
             "zh": "英国信息专员办公室《适龄设计规范》（2020），标准"},
    "COPPA": {"en": "US Children's Online Privacy Protection Rule, 16 CFR 312 (2025 "
                    "amendments), section",
              "zh": "美国《儿童在线隐私保护规则》16 CFR 312（2025 年修订），条"},
    "GDPR": {"en": "Regulation (EU) 2016/679, General Data Protection Regulation, article",
             "zh": "欧盟《通用数据保护条例》（EU）2016/679，条"},
    "FTC": {"en": "US Federal Trade Commission enforcement case (year of the order)",
            "zh": "美国联邦贸易委员会执法案例（括号内为裁定年份）"},
    "BNetzA": {"en": "Bundesnetzagentur, Germany's Federal Network Agency",
               "zh": "德国联邦网络管理局（Bundesnetzagentur）"},
}


def clause_abbreviation(reference: str) -> str:
    """The abbreviation a reference is written with: its first word (``IDM 3.1`` → IDM)."""
    return reference.strip().split(" ", 1)[0].rstrip("*")


# Every rule id of RULES.md: (title, one-line explanation) per language. Ids are stable.
RULE_TEXT: dict[str, dict[str, tuple[str, str]]] = {
    "PRE_CONSENT_PI": {
        "en": ("Personal data sent before any guardian consent",
               "Personal data left the device before the guardian granted anything in the "
               "session. A category withdrawn or refused is reported by AFTER_WITHDRAWAL or "
               "AFTER_REFUSAL instead, and one an SDK host received by PRE_CONSENT_SDK; a "
               "category reported here is not also reported as without a separate grant."),
        "zh": ("监护人同意前发送个人信息",
               "本次会话中，监护人作出任何同意之前，设备已发出个人信息。已被撤回或拒绝的类别分别由"
               "「撤回同意后仍发送数据」「监护人拒绝后仍发送数据」报告，SDK 主机收到的类别由"
               "「同意前向第三方 SDK 发送数据」报告；此处报告的类别不再另报为未取得单独同意。"),
    },
    "PRE_CONSENT_SDK": {
        "en": ("Third-party SDK receives data before consent",
               "A third-party SDK host received an identifier or location before any grant. "
               "These categories are reported here instead of by PRE_CONSENT_PI or "
               "SENSITIVE_NO_SEPARATE_CONSENT; only a withdrawal or refusal of them outranks "
               "this rule."),
        "zh": ("同意前向第三方 SDK 发送数据",
               "监护人作出任何同意之前，第三方 SDK 主机已收到设备标识符或位置信息。这些类别只在此处"
               "报告，不再另报为「监护人同意前发送个人信息」或未取得单独同意；仅撤回或拒绝该类别的"
               "规则优先于本规则。"),
    },
    "SCOPE_EXCEEDED": {
        "en": ("Data sent beyond the granted scope",
               "After a grant, a category the guardian never granted was sent. Such a category "
               "is not also reported as without a separate grant: beyond the granted scope "
               "(IDM 3.3) is the more specific finding."),
        "zh": ("超出同意范围发送数据",
               "监护人作出同意后，设备发送了监护人从未同意的数据类别。此类类别不再另报为未取得单独"
               "同意：超出同意范围（认定方法 3.3）是更具体的结论。"),
    },
    "AFTER_REFUSAL": {
        "en": ("Data sent after the guardian refused",
               "A category was sent after the guardian refused it. Among the consent rules "
               "only AFTER_WITHDRAWAL outranks it: the category is not also reported as sent "
               "before consent, beyond scope or without a separate grant."),
        "zh": ("监护人拒绝后仍发送数据",
               "监护人拒绝某类数据后，设备仍发送了该类数据。同意类规则中仅「撤回同意后仍发送数据」"
               "优先于本规则：该类别不再另报为同意前发送、超出同意范围或未取得单独同意。"),
    },
    "AFTER_WITHDRAWAL": {
        "en": ("Data sent after consent was withdrawn",
               "A withdrawn category (or recipient) was still sent after the grace window. "
               "The most specific consent finding: the category is not also reported by "
               "another consent rule (after refusal, before consent, beyond scope, without a "
               "separate grant)."),
        "zh": ("撤回同意后仍发送数据",
               "监护人撤回同意且超过宽限期后，设备仍发送该类数据或仍向该接收方发送数据。这是同意类"
               "规则中最具体的结论：该类别不再另报为拒绝后发送、同意前发送、超出同意范围或未取得"
               "单独同意。"),
    },
    "SENSITIVE_NO_SEPARATE_CONSENT": {
        "en": ("Sensitive data sent without separate consent",
               "Precise location, voice, photo, contacts or a national id was sent without a "
               "separate grant for that category (PIPL 29). The least specific consent "
               "finding: a category sent after a withdrawal (PIPL 47(1)(3)) or a refusal "
               "(IDM 3.2), before any consent (PIPL 13; to an SDK host, IDM 2.1) or beyond the "
               "granted scope (IDM 3.3) is reported by that rule only."),
        "zh": ("敏感个人信息未取得单独同意",
               "精准位置、语音、照片、通讯录或身份证号在未取得该类别单独同意（个保法第29条）的"
               "情况下被发送。这是同意类规则中最不具体的结论：撤回同意后（个保法第47条第1款第3项）"
               "或拒绝后（认定方法 3.2）发送、任何同意之前发送（个保法第13条；向 SDK 主机发送的，"
               "认定方法 2.1）或超出同意范围（认定方法 3.3）的类别，只由相应规则报告。"),
    },
    "THIRD_PARTY_UNDISCLOSED": {
        "en": ("Personal data sent to an undisclosed third party",
               "Personal data went to a recipient that is not the first party and that the "
               "privacy notice does not disclose for that category."),
        "zh": ("向未告知的第三方提供个人信息",
               "个人信息被发送给非第一方、且隐私政策未就该类别告知的接收方。"),
    },
    "PERSISTENT_ID_TO_THIRD_PARTY": {
        "en": ("Non-resettable identifier sent to a third party",
               "A non-resettable identifier (IMEI, IMSI, ICCID, serial, MAC, phone number) "
               "reached a third party. A disclosed processor acting for the maker (PIPL 21), "
               "granted the category (separately where PIPL 29 asks), is not a third party "
               "here."),
        "zh": ("不可重置标识符发送给第三方",
               "IMEI、IMSI、ICCID、序列号、MAC 地址或手机号等不可重置的标识符被发送给第三方。"
               "经告知、代表制造商处理（个保法第21条）并已就该类别取得同意（需单独同意的已单独同意）"
               "的受托处理者不视为第三方。"),
    },
    "CROSS_SERVICE_LINKING": {
        "en": ("Same identifier sent to several organisations",
               "The same identifier, in any encoding, reached two or more different "
               "organisations, which lets them link the child across services. The maker's "
               "domains and addresses are one organisation, and a disclosed processor granted "
               "the identifier acts for the maker (PIPL 21)."),
        "zh": ("同一标识符发送给多个组织",
               "同一标识符（无论以何种编码）被发送给两个或以上不同的组织，可被用于跨服务关联儿童。"
               "制造商的域名和地址视为同一组织；经告知并已就该标识符取得同意的受托处理者代表制造商"
               "处理（个保法第21条）。"),
    },
    "LOCATION_TO_THIRD_PARTY": {
        "en": ("Location sent to a third party",
               "A location category (precise, coarse, cell tower or Wi-Fi) reached a third "
               "party. A disclosed processor acting for the maker (PIPL 21), granted the "
               "category (separately where PIPL 29 asks), is not a third party here."),
        "zh": ("位置信息发送给第三方",
               "精准位置、粗略位置、基站或 Wi-Fi 等位置类信息被发送给第三方。"
               "经告知、代表制造商处理（个保法第21条）并已就该类别取得同意（需单独同意的已单独同意）的受托处理者不视为第三方。"),
    },
    "DIRECT_IDS_TO_THIRD_PARTY": {
        "en": ("Child's direct identifiers sent to a third party",
               "The child's name, birthdate, school, address, phone, e-mail or national id "
               "reached a third party. A disclosed processor acting for the maker (PIPL 21), "
               "granted the category (separately where PIPL 29 asks), is not a third party "
               "here."),
        "zh": ("儿童身份信息发送给第三方",
               "儿童的姓名、出生日期、学校、住址、电话、电子邮箱或身份证号被发送给第三方。"
               "经告知、代表制造商处理（个保法第21条）并已就该类别取得同意（需单独同意的已单独同意）"
               "的受托处理者不视为第三方。"),
    },
    "AD_TRACKER_RECEIVES_CHILD_DATA": {
        "en": ("Advertising or attribution host receives child data",
               "An advertising or attribution host received an identifier or location, unless "
               "the plan discloses it as a processor acting for the maker (PIPL 21), granted "
               "the category (separately where PIPL 29 asks)."),
        "zh": ("广告或归因服务接收儿童数据",
               "广告或归因类主机收到了设备标识符或位置信息；隐私政策告知其为代表制造商处理的受托"
               "处理者（个保法第21条）且已就该类别取得同意（需单独同意的已单独同意）的除外。"),
    },
    "CROSS_BORDER": {
        "en": ("Personal data sent abroad",
               "Personal data reached an IP address located outside the profile's "
               "jurisdiction; a processor acting for the maker counts like any other "
               "recipient (PIPL 38)."),
        "zh": ("个人信息出境",
               "个人信息被发送到位于设备配置所定法域之外的 IP 地址；代表制造商处理的受托处理者"
               "同样计入（个保法第38条）。"),
    },
    "NON_RESETTABLE_ID": {
        "en": ("Hardware or SIM identifier sent",
               "A hardware or SIM identifier was sent at all, even to the first party."),
        "zh": ("发送硬件或 SIM 卡标识符",
               "设备发送了硬件或 SIM 卡标识符，即使接收方是第一方。"),
    },
    "EXCESS_FREQUENCY": {
        "en": ("Data collected more often than stated",
               "A category went to one recipient more often than the plan's stated interval "
               "(by default: location more than once a minute while idle)."),
        "zh": ("收集频率超出声明",
               "某类数据发往同一接收方的频率高于计划声明的间隔（默认：空闲阶段每分钟多于一次位置上报）。"),
    },
    "BACKGROUND_COLLECTION": {
        "en": ("Personal data sent while idle",
               "Personal data was sent during an idle phase, when nobody was using the "
               "device."),
        "zh": ("空闲时后台收集个人信息",
               "设备在无人使用的空闲阶段发送了个人信息。"),
    },
    "BULK_CONTACTS": {
        "en": ("Contacts uploaded in bulk",
               "One transmission carried two or more contacts."),
        "zh": ("批量上传通讯录",
               "单条报文中包含两个或以上联系人。"),
    },
    "MEDIA_UPLOAD": {
        "en": ("Voice or photo uploaded without consent",
               "Voice or photo left the device to a recipient without a grant for it."),
        "zh": ("未经同意上传语音或照片",
               "语音或照片在未取得相应同意的情况下被发送给接收方。"),
    },
    "CLEARTEXT_PI": {
        "en": ("Personal data sent in cleartext",
               "Personal data went over HTTP, plain TCP/UDP, plain MQTT or DNS, readable by "
               "anyone on the path."),
        "zh": ("明文传输个人信息",
               "个人信息经 HTTP、未加密的 TCP/UDP、MQTT 或 DNS 明文传输，"
               "传输路径上任何人均可读取。"),
    },
    "CREDENTIALS_EXPOSED": {
        "en": ("Credentials exposed",
               "A seeded password (or any password-keyed value) was sent in cleartext or in a "
               "URL."),
        "zh": ("账号凭据泄露",
               "预置的密码（或任何以 password 为键的值）以明文或在 URL 中发送。"),
    },
    "WEAK_TLS": {
        "en": ("Weak TLS offered",
               "The device's ClientHello offers at most TLS 1.1, or offers NULL, EXPORT, RC4 "
               "or 3DES cipher suites."),
        "zh": ("使用弱 TLS 配置",
               "设备的 ClientHello 最高仅支持 TLS 1.1，或提供 NULL、EXPORT、RC4、3DES 密码套件。"),
    },
    "NO_CERT_VALIDATION": {
        "en": ("Server certificates not validated",
               "The device does not trust the lab's CA, yet its TLS was intercepted and "
               "decrypted: it accepts any certificate."),
        "zh": ("未校验服务器证书",
               "设备并不信任实验室 CA，其 TLS 连接却被拦截并解密：设备接受任意证书。"),
    },
    "TLS_CERT_NOT_VALIDATED": {
        "en": ("Certificate from an untrusted CA accepted",
               "The TLS probe presented a certificate signed by a throwaway CA the device has "
               "no reason to trust, and the device completed the handshake: what it then sent "
               "is what any attacker on the path would read."),
        "zh": ("接受不受信任 CA 签发的证书",
               "TLS 探测使用设备不应信任的临时 CA 签发的证书，设备仍完成握手："
               "此后发送的数据即路径上任何攻击者可读取的内容。"),
    },
    "TLS_HOSTNAME_NOT_CHECKED": {
        "en": ("Certificate for another hostname accepted",
               "The TLS probe presented a certificate from the trusted lab CA but issued for "
               "another hostname, and the device completed the handshake: anyone holding a "
               "valid certificate for a name of their own can read its traffic."),
        "zh": ("未校验证书主机名",
               "TLS 探测使用受信任的实验室 CA 为其他主机名签发的证书，设备仍完成握手："
               "持有任何自有域名有效证书的人均可读取其流量。"),
    },
    "TLS_EXPIRED_CERT_ACCEPTED": {
        "en": ("Expired certificate accepted",
               "The TLS probe presented a certificate from the trusted lab CA for the right "
               "hostname but past its expiry date, and the device completed the handshake."),
        "zh": ("接受已过期证书",
               "TLS 探测使用受信任的实验室 CA 为正确主机名签发但已过期的证书，设备仍完成握手。"),
    },
    "TLS_LEGACY_ACCEPTED": {
        "en": ("TLS 1.0 accepted",
               "The TLS probe's server offered only TLS 1.0, and the device completed the "
               "handshake instead of refusing the obsolete version."),
        "zh": ("接受 TLS 1.0",
               "TLS 探测的服务端仅提供 TLS 1.0，设备未拒绝该过时版本而完成了握手。"),
    },
    "INSECURE_UPDATE": {
        "en": ("Update fetched over HTTP",
               "A firmware or app update was fetched over unencrypted HTTP."),
        "zh": ("通过 HTTP 获取更新",
               "固件或应用更新通过未加密的 HTTP 下载。"),
    },
    "COVERT_MONITOR": {
        "en": ("Remote listening command sent to the watch",
               "The server sent the watch a remote-listening command (such as MONITOR in the "
               "[3G*...] protocol)."),
        "zh": ("远程监听指令",
               "服务器向手表下发了远程监听指令（如 [3G*...] 协议中的 MONITOR 指令）。"),
    },
    "UNINSPECTED_TRAFFIC": {
        "en": ("Traffic the auditor could not read",
               "Connections the auditor could not read (pinned TLS, QUIC, opaque payloads), "
               "listed so the report never claims more than it saw."),
        "zh": ("无法解析的流量",
               "审计工具无法读取的连接（证书固定的 TLS、QUIC、无法解码的载荷），"
               "列出以免报告超出实际所见。"),
    },
}


def rule_text(rule_id: str, lang: str, fallback_title: str) -> tuple[str, str]:
    """(title, explanation) of a rule in ``lang``; an unknown id keeps the finding's title."""
    entry = RULE_TEXT.get(rule_id, {}).get(lang)
    return entry if entry else (fallback_title, "")

# The diff page (``kidaudit diff OLD NEW --out FILE``).
# The tool's own fixed English in the data a page shows (input names, uninspected reasons,
# the country database's description), in the page's language: the texts are written by
# kidaudit (``auditor.live.tls``, ``auditor.sources.pcap``, ``auditor.offline``,
# ``auditor.session``, ``auditor.data``), never by a device, so a table of them is complete.
# Longest first, so a phrase inside another is not replaced half-way.
PHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "zh": tuple(sorted((
        ("live capture", "实时抓包"),
        ("client rejected the interception certificate (pinned or CA not trusted)",
         "客户端拒绝了拦截证书（证书固定，或不信任实验室 CA）"),
        ("passed through uninspected: the client rejected interception before",
         "未检查即放行：该客户端此前拒绝过拦截"),
        ("QUIC: client rejected the interception certificate", "QUIC：客户端拒绝了拦截证书"),
        ("TLS: encrypted in the capture (SNI, versions and suites read)",
         "TLS：抓包中为加密内容（已读取 SNI、版本和密码套件）"),
        ("QUIC: encrypted in the capture (ClientHello read from its Initials)",
         "QUIC：抓包中为加密内容（已从 Initial 包读取 ClientHello）"),
        ("not analysed by this version", "本版本不分析"),
        ("not inspected", "未检查"),
        ("registry allocation data of", "地址分配注册数据，日期"),
        ("(wheel build date)", "（软件包构建日期）"),
        ("(version unknown)", "（版本未知）"),
        ("unknown date", "未知"),
    ), key=lambda pair: -len(pair[0]))),
}


def in_language(text: str, lang: str) -> str:
    """``text`` with the tool's own fixed phrases in ``lang`` (PHRASES); anything else, a
    device's host name say, is left as it is."""
    for english, translated in PHRASES.get(lang, ()):
        if english in text:
            text = text.replace(english, translated)
    return text


DIFF_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "html_lang": "en",
        "title": "Session comparison",
        "old": "Old session",
        "new": "New session",
        "device": "Device",
        "firmware": "Firmware",
        "session_id": "Session",
        "window": "Window (UTC)",
        "introduced": "Findings introduced",
        "fixed": "Findings fixed",
        "persisting": "Findings in both sessions",
        "recipients_new": "New recipients",
        "recipients_vanished": "Vanished recipients",
        "categories_new": "New categories per recipient",
        "categories_vanished": "Categories no longer sent",
        "rule": "Rule",
        "severity": "Severity",
        "title_col": "Title",
        "recipient": "Recipient",
        "categories": "Data categories",
        "count": "Count",
        "count_old": "Count (old)",
        "count_new": "Count (new)",
        "none": "None.",
        "no_change": "No change between the two sessions.",
        "note": "Findings are matched by rule and recipient organisation, so a finding whose "
                "categories changed is one change; recipients by registrable domain. Each "
                "session covers only the traffic it inspected.",
        "changes": "Findings whose categories changed",
        "categories_added": "Categories added",
        "categories_removed": "Categories removed",
        "removal_unsure": "not comparable: the new session's input cannot hold {transports}",
        "not_comparable": "Not comparable",
        "not_comparable_note": "Found in one session only, over a transport the other "
                               "session's input cannot hold (a HAR holds no TCP): neither "
                               "fixed nor new.",
        "only_in": "Only in",
        "caveats": "The sessions differ in what they could see",
        "caveat_inputs": "Input kind: old {old}, new {new}",
        "caveat_capture": "Capture modes: old {old}, new {new}",
        "caveat_uninspected": "Uninspected hosts: old {old}, new {new}",
        "caveat_errors": "Analysis errors: old {old}, new {new}",
        "caveat_transports": "Transports present: old {old}, new {new}",
        "value_live capture": "live capture",
        "value_mitmproxy flows": "mitmproxy flows",
        "value_none": "none",
        "footer": "Generated by kidaudit {version}.",
    },
    "zh": {
        "html_lang": "zh-CN",
        "title": "会话对比",
        "old": "旧会话",
        "new": "新会话",
        "device": "设备",
        "firmware": "固件版本",
        "session_id": "会话",
        "window": "时间（UTC）",
        "introduced": "新增的发现项",
        "fixed": "已修复的发现项",
        "persisting": "两次会话均有的发现项",
        "recipients_new": "新增接收方",
        "recipients_vanished": "消失的接收方",
        "categories_new": "各接收方新增的数据类别",
        "categories_vanished": "不再发送的数据类别",
        "rule": "规则",
        "severity": "严重程度",
        "title_col": "标题",
        "recipient": "接收方",
        "categories": "数据类别",
        "count": "次数",
        "count_old": "次数（旧）",
        "count_new": "次数（新）",
        "none": "无。",
        "no_change": "两次会话之间没有变化。",
        "note": "发现项按规则和接收方所属组织匹配，类别有变化的发现项记为一项变化；"
                "接收方按可注册域名匹配。每个会话仅涵盖其已检测的流量。",
        "changes": "数据类别有变化的发现项",
        "categories_added": "新增的类别",
        "categories_removed": "减少的类别",
        "removal_unsure": "无法比较：新会话的输入无法包含 {transports} 流量",
        "not_comparable": "无法比较",
        "not_comparable_note": "仅在一次会话中出现，且所用传输方式是另一次会话的输入无法包含的"
                               "（HAR 不包含 TCP）：既不算已修复，也不算新增。",
        "only_in": "仅出现于",
        "caveats": "两次会话可观察的范围不同",
        "caveat_inputs": "输入类型：旧 {old}，新 {new}",
        "caveat_capture": "捕获模式：旧 {old}，新 {new}",
        "caveat_uninspected": "无法检测的主机数：旧 {old}，新 {new}",
        "caveat_errors": "分析错误数：旧 {old}，新 {new}",
        "caveat_transports": "出现的传输方式：旧 {old}，新 {new}",
        "value_live capture": "实时捕获",
        "value_mitmproxy flows": "mitmproxy 流量文件",
        "value_none": "无",
        "footer": "由 kidaudit {version} 生成。",
    },
}


# The campaign page (``kidaudit campaign MANIFEST --out DIR``: DIR/campaign.html and
# DIR/campaign.zh.html), written by ``auditor.campaign.report``.
CAMPAIGN_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "html_lang": "en",
        "list_sep": ", ",
        "title": "Campaign report",
        "untitled": "Untitled campaign",
        "contents": "Contents",
        "overview": "Overview",
        "generated": "Generated (UTC)",
        "tool_version": "Tool version",
        "ruleset": "Ruleset",
        "runs": "Runs",
        "runs_failed": "Runs that failed",
        "runs_unchanged": "Runs re-used (inputs unchanged)",
        "matrix": "Device × firmware × rule",
        "matrix_note": "One row per run. ✗ n: the rule failed, with n findings; ✓ passed; "
                       "· not exercised (the run gave the rule nothing to judge); an empty "
                       "cell: the run did not judge the rule. Each run links to its own report.",
        "device": "Device",
        "firmware": "Firmware",
        "app_version": "App version",
        "scenario": "Scenario",
        "run": "Run",
        "status": "Status",
        "verdict": "Verdict",
        "transmissions": "Messages",
        "status_done": "analysed",
        "status_unchanged": "re-used: inputs unchanged",
        "status_failed": "failed",
        "cell_absent": "not judged in this run",
        "recipients": "Recipients and categories across devices",
        "recipients_note": "Which organisation received which data categories from which "
                           "device and firmware, as the findings name them. · : the run sent "
                           "to this recipient but no finding names it. The last row is every "
                           "category detected in what the run sent, whoever received it.",
        "recipient": "Recipient",
        "party": "Party",
        "country": "Country",
        "categories": "Data categories",
        "all_categories": "Every category detected (all recipients)",
        "no_recipients": "No run recorded a recipient.",
        "changes": "What each firmware introduced or fixed",
        "changes_note": "Each firmware against the previous one of the same device and "
                        "scenario, in the order the manifest first names them. Findings are "
                        "matched by rule and recipient organisation, as kidaudit diff does. "
                        "A run that failed is not compared.",
        "no_changes": "No device has two firmwares to compare.",
        "introduced": "Introduced",
        "fixed": "Fixed",
        "no_difference": "The same findings in both firmwares.",
        "severity": "Severity",
        "rule": "Rule",
        "title_col": "Title",
        "count": "Count",
        "inconclusive": "Inconclusive runs",
        "inconclusive_note": "The run's traffic could not support a verdict: silence there "
                             "proves little.",
        "reason": "Reason",
        "failed": "Failed runs",
        "failed_note": "These runs could not be analysed; the others completed.",
        "error": "Error",
        "none": "None.",
        "footer": "Generated by kidaudit {version}, ruleset {ruleset}. Each run's report holds "
                  "its evidence and the hashes that reproduce it.",
    },
    "zh": {
        "html_lang": "zh-CN",
        "list_sep": "、",
        "title": "测试批次报告",
        "untitled": "未命名测试批次",
        "contents": "目录",
        "overview": "概况",
        "generated": "生成时间（UTC）",
        "tool_version": "工具版本",
        "ruleset": "规则集",
        "runs": "测试运行",
        "runs_failed": "失败的运行",
        "runs_unchanged": "沿用的运行（输入未变）",
        "matrix": "设备 × 固件 × 规则",
        "matrix_note": "每行一次运行。✗ n：规则不通过，发现项 n 个；✓ 通过；"
                       "· 未检验（该运行中没有可供此规则判断的内容）；空白：该运行未评估此规则。"
                       "每次运行链接到其自身的报告。",
        "device": "设备",
        "firmware": "固件版本",
        "app_version": "应用版本",
        "scenario": "测试场景",
        "run": "运行",
        "status": "状态",
        "verdict": "结论",
        "transmissions": "报文数",
        "status_done": "已分析",
        "status_unchanged": "沿用：输入未变",
        "status_failed": "失败",
        "cell_absent": "本次运行未评估",
        "recipients": "各设备的接收方与数据类别",
        "recipients_note": "哪个组织从哪台设备、哪个固件版本收到了哪些数据类别（依据发现项）。"
                           "· ：该运行向此接收方发送过报文，但没有发现项涉及它。最后一行为该运行"
                           "发出的报文中检测到的全部类别，不论接收方。",
        "recipient": "接收方",
        "party": "主体类型",
        "country": "国家或地区",
        "categories": "数据类别",
        "all_categories": "检测到的全部类别（所有接收方）",
        "no_recipients": "没有运行记录到接收方。",
        "changes": "各固件版本新增或修复的问题",
        "changes_note": "每个固件版本与同一设备、同一场景的上一个固件版本对比，顺序以清单中首次"
                        "出现的先后为准。发现项按规则和接收方所属组织匹配，与 kidaudit diff "
                        "相同。失败的运行不参与对比。",
        "no_changes": "没有设备具有两个可对比的固件版本。",
        "introduced": "新增",
        "fixed": "已修复",
        "no_difference": "两个固件版本的发现项相同。",
        "severity": "严重程度",
        "rule": "规则",
        "title_col": "标题",
        "count": "次数",
        "inconclusive": "无法判定的运行",
        "inconclusive_note": "该运行的流量不足以支持结论：其中未发现问题并不能说明什么。",
        "reason": "原因",
        "failed": "失败的运行",
        "failed_note": "这些运行未能完成分析；其余运行已完成。",
        "error": "错误",
        "none": "无。",
        "footer": "由 kidaudit {version} 生成，规则集 {ruleset}。各运行的报告包含其证据及可复现"
                  "结果的哈希值。",
    },
}

# A run's verdict reason as ``auditor.report.document.judge`` writes it (English), matched
# whole, and the same reason in each other language; a reason no pattern matches prints as
# written.
VERDICT_REASON_TEXT: dict[str, tuple[tuple[str, str], ...]] = {
    "zh": (
        (r"(\d+) finding\(s\) of (\d+) rule\(s\) at severity low or above",
         "{0} 个发现项，涉及 {1} 条规则，严重程度为低或以上"),
        (r"the capture holds no traffic", "抓包中没有流量"),
        (r"none of the (\d+) connection\(s\) could be read", "{0} 个连接均无法读取"),
        (r"(\d+) of (\d+) connections could not be read", "{1} 个连接中有 {0} 个无法读取"),
        (r"no violation in (\d+) connection\(s\) read; not exercised: (.+)",
         "已读取的 {0} 个连接中未发现违规；未检验：{1}"),
        (r"no violation in (\d+) connection\(s\) read", "已读取的 {0} 个连接中未发现违规"),
    ),
}
