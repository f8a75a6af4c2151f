"""``kidaudit demo --campaign``: the simulated watch captured live on two firmwares, then the two
sessions analysed as one campaign on a local Dask cluster, as ``kidaudit campaign`` does.

Firmware 1.5.0 fixes one leak of 1.4.2 and adds another (``devices.FIRMWARES``), so the
campaign report's "introduced or fixed" section has something to say. The folder holds the two
live sessions (``captures/<firmware>/``), the manifest written for them (``manifest.yaml``),
and what ``kidaudit campaign manifest.yaml --out FOLDER`` writes beside them (``runs/``,
``dataset/``, ``campaign.json``, ``campaign.html``, ``campaign.zh.html``): a newcomer can
re-run that command on the folder and read the manifest as an example.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from auditor.campaign.manifest import load_manifest
from auditor.campaign.model import Campaign, RunResult
from auditor.campaign.report import page_name
from auditor.campaign.runner import run_campaign
from auditor.campaign.state import CAMPAIGN_FILE, RUNS
from auditor.demo.devices import FIRMWARES
from auditor.demo.run import capture, demo_device
from auditor.folder import FolderError, check_new, is_running

FIRMWARE_ORDER = tuple(FIRMWARES)  # the manifest's order is the order firmwares compare in
TITLE = f"kidaudit demo: the simulated watch, firmware {' then '.join(FIRMWARE_ORDER)}"
SCENARIO = "use"
CAPTURES = "captures"
MANIFEST = "manifest.yaml"
# Everything the demo and the campaign write at the folder's top: a previous demo's folder
# holding only these is regenerated whole; a folder holding anything else is refused.
WRITTEN = {CAPTURES, MANIFEST, RUNS, "dataset", CAMPAIGN_FILE, page_name("en"),
           page_name("zh")}


@dataclass(frozen=True)
class CampaignDemo:
    folder: Path
    campaign: Campaign

    @property
    def report(self) -> Path:
        return self.folder / page_name("en")


def run_campaign_demo(out: Path, *, on_result: Callable[[RunResult], None] = lambda _: None,
                      on_capture: Callable[[str], None] = lambda _: None,
                      workers: int | None = None) -> CampaignDemo:
    """Capture the watch on each firmware into ``out/captures/``, write the manifest, run the
    campaign on a LocalCluster (``workers`` processes, default one per core and run) into
    ``out``. A previous campaign demo's folder is regenerated whole; any other folder that
    holds something is refused (``FolderError``), never deleted."""
    try:
        check_new(out, option="--out")
    except FolderError:
        if not is_demo_campaign(out):
            raise
        shutil.rmtree(out)
    device = demo_device()
    runs = []
    for firmware in FIRMWARE_ORDER:
        on_capture(firmware)
        capture(out / CAPTURES / firmware, firmware, termlog=False)
        runs.append({"id": f"k2-{firmware}", "device": device, "firmware": firmware,
                     "scenario": SCENARIO, "inputs": [f"{CAPTURES}/{firmware}"]})
    manifest = out / MANIFEST
    manifest.write_text(yaml.safe_dump({"title": TITLE, "runs": runs}, sort_keys=False,
                                       allow_unicode=True), encoding="utf-8")
    campaign = run_campaign(load_manifest(manifest), out, workers=workers,
                            on_result=on_result)
    return CampaignDemo(out, campaign)


def is_demo_campaign(out: Path) -> bool:
    """``out`` is a folder this command wrote: our manifest's title, only the names the demo
    and the campaign write, and no capture still running in it."""
    try:
        names = {p.name for p in out.iterdir()}
        doc = yaml.load((out / MANIFEST).read_text(encoding="utf-8"),  # noqa: S506 - text only
                        Loader=yaml.BaseLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    if not isinstance(doc, dict) or doc.get("title") != TITLE:
        return False
    if names - WRITTEN - {n for n in names if n.startswith(f".{CAMPAIGN_FILE}.")}:
        return False
    captures = out / CAPTURES
    return not captures.is_dir() or not any(is_running(p) for p in captures.iterdir())
