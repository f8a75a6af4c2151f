"""A campaign's manifest (``kidaudit campaign MANIFEST.yaml``): the lab's test matrix as runs.

```yaml
title: "Acme K2, certification round 3"                           # optional
defaults: {profile: k2/profile.yaml, consent: k2/consent.yaml}    # optional; a run's keys win
runs:
  - {device: "Acme K2", firmware: "1.4.2", app: "3.2.0", scenario: idle,
     inputs: [k2/142-idle.mitm], id: k2-142-idle}                # id optional
  - {device: "Acme K2", firmware: "1.5.0", scenario: idle, inputs: [k2/150-idle/]}
```

Everything is checked before anything runs: a campaign of forty runs must not stop at the
thirty-ninth for a typo. Each mistake is one line naming the file, the place and the problem
(``m.yaml: runs[2].inputs: k2/x.pcap: no such file``). ``parse`` is pure (a document and a
path resolver in, a Manifest out); ``load_manifest`` is the edge that reads the YAML and asks
the file system, reusing the checks ``analyze`` and ``report`` make of the same files.

Paths are relative to the manifest's folder. Every value is read as the text the lab wrote
(YAML's base loader): firmware ``1.50`` stays ``1.50``, not the number 1.5. A session folder
(from ``capture`` or ``analyze``) is judged again with the profile and plan kept in it, the
ones it was captured with; the manifest's ``defaults`` do not apply to it, and a run naming
its own profile for one is refused (a session's detections were made with its profile).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import yaml

from auditor.campaign.model import Manifest, RunSpec

TOP_KEYS = ("title", "defaults", "runs")
RUN_KEYS = ("id", "device", "firmware", "app", "scenario", "inputs", "profile", "consent")
DEFAULT_KEYS = ("device", "firmware", "app", "scenario", "profile", "consent")
REQUIRED = ("device", "firmware", "inputs")
ID_FORM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a folder and a file name anywhere
SESSION_MARK = "session.sqlite"  # auditor.store.Store.FILE; a session folder holds it


class ManifestError(ValueError):
    """A mistake in the manifest or a file it names: the one line the CLI prints (exit 2)."""


def slug(*parts: str) -> str:
    """A run's default id: ``Acme K2``, ``1.4.2``, ``idle`` -> ``acme-k2-1.4.2-idle``."""
    text = "-".join(p for p in parts if p)
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-._") or "run"


def parse(doc: object, source: str, resolve: Callable[[str], str],
          is_folder: Callable[[str], bool] = lambda _: False) -> Manifest:
    """The manifest ``doc`` (as YAML's base loader reads it: text, lists and mappings) from
    the file ``source``; ``resolve`` turns a path as written into one to open, ``is_folder``
    tells a session folder input from a capture file. Raises ManifestError."""

    def fail(where: str, problem: str) -> ManifestError:
        return ManifestError(f"{source}: {where + ': ' if where else ''}{problem}")

    if not isinstance(doc, dict):
        raise fail("", "is not a campaign manifest (a mapping with runs: [...])")
    _known(doc, TOP_KEYS, "", fail)
    title = doc.get("title", "")
    if not isinstance(title, str):
        raise fail("title", "is not text")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise fail("defaults", "is not a mapping")
    _known(defaults, DEFAULT_KEYS, "defaults", fail)
    for key, value in defaults.items():
        if not isinstance(value, str):
            raise fail(f"defaults.{key}", "is not text")
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        raise fail("runs", "is missing or empty (a list of runs)")
    specs: list[RunSpec] = []
    seen: dict[str, int] = {}
    for n, run in enumerate(runs):
        where = f"runs[{n}]"
        if not isinstance(run, dict):
            raise fail(where, "is not a mapping")
        _known(run, RUN_KEYS, where, fail)
        spec = _run(run, defaults, where, resolve, is_folder, fail)
        if spec.id in seen:
            raise fail(f"{where}.id", f"{spec.id!r} is also runs[{seen[spec.id]}]'s id; "
                       "give one of them another id")
        seen[spec.id] = n
        specs.append(spec)
    return Manifest(title=title, source=source, runs=tuple(specs))


def _known(mapping: dict, keys: tuple[str, ...], where: str,
           fail: Callable[[str, str], ManifestError]) -> None:
    for key in mapping:
        if key not in keys:
            raise fail(f"{where + '.' if where else ''}{key}",
                       f"unknown key; expected one of {', '.join(keys)}")


