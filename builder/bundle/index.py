"""Locked wheels straight from the package index, choosing the file pip would choose.

A relay lock pins every requirement as `name==version` with its sha256 hashes, so there is
nothing to resolve: the index's file list for the name (a PEP 691 JSON or PEP 503 HTML page),
kept to the pinned hashes and the wheels the Lambda platform loads, names the file. Which one, when
several qualify, is pip's answer: the file whose best tag ranks first in the tag order
`pip download --platform ... --implementation cp --python-version X.Y` builds (`supported_tags`),
a non-yanked file before a yanked one, then the higher build tag, then page order.

`route` reads pip's configuration as `pip download` would (`pipconfig.py`): the sources (every
index page, http(s) or a local `file://` PEP 503 tree, and every find-links folder or page; the
candidates are their union) and pip's connection settings, or, when that configuration asks for
something relay does not do itself, pip and why. Everything that can go wrong on the way (HTTP
errors, an unreadable page, no pinned file, a pin a constraint file excludes) is `Unserved`: the
caller hands that requirement to pip. A download
whose bytes do not match the pin is not `Unserved`: it is refused, as pip would refuse it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import ssl
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
from builder.bundle import pipconfig, platform
from builder.errors import BuildFailed
from builder.frozen import to_tuple
from builder.lock.lockfile import LockedRequirement

if TYPE_CHECKING:
    from packaging.tags import Tag

DEFAULT_INDEX = pipconfig.DEFAULT_INDEX
TIMEOUT_SECONDS = 60.0
ATTEMPTS = 3  # per request, on connection errors and 5xx
USER_AGENT = f"relay/{__version__} (locked wheel fetch; Python urllib)"
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
CHUNK = 1 << 20

class Unserved(Exception):
    """The direct path cannot serve this requirement (pip can try): the reason, for a progress line."""


class NotFound(Unserved):
    """A source has no page for the project (HTTP 404, no folder): pip reads nothing there either."""


# -- where from -----------------------------------------------------------------------------------


@attrs.frozen
class Route:
    """pip's sources and connection settings to fetch from directly (`settings`), or None and why pip keeps the download."""

    settings: pipconfig.Settings | None
    reason: str = ""
    constraints: tuple[pipconfig.Constraint, ...] = attrs.field(default=(), converter=to_tuple)

    @property
    def index(self) -> str | None:
        """The first index read directly (None when pip keeps the download or only find-links serve)."""
        urls = self.settings.index_urls if self.settings is not None else ()
        return urls[0] if urls else None

    @property
    def shown(self) -> str:
        """Where wheels come from, safe to print (a password in a URL is `****`)."""
        if self.settings is None:
            return f"with pip ({self.reason})"
        return "from " + ", ".join(redact(url) for url in (*self.settings.index_urls, *self.settings.find_links))

    def client(self) -> Client:
        """The client reading every source of this route (Unserved when its connection settings are unusable)."""
        assert self.settings is not None
        return Client(self.settings, constraints=self.constraints)


def route(environ: Mapping[str, str] | None = None, *, home: Path | None = None, prefix: str | None = None) -> Route:
    """pip's configuration as `pip download` would read it: the direct route, or pip and why."""
    env = os.environ if environ is None else environ
    try:
        settings = pipconfig.settings(env, home=home, prefix=prefix)
        constraints = pipconfig.read_constraints(settings.constraints, env)
    except pipconfig.Unsupported as exc:
        return Route(None, str(exc))
    if not settings.index_urls and not settings.find_links:
        return Route(None, "no-index and no find-links: pip has nowhere to look either")
    for url in (*settings.index_urls, *(link for link in settings.find_links if "://" in link)):
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https", "file"):
            return Route(None, f"source {redact(url)} is not http(s) or file")
        if scheme == "http" and not _secure_http(url, settings.trusted_hosts):
            return Route(None, f"source {redact(url)} is plain http and not a trusted-host (pip ignores it)")
    if settings.cert is not None and not os.path.exists(settings.cert):
        return Route(None, f"CA bundle {settings.cert} (pip setting cert) does not exist")
    return Route(settings, constraints=constraints)


def _secure_http(url: str, trusted: tuple[str, ...]) -> bool:
    """pip reads plain http only from this machine or a `trusted-host` (host, or host:port)."""
    import ipaddress

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if host == "localhost" or _trusted(parts, trusted):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback


def _trusted(parts: urllib.parse.SplitResult, trusted: tuple[str, ...]) -> bool:
    host = (parts.hostname or "").lower()
    for entry in trusted:
        name, _, port = entry.lower().rpartition(":") if entry.count(":") == 1 else (entry.lower(), "", "")
        if name == host and (not port or port == str(parts.port or "")):
            return True
    return False


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


