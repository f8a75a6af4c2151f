"""auditor/extract/form.py: form and query pairs, percent-decoded as UTF-8 or GB18030."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from auditor.extract.form import form_pairs


@pytest.mark.parametrize(("text", "pairs"), [
    pytest.param(f"n={quote('陈小雨')}&t=1", [("n", "陈小雨"), ("t", "1")], id="utf-8"),
    pytest.param(f"n={quote('陈小雨'.encode('gbk'))}&t=1", [("n", "陈小雨"), ("t", "1")],
                 id="gbk"),
    pytest.param(f"{quote('姓名'.encode('gbk'))}=1", [("姓名", "1")], id="gbk-name"),
    # a short GBK text can be valid UTF-8 too: UTF-8 is tried first, as browsers send it
    pytest.param(f"s={quote('学校'.encode('gbk'))}", [("s", "\u0467\u0423")],
                 id="gbk-that-is-valid-utf-8-reads-as-utf-8"),
    pytest.param("a=x+y&b=%2B", [("a", "x y"), ("b", "+")], id="plus-is-space"),
    pytest.param("a=%FF", [("a", "\ufffd")], id="neither-replaced"),
    pytest.param("a=&b&c=1", [("c", "1")], id="blank-and-bare-dropped"),
])
def test_form_pairs(text: str, pairs: list[tuple[str, str]]) -> None:
    assert list(form_pairs(text)) == pairs
