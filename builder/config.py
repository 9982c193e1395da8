"""Load and validate the project config into frozen records.

The config lives in `relay.toml`, or under `[tool.relay]` in `pyproject.toml`.
It is validated against `schemas/config.schema.json`; a bad config names the
file, the key path and what was expected.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import attrs

from builder import schemas
from builder.bundle.limits import check_layer_count
from builder.errors import ConfigError, UnknownName
from builder.frozen import to_tuple
from builder.paths import PYPROJECT, cache_dir, find_config, read_toml
from builder.secret_values import refuse_credentials
from builder.settings import OVERRIDABLE, RECORDED, FunctionSettings, LayerRef, unknown_placeholders

PINS_FILES = ("uv.lock", "poetry.lock")  # the app's own locks that `pins` may name
LOCKS_FOLDER = "locks"  # next to the config: the locks of requirements declared in a pyproject.toml
DEFAULT_ARCH = "x86_64"
DEFAULT_ALIAS = "live"
# Keys of [functions.<name>] that are FunctionSettings fields of the same name (handler and architecture aside).
SETTINGS_KEYS = RECORDED
MANAGE = ("all", "code")  # what relay manages of a function in an environment: everything, or only its code
LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[^:]+:[^:]+:layer:[^:]+:[0-9]+$")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


MAX_INTERVAL = 86400  # a canary step's interval: at most a day
MAX_SOAK = 365 * 86400
ENV_VAR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # Lambda's rule for environment variable names


def parse_duration(value: int | str | None, *, key: str = "duration", maximum: int | None = None) -> int:
    """Seconds from `90`, `"90s"`, `"10m"`, `"2h"` or `"1d"`; ConfigError naming `key` beyond `maximum`."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if not match:
            raise ConfigError(f"{key}: bad duration {value!r}", hint="Use seconds, or a number followed by s, m, h or d.")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0 or (maximum is not None and seconds > maximum):
        raise ConfigError(f"{key}: {value!r} is out of range (at most {maximum} seconds)",
                          hint="Use a shorter duration, e.g. \"10m\".")
    return seconds


@attrs.frozen
class Function:
    name: str
    source: Path
    settings: FunctionSettings  # what is deployed besides the code; its layers are the release's (by digest)
    requirements: Path | None = None  # a requirements .in, or a pyproject.toml
    requirements_group: str | None = None  # "pyproject.toml#group": that group's requirements
    pins: Path | None = None  # the app's uv.lock or poetry.lock, whose versions constrain the resolution
    lock: Path | None = None  # where relay's hashed lock lives (set whenever requirements is)
    layers: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # config names of its relay layers
    role: str | None = None
    # Its `layers` list as written: relay layer names and third-party layer version ARNs, in attach order.
    layer_entries: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    function_name: str = ""  # the Lambda function's name in every account
    # What it ships (builder.bundle.selection): package folders relative to `source`, gitignore-style
    # patterns relative to `source`, files that look like secrets but are meant to ship.
    packages: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    include: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    exclude: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    allow_secrets: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def handler(self) -> str:
        return self.settings.handler

    @property
    def architecture(self) -> str:
        return self.settings.architecture

    @property
    def memory(self) -> int:
        return self.settings.memory

    @property
    def timeout(self) -> int:
        return self.settings.timeout

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.settings.environment)

    @property
    def description(self) -> str:
        return self.settings.description

    def role_in(self, account: str, region: str) -> str | None:
        """The execution role for one environment (`{account}`/`{region}` filled in)."""
        return self.role.replace("{account}", account).replace("{region}", region) if self.role else None

    @property
    def handler_module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def handler_function(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@attrs.frozen
class Layer:
    name: str
    requirements: Path | None = None  # as on Function
    requirements_group: str | None = None
    pins: Path | None = None
    lock: Path | None = None
    packages: tuple[Path, ...] = attrs.field(default=(), converter=to_tuple)
    description: str = ""
    # As on Function, relative to each local package folder.
    include: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    exclude: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    allow_secrets: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)


