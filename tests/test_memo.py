"""auditor/memo.py: the one bounded cache of the package."""

from __future__ import annotations

from auditor.memo import Memo


def test_lookup_answers_as_get_before_and_after_the_memo_forgets() -> None:
    """``lookup`` is ``get`` without the call around it: the same answers, still so once the
    memo has forgotten everything at its ceiling and remembered anew."""
    memo: Memo[str, int] = Memo(2)
    recall = memo.lookup
    memo.put("a", 1)
    memo.put("b", 2)
    assert [recall(k) for k in "abc"] == [memo.get(k) for k in "abc"] == [1, 2, None]
    memo.put("c", 3)  # past the ceiling: a and b forgotten
    assert len(memo) == 1
    assert [recall(k) for k in "abc"] == [memo.get(k) for k in "abc"] == [None, None, 3]
    memo.clear()
    memo.put("a", 4)
    assert recall("a") == 4 and recall("c") is None
