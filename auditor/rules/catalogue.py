"""Rules as data (RULES.md "v1 rules"). Ids are stable: reports and CI gates key on them.

A reference ending in ``*`` is a clause RULES.md could not confirm from the published text;
reports show it as unverified. What a rule is (``Rule``, ``RuleContext``, ``Hit``) lives in
``base``, which the rule families import; this module only lists them.
"""

from __future__ import annotations

from auditor.rules import (
    collection_rules,
    consent_rules,
    recipient_rules,
    session_rules,
    transport_rules,
)
from auditor.rules.base import Rule

CATALOGUE: tuple[Rule, ...] = (
    # -- consent (the ledger) ------------------------------------------------------------
    Rule("PRE_CONSENT_PI", "critical",
         "Personal data sent before any guardian consent",
         ("PIPL 13", "PIPL 31", "CPI 9", "IDM 3.1", "35273 5.4", "GDPR 8(1)", "ETSI 6-2",
          "COPPA 312.5(a)*"),
         check=consent_rules.pre_consent_pi),
    Rule("PRE_CONSENT_SDK", "high",
         "Third-party SDK receives an identifier or location before any consent",
         ("IDM 2.1", "IDM 3.1", "41391 6.6", "35273 9.7", "GDPR 8", "FTC v. Apitor (2025)"),
         check=consent_rules.pre_consent_sdk),
    Rule("SCOPE_EXCEEDED", "high",
         "Category sent that the guardian never granted",
         ("IDM 3.3", "CPI 14", "GDPR 8", "COPPA 312.5(a)*"),
         check=consent_rules.scope_exceeded),
    Rule("AFTER_REFUSAL", "high",
         "Category sent after the guardian refused it",
         ("IDM 3.2", "MNR 32*", "GDPR 8", "COPPA 312.6(a)(2)"),
         check=consent_rules.after_refusal),
    Rule("AFTER_WITHDRAWAL", "critical",
         "Category still sent after the guardian withdrew consent",
         ("PIPL 47(1)(3)", "CPI 20(3)", "IDM 3.2", "IDM 3.8", "ETSI 6-3", "COPPA 312.6(a)(2)"),
         check=consent_rules.after_withdrawal),
    Rule("SENSITIVE_NO_SEPARATE_CONSENT", "high",
         "Sensitive category sent without a separate grant",
         ("PIPL 28", "PIPL 29", "PIPL 31"),
         check=consent_rules.sensitive_no_separate_consent),
    Rule("MEDIA_UPLOAD", "high",
         "Voice or photo uploaded without a grant for it",
         ("PIPL 28", "PIPL 31", "ETSI 5.8-3", "COPPA 312.2 (8)"),
         check=consent_rules.media_upload),
    # -- recipients ----------------------------------------------------------------------
    Rule("THIRD_PARTY_UNDISCLOSED", "high",
         "Personal data sent to a recipient the privacy notice does not disclose",
         ("PIPL 23", "CPI 10", "CPI 17", "IDM 2.1", "ETSI 6-1", "AADC 9", "COPPA 312.5(a)(2)"),
         check=recipient_rules.third_party_undisclosed),
    Rule("PERSISTENT_ID_TO_THIRD_PARTY", "high",
         "Non-resettable identifier sent to a third party",
         ("35273 Annex A", "PIPL 23", "AADC 9", "COPPA 312.2 (7)"),
         check=recipient_rules.persistent_id_to_third_party),
    Rule("CROSS_SERVICE_LINKING", "high",
         "Same identifier sent to two or more organisations",
         ("35273 7.6", "AADC 12", "COPPA 312.2 (7)"),
         step=session_rules.cross_service_linking),
    Rule("LOCATION_TO_THIRD_PARTY", "critical",
         "Location sent to a third party",
         ("PIPL 23", "PIPL 28", "AADC 9", "AADC 10", "COPPA 312.2 (9)"),
         check=recipient_rules.location_to_third_party),
    Rule("DIRECT_IDS_TO_THIRD_PARTY", "high",
         "Child's direct identifiers sent to a third party",
         ("PIPL 23", "PIPL 31", "CPI 17", "AADC 9", "COPPA 312.2 (1)–(6)"),
         check=recipient_rules.direct_ids_to_third_party),
    Rule("AD_TRACKER_RECEIVES_CHILD_DATA", "high",
         "Advertising or attribution host receives an identifier or location",
         ("IDM 3.6", "35273 7.4–7.5", "AADC 12",
          "COPPA 312.2 (support for internal operations excludes behavioural ads)"),
         check=recipient_rules.ad_tracker_receives_child_data),
    Rule("CROSS_BORDER", "high",
         "Personal data sent outside the profile's jurisdiction",
         ("PIPL 38", "PIPL 39", "35273 9.8*", "GDPR 44–46*"),
         check=recipient_rules.cross_border),
    # -- collection ----------------------------------------------------------------------
    Rule("NON_RESETTABLE_ID", "medium",
         "Hardware or SIM identifier sent",
         ("41391 Annex F", "IDM 4.1", "GDPR 5(1)(c)", "GDPR 25(2)"),
         check=collection_rules.non_resettable_id),
    Rule("EXCESS_FREQUENCY", "medium",
         "Category sent to one recipient more often than the stated interval",
         ("IDM 4.4", "PIPL 6", "ETSI 6-4", "AADC 8"),
         step=session_rules.excess_frequency),
    Rule("BACKGROUND_COLLECTION", "medium",
         "Personal data sent while the device is idle",
         ("IDM 4.1", "41391 6.1*", "GDPR 5(1)(c)"),
         check=collection_rules.background_collection),
    Rule("BULK_CONTACTS", "high",
         "Two or more contacts sent in one message",
         ("IDM 4.1", "35273 Table B.1*", "COPPA 312.2"),
         check=collection_rules.bulk_contacts),
    # -- transport -----------------------------------------------------------------------
    Rule("CLEARTEXT_PI", "critical",
         "Personal data sent in cleartext (HTTP, plain TCP/UDP, MQTT or DNS)",
         ("PIPL 51(3)", "35273 6.3 a)", "ETSI 5.5-1", "ETSI 5.8-1", "ETSI 5.8-2",
          "18031 SCM-1", "18031 SCM-3", "FTC v. VTech (2018)"),
         check=transport_rules.cleartext_pi),
    Rule("CREDENTIALS_EXPOSED", "high",
         "Password sent in cleartext or in a URL",
         ("35273 Table B.1*", "ETSI 5.4-3", "ETSI 5.5-7", "18031 SSM"),
         check=transport_rules.credentials_exposed),
    Rule("WEAK_TLS", "high",
         "Device offers an obsolete TLS version or weak cipher suites",
         ("35273 6.3 a)", "ETSI 5.5-1", "18031 CRY-1"),
         check=transport_rules.weak_tls),
    Rule("NO_CERT_VALIDATION", "critical",
         "Device accepted the lab's untrusted certificate",
         ("PIPL 51", "ETSI 5.5-1", "ETSI 5.8-2", "18031 SCM-2"),
         check=transport_rules.no_cert_validation),
    Rule("INSECURE_UPDATE", "medium",
         "Firmware or app update fetched over HTTP",
         ("ETSI 5.3*", "18031 SUM*"),
         check=transport_rules.insecure_update),
    Rule("COVERT_MONITOR", "critical",
         "Server sent the watch a remote-listening command",
         ("PIPL 31", "AADC 11", "BNetzA 2017 ban on listening watches"),
         check=transport_rules.covert_monitor),
    Rule("UNINSPECTED_TRAFFIC", "info",
         "Traffic the auditor could not read",
         (),
         check=transport_rules.uninspected_traffic),
)


def by_id(rule_id: str) -> Rule:
    for rule in CATALOGUE:
        if rule.id == rule_id:
            return rule
    raise KeyError(rule_id)