@attrs.frozen
class TrustedKey:
    keyid: str
    public_key: str  # PEM text
    note: str = ""  # who holds it, since when: shown by relay verify
    retired: bool = False  # still verifies what it signed; never signs anything new


@attrs.frozen
class Signing:
    kind: str  # "ed25519" | "kms"
    key: Path | None = None
    key_id: str | None = None


@attrs.frozen
class Registry:
    bucket: str
    prefix: str = "relay"
    region: str | None = None
    account: str | None = None
    role: str | None = None
    profile: str | None = None  # the AWS profile whose credentials reach the registry's account
    remote_cache: bool = False
    signing: Signing | None = None
    trusted_keys: tuple[TrustedKey, ...] = attrs.field(default=(), converter=to_tuple)


@attrs.frozen
class Canary:
    steps: tuple[int, ...] = attrs.field(converter=to_tuple)
    interval: int = 0


@attrs.frozen
class FunctionOverrides:
    """`[environments.<env>.functions.<fn>]`: one function's values in one environment."""

    settings: dict = attrs.field(factory=dict, hash=False)  # FunctionSettings field -> value (as in [functions.<fn>])
    manage: str | None = None  # "all" | "code"; None: the environment's
    provisioned_concurrency: int | None = None


@attrs.frozen
class Environment:
    name: str
    account: str
    region: str
    role: str | None = None
    external_id: str | None = None
    alias: str = DEFAULT_ALIAS
    deploy_bucket: str | None = None
    requires: str | None = None
    soak: int = 0
    alarms: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    canary: Canary | None = None
    # [environments.<env>.settings]: every function's overrides; [environments.<env>.functions.<fn>]: one's.
    settings: dict = attrs.field(factory=dict, hash=False)
    functions: dict[str, FunctionOverrides] = attrs.field(factory=dict, hash=False)
    manage: str = "all"
    provisioned_concurrency: int | None = None
    profile: str | None = None  # the AWS profile (e.g. an SSO profile) whose credentials reach this account
    protected: bool = False  # changing it from a terminal asks for confirmation (--yes for scripts)

    def overrides_for(self, function: str) -> tuple[dict, ...]:
        """The overrides of `function`'s settings here, in the order they apply (environment-wide, then its own)."""
        own = self.functions.get(function)
        return tuple(o for o in (self.settings, own.settings if own else {}) if o)

    def manage_for(self, function: str) -> str:
        """"all" (relay sets the configuration too) or "code" (infrastructure code owns the configuration)."""
        own = self.functions.get(function)
        return own.manage if own is not None and own.manage is not None else self.manage

    def provisioned_concurrency_for(self, function: str) -> int | None:
        own = self.functions.get(function)
        if own is not None and own.provisioned_concurrency is not None:
            return own.provisioned_concurrency
        return self.provisioned_concurrency

    def placeholders(self, app: str, function: str) -> dict[str, str]:
        """The values of `{env}`, `{account}`, `{region}`, `{app}`, `{function}` for one function here."""
        return {"env": self.name, "account": self.account, "region": self.region, "app": app, "function": function}


@attrs.frozen
class Project:
    root: Path
    config_file: Path
    name: str
    runtime: str
    architecture: str
    functions: dict[str, Function]
    layers: dict[str, Layer] = attrs.field(factory=dict)
    registry: Registry | None = None
    environments: dict[str, Environment] = attrs.field(factory=dict)
    dist: Path = Path("dist")
    # [app] selection defaults (after relay's own default excludes; before each bundle's own patterns).
    include: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    exclude: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    allow_secrets: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)  # relative to the project root

    @property
    def dist_dir(self) -> Path:
        return self.root / self.dist

    def function(self, name: str) -> Function:
        try:
            return self.functions[name]
        except KeyError:
            raise UnknownName("function", [name], self.functions, config=self.config_file.name) from None

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            raise UnknownName("environment", [name], self.environments, config=self.config_file.name) from None

    def require_registry(self) -> Registry:
        if self.registry is None:
            raise ConfigError(f"{self.config_file.name}: no [registry] section", hint="Add [registry] with a bucket.")
        return self.registry


