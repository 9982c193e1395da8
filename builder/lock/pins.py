"""The versions an app's own lock (`uv.lock` or `poetry.lock`) pins, as constraints for relay's lock.

Both files are TOML with a `[[package]]` array of `name` and `version`. Only
packages from an index are pins: the project itself (uv's `editable`/`virtual`
source) and path, git or URL packages are not something an index resolves.

A lock may hold one package at two versions for different environments (uv's
`resolution-markers`, poetry's `markers`/`python-versions`); the one whose
markers hold on Lambda (Linux, the runtime's Python, the architecture's
machine) is the pin. When that cannot be told, it is a LockError naming the package.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import attrs
from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.specifiers import InvalidSpecifier
from packaging.utils import canonicalize_name

from builder.errors import ConfigError, LockError
from builder.runtime.runtimes import lambda_runtime, machine_of

STEP = "read pins"
_UV_LOCAL_SOURCES = ("editable", "virtual", "directory", "path", "git", "url")
_POETRY_LOCAL_SOURCES = ("directory", "file", "git", "url")


@attrs.frozen
class Pins:
    path: Path
    versions: tuple[tuple[str, str], ...]  # (canonical name, version), sorted by name

    @property
    def lines(self) -> tuple[str, ...]:
        """`name==version` for each pin: a constraints file's lines, and what a lock's input hash covers."""
        return tuple(f"{name}=={version}" for name, version in self.versions)

    def version_of(self, name: str) -> str | None:
        return dict(self.versions).get(canonicalize_name(name))


def read_pins(path: Path, runtime: str, architecture: str) -> Pins:
    """The index packages `path` (a uv.lock or poetry.lock) pins for Lambda's `runtime` on `architecture`."""
    try:
        with open(path, "rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"pins: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"pins: {path.name} is not valid TOML: {exc}") from None
    packages = document.get("package", [])
    if not isinstance(packages, list):
        raise ConfigError(f"pins: {path.name}: [[package]] is not an array of tables")
    environment = lambda_environment(runtime, architecture)
    if path.name == "poetry.lock":
        candidates = [p for p in packages if _poetry_applies(p, environment, runtime)]
    else:
        candidates = [p for p in packages if _uv_applies(p, environment)]
    return Pins(path=path, versions=_one_version_each(candidates, path, runtime, architecture))


def lambda_environment(runtime: str, architecture: str) -> dict[str, str]:
    """Marker variables as they are on Lambda (the patch level is unknown: `.0`)."""
    python = lambda_runtime(runtime).python
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "os_name": "posix",
        "platform_machine": machine_of(architecture),
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{python}.0",
        "python_version": python,
        "sys_platform": "linux",
        "extra": "",
    }


def _one_version_each(packages: list[dict], path: Path, runtime: str, architecture: str) -> tuple[tuple[str, str], ...]:
    versions: dict[str, set[str]] = {}
    for package in packages:
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            raise ConfigError(f"pins: {path.name}: a [[package]] without a name and version: {package!r}")
        versions.setdefault(canonicalize_name(name), set()).add(version)
    ambiguous = {name: found for name, found in versions.items() if len(found) > 1}
    if ambiguous:
        named = "; ".join(f"{name} ({', '.join(sorted(found))})" for name, found in sorted(ambiguous.items()))
        raise LockError(STEP, f"{path.name} pins more than one version for {runtime} on {architecture}: {named}",
                        hint="relay cannot tell which one Lambda would get; pin that package in the requirements.")
    return tuple(sorted((name, found.pop()) for name, found in versions.items()))


def _uv_applies(package: dict, environment: dict[str, str]) -> bool:
    source = package.get("source", {})
    if any(key in source for key in _UV_LOCAL_SOURCES):
        return False
    forks = package.get("resolution-markers")
    return not forks or any(_holds(marker, environment) for marker in forks)


def _poetry_applies(package: dict, environment: dict[str, str], runtime: str) -> bool:
    if package.get("source", {}).get("type") in _POETRY_LOCAL_SOURCES:
        return False
    markers = package.get("markers")
    if isinstance(markers, str) and not _holds(markers, environment):
        return False
    if isinstance(markers, dict) and not any(_holds(m, environment) for m in markers.values()):
        return False  # poetry 2 writes markers per group: the package applies when any holds
    return _python_fits(package.get("python-versions", "*"), runtime)


def _python_fits(constraint: str, runtime: str) -> bool:
    from builder.lock.pyproject import Where, poetry_specifier

    if constraint.strip() in ("", "*"):
        return True
    python = f"{lambda_runtime(runtime).python}.0"
    # `>=2.7, !=3.0.*` or `>=3.8 || <3` (poetry writes either-or for old packages): any branch that fits.
    for branch in constraint.split("||"):
        try:
            specifier = poetry_specifier(branch, "python-versions", Where(Path("poetry.lock"), "pins"))
        except (ConfigError, InvalidSpecifier):
            return True  # an unreadable constraint does not drop a pin
        if specifier.contains(python, prereleases=True):
            return True
    return False


def _holds(marker: str, environment: dict[str, str]) -> bool:
    try:
        return Marker(marker).evaluate(environment)
    except (InvalidMarker, UndefinedEnvironmentName, UndefinedComparison):
        return True  # one we cannot evaluate (e.g. uv's conflict markers) counts; a clash then says so