def parse_json(text: str, page_url: str, pins: frozenset[str] | None = None) -> list[IndexFile]:
    """A PEP 691 JSON project page's files (with `pins`, only those with one of these sha256s or none)."""
    try:
        found = []
        for entry in json.loads(text)["files"]:
            sha256 = (entry.get("hashes") or {}).get("sha256")
            if pins is not None and sha256 is not None and sha256.lower() not in pins:
                continue  # a page lists every release (15,000 files for pydantic-core): keep the pinned ones
            found.append(IndexFile(
                filename=str(entry["filename"]),
                url=urllib.parse.urljoin(page_url, str(entry["url"])),
                sha256=sha256,
                requires_python=entry.get("requires-python") or None,
                yanked=bool(entry.get("yanked", False)),
            ))
        return found
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
    """Reads every source pip would read and downloads their files, with pip's connection settings.

    Sources: the index pages (`index-url`, `extra-index-url`; http(s) or a `file://` PEP 503 tree) and
    `find-links` (a folder, a `file://` or http(s) page listing files). Connection: `cert` trusted
    beside the system's CAs and a `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` (requests honours those for
    pip), `trusted-host` (unverified https), `proxy` (else the environment's), `timeout`, `retries`,
    Basic auth for a source URL's host from its `user:password@`.
    """

    def __init__(self, settings: pipconfig.Settings | str, *, constraints: tuple[pipconfig.Constraint, ...] = (),
                 environ: Mapping[str, str] | None = None, timeout: float = TIMEOUT_SECONDS,
                 attempts: int = ATTEMPTS) -> None:
        env = os.environ if environ is None else environ
        if isinstance(settings, str):
            settings = pipconfig.Settings(index_url=settings, timeout=_pip_timeout(env))
        self.settings = settings
        self.constraints = constraints
        self._auth: dict[str, str] = {}
        self.indexes = [self._remember_auth(url, slash=True) for url in settings.index_urls]
        self.find_links = [self._remember_auth(link, slash=False) if "://" in link else link
                           for link in settings.find_links]
        self.shown = Route(settings).shown.removeprefix("from ")
        self._timeout = settings.timeout or timeout
        self._attempts = settings.retries + 1 if settings.retries is not None else attempts
        self._trusted = settings.trusted_hosts
        cafile: str | None = None
        try:
            context = ssl.create_default_context()  # the system's CAs (its default file, parsed: ~0.03 s)
            # A file already loaded adds nothing: CI hosts often name the system's file in both (~0.03 s each).
            loaded = {os.path.realpath(default)} if (default := ssl.get_default_verify_paths().cafile) else set()
            for cafile in (settings.cert, env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")):
                if cafile and os.path.isdir(cafile):
                    context.load_verify_locations(capath=cafile)
                elif cafile and os.path.realpath(cafile) not in loaded:
                    context.load_verify_locations(cafile=cafile)
                    loaded.add(os.path.realpath(cafile))
        except (OSError, ssl.SSLError) as exc:
            raise Unserved(f"CA bundle {cafile}: {exc}") from None
        proxies = urllib.request.ProxyHandler({"http": settings.proxy, "https": settings.proxy}
                                              if settings.proxy else None)  # None: the environment's
        self._opener = urllib.request.build_opener(proxies, urllib.request.HTTPSHandler(context=context))
        loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies nothing: no CA store to load (~0.05 s)
        loose.check_hostname = False
        loose.verify_mode = ssl.CERT_NONE
        self._loose_opener = urllib.request.build_opener(proxies, urllib.request.HTTPSHandler(context=loose))

    @property
    def index(self) -> str:
        """The first index (credentials removed), or "" when only find-links serve."""
        return self.indexes[0] if self.indexes else ""

    def _remember_auth(self, url: str, *, slash: bool) -> str:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc
        if "@" in host:
            userinfo, _, host = host.rpartition("@")
            user, _, password = userinfo.partition(":")
            token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
            self._auth.setdefault(host, "Basic " + base64.b64encode(token.encode()).decode("ascii"))
        clean = urllib.parse.urlunsplit(parts._replace(netloc=host))
        return clean if not slash or clean.endswith("/") else clean + "/"

    def files(self, name: str, version: str | None = None, pins: frozenset[str] | None = None) -> list[IndexFile]:
        """`name`'s files from every source, in pip's order (indexes, then find-links); Unserved when one fails.

        A source without the project (HTTP 404, no folder) adds nothing, as for pip; when none has it, NotFound.
        `version`: only local find-links files of that version are hashed; `pins`: JSON pages keep only files
        with one of these sha256s (or none).
        """
        from packaging.utils import canonicalize_name

        project = canonicalize_name(name)
        found: list[IndexFile] = []
        missed: list[NotFound] = []
        for index in self.indexes:
            try:
                found += self._page(index + urllib.parse.quote(project) + "/", project_page=True, pins=pins)
            except NotFound as exc:
                missed.append(exc)
        for link in self.find_links:
            found += self._find_links(link, project, version)
        if not found and missed:
            raise missed[0]
        return found

    def _page(self, url: str, *, project_page: bool, pins: frozenset[str] | None = None) -> list[IndexFile]:
        if url.startswith("file:"):
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
            if path.is_dir():
                path /= "index.html"
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                raise NotFound(f"{url}: no such page") from None
            return parse_html(text, path.as_uri())
        with self._open(url, accept=ACCEPT if project_page else "text/html") as response:
            final = response.geturl()
            kind = response.headers.get_content_type()
            charset = response.headers.get_content_charset() or "utf-8"
            body = self._read(response, url).decode(charset, errors="replace")
        if kind == "application/vnd.pypi.simple.v1+json":
            return parse_json(body, final, pins)
        if kind in ("text/html", "application/vnd.pypi.simple.v1+html"):
            return parse_html(body, final)
        raise Unserved(f"page {redact(url)} is {kind}, neither JSON nor HTML")

    def _find_links(self, link: str, project: str, version: str | None) -> list[IndexFile]:
        """`project`'s files at a find-links location: a folder's wheels (hashed here), or a page's links."""
        from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

        if "://" in link and not link.startswith("file:"):
            listed = self._page(link, project_page=False)
        else:
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(link).path)) if "://" in link else Path(link)
            if path.is_dir():
                listed = [IndexFile(p.name, p.resolve().as_uri(), None) for p in sorted(path.iterdir()) if p.is_file()]
            elif path.is_file() and path.suffix in (".html", ".htm"):
                listed = parse_html(path.read_text(encoding="utf-8", errors="replace"), path.resolve().as_uri())
            elif path.is_file():
                listed = [IndexFile(path.name, path.resolve().as_uri(), None)]
            else:
                return []  # pip ignores a location that does not exist
        kept = []
        for file in listed:
            try:
                name, found_version, _, _ = parse_wheel_filename(file.filename)
            except InvalidWheelFilename:
                continue
            if canonicalize_name(name) != project:
                continue
            if file.sha256 is None and file.url.startswith("file:") and (version is None or str(found_version) == version):
                file = attrs.evolve(file, sha256=_sha256_path(_local_path(file.url)))
            kept.append(file)
        return kept

    def download(self, file: IndexFile, folder: Path) -> tuple[Path, str]:
        """`file` written to `folder/<filename>` (0644 less the umask) as it streams in: its path and sha256."""
        if "/" in file.filename or file.filename in ("", ".", ".."):
            raise Unserved(f"unusable file name {file.filename!r}")
        target = folder / file.filename
        if file.url.startswith("file:"):
            try:
                source = open(_local_path(file.url), "rb")  # noqa: SIM115  (closed below)
            except OSError as exc:
                raise Unserved(f"{file.url}: {exc.strerror}") from None
        else:
            source = self._open(file.url, accept="*/*")
        with source as response:
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
        parts = urllib.parse.urlsplit(url)
        if parts.netloc in self._auth:
            request.add_unredirected_header("Authorization", self._auth[parts.netloc])  # never sent on to another host
        opener = self._loose_opener if _trusted(parts, self._trusted) else self._opener
        shown = redact(url)
        for attempt in range(1, self._attempts + 1):
            try:
                return opener.open(request, timeout=self._timeout)
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code == 404:
                    raise NotFound(f"{shown}: HTTP 404") from None
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