def load_project(path: Path | None = None, *, cwd: Path | None = None) -> Project:
    """Load, validate and resolve the project config at `path` (or found from `cwd`)."""
    config_file = Path(path).resolve() if path else find_config(cwd or Path.cwd())
    if not config_file.is_file():
        raise ConfigError(f"config file not found: {config_file}", hint="Check --config.")
    document = read_toml(config_file)
    if config_file.name == PYPROJECT:
        document = document.get("tool", {}).get("relay", {})
    validate(document, config_file)
    return _project(document, config_file)


def _problem_text(problem: Any) -> str:
    """jsonschema's message, except that a regex the user cannot read is replaced by what it means."""
    description = problem.schema.get("description") if isinstance(problem.schema, dict) else None
    if problem.validator == "pattern" and description:
        return f"{problem.instance!r} is not {description}"
    return str(problem.message)

def validate(document: dict, config_file: Path) -> None:
    # A config that validated before is not validated again: relay's no-op build is
    # dominated by start-up, and jsonschema is its largest import.
    marker = cache_dir() / "validated" / schemas.fingerprint("config", document)
    if marker.is_file():
        return
    problems = schemas.errors("config", document)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(f"{config_file.name}: {schemas.key_path(first)}: {_problem_text(first)}{more}")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:  # a read-only cache only costs time
        pass


def _project(doc: dict, config_file: Path) -> Project:
    root = config_file.parent
    app = doc["app"]
    arch = app.get("architecture", DEFAULT_ARCH)
    layers = {name: _layer(name, spec, root) for name, spec in doc.get("layers", {}).items()}
    functions = {name: _function(name, spec, root, arch, app["name"], app["runtime"]) for name, spec in doc["functions"].items()}
    _check_references(functions, layers, config_file)
    _check_paths(functions, layers, config_file)
    _check_shared_locks(functions, layers, config_file)
    _check_function_names(functions, doc, config_file)
    _check_environment_variables(doc, config_file)
    environments = {name: _environment(name, spec, config_file) for name, spec in doc.get("environments", {}).items()}
    _check_environments(environments, functions, config_file)
    _check_requires_cycles(environments, config_file)
    _check_settings_values(doc, config_file)
    return Project(
        root=root,
        config_file=config_file,
        name=app["name"],
        runtime=app["runtime"],
        architecture=arch,
        functions=functions,
        layers=layers,
        registry=_registry(doc["registry"], root) if "registry" in doc else None,
        environments=environments,
        dist=Path(app.get("dist", "dist")),
        include=app.get("include", ()),
        exclude=app.get("exclude", ()),
        allow_secrets=app.get("allow_secrets", ()),
    )


def _function(name: str, spec: dict, root: Path, default_arch: str, app: str, runtime: str) -> Function:
    return Function(
        name=name,
        function_name=spec.get("function_name", f"{app}-{name}"),
        source=root / spec.get("source", "."),
        packages=spec.get("packages", ()),
        include=spec.get("include", ()),
        exclude=spec.get("exclude", ()),
        allow_secrets=spec.get("allow_secrets", ()),
        settings=FunctionSettings(
            handler=spec["handler"], runtime=runtime, architecture=spec.get("architecture", default_arch),
            layers=tuple(LayerRef.at(entry) for entry in spec.get("layers", ()) if LAYER_ARN.match(entry)),
            **{key: spec[key] for key in SETTINGS_KEYS if key in spec},
        ),
        **_dependencies(spec, root, "function", name),
        layers=tuple(entry for entry in spec.get("layers", ()) if not LAYER_ARN.match(entry)),
        layer_entries=spec.get("layers", ()),
        role=spec.get("role"),
    )


def _layer(name: str, spec: dict, root: Path) -> Layer:
    return Layer(
        name=name,
        **_dependencies(spec, root, "layer", name),
        packages=tuple(root / p for p in spec.get("packages", ())),
        include=spec.get("include", ()),
        exclude=spec.get("exclude", ()),
        allow_secrets=spec.get("allow_secrets", ()),
        description=spec.get("description", ""),
    )


