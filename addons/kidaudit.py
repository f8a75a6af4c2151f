"""The file mitmproxy loads: ``mitmdump -s addons/kidaudit.py --set kidaudit_profile=...``.

The addon itself lives in the installed package (``auditor.live.addon``, where its options,
hooks and modes are described): a lab loading it into its own mitmproxy installs kidaudit
into that mitmproxy's Python first (``pip install -e .`` from this checkout).
"""

from auditor.live.addon import KidAudit
from auditor.marks import MARK_HOST

__all__ = ("KidAudit", "MARK_HOST")
addons = [KidAudit()]
