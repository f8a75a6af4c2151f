"""How devices write Chinese text the lab seeded, and a Chinese name's pinyin.

A watch or its app rarely sends a name as the UTF-8 a profile holds: query strings carry it
percent-encoded in UTF-8 or in GBK (the older Chinese SDKs), watch protocols carry it as
UTF-16BE hex (``4F60597D`` for 你好) or as raw GBK bytes (which the watch-protocol reader
sees as latin-1), and a JSON string inside a string keeps its ``\\uXXXX`` escapes. Each
writing is derived from the seed once, when the profile is loaded, with the label of its
layers (outermost first), so a detection says how the value was written.

A child's or a contact's name is also written in pinyin, by people and by forms that take
ASCII only: the syllables come from ``pypinyin``, never from a hand-written table. A
one-character surname is spelt in every reading ``pypinyin`` knows for it, because its
everyday reading is often not the surname's (曾 is "ceng" in words, "Zeng" as a surname;
单 "dan" and "Shan"); a spelling nobody uses costs a key and matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from pypinyin import Style, lazy_pinyin, pinyin

# Two-character surnames (复姓) common enough to be split as one surname.
COMPOUND_SURNAMES = frozenset({"欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙",
                               "慕容", "令狐", "夏侯", "长孙", "宇文", "司徒", "端木"})
# Chinese personal names are two to four characters; a longer text is no name.
NAME_CHARS = range(2, 5)


def is_chinese(text: str) -> bool:
    """Whether ``text`` holds a CJK ideograph (what makes the writings below differ)."""
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


def writings(text: str) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(writing, layers) of a Chinese text as devices send it, the plain text excepted."""
    yield quote(text, safe=""), ("url",)
    yield text.encode("utf-16-be").hex(), ("hex", "utf-16be")
    yield "".join(f"\\u{ord(ch):04x}" if ord(ch) > 0x7F else ch for ch in text), ("json-escape",)
    yield text.encode("utf-8").decode("latin-1"), ("utf-8",)
    try:
        gbk = text.encode("gbk")
    except UnicodeEncodeError:  # a character GBK lacks: no device writes it in GBK
        return
    yield quote(gbk, safe=""), ("url", "gbk")
    yield gbk.decode("latin-1"), ("gbk",)


def pinyin_names(name: str) -> set[str]:
    """The usual pinyin spellings of a Chinese personal name (surname first or last, joined
    or spaced, syllables apart): 王小明 -> wang xiaoming, wangxiaoming, xiaoming wang,
    wang xiao ming. Lower case: matching ignores case (``WANG Xiaoming``)."""
    name = name.strip()
    if len(name) not in NAME_CHARS or not all(is_chinese(ch) for ch in name):
        return set()
    if name[:2] in COMPOUND_SURNAMES:
        cut, surnames = 2, ["".join(lazy_pinyin(name[:2], style=Style.NORMAL))]
    else:
        cut, surnames = 1, pinyin(name[0], style=Style.NORMAL, heteronym=True)[0]
    syllables = lazy_pinyin(name[cut:], style=Style.NORMAL)
    given = "".join(syllables)
    return {spelling for surname in surnames for spelling in (
        f"{surname} {given}", f"{surname}{given}", f"{given} {surname}", f"{given}{surname}",
        " ".join([surname, *syllables]), f"{surname}_{given}")}