def _dependencies(spec: dict, root: Path, kind: str, name: str) -> dict:
    """`requirements` (`pyproject.toml#group` split in two), `pins` and where the lock lives.

    A `.in` locks to the `.txt` next to it; a pyproject, which may serve several
    targets, to `locks/<kind>-<name>.txt` next to the config; `lock` overrides both.
    """
    declared = spec.get("requirements")
    file, _, group = declared.partition("#") if declared else ("", "", "")
    requirements = root / file if file else None
    if "lock" in spec:
        lock: Path | None = root / spec["lock"]
    elif requirements is None:
        lock = None
    elif requirements.suffix == ".in":
        lock = requirements.with_suffix(".txt")
    else:
        lock = root / LOCKS_FOLDER / f"{kind}-{name}.txt"
    return {
        "requirements": requirements,
        "requirements_group": group or None,
        "pins": root / spec["pins"] if "pins" in spec else None,
        "lock": lock,
    }


def _registry(spec: dict, root: Path) -> Registry:
    signing = spec.get("signing")
    return Registry(
        bucket=spec["bucket"],
        prefix=spec.get("prefix", "relay").strip("/"),
        region=spec.get("region"),
        account=spec.get("account"),
        role=spec.get("role"),
        profile=spec.get("profile"),
        remote_cache=spec.get("remote_cache", False),
        signing=Signing(
            kind=signing["kind"],
            key=root / signing["key"] if "key" in signing else None,
            key_id=signing.get("key_id"),
        )
        if signing
        else None,
        trusted_keys=tuple(_trusted_key(k, root) for k in spec.get("trusted_keys", ())),
    )


def _trusted_key(spec: dict, root: Path) -> TrustedKey:
    value = spec["public_key"]
    if "-----BEGIN" not in value:
        path = root / value
        if not path.is_file():
            raise ConfigError(f"trusted key {spec['keyid']!r}: file not found: {value}")
        try:
            value = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "not ASCII PEM text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
            raise ConfigError(f"trusted key {spec['keyid']!r}: cannot read {value}: {reason}",
                              hint="A trusted key is a PEM public key: its text, or a file holding it.") from None
    return TrustedKey(keyid=spec["keyid"], public_key=value, note=spec.get("note", ""),
                      retired=bool(spec.get("retired", False)))


def _environment(name: str, spec: dict, config_file: Path) -> Environment:
    canary = spec.get("canary")
    key = f"{config_file.name}: environments.{name}"
    return Environment(
        name=name,
        account=spec["account"],
        region=spec["region"],
        role=spec.get("role"),
        external_id=spec.get("external_id"),
        alias=spec.get("alias", DEFAULT_ALIAS),
        deploy_bucket=spec.get("deploy_bucket"),
        requires=spec.get("requires"),
        soak=parse_duration(spec.get("soak"), key=f"{key}.soak", maximum=MAX_SOAK),
        alarms=spec.get("alarms", ()),
        canary=Canary(steps=canary["steps"], interval=parse_duration(canary.get("interval"), key=f"{key}.canary.interval",
                                                                     maximum=MAX_INTERVAL)) if canary else None,
        settings=_overrides(spec.get("settings", {})),
        functions={fn: FunctionOverrides(settings=_overrides(own), manage=own.get("manage"),
                                         provisioned_concurrency=own.get("provisioned_concurrency"))
                   for fn, own in spec.get("functions", {}).items()},
        manage=spec.get("manage", "all"),
        provisioned_concurrency=spec.get("provisioned_concurrency"),
        profile=spec.get("profile"),
        protected=spec.get("protected", False),
    )


def _overrides(spec: dict) -> dict:
    return {key: spec[key] for key in OVERRIDABLE if key in spec}


