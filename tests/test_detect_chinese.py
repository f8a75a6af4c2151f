"""auditor/detect/chinese.py: the writings of a Chinese text and a Chinese name's pinyin."""

from __future__ import annotations

import pytest

from auditor.detect.chinese import is_chinese, pinyin_names, writings


@pytest.mark.parametrize(("name", "spellings"), [
    pytest.param("王小明", {"wang xiaoming", "wangxiaoming", "xiaoming wang", "xiaomingwang",
                         "wang xiao ming", "wang_xiaoming"}, id="single-surname"),
    pytest.param("李娜", {"li na", "lina", "na li", "nali", "li_na"}, id="two-characters"),
    pytest.param("欧阳娜娜", {"ouyang nana", "ouyangnana", "nana ouyang", "nanaouyang",
                          "ouyang na na", "ouyang_nana"}, id="compound-surname"),
    pytest.param("曾小明", {"zeng xiaoming", "xiaoming zeng", "ceng xiaoming"},
                 id="surname-in-its-surname-reading-too"),
    pytest.param("单雨", {"shan yu", "yu shan", "dan yu"}, id="another-heteronym-surname"),
])
def test_pinyin_names(name: str, spellings: set[str]) -> None:
    assert spellings <= pinyin_names(name)


@pytest.mark.parametrize("name", [
    pytest.param("Wang Xiaoming", id="latin-name"),
    pytest.param("王", id="one-character"),
    pytest.param("北京市海淀区中关村", id="too-long-for-a-name"),
])
def test_no_pinyin_for_what_is_no_chinese_name(name: str) -> None:
    assert pinyin_names(name) == set()


def test_given_name_keeps_its_everyday_reading() -> None:
    """Only the surname is spelt in several readings: the given name's syllables stay one
    reading, so a name yields a few spellings, not their product."""
    assert {n.split()[-1] for n in pinyin_names("王小明") if n.startswith("wang ")} == {
        "xiaoming", "ming"}


@pytest.mark.parametrize(("layers", "writing"), [
    pytest.param(("url",), "%E4%BD%A0%E5%A5%BD", id="percent-utf-8"),
    pytest.param(("url", "gbk"), "%C4%E3%BA%C3", id="percent-gbk"),
    pytest.param(("gbk",), "\xc4\xe3\xba\xc3", id="raw-gbk-as-latin-1"),
    pytest.param(("utf-8",), "\xe4\xbd\xa0\xe5\xa5\xbd", id="raw-utf-8-as-latin-1"),
    pytest.param(("hex", "utf-16be"), "4f60597d", id="utf-16be-hex"),
    pytest.param(("json-escape",), "\\u4f60\\u597d", id="json-escape"),
])
def test_writings(layers: tuple[str, ...], writing: str) -> None:
    assert dict((lay, w) for w, lay in writings("你好"))[layers] == writing


def test_no_gbk_writings_for_text_gbk_lacks() -> None:
    assert {lay for _, lay in writings("你好\U0002a6a5")} == {
        ("url",), ("hex", "utf-16be"), ("json-escape",), ("utf-8",)}


@pytest.mark.parametrize(("text", "chinese"), [
    ("王小明", True), ("宝贝abc", True), ("Wang", False), ("café", False), ("", False)])
def test_is_chinese(text: str, chinese: bool) -> None:
    assert is_chinese(text) is chinese
