"""pip's configuration, read as `pip download` reads it, for relay's direct wheel fetch.

Files in pip's order, later overriding earlier (`pip/_internal/configuration.py`): global
(`$XDG_CONFIG_DIRS/pip/pip.conf`, then `/etc/pip.conf`), user (`~/.pip/pip.conf`, then
`$XDG_CONFIG_HOME/pip/pip.conf`; skipped when `PIP_CONFIG_FILE` names an existing file), site
(`sys.prefix/pip.conf` of the Python that runs pip), then `PIP_CONFIG_FILE` (`os.devnull`: no
files at all). Of each, `[global]` then `[download]`, and `PIP_<KEY>` environment variables last
(`cli/parser.py`: section order global, command, env; an empty value removes the key). Names are
normalised as pip does (lower case, `_` -> `-`, no leading `--`). pip expands no variables in
configuration values: a value holding `${...}` is left to pip.

`settings` returns what the fetch needs (indexes, find-links, connection, constraint files) or
raises `Unsupported` with the reason relay leaves the download to pip: a setting it does not
understand, a file pip could not read either, a malformed value.
"""

from __future__ import annotations

import configparser
import locale
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import attrs

from builder.frozen import to_tuple

DEFAULT_INDEX = "https://pypi.org/simple/"

# Settings that decide where files come from or how they are reached: read by `settings`.
USED = frozenset({
    "index-url", "extra-index-url", "no-index", "find-links", "cert", "client-cert", "trusted-host",
    "timeout", "default-timeout", "retries", "proxy", "constraint",
})
# Settings that change neither which pinned file `pip download --no-deps --require-hashes` takes nor how
# it is reached (output, caches, install-only options pip download ignores, a keyring: a 401 already
# leaves that requirement to pip).
HARMLESS = frozenset({
    "quiet", "verbose", "no-color", "progress-bar", "disable-pip-version-check", "cache-dir", "no-cache-dir",
    "prefer-binary", "only-binary", "root-user-action", "no-input", "exists-action", "log", "log-file",
    "local-log", "require-virtualenv", "no-python-version-warning", "no-warn-script-location",
    "break-system-packages", "pre", "no-deps", "require-hashes", "dest", "src", "no-clean", "no-build-isolation",
    "use-pep517", "no-use-pep517", "check-build-dependencies", "resume-retries", "keyring-provider",
    "config-file", "user", "target", "prefix", "root", "upgrade", "upgrade-strategy", "force-reinstall",
    "ignore-installed", "no-warn-conflicts", "compile", "no-compile", "report",
})
TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})
FALSE = frozenset({"n", "no", "f", "false", "off", "0"})
_ENV_NAMES_IGNORED = ("version", "help")


class Unsupported(Exception):
    """pip's configuration asks for something the direct fetch does not do: the reason, for a progress line."""


@attrs.frozen
class Settings:
    """What `pip download` would read from its configuration, for the direct fetch."""

    index_url: str = DEFAULT_INDEX
    extra_index_urls: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    no_index: bool = False
    find_links: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    cert: str | None = None
    client_cert: str | None = None
    trusted_hosts: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    timeout: float | None = None
    retries: int | None = None
    proxy: str | None = None
    constraints: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    origin: Mapping[str, str] = attrs.field(factory=dict)  # key -> the file or PIP_ variable it came from

    @property
    def index_urls(self) -> tuple[str, ...]:
        """The indexes pip reads, in its order (none with `no-index`)."""
        return () if self.no_index else (self.index_url, *self.extra_index_urls)


def normalize(name: str) -> str:
    """A setting's name as pip keys it (`--Index_URL` -> `index-url`)."""
    return name.lower().replace("_", "-").removeprefix("--")


def config_files(environ: Mapping[str, str], *, home: Path | None = None, prefix: str | None = None) -> list[Path]:
    """The files pip would read, in override order (later wins); none when PIP_CONFIG_FILE is the null device."""
    named = environ.get("PIP_CONFIG_FILE")
    if named is not None and named == os.devnull:
        return []
    home = home if home is not None else Path(environ.get("HOME") or Path.home())
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "")
    if not xdg_dirs.strip():
        xdg_dirs = "/etc/xdg"
    files = [Path(folder) / "pip" / "pip.conf" for folder in xdg_dirs.split(os.pathsep) if folder]
    files.append(Path("/etc/pip.conf"))
    if not (named and os.path.exists(named)):
        xdg_home = environ.get("XDG_CONFIG_HOME", "")
        if not xdg_home.strip():
            xdg_home = str(home / ".config")
        files += [home / ".pip" / "pip.conf", Path(xdg_home) / "pip" / "pip.conf"]
    files.append(Path(prefix if prefix is not None else sys.prefix) / "pip.conf")
    if named:
        files.append(Path(named))
    return files


