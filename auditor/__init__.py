"""kidaudit: a dynamic network-traffic auditor for children's devices.

Invariants the whole package keeps (the numbered rules every module is written against):

1. The core (everything under ``auditor/`` except ``sources/``, ``live/``, ``store.py``,
   ``session.py``, ``offline.py``, ``folder.py``, ``report/`` writers, ``cli.py``,
   ``demo/``, ``validate/`` and the two loaders, ``profile.py`` for the lab's YAML and
   ``data/`` for what the package ships) is pure: it takes and returns plain frozen
   dataclasses (``model.py``, the loaders' types included), never imports mitmproxy, never
   opens a file, never reads the clock. ``make lint`` checks this with the import
   contracts in ``.importlinter``.
2. A Transmission is one outgoing message from the device; every Detection names the
   transmission, the field and the encoding chain it was found through.
3. Values leave the tool masked unless the user asked for ``--reveal``.
4. Analysis of one message never raises into the proxy: the edges catch, count and report.
5. The raw evidence (``flows.mitm``) is enough to rebuild every output.
"""

__version__ = "0.1.0"
RULESET_VERSION = "v1"