def _local_path(url: str) -> Path:
    return Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))


def _sha256_path(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


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
    """The pinned wheel pip would pick for `req` among every source, downloaded into `folder` and checked: path, sha256.

    Unserved when the sources cannot say (pip may): a constraint pip must apply, no pinned loadable wheel, a
    candidate listed without a hash (pip would hash it; relay cannot rank it); BuildFailed when the bytes differ
    from every pin. The same file (same sha256) in several sources is one file, read from a local one if any.
    """
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    why = pipconfig.blocked(client.constraints, canonicalize_name(req.name), req.version)
    if why is not None:
        raise Unserved(why)
    pins = frozenset(h.removeprefix("sha256:").lower() for h in req.hashes if h.startswith("sha256:"))
    files = client.files(req.name, req.version, pins)
    for file in files:
        if file.sha256 is None and file.filename.endswith(".whl"):
            try:
                name, version, _, _ = parse_wheel_filename(file.filename)
            except InvalidWheelFilename:
                continue
            if canonicalize_name(name) == canonicalize_name(req.name) and str(version) == req.version:
                raise Unserved(f"{redact(file.url)} has no hash to rank it by")
    chosen = choose(files, req, runtime, arch)
    if chosen is None:
        raise Unserved(f"{client.shown} lists no pinned wheel of {req.name}=={req.version} for {runtime}/{arch}")
    same = [f for f in files if f.sha256 == chosen.sha256 and f.url.startswith("file:")]
    if same and not chosen.url.startswith("file:"):
        chosen = attrs.evolve(chosen, url=same[0].url)
    path, digest = client.download(chosen, folder)
    if f"sha256:{digest}" not in req.hashes:
        path.unlink(missing_ok=True)
        raise BuildFailed(
            "download",
            f"hash mismatch for {req.name}=={req.version}: the file {chosen.filename} downloaded from "
            f"{redact(chosen.url)} has sha256 {digest}, which the lock does not pin",
            hint="The lock or the package source changed: check who edited the lock, "
                 "then `relay lock --upgrade` if the change is wanted.",
        )
    return path, digest
