"""`relay status`: environments x functions: alias -> Lambda version -> artifact version -> digest, and drift.

Drift is code in an account that relay did not put there:

- the alias's version has no relay description, or its `CodeSha256` is not
  the digest its description names (someone published by hand);
- the alias's version differs from the registry's manifest of the release
  its description names (`code_sha256`), when the registry is reachable;
- a version the alias' routing weights send traffic to fails any of the
  checks above (by hand, 50% to a version with other code is drift like the
  main version);
- `$LATEST` holds code that no relay-published version of the function
  holds (someone ran update-function-code by hand). Any release relay
  published is not drift there: a rollback puts the older code back on
  `$LATEST`, and where it could not, `$LATEST` holds the newer release.

Configuration drift is settings that differ from what the release says the
function gets in that environment (`FunctionSettings.differences`), on the
live version or on `$LATEST` (memory changed by hand in the console). A
function whose environment says `manage = "code"` has no configuration drift
by definition: infrastructure code owns its configuration.

Triggers that invoke a function unqualified or at `$LATEST` are listed too:
they are not drift, but promotion does not govern the traffic they send.

`builder.commands.render.status` renders a `StatusReport` for people.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from builder.aws.lambda_ import LambdaApi
from builder.config import Environment, Project
from builder.errors import AwsError, ConfigError, NotFound, VerificationFailed
from builder.frozen import to_tuple
from builder.lambda_records import Trigger
from builder.promote.plan import desired_settings, layer_name_in_aws
from builder.promote.state import FunctionState, RemoteState, read_state
from builder.registry.catalog import Catalog
from builder.registry.release import Release, ReleaseFunction
from builder.registry.store import Store
from builder.settings import FunctionSettings, LayerRef


@attrs.frozen
class FunctionStatus:
    function: str
    function_name: str
    exists: bool
    alias_version: str | None = None
    weights: tuple[tuple[str, float], ...] = attrs.field(default=(), converter=to_tuple)
    artifact: str | None = None
    sha256: str | None = None
    code_sha256: str | None = None  # of the alias's version
    latest_code_sha256: str | None = None
    registry_code_sha256: str | None = None  # the manifest's, for `artifact`
    drift: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # code
    manage: str = "all"  # "code": infrastructure code owns the configuration
    # Settings that differ from the release's for this environment: (where, setting, found, wanted)
    config_drift: tuple[ConfigDrift, ...] = attrs.field(default=(), converter=to_tuple)
    config_checked: bool = False  # False: the release's settings could not be read (registry out of reach)
    triggers: tuple[Trigger, ...] = attrs.field(default=(), converter=to_tuple)  # unqualified or at $LATEST

    @property
    def drifted(self) -> bool:
        return bool(self.drift or self.config_drift)

    def to_json(self) -> dict:
        return {
            "function": self.function, "function_name": self.function_name, "exists": self.exists,
            "alias_version": self.alias_version, "weights": dict(self.weights), "artifact": self.artifact,
            "sha256": self.sha256, "code_sha256": self.code_sha256, "latest_code_sha256": self.latest_code_sha256,
            "registry_code_sha256": self.registry_code_sha256, "drift": list(self.drift), "drifted": self.drifted,
            "manage": self.manage, "config_owner": "infrastructure code" if self.manage == "code" else "relay",
            "config_drift": [d.to_json() for d in self.config_drift], "config_checked": self.config_checked,
            "unqualified_triggers": [t.to_json() for t in self.triggers],
        }


@attrs.frozen
class ConfigDrift:
    """One setting of one configuration that is not what the release says for the environment."""

    where: str  # "$LATEST", the live Lambda version, or "function" (tags, reserved concurrency)
    setting: str  # a FunctionSettings field name
    found: object
    wanted: object

    def to_json(self) -> dict:
        # Environment values may be sensitive: name the variables that differ, never their values.
        if self.setting == "environment":
            found, wanted = dict(self.found), dict(self.wanted)  # type: ignore[call-overload]
            names = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            return {"where": self.where, "setting": self.setting, "variables": names}
        if self.setting == "layers":
            return {"where": self.where, "setting": self.setting,
                    "found": [ref.arn or ref.sha256 for ref in self.found],  # type: ignore[attr-defined]
                    "wanted": [ref.arn or ref.sha256 for ref in self.wanted]}  # type: ignore[attr-defined]
        if self.setting == "tags":  # relay's keys only, as found on the function and as the release wants them
            return {"where": self.where, "setting": self.setting,
                    "found": dict(self.found), "wanted": dict(self.wanted)}  # type: ignore[call-overload]
        return {"where": self.where, "setting": self.setting, "found": self.found, "wanted": self.wanted}


@attrs.frozen
class EnvironmentStatus:
    env: str
    account: str
    region: str
    alias: str
    functions: tuple[FunctionStatus, ...] = attrs.field(default=(), converter=to_tuple)
    error: str | None = None  # the environment could not be read

    def to_json(self) -> dict:
        return {"env": self.env, "account": self.account, "region": self.region, "alias": self.alias,
                "error": self.error, "functions": [f.to_json() for f in self.functions]}


@attrs.frozen
class StatusReport:
    app: str
    environments: tuple[EnvironmentStatus, ...] = attrs.field(converter=to_tuple)
    registry_problem: str | None = None

    @property
    def drifted(self) -> bool:
        return any(f.drifted for e in self.environments for f in e.functions)

    @property
    def unreachable(self) -> tuple[EnvironmentStatus, ...]:
        """The environments that could not be read (their account, role or region did not answer)."""
        return tuple(e for e in self.environments if e.error)

    def to_json(self) -> dict:
        return {"app": self.app, "drift": self.drifted, "registry_problem": self.registry_problem,
                "unreachable": [e.env for e in self.unreachable],
                "environments": [e.to_json() for e in self.environments]}


class ReleaseLookup:
    """Release documents from the registry, read once each (status asks for the same few again and again)."""

    def __init__(self, store: Store, app: str) -> None:
        self.catalog = Catalog(store, app)
        self._cache: dict[str, Release | None] = {}
        self._lock = threading.Lock()

    def release(self, version: str) -> Release | None:
        with self._lock:
            if version in self._cache:
                return self._cache[version]
        entry = self.catalog.read(version)
        found = entry.release if entry else None
        with self._lock:
            self._cache[version] = found
        return found


def environment_status(project: Project, env: Environment, lam: LambdaApi,
                       releases: ReleaseLookup | None) -> EnvironmentStatus:
    functions = {name: fn.function_name for name, fn in sorted(project.functions.items())}
    layers = [layer_name_in_aws(project.name, name) for name in sorted(project.layers)]
    configured = [name for name in functions if env.manage_for(name) != "code"]
    state = read_state(lam, env=env.name, region=env.region, alias=env.alias, functions=functions, layers=layers,
                       function_level=configured)
    rows = [function_status(project.name, state.function(name), releases) for name in functions]
    rows = [_with_configuration(project, env, state, row, releases) for row in rows]
    existing = [row for row in rows if row.exists]
    if existing:
        with ThreadPoolExecutor(max_workers=min(8, len(existing)), thread_name_prefix="relay-triggers") as pool:
            triggers = dict(zip([r.function for r in existing],
                                pool.map(lam.unqualified_triggers, [r.function_name for r in existing]), strict=True))
        rows = [attrs.evolve(row, triggers=triggers.get(row.function, ())) for row in rows]
    return EnvironmentStatus(env.name, env.account, env.region, env.alias, rows)


def _with_configuration(project: Project, env: Environment, state: RemoteState, row: FunctionStatus,
                        releases: ReleaseLookup | None) -> FunctionStatus:
    """The row with who owns the configuration and, where relay does, what differs from the release's settings."""
    manage = env.manage_for(row.function)
    row = attrs.evolve(row, manage=manage)
    fs = state.function(row.function)
    if manage == "code" or fs.latest is None or row.artifact is None or releases is None:
        return row
    release = releases.release(row.artifact)
    entry = release.function(row.function) if release else None
    if release is None or entry is None:
        return row
    try:
        wanted = release_settings(project, env, release, entry)
    except ConfigError:
        return row
    drift: list[ConfigDrift] = []
    live = fs.live
    for where, config in ((f"version {live.number}" if live else None, live.config if live else None),
                          ("$LATEST", fs.latest)):
        if where is None or config is None:
            continue
        found = state.settings_of(config)
        for name in wanted.differences(found):
            if name == "architecture":
                continue  # travels with the code: a code difference shows as code drift
            drift.append(ConfigDrift(where, name, getattr(found, name), getattr(wanted, name)))
    level = fs.function_level
    if level is not None:  # tags (relay's keys only) and reserved concurrency are the function's, not a version's
        found = level.as_settings(wanted)
        for name in wanted.function_level_differences(found):
            shown = (tuple((k, v) for k, v in found.tags if k in dict(wanted.tags)) if name == "tags"
                     else found.reserved_concurrency)
            drift.append(ConfigDrift("function", name, shown, getattr(wanted, name)))
    return attrs.evolve(row, config_drift=drift, config_checked=True)