def _check_references(functions: dict[str, Function], layers: dict[str, Layer], config_file: Path) -> None:
    for fn in functions.values():
        check_layer_count(f"{config_file.name}: functions.{fn.name}", fn.layer_entries)
        for layer in fn.layers:
            if layer not in layers:
                raise ConfigError(
                    f"{config_file.name}: functions.{fn.name}.layers: unknown layer {layer!r}",
                    hint=f"Declare [layers.{layer}] or remove it. Known layers: {', '.join(sorted(layers)) or 'none'}.",
                )


def _check_paths(functions: dict[str, Function], layers: dict[str, Layer], config_file: Path) -> None:
    for fn in functions.values():
        _must_exist(fn.source, f"functions.{fn.name}.source", config_file, folder=True)
        _check_dependencies(fn, f"functions.{fn.name}", config_file)
    for layer in layers.values():
        _check_dependencies(layer, f"layers.{layer.name}", config_file)
        for index, package in enumerate(layer.packages):
            _must_exist(package, f"layers.{layer.name}.packages[{index}]", config_file, folder=True)


def _check_dependencies(owner: Function | Layer, key: str, config_file: Path) -> None:
    """`requirements` names a `.in` or a pyproject.toml (`#group` only there); `pins` a uv.lock or poetry.lock."""
    name = config_file.name
    if owner.requirements is None:
        if owner.pins or owner.lock:
            extra = "pins" if owner.pins else "lock"
            raise ConfigError(f"{name}: {key}.{extra}: set without requirements",
                              hint=f"Add {key}.requirements (a requirements .in or pyproject.toml), or remove {extra}.")
        return
    _must_exist(owner.requirements, f"{key}.requirements", config_file)
    is_pyproject = owner.requirements.name == PYPROJECT
    if not is_pyproject and owner.requirements.suffix != ".in":
        raise ConfigError(f"{name}: {key}.requirements: unsupported file {owner.requirements.name!r}",
                          hint='Name a requirements .in file, or pyproject.toml (optionally "pyproject.toml#group").')
    if owner.requirements_group and not is_pyproject:
        raise ConfigError(f"{name}: {key}.requirements: #{owner.requirements_group}: a group applies to pyproject.toml only",
                          hint="Name the group's file itself, or move the requirements into pyproject.toml.")
    if owner.pins:
        _must_exist(owner.pins, f"{key}.pins", config_file)
        if owner.pins.name not in PINS_FILES:
            raise ConfigError(f"{name}: {key}.pins: unsupported file {owner.pins.name!r}",
                              hint=f"pins names the app's own lock: {' or '.join(PINS_FILES)}.")
    if owner.lock and owner.lock.resolve() in (owner.requirements.resolve(), owner.pins and owner.pins.resolve()):
        raise ConfigError(f"{name}: {key}.lock: would overwrite its own input {owner.lock.name}",
                          hint="Choose another path for relay's lock, e.g. locks/<name>.txt.")


def _check_shared_locks(functions: dict[str, Function], layers: dict[str, Layer], config_file: Path) -> None:
    """Two targets may share a lock only when they lock the same thing (a shared `.in`)."""
    owners: dict[Path, tuple[str, tuple]] = {}
    named: list[tuple[str, Function | Layer]] = [*((f"functions.{f.name}", f) for f in functions.values()),
                                                 *((f"layers.{lay.name}", lay) for lay in layers.values())]
    for key, owner in named:
        if owner.lock is None:
            continue
        inputs = (owner.requirements, owner.requirements_group, owner.pins)
        first = owners.setdefault(owner.lock.resolve(), (key, inputs))
        if first[1] != inputs:
            shown = os.path.relpath(owner.lock, config_file.parent)
            raise ConfigError(f"{config_file.name}: {first[0]} and {key} would both write {shown} from different inputs",
                              hint=f"Give one of them its own lock: {key}.lock = \"locks/<name>.txt\".")


def _must_exist(path: Path, key: str, config_file: Path, *, folder: bool = False) -> None:
    ok = path.is_dir() if folder else path.is_file()
    if not ok:
        kind = "a folder" if folder else "a file"
        shown = os.path.relpath(path, config_file.parent)
        raise ConfigError(f"{config_file.name}: {key}: expected {kind} at {shown}, found none")


