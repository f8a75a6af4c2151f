"""Run the demo: local cloud, in-process mitmproxy (DumpMaster) with kidaudit, the devices.

The maker's raw-TCP watch server is reached through a ``reverse:tcp`` listener, the way
lab-setup.md section 7 reaches a cellular watch's server by IP; the HTTPS hosts go through
the regular listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from mitmproxy.options import Options
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.tools.dump import DumpMaster

from auditor.demo.cloud import LocalCloud, WatchServer
from auditor.demo.devices import (
    DEFAULT_FIRMWARE,
    HOSTNAME_UNCHECKED,
    HOSTS,
    Proxy,
    run_session,
)
from auditor.folder import FolderError, check_new, is_running, is_session_of
from auditor.live.addon import KidAudit
from auditor.rules import RuleContext, evaluate
from auditor.session import CONSENT_FILE, PROFILE_FILE, Outputs, reopen

T = TypeVar("T")
STARTUP_POLLS = 200  # x 50 ms: the proxy must be listening within 10 s


class RouteToCloud:
    """Sends the demo hostnames to the local cloud: no DNS, no internet."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud

    def server_connect(self, data: ServerConnectionHookData) -> None:
        host, port = data.server.address[:2]
        if host in HOSTS:
            data.server.address = self.cloud.https_addr if port == 443 else self.cloud.http_addr


async def listening_port(master: DumpMaster) -> int:
    """The port of the first listener that is up (the demo's regular one comes first)."""
    return (await listening_ports(master))[0]


async def listening_ports(master: DumpMaster) -> list[int]:
    """Every listener's port, in the order of the ``mode`` option, once all are up."""
    proxyserver = master.addons.get("proxyserver")
    for _ in range(STARTUP_POLLS):
        servers = list(proxyserver.servers)
        if servers and all(s.is_running and s.listen_addrs for s in servers):
            return [s.listen_addrs[0][1] for s in servers]
        await asyncio.sleep(0.05)
    raise RuntimeError("mitmproxy did not start listening within 10 s")


def run_through_proxy(confdir: Path, settings: dict[str, object],
                      drive: Callable[[Proxy], T], *, termlog: bool = False,
                      timeout: float | None = None, watch: bool = False) -> T:
    """Local cloud + in-process mitmproxy with kidaudit (``settings`` are its options);
    ``drive(proxy)`` runs in a thread while the proxy serves, then everything shuts down
    (which writes the session's reports). Used by the demo and by the end-to-end tests.
    ``watch`` adds the maker's watch server and a ``reverse:tcp`` listener in front of it
    (``proxy.watch_port``)."""

    async def main() -> T:
        with LocalCloud() as cloud, contextlib.ExitStack() as servers:
            modes = ["regular"]
            if watch:
                host, port = servers.enter_context(WatchServer()).addr
                modes.append(f"reverse:tcp://{host}:{port}")
            opts = Options(listen_host="127.0.0.1", listen_port=0, confdir=str(confdir),
                           ssl_insecure=True, mode=modes)
            master = DumpMaster(opts, with_termlog=termlog, with_dumper=False)
            master.addons.add(KidAudit(), RouteToCloud(cloud))
            master.options.update(**settings)
            task = asyncio.create_task(master.run())
            try:
                port, *watch_port = await listening_ports(master)
                proxy = Proxy(port, confdir / "mitmproxy-ca-cert.pem", *watch_port)
                return await asyncio.wait_for(asyncio.to_thread(drive, proxy), timeout)
            finally:
                master.shutdown()
                await asyncio.wait_for(task, timeout=30)

    return asyncio.run(main())


def run_demo(out: Path) -> Outputs:
    """A fresh demo session in ``out``; returns what the addon wrote there. A previous
    demo's folder is regenerated whole; any other folder that holds something is refused
    (``FolderError``), never deleted."""
    try:
        check_new(out, option="--out")
    except FolderError:
        if not is_session_of(out, demo_device()) or is_running(out):
            raise
        shutil.rmtree(out)  # the last demo's session: a demo folder is regenerated whole
    capture(out)
    store, profile, ledger = reopen(out)
    findings = evaluate(store.iter_observations(), RuleContext(profile, ledger), ordered=True,
                        recall=store.observation)
    store.close()
    return Outputs(out, findings)


def demo_device() -> str:
    """The simulated watch's name, as the demo's profile gives it."""
    text = resources.files("auditor.demo").joinpath(PROFILE_FILE).read_text()
    return yaml.safe_load(text)["device"]["name"]


def capture(out: Path, firmware: str = DEFAULT_FIRMWARE, *, termlog: bool = True) -> None:
    """One live session of the simulated watch on ``firmware`` into the new folder ``out``,
    through real mitmproxy: the demo's profile (its firmware set to ``firmware``) and plan
    under the names a session gives them."""
    demo = resources.files("auditor.demo")
    profile_text = demo.joinpath(PROFILE_FILE).read_text()
    if firmware != DEFAULT_FIRMWARE:
        shown = f'firmware: "{DEFAULT_FIRMWARE}"'
        if shown not in profile_text:  # the demo's profile and FIRMWARES must agree
            raise RuntimeError(f"the demo's {PROFILE_FILE} has no {shown}")
        profile_text = profile_text.replace(shown, f'firmware: "{firmware}"')
    with tempfile.TemporaryDirectory(prefix="kidaudit-demo-") as tmp:
        tmpdir = Path(tmp)
        profile_path, consent_path = tmpdir / PROFILE_FILE, tmpdir / CONSENT_FILE
        profile_path.write_text(profile_text)
        consent_path.write_text(demo.joinpath(CONSENT_FILE).read_text())
        profile = yaml.safe_load(profile_path.read_text())
        run_through_proxy(tmpdir / "mitmproxy",
                          {"kidaudit_profile": str(profile_path),
                           "kidaudit_consent": str(consent_path), "kidaudit_session": str(out),
                           # the TLS probe on the one host whose name the watch never checks
                           "kidaudit_tls_probe": True,
                           "kidaudit_tls_probe_hosts": [HOSTNAME_UNCHECKED]},
                          lambda proxy: run_session(proxy, profile, firmware),
                          termlog=termlog, watch=True)