def release_settings(project: Project, env: Environment, release: Release, entry: ReleaseFunction) -> FunctionSettings:
    """The settings the release gives `entry` in `env` (its layers by digest, as the planner compares them)."""
    refs = {}
    for bundle in entry.layers:
        layer = release.layer(bundle)
        if layer is not None:
            refs[bundle] = LayerRef(layer.sha256, layer.architecture)
    return desired_settings(project, env, release, entry, refs)


def function_status(app: str, fs: FunctionState, releases: ReleaseLookup | None) -> FunctionStatus:
    if not fs.exists:
        return FunctionStatus(fs.function, fs.function_name, False)
    latest_code = fs.latest.code_sha256 if fs.latest else None
    relay_code = {v.config.code_sha256 for v in fs.versions if v.trusted_digest and v.mark and v.mark.app == app}
    drift = []
    if latest_code and latest_code not in relay_code and fs.versions:
        drift.append(f"$LATEST holds code relay never published (CodeSha256 {latest_code})")
    if fs.alias is None:
        return FunctionStatus(fs.function, fs.function_name, True, latest_code_sha256=latest_code, drift=drift)
    live = fs.live
    base = FunctionStatus(fs.function, fs.function_name, True, alias_version=fs.alias.function_version,
                          weights=fs.alias.weights, latest_code_sha256=latest_code)
    weight_drift = _weights_drift(app, fs, releases)
    if live is None:
        return attrs.evolve(base, drift=[f"the alias points at {fs.alias.function_version}, which is not a published version",
                                         *weight_drift, *drift])
    mark = live.mark
    code = live.config.code_sha256
    if mark is None:
        return attrs.evolve(base, code_sha256=code, drift=[f"version {live.number} was not published by relay",
                                                           *weight_drift, *drift])
    if live.trusted_digest is None:
        drift.insert(0, f"version {live.number}'s CodeSha256 {code} is not the sha256 its description names")
    registry_code = None
    if releases is not None:
        release = releases.release(mark.version)
        entry = release.function(fs.function) if release else None
        if release is None:
            drift.append(f"{app}@{mark.version} is not in the registry")
        elif entry is None:
            drift.append(f"{app}@{mark.version} has no function {fs.function}")
        else:
            registry_code = entry.code_sha256
            if code != registry_code:
                drift.append(f"version {live.number}'s CodeSha256 differs from the registry's manifest "
                             f"for {mark.version} ({registry_code})")
    return attrs.evolve(base, artifact=mark.version, sha256=mark.sha256, code_sha256=code,
                        registry_code_sha256=registry_code, drift=[*drift, *weight_drift])


