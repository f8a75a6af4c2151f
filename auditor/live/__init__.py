"""The live runtime: kidaudit inside a running mitmproxy.

=====================  ================================================================
module                 what it does
=====================  ================================================================
``addon``              ``KidAudit``: options, the session's life; each hook handed to its part
``traffic``            HTTP, WebSocket, TCP, UDP and DNS hooks -> messages
``tls``                ClientHellos; hosts whose clients refuse our certificate
``consent``            the ``kidaudit.mark`` command, the magic host, the plan's signals
``channel``            the proxy's side of the analysis: send, replies, a worker's death
``protocol``           the messages and replies between the two sides (frozen dataclasses)
``states``             each connection's state, serialised once per change
``worker``             the proxy's end of the worker process (journal out, pipe back)
``process``            the worker process (``python -O -m auditor.live.process``)
``core``               the analysis side: the session, ``flows.mitm``, commits, recovery
``journal``            every message on disk before the proxy moves on
``lock``               one capture per session folder
``terminal``           log lines safe for the lab's terminal
=====================  ================================================================

The proxy's side (``addon`` down to ``worker``) runs on mitmproxy's event loop and only
hands over; ``core`` and ``process`` do the work, off that loop.
"""
