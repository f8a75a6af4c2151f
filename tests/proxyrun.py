"""Real mitmproxy for tests: an in-process DumpMaster with the kidaudit addon on 127.0.0.1,
routed to the demo's local cloud. Bounded in time; loopback only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from mitmproxy.options import Options
from mitmproxy.tools.dump import DumpMaster

from auditor.demo.cloud import LocalCloud
from auditor.demo.devices import Proxy
from auditor.demo.run import RouteToCloud, listening_port
from auditor.sources.mitm import load_addon_class


def run_proxy_session(tmp: Path, profile: Path, session: Path,
                      drive: Callable[[Proxy], object], consent: Path | None = None) -> object:
    """Start cloud + proxy, run ``drive(proxy)`` in a thread, shut down; return its result."""

    async def main() -> object:
        with LocalCloud() as cloud:
            confdir = tmp / "mitmproxy-conf"
            opts = Options(listen_host="127.0.0.1", listen_port=0, confdir=str(confdir),
                           ssl_insecure=True)
            master = DumpMaster(opts, with_termlog=False, with_dumper=False)
            master.addons.add(load_addon_class()(), RouteToCloud(cloud))
            settings = {"kidaudit_profile": str(profile), "kidaudit_session": str(session)}
            if consent is not None:
                settings["kidaudit_consent"] = str(consent)
            master.options.update(**settings)
            task = asyncio.create_task(master.run())
            try:
                port = await asyncio.wait_for(listening_port(master), timeout=15)
                proxy = Proxy(port, confdir / "mitmproxy-ca-cert.pem")
                return await asyncio.wait_for(asyncio.to_thread(drive, proxy), timeout=60)
            finally:
                master.shutdown()
                await asyncio.wait_for(task, timeout=30)

    return asyncio.run(main())