def _weights_drift(app: str, fs: FunctionState, releases: ReleaseLookup | None) -> list[str]:
    """What is wrong with each version the alias' routing weights send traffic to, checked like the main version.

    A weighted version must be published, carry relay's mark of this app and function, hold the bytes its mark
    names (`CodeSha256`), and, when the registry is reachable, be the code of the release its mark names.
    """
    problems = []
    for number, weight in fs.alias.weights if fs.alias else ():
        share = f"the alias sends {weight:.0%} of traffic to version {number}"
        version = fs.version(number)
        if version is None:
            problems.append(f"{share}, which is not a published version")
            continue
        mark = version.mark
        code = version.config.code_sha256
        if mark is None or mark.app != app or mark.name != fs.function:
            problems.append(f"{share}, which relay did not publish for {app}/{fs.function} (CodeSha256 {code})")
            continue
        if version.trusted_digest is None:
            problems.append(f"{share}, whose CodeSha256 {code} is not the sha256 its description names")
            continue
        if releases is None:
            continue
        release = releases.release(mark.version)
        entry = release.function(fs.function) if release else None
        if release is None:
            problems.append(f"{share}, whose release {app}@{mark.version} is not in the registry")
        elif entry is None:
            problems.append(f"{share}, whose release {app}@{mark.version} has no function {fs.function}")
        elif code != entry.code_sha256:
            problems.append(f"{share}, whose CodeSha256 {code} differs from the registry's manifest for "
                            f"{mark.version} ({entry.code_sha256})")
    return problems


def collect_status(
    project: Project,
    envs: Sequence[Environment],
    connect: Callable[[Environment], LambdaApi],
    releases: ReleaseLookup | None,
    registry_problem: str | None,
) -> StatusReport:
    """Status of every environment in `envs`; one that cannot be reached is reported, not fatal."""
    found = []
    for env in envs:
        try:
            found.append(environment_status(project, env, connect(env), releases))
        except (AwsError, NotFound, VerificationFailed) as exc:
            found.append(EnvironmentStatus(env.name, env.account, env.region, env.alias, error=exc.message))
    return StatusReport(project.name, found, registry_problem)