def _run(run: dict, defaults: Mapping[str, str], where: str, resolve: Callable[[str], str],
         is_folder: Callable[[str], bool], fail: Callable[[str, str], ManifestError]
         ) -> RunSpec:
    for key, value in run.items():
        if key != "inputs" and not isinstance(value, str):
            raise fail(f"{where}.{key}", "is not text")
    raw = run.get("inputs")
    if isinstance(raw, str):
        raw = [raw]
    if raw is not None and (not isinstance(raw, list)
                            or not all(isinstance(i, str) and i for i in raw)):
        raise fail(f"{where}.inputs", "is not a list of paths")
    inputs = tuple(resolve(i) for i in raw or ())
    session = any(is_folder(i) for i in inputs)
    if session and len(inputs) > 1:
        raise fail(f"{where}.inputs", "a session folder is a run's only input; give it a "
                   "run of its own")
    values = {k: v for k, v in defaults.items()
              if not (session and k in ("profile", "consent"))} | run
    for key in REQUIRED:
        if not values.get(key):
            raise fail(where, f"missing {key}")
    if session:
        for key in ("profile", "consent"):
            if run.get(key):
                raise fail(f"{where}.{key}", "a session folder is judged with the profile "
                           "and plan kept in it; remove this key")
    elif not values.get("profile"):
        raise fail(where, "missing profile (here or in defaults)")
    run_id = values.get("id") or slug(values["device"], values["firmware"],
                                      values.get("scenario", ""))
    if not ID_FORM.fullmatch(run_id):
        raise fail(f"{where}.id", f"{run_id!r} is not a usable id (letters, digits, '.', "
                   "'_' and '-', starting with a letter or digit)")
    return RunSpec(
        id=run_id, device=values["device"], firmware=values["firmware"],
        app_version=values.get("app", ""), scenario=values.get("scenario", ""),
        inputs=inputs,
        profile=resolve(values["profile"]) if values.get("profile") else "",
        consent=resolve(values["consent"]) if values.get("consent") else "")


# --------------------------------------------------------------------------- the edge


def load_manifest(path: Path) -> Manifest:
    """The manifest at ``path``, with every file it names checked: its captures as
    ``analyze`` checks them, its session folders, profiles and plans as ``report`` and
    ``analyze`` load them. Any mistake raises one ManifestError line."""
    from auditor.offline import check_inputs
    from auditor.profile import ConfigError, load_consent_plan, load_profile
    from auditor.session import CONSENT_FILE, PROFILE_FILE
    from auditor.sources.mitm import InputError

    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{source}: {getattr(e, 'strerror', None) or e}") from None
    try:
        doc = yaml.load(text, Loader=yaml.BaseLoader)  # noqa: S506 - text only, no objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ManifestError(f"{source}{line}: not YAML ({getattr(e, 'problem', e)})"
                            ) from None
    base = path.parent

    def resolve(p: str) -> str:
        return str(base / p)

    manifest = parse(doc, source, resolve, lambda p: Path(p).is_dir())
    runs = list(manifest.runs)
    loaded: dict[tuple[str, str], str] = {}  # (kind, path) -> the error, "" when it loads
    for n, spec in enumerate(manifest.runs):
        where = f"{source}: runs[{n}]"
        missing = [p for p in spec.inputs if not Path(p).exists()]
        if missing:
            raise ManifestError(f"{where}.inputs: {missing[0]}: no such file or folder")
        if len(spec.inputs) == 1 and Path(spec.inputs[0]).is_dir():
            folder = Path(spec.inputs[0])
            _check_session(folder, where)
            kept = {k: str(folder / name) for k, name in (("profile", PROFILE_FILE),
                                                          ("consent", CONSENT_FILE))
                    if (folder / name).is_file()}
            runs[n] = replace(spec, **kept)  # for the hash and the report; reopen loads them
            continue
        try:
            check_inputs([Path(p) for p in spec.inputs])
        except InputError as e:
            raise ManifestError(f"{where}.inputs: {e}") from None
        for kind, file, load in (("profile", spec.profile, load_profile),
                                 ("consent", spec.consent, load_consent_plan)):
            if not file:
                continue
            if (kind, file) not in loaded:
                try:
                    load(file)
                    loaded[kind, file] = ""
                except ConfigError as e:
                    loaded[kind, file] = str(e)
            if loaded[kind, file]:
                raise ManifestError(f"{where}.{kind}: {loaded[kind, file]}")
    return replace(manifest, runs=tuple(runs))


def _check_session(folder: Path, where: str) -> None:
    from auditor.folder import is_running

    if not (folder / SESSION_MARK).is_file():
        raise ManifestError(f"{where}.inputs: {folder}: is a folder but not a kidaudit session "
                            f"(no {SESSION_MARK}); give the capture files in it")
    if is_running(folder):
        raise ManifestError(f"{where}.inputs: {folder}: a capture is still running on this "
                            "session; stop it first")
