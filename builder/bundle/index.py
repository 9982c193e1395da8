"""Locked wheels straight from the package index, choosing the file pip would choose.

A relay lock pins every requirement as `name==version` with its sha256 hashes, so there is
nothing to resolve: the index's file list for the name (a PEP 691 JSON or PEP 503 HTML page),
kept to the pinned hashes and the wheels the Lambda platform loads, names the file. Which one, when
several qualify, is pip's answer: the file whose best tag ranks first in the tag order
`pip download --platform ... --implementation cp --python-version X.Y` builds (`supported_tags`),
a non-yanked file before a yanked one, then the higher build tag, then page order.

`route` says whether the index pip would use is known for certain (no pip configuration file,
no `PIP_*` setting beyond `PIP_INDEX_URL` and ones that do not change where files come from); when it
is not, relay leaves the download to pip. Everything that can go wrong on the way (HTTP errors, an
unreadable page, no pinned file) is `Unserved`: the caller hands that requirement to pip. A download
whose bytes do not match the pin is not `Unserved`: it is refused, as pip would refuse it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from builder import __version__
from builder.bundle import platform
from builder.errors import BuildFailed
from builder.lock.lockfile import LockedRequirement

if TYPE_CHECKING:
    from packaging.tags import Tag

DEFAULT_INDEX = "https://pypi.org/simple/"
TIMEOUT_SECONDS = 60.0
ATTEMPTS = 3  # per request, on connection errors and 5xx
USER_AGENT = f"relay/{__version__} (locked wheel fetch; Python urllib)"
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
CHUNK = 1 << 20

# PIP_* settings that do not change which index pip reads or how it reaches it.
HARMLESS_PIP_ENV = frozenset({
    "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_CACHE_DIR", "PIP_CACHE_DIR", "PIP_QUIET", "PIP_VERBOSE",
    "PIP_NO_INPUT", "PIP_NO_COLOR", "PIP_PROGRESS_BAR", "PIP_ROOT_USER_ACTION", "PIP_NO_WARN_SCRIPT_LOCATION",
    "PIP_NO_PYTHON_VERSION_WARNING", "PIP_REQUIRE_VIRTUALENV", "PIP_DEFAULT_TIMEOUT", "PIP_TIMEOUT",
    "PIP_RETRIES", "PIP_LOG", "PIP_LOG_FILE", "PIP_BREAK_SYSTEM_PACKAGES",
})


class Unserved(Exception):
    """The direct path cannot serve this requirement (pip can try): the reason, for a progress line."""


# -- which index ----------------------------------------------------------------------------------


@attrs.frozen
class Route:
    """The index to fetch from directly (`index`), or None and why pip keeps the download (`reason`)."""

    index: str | None
    reason: str = ""

    @property
    def shown(self) -> str:
        """Where wheels come from, safe to print (a password in the index URL is `****`)."""
        return f"from {redact(self.index)}" if self.index else f"with pip ({self.reason})"


def route(environ: Mapping[str, str] | None = None, *, home: Path | None = None, prefix: str | None = None) -> Route:
    """Whether the index pip would use is known for certain: then it is the route, else pip."""
    env = os.environ if environ is None else environ
    for path in pip_config_files(env, home=home, prefix=prefix):
        if path.exists():
            return Route(None, f"pip configuration {path}")
    unknown = sorted(k for k in env if k.upper().startswith("PIP_") and k.upper() not in HARMLESS_PIP_ENV
                     and k.upper() not in ("PIP_INDEX_URL", "PIP_CONFIG_FILE"))
    if unknown:
        return Route(None, f"{unknown[0]} is set")
    index = env.get("PIP_INDEX_URL", DEFAULT_INDEX)
    scheme = urllib.parse.urlsplit(index).scheme
    if scheme not in ("http", "https"):
        return Route(None, f"index {redact(index)} is not http(s)")
    return Route(index)


def pip_config_files(environ: Mapping[str, str], *, home: Path | None = None, prefix: str | None = None) -> list[Path]:
    """Every file pip reads its configuration from on this host (none when PIP_CONFIG_FILE is the null device)."""
    named = environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    home = home if home is not None else Path.home()
    files = [Path(named)] if named else []
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files += [Path(folder) / "pip" / "pip.conf" for folder in xdg_dirs.split(os.pathsep) if folder]
    files.append(Path("/etc/pip.conf"))
    xdg_home = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    files += [home / ".pip" / "pip.conf", Path(xdg_home) / "pip" / "pip.conf"]
    files.append(Path(prefix if prefix is not None else sys.prefix) / "pip.conf")
    if environ.get("VIRTUAL_ENV"):
        files.append(Path(environ["VIRTUAL_ENV"]) / "pip.conf")
    return files


def redact(url: str) -> str:
    """`url` with its password (or a lone user name, often a token) as `****`, as pip shows it."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:****" if colon else "****"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{shown}@{host}"))


# -- what the index lists -------------------------------------------------------------------------


