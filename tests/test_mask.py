"""auditor/mask.py: values leave the tool masked (DESIGN.md findings.json, ``8612********0123``)."""

from __future__ import annotations

import pytest

from auditor.mask import mask
from tests.factories import ICCID, IMEI, MAC, PHONE


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("8612345678900123", "8612********0123", id="design-example"),
    pytest.param(IMEI, "864*********455", id="imei"),
    pytest.param(ICCID, "8986***********6789", id="iccid"),
    pytest.param(PHONE, "+86********000", id="phone"),
    pytest.param(MAC, "3c:5*********2:03", id="mac"),
    pytest.param("123456789012", "123******012", id="twelve"),
    pytest.param("12345678901", "12*******01", id="eleven"),
    pytest.param("123456", "1****6", id="six"),
    pytest.param("12345", "*****", id="five-fully-masked"),
    pytest.param("1", "*", id="one"),
    pytest.param("", "", id="empty"),
    pytest.param("王小明同学的家庭住址", "王小******住址", id="non-ascii"),
])
def test_mask(value: str, expected: str) -> None:
    assert mask(value) == expected


def test_passwords_are_masked_whole() -> None:
    assert mask("Tr0ub4dor&3xyz", "credentials.password") == "*" * 14


@pytest.mark.parametrize("value", [IMEI, ICCID, PHONE, MAC, "Tr0ub4dor&3", "abcdef", "abc"])
def test_mask_keeps_length_and_hides_the_middle(value: str) -> None:
    masked = mask(value)
    assert len(masked) == len(value)
    assert masked != value
    middle = len(value) // 2
    assert masked[middle] == "*"
