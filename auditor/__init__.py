"""kidaudit: a dynamic network-traffic auditor for children's devices.

Invariants the whole package keeps (the numbered rules every module is written against):

1. The core (everything under ``auditor/`` except ``sources/``, ``store.py``, ``session.py``,
   ``offline.py``, ``report/`` writers, ``cli.py`` and
   ``demo/``) is pure: it takes and returns plain frozen dataclasses, never imports
   mitmproxy, never opens a file, never reads the clock. (``profile.py`` reads the
   user's YAML files: loading and validating them is its whole job.)
2. A Transmission is one outgoing message from the device; every Detection names the
   transmission, the field and the encoding chain it was found through.
3. Values leave the tool masked unless the user asked for ``--reveal``.
4. Analysis of one message never raises into the proxy: the edges catch, count and report.
5. The raw evidence (``flows.mitm``) is enough to rebuild every output.
"""

__version__ = "0.1.0"
RULESET_VERSION = "v1"