def _check_environments(environments: dict[str, Environment], functions: dict[str, Function], config_file: Path) -> None:
    for env in environments.values():
        if env.requires and env.requires not in environments:
            raise ConfigError(f"{config_file.name}: environments.{env.name}.requires: unknown environment {env.requires!r}")
        for fn in env.functions:
            if fn not in functions:
                raise ConfigError(f"{config_file.name}: environments.{env.name}.functions.{fn}: unknown function {fn!r}",
                                  hint=f"Known functions: {', '.join(sorted(functions))}.")
        refuse_credentials(env.settings.get("environment", {}), f"environments.{env.name}.settings.environment",
                           config_file.name)
        for fn, own in env.functions.items():
            refuse_credentials(own.settings.get("environment", {}),
                               f"environments.{env.name}.functions.{fn}.environment", config_file.name)


def _check_function_names(functions: dict[str, Function], doc: dict, config_file: Path) -> None:
    """Two functions never deploy to one Lambda function (in any environment: the name is the same in every account)."""
    seen: dict[str, Function] = {}

    def key(fn: Function) -> str:
        explicit = "function_name" in doc["functions"][fn.name]
        return f"functions.{fn.name}.function_name" if explicit else f"functions.{fn.name} (default name)"

    for fn in functions.values():
        first = seen.setdefault(fn.function_name, fn)
        if first is not fn:
            raise ConfigError(
                f"{config_file.name}: {key(first)} and {key(fn)} both name the Lambda function {fn.function_name!r}",
                hint=f"Give one of them another name: functions.{fn.name}.function_name = \"...\".")


def _check_environment_variables(doc: dict, config_file: Path) -> None:
    """Every environment variable name is one Lambda accepts (the schema says so too; this holds after the cache)."""
    places = [(f"functions.{name}.environment", spec.get("environment", {})) for name, spec in doc["functions"].items()]
    for env, spec in doc.get("environments", {}).items():
        places.append((f"environments.{env}.settings.environment", spec.get("settings", {}).get("environment", {})))
        places.extend((f"environments.{env}.functions.{fn}.environment", own.get("environment", {}))
                      for fn, own in spec.get("functions", {}).items())
    for key, variables in places:
        for variable, value in variables.items():
            if not ENV_VAR_NAME.fullmatch(variable):
                raise ConfigError(f"{config_file.name}: {key}: {variable!a} is not an environment variable name",
                                  hint="Lambda accepts a letter followed by letters, digits and underscores.")
            if "\0" in value:
                raise ConfigError(f"{config_file.name}: {key}.{variable}: the value holds a NUL character (not shown)",
                                  hint="Environment variable values are text without NUL characters.")


def _check_requires_cycles(environments: dict[str, Environment], config_file: Path) -> None:
    """`requires` chains end: no environment requires itself, directly or through others."""
    for env in environments.values():
        chain = [env.name]
        current = env.requires
        while current is not None:
            if current in chain:
                loop = " -> ".join([*chain[chain.index(current):], current])
                raise ConfigError(f"{config_file.name}: environments.{chain[-1]}.requires: a cycle ({loop})",
                                  hint="requires names the environment promoted before this one; the chain must end.")
            chain.append(current)
            current = environments[current].requires if current in environments else None


def _check_settings_values(doc: dict, config_file: Path) -> None:
    """Every placeholder in a function's settings or an environment's overrides is one relay fills in."""
    places = [(f"functions.{name}", spec) for name, spec in doc["functions"].items()]
    for env, spec in doc.get("environments", {}).items():
        places.append((f"environments.{env}.settings", spec.get("settings", {})))
        places.extend((f"environments.{env}.functions.{fn}", own) for fn, own in spec.get("functions", {}).items())
    for key, spec in places:
        for name in (*RECORDED, "layers"):
            unknown = unknown_placeholders(spec.get(name, ""))
            if unknown:
                raise ConfigError(f"{config_file.name}: {key}.{name}: unknown placeholder {{{unknown[0]}}}",
                                  hint="Values may use {env}, {account}, {region}, {app} and {function}.")