@attrs.frozen
class IndexFile:
    filename: str
    url: str  # absolute
    sha256: str | None
    requires_python: str | None = None
    yanked: bool = False


def parse_json(text: str, page_url: str) -> list[IndexFile]:
    """A PEP 691 JSON project page's files."""
    try:
        doc = json.loads(text)
        files = doc["files"]
        return [
            IndexFile(
                filename=str(entry["filename"]),
                url=urllib.parse.urljoin(page_url, str(entry["url"])),
                sha256=(entry.get("hashes") or {}).get("sha256"),
                requires_python=entry.get("requires-python") or None,
                yanked=bool(entry.get("yanked", False)),
            )
            for entry in files
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Unserved(f"unreadable JSON index page ({exc.__class__.__name__})") from None


def parse_html(text: str, page_url: str) -> list[IndexFile]:
    """A PEP 503 HTML project page's files (the `#sha256=` fragment is the hash)."""
    parser = _Anchors()
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser is lenient; anything it does raise means "not a page we can read"
        raise Unserved(f"unreadable HTML index page ({exc.__class__.__name__})") from None
    base = urllib.parse.urljoin(page_url, parser.base) if parser.base else page_url
    found = []
    for attrs_of in parser.anchors:
        href = attrs_of.get("href")
        if not href:
            continue
        url = urllib.parse.urljoin(base, href)
        clean, _, fragment = url.partition("#")
        filename = urllib.parse.unquote(urllib.parse.urlsplit(clean).path.rsplit("/", 1)[-1])
        name, _, value = fragment.partition("=")
        found.append(IndexFile(
            filename=filename,
            url=clean,
            sha256=value if name == "sha256" and value else None,
            requires_python=attrs_of.get("data-requires-python") or None,
            yanked="data-yanked" in attrs_of,
        ))
    return found


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append({k: v or "" for k, v in attrs})
        elif tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")


# -- which file -----------------------------------------------------------------------------------


@functools.cache
def supported_tags(runtime: str, arch: str) -> dict[Tag, int]:
    """Tag -> rank (0 best), as pip's `get_supported` builds them for relay's `--platform ... --implementation cp`."""
    from packaging.tags import compatible_tags, cpython_tags

    version = tuple(int(part) for part in platform.python_version(runtime).split("."))
    platforms = _expand_platforms(platform.platform_tags(runtime, arch))
    ranked: dict[Tag, int] = {}
    tags = [*cpython_tags(python_version=version, platforms=platforms),
            *compatible_tags(python_version=version, interpreter=f"cp{version[0]}{version[1]}", platforms=platforms)]
    for rank, tag in enumerate(tags):
        ranked.setdefault(tag, rank)
    return ranked


def _expand_platforms(tags: tuple[str, ...]) -> list[str]:
    """pip's `_expand_allowed_platforms`: manylinux2014/2010 also bring the older legacy aliases, in place."""
    result: list[str] = []
    for tag in tags:
        prefix, _, machine = tag.partition("_")
        more = [tag]
        if prefix == "manylinux2014" and machine in ("i686", "x86_64"):
            more += [f"manylinux2010_{machine}", f"manylinux1_{machine}"]
        elif prefix == "manylinux2010":
            more.append(f"manylinux1_{machine}")
        result += [t for t in more if t not in result]
    return result


def choose(files: list[IndexFile], req: LockedRequirement, runtime: str, arch: str) -> IndexFile | None:
    """The file pip would download for `req` on the platform among `files`, or None when none is pinned and loadable."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    ranks = supported_tags(runtime, arch)
    pins = {h.removeprefix("sha256:").lower() for h in req.hashes if h.startswith("sha256:")}
    wanted = SpecifierSet(f"=={req.version}")
    python = Version(platform.python_version(runtime))
    best: IndexFile | None = None
    best_key: tuple = ()
    for candidate in files:
        if not candidate.filename.endswith(".whl") or (candidate.sha256 or "").lower() not in pins:
            continue
        try:
            name, version, build, tags = parse_wheel_filename(candidate.filename)
        except InvalidWheelFilename:
            continue
        if canonicalize_name(name) != canonicalize_name(req.name) or not wanted.contains(version, prereleases=True):
            continue
        if not platform.wheel_compatible(candidate.filename, runtime, arch):
            continue
        held = [ranks[tag] for tag in tags if tag in ranks]
        if not held:
            continue
        if candidate.requires_python:
            try:
                if not SpecifierSet(candidate.requires_python).contains(python, prereleases=True):
                    continue
            except InvalidSpecifier:
                pass  # pip ignores a malformed Requires-Python
        key = (not candidate.yanked, -min(held), build)
        if best is None or key > best_key:  # the first of equals wins, as max() in pip
            best, best_key = candidate, key
    return best


# -- HTTP -----------------------------------------------------------------------------------------


class Client:
    """Reads one index's project pages and downloads its files: timeouts, retries, Basic auth for the index's host.

    The timeout per request is pip's own when PIP_TIMEOUT/PIP_DEFAULT_TIMEOUT sets one, else `timeout`.
    """

    def __init__(self, index: str, *, environ: Mapping[str, str] | None = None, timeout: float = TIMEOUT_SECONDS,
                 attempts: int = ATTEMPTS) -> None:
        env = os.environ if environ is None else environ
        parts = urllib.parse.urlsplit(index)
        self._auth: str | None = None
        host = parts.netloc
        if "@" in host:
            userinfo, _, host = host.rpartition("@")
            user, _, password = userinfo.partition(":")
            token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
            self._auth = "Basic " + base64.b64encode(token.encode()).decode("ascii")
        self._host = host
        self.index = urllib.parse.urlunsplit(parts._replace(netloc=host))
        if not self.index.endswith("/"):
            self.index += "/"
        self.shown = redact(index)
        self._timeout = _pip_timeout(env) or timeout
        self._attempts = attempts
        # As requests does for pip: a CA bundle named in the environment is the one trusted.
        cafile = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or None
        try:
            context = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise Unserved(f"CA bundle {cafile}: {exc}") from None
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))  # + env proxies

    def files(self, name: str) -> list[IndexFile]:
        """The project page of `name`: its files, or Unserved."""
        from packaging.utils import canonicalize_name

        url = self.index + urllib.parse.quote(canonicalize_name(name)) + "/"
        with self._open(url, accept=ACCEPT) as response:
            final = response.geturl()
            kind = response.headers.get_content_type()
            charset = response.headers.get_content_charset() or "utf-8"
            body = self._read(response, url).decode(charset, errors="replace")
        if kind == "application/vnd.pypi.simple.v1+json":
            return parse_json(body, final)
        if kind in ("text/html", "application/vnd.pypi.simple.v1+html"):
            return parse_html(body, final)
        raise Unserved(f"index page for {name} is {kind}, neither JSON nor HTML")

    def download(self, file: IndexFile, folder: Path) -> tuple[Path, str]:
        """`file` written to `folder/<filename>` (0644 less the umask) as it streams in: its path and sha256."""
        if "/" in file.filename or file.filename in ("", ".", ".."):
            raise Unserved(f"unusable file name {file.filename!r}")
        target = folder / file.filename
        with self._open(file.url, accept="*/*") as response:
            digest = hashlib.sha256()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as out:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except (OSError, http_errors()) as exc:
                        raise Unserved(f"{file.filename}: download broke off ({exc.__class__.__name__})") from None
                    if not block:
                        break
                    digest.update(block)
                    out.write(block)
        return target, digest.hexdigest()

    def _open(self, url: str, *, accept: str):  # -> an http.client.HTTPResponse
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": accept})
        if self._auth and urllib.parse.urlsplit(url).netloc == self._host:
            request.add_unredirected_header("Authorization", self._auth)  # never sent on to another host
        shown = redact(url)
        for attempt in range(1, self._attempts + 1):
            try:
                return self._opener.open(request, timeout=self._timeout)
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code < 500 or attempt == self._attempts:
                    raise Unserved(f"{shown}: HTTP {exc.code}") from None
            except (urllib.error.URLError, OSError, http_errors()) as exc:
                if attempt == self._attempts:
                    reason = getattr(exc, "reason", exc)
                    raise Unserved(f"{shown}: {reason}") from None
            time.sleep(0.3 * attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _read(response, url: str) -> bytes:
        try:
            return response.read()
        except (OSError, http_errors()) as exc:
            raise Unserved(f"{redact(url)}: read broke off ({exc.__class__.__name__})") from None


def _pip_timeout(env: Mapping[str, str]) -> float | None:
    """pip's own `--timeout` from the environment (PIP_TIMEOUT or PIP_DEFAULT_TIMEOUT), when one is set."""
    for key in ("PIP_TIMEOUT", "PIP_DEFAULT_TIMEOUT"):
        try:
            seconds = float(env.get(key, ""))
        except ValueError:
            continue
        if seconds > 0:
            return seconds
    return None


def http_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def fetch_one(client: Client, req: LockedRequirement, runtime: str, arch: str, folder: Path) -> tuple[Path, str]:
    """The pinned wheel pip would pick for `req`, downloaded into `folder` and checked against the pins: path, sha256.

    Unserved when the index cannot say (pip may); BuildFailed when the bytes differ from every pin.
    """
    files = client.files(req.name)
    chosen = choose(files, req, runtime, arch)
    if chosen is None:
        raise Unserved(f"{client.shown} lists no pinned wheel of {req.name}=={req.version} for {runtime}/{arch}")
    path, digest = client.download(chosen, folder)
    if f"sha256:{digest}" not in req.hashes:
        path.unlink(missing_ok=True)
        raise BuildFailed(
            "download",
            f"hash mismatch for {req.name}=={req.version}: the file {chosen.filename} downloaded from "
            f"{client.shown} has sha256 {digest}, which the lock does not pin",
            hint="The lock or the package source changed: check who edited the lock, "
                 "then `relay lock --upgrade` if the change is wanted.",
        )
    return path, digest
