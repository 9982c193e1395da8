"""A real package index on a free local port, for the direct wheel fetch tests.

Serves `/simple/<name>/` as a PEP 691 JSON page (`mode="json"`) or a PEP 503 HTML page
(`mode="html"`) listing the wheels in a folder, and the wheels under `/files/`, over http or, with
`tls` (a certificate and its key), https. Every request is logged (path, User-Agent, Authorization)
so a test sees who fetched what.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import attrs


@attrs.define
class Index:
    folder: Path
    mode: str = "json"  # json | html | 404 | garbage | garbage-unless-pip
    user: str | None = None  # Basic auth required when set
    password: str | None = None
    tamper: dict[str, bytes] = attrs.field(factory=dict)  # file name -> the bytes served instead
    garbage_for: set[str] = attrs.field(factory=set)  # projects whose page only pip gets right
    failures: int = 0  # the first N requests get a 503
    tls: tuple[Path, Path] | None = None  # (certificate, key): served over https
    hold: dict[str, threading.Event] = attrs.field(factory=dict)  # file name -> sent once it is set (or after 30 s)
    released: dict[str, bool] = attrs.field(factory=dict)  # file name -> whether its event (not the time) sent it
    log: list[dict[str, str]] = attrs.field(factory=list)
    url: str = ""

    @property
    def simple(self) -> str:
        return f"{self.url}/simple/"

    def user_agents(self) -> set[str]:
        return {entry["ua"] for entry in self.log}

    def pip_requests(self) -> list[dict[str, str]]:
        return [entry for entry in self.log if entry["ua"].startswith("pip/")]


@contextmanager
def serving(index: Index) -> Iterator[Index]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(index))
    scheme = "http"
    if index.tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*index.tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    index.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _handler(index: Index) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def do_GET(self) -> None:
            ua = self.headers.get("User-Agent", "")
            index.log.append({"path": self.path, "ua": ua, "auth": self.headers.get("Authorization", "")})
            if index.user is not None:
                token = base64.b64encode(f"{index.user}:{index.password}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {token}":
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="index"')
                    self.end_headers()
                    return
            if index.failures > 0:
                index.failures -= 1
                self._send(503, "text/plain", b"try again")
                return
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if len(parts) == 2 and parts[0] == "simple":
                self._page(parts[1], ua)
            elif len(parts) == 2 and parts[0] == "files" and (index.folder / parts[1]).is_file():
                name = parts[1]
                if name in index.hold:
                    index.released[name] = index.hold[name].wait(timeout=30)
                self._send(200, "application/octet-stream", index.tamper.get(name, (index.folder / name).read_bytes()))
            else:
                self._send(404, "text/plain", b"not found")

        def _page(self, project: str, ua: str) -> None:
            mode = index.mode
            if mode == "garbage-unless-pip" or project in index.garbage_for:
                mode = "html" if ua.startswith("pip/") else "garbage"
            if mode == "404":
                self._send(404, "text/plain", b"not found")
                return
            if mode == "garbage":
                self._send(200, "application/vnd.pypi.simple.v1+json", b"{not json")
                return
            wheels = sorted(p for p in index.folder.glob("*.whl") if _project(p.name) == project)
            if not wheels:
                self._send(404, "text/plain", b"not found")
                return
            rows = [(p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in wheels]
            if mode == "json":
                doc = {"meta": {"api-version": "1.1"}, "name": project,
                       "files": [{"filename": n, "url": f"../../files/{n}", "hashes": {"sha256": h}} for n, h in rows]}
                self._send(200, "application/vnd.pypi.simple.v1+json", json.dumps(doc).encode())
            else:
                links = "".join(f'<a href="/files/{n}#sha256={h}" data-requires-python="&gt;=3.8">{n}</a><br>\n'
                                for n, h in rows)
                self._send(200, "text/html", f"<!DOCTYPE html><html><body>{links}</body></html>".encode())

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _project(filename: str) -> str:
    from packaging.utils import canonicalize_name, parse_wheel_filename

    return canonicalize_name(parse_wheel_filename(filename)[0])
