"""auditor/data: the shipped SDK table, read and checked, and the country database named."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from auditor.data import (
    SDK_COLUMNS,
    SDK_CSV,
    SDK_TYPES,
    SOURCE_PREFIXES,
    country_source,
    load_sdks,
    parse_sdk_table,
)


def test_country_source_names_the_database() -> None:
    assert country_source().startswith("iptocc ")
    assert "registry allocation data of " in country_source()


def _rows() -> list[dict[str, str]]:
    text = resources.files("auditor").joinpath(SDK_CSV).read_text(encoding="utf-8")
    reader = csv.DictReader(text.splitlines())
    assert tuple(reader.fieldnames or ()) == SDK_COLUMNS
    return list(reader)


def test_sdk_csv_rows_are_complete() -> None:
    rows = _rows()
    assert 80 <= len(rows) <= 150
    for row in rows:
        assert None not in row, row  # no extra columns
        assert all((row[col] or "").strip() for col in SDK_COLUMNS), row
        assert row["sdk_type"] in SDK_TYPES, row
        assert row["source"].startswith(SOURCE_PREFIXES), row
        assert "://" in row["source"], row
        assert row["domain"] == row["domain"].strip().lower().strip("."), row


def test_sdk_csv_lists_no_domain_twice() -> None:
    domains = [row["domain"] for row in _rows()]
    assert len(domains) == len(set(domains))
    assert len(load_sdks()) == len(domains)


@pytest.mark.parametrize("domain", [
    "umeng.com", "jpush.cn", "jiguang.cn", "getui.com", "igexin.com", "bugly.qq.com",
    "amap.com", "loc.map.baidu.com", "pingma.qq.com", "sensorsdata.cn", "talkingdata.com",
    "pangolin-sdk-toutiao.com", "push-api.cloud.huawei.com", "xmpush.xiaomi.com",
    "app-measurement.com", "firebaseinstallations.googleapis.com",
    "googleads.g.doubleclick.net", "appsflyer.com", "adjust.com", "graph.facebook.com",
    "mixpanel.com", "amplitude.com", "segment.io", "sentry.io", "shuzilm.cn", "xfyun.cn",
    "mob.com", "growingio.com", "e.kuaishou.com", "push.oppomobile.com",
    "api-push.vivo.com.cn", "imtt.qq.com", "hivoice.cn",
])
def test_sdk_csv_covers_the_issue_list(domain: str) -> None:
    assert domain in load_sdks()


HEADER = "domain,organization,sdk,sdk_type,source\n"
ROW = "x.example,X,X SDK,push,vendor site: https://x.example/\n"


@pytest.mark.parametrize(("text", "message"), [
    ("domain,organization\n", "header"),
    (HEADER + ROW.replace(",push,", ",,"), "line 2: every column"),
    (HEADER + ROW.replace(",push,", ",tracking,"), "sdk_type 'tracking'"),
    (HEADER + "x.example,X,X SDK,push,a blog\n", "source must start"),
    (HEADER + ROW + ROW.replace("x.example,", "X.Example.,"),
     "line 3: domain 'x.example' is listed twice"),
])
def test_bad_sdk_table_names_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="sdks.csv") as err:
        parse_sdk_table(text)
    assert message in str(err.value)