def values(environ: Mapping[str, str], *, home: Path | None = None,
           prefix: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Every setting `pip download` would see: key -> value, and key -> where it came from."""
    per_file: dict[str, dict[str, tuple[str, str]]] = {}  # keyed by file name as pip keys it
    for path in config_files(environ, home=home, prefix=prefix):
        if not path.exists():
            continue
        parser = configparser.RawConfigParser()
        parser.optionxform = normalize  # type: ignore[assignment,method-assign]
        try:
            parser.read(path, encoding=locale.getpreferredencoding(False))
        except (configparser.Error, UnicodeDecodeError, OSError) as exc:
            raise Unsupported(f"pip configuration {path} is unreadable ({exc.__class__.__name__})") from None
        entries = per_file.setdefault(str(path), {})
        for section in parser.sections():
            for name, value in parser.items(section):
                entries[f"{section}.{normalize(name)}"] = (value, str(path))
    sections: dict[str, dict[str, tuple[str, str]]] = {"global": {}, "download": {}, ":env:": {}}
    for entries in per_file.values():
        for key, pair in entries.items():
            section, _, name = key.partition(".")
            if section in sections:
                sections[section][name] = pair
    for key, value in environ.items():
        if key.startswith("PIP_") and key[4:].lower() not in _ENV_NAMES_IGNORED:
            sections[":env:"][normalize(key[4:])] = (value, key)
    found: dict[str, str] = {}
    origin: dict[str, str] = {}
    for section in ("global", "download", ":env:"):
        for name, (value, where) in sections[section].items():
            if value:  # pip drops empty values
                found[name], origin[name] = value, where
    return found, origin


def settings(environ: Mapping[str, str], *, home: Path | None = None, prefix: str | None = None) -> Settings:
    """pip's configuration for `pip download`, or Unsupported when it asks for what relay does not do itself."""
    found, origin = values(environ, home=home, prefix=prefix)

    def where(key: str) -> str:
        return f"pip setting {key} ({origin[key]})"

    for key in sorted(found):
        if key not in USED and key not in HARMLESS:
            raise Unsupported(where(key))
        if key in USED and "${" in found[key]:
            raise Unsupported(f"{where(key)} holds ${{...}}, which pip does not expand")
    no_index = False
    if "no-index" in found:
        flag = found["no-index"].lower()
        if flag not in TRUE | FALSE:
            raise Unsupported(f"{where('no-index')} is not a boolean")
        no_index = flag in TRUE
    timeout = None
    for key in ("default-timeout", "timeout"):  # one option under two names: the later in pip's order wins
        if key in found:
            try:
                timeout = float(found[key])
            except ValueError:
                raise Unsupported(f"{where(key)} is not a number") from None
    retries = None
    if "retries" in found:
        try:
            retries = int(found["retries"])
        except ValueError:
            raise Unsupported(f"{where('retries')} is not a whole number") from None
    if "client-cert" in found:
        raise Unsupported(f"{where('client-cert')}: a client certificate is pip's to present")
    find_links = [os.path.expanduser(link) if link.startswith("~") and os.path.exists(os.path.expanduser(link))
                  else link for link in found.get("find-links", "").split()]
    return Settings(
        index_url=found.get("index-url", DEFAULT_INDEX).strip(),
        extra_index_urls=found.get("extra-index-url", "").split(),
        no_index=no_index,
        find_links=find_links,
        cert=os.path.expanduser(found["cert"]) if "cert" in found else None,
        trusted_hosts=found.get("trusted-host", "").split(),
        timeout=timeout if timeout and timeout > 0 else None,
        retries=retries,
        proxy=found.get("proxy") or None,
        constraints=found.get("constraint", "").split(),
        origin={key: origin[key] for key in found},
    )


# -- constraint files -----------------------------------------------------------------------------

_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
_COMMENT = re.compile(r"(^|\s+)#.*$")


@attrs.frozen
class Constraint:
    name: str  # canonical
    specifier: str
    marker: str | None
    url: str | None
    line: str
    file: str


def read_constraints(paths: tuple[str, ...], environ: Mapping[str, str]) -> tuple[Constraint, ...]:
    """The constraints in pip's constraint files (plain requirement lines, `${VAR}` expanded as pip does).

    Unsupported for what relay does not read itself: a URL, a nested `-c`/`-r` or any option line,
    a line `packaging` cannot parse, a missing file (pip then fails with its own message).
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    found: list[Constraint] = []
    for name in paths:
        if "://" in name and not name.startswith("file://"):
            raise Unsupported(f"constraint file {name} is a URL")
        path = Path(name.removeprefix("file://"))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Unsupported(f"constraint file {path}: {exc.__class__.__name__}") from None
        for raw in _logical_lines(text):
            line = _ENV_VAR.sub(lambda m: environ.get(m.group(1), m.group(0)), _COMMENT.sub("", raw)).strip()
            if not line:
                continue
            if line.startswith("-"):
                raise Unsupported(f"constraint file {path} has an option line ({line.split()[0]})")
            try:
                parsed = Requirement(line)
            except InvalidRequirement:
                raise Unsupported(f"constraint file {path} has a line pip must read ({line!r})") from None
            found.append(Constraint(name=canonicalize_name(parsed.name), specifier=str(parsed.specifier),
                                    marker=str(parsed.marker) if parsed.marker else None, url=parsed.url,
                                    line=line, file=str(path)))
    return tuple(found)


def _logical_lines(text: str) -> list[str]:
    """Lines joined across a trailing backslash, as pip's requirements reader joins them."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\") and not _COMMENT.search(raw):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def blocked(constraints: tuple[Constraint, ...], name: str, version: str) -> str | None:
    """Why a constraint leaves `name==version` to pip (it contradicts the pin, or relay cannot judge it), or None."""
    from packaging.specifiers import SpecifierSet

    for constraint in constraints:
        if constraint.name != name:
            continue
        if constraint.url or constraint.marker:
            return f"constraint {constraint.line!r} in {constraint.file} is pip's to apply"
        if not SpecifierSet(constraint.specifier).contains(version, prereleases=True):
            return f"constraint {constraint.line!r} in {constraint.file} excludes {name}=={version}"
    return None
