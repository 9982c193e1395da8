"""A cold build fetches locked wheels from the index itself (no pip process), and steps aside for pip when it must.

Real HTTP against a local index (`index_server.py`), no mocks: the server's log says who asked for what.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from bundle_helpers import fetch_app, make_wheel, sha256_of
from index_server import Index, serving

HOUSE_WHEELS = {
    "greeting": ("1.0", {"greeting/__init__.py": "def hello(name):\n    return f'hello {name}'\n"}),
    "money": ("2.1", {"money/__init__.py": "def cents(amount):\n    return round(amount * 100)\n"}),
}


@pytest.fixture
def clean_pip_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pip configuration at all (this host has /etc/pip.conf and PIP_* settings): the direct path may run."""
    for key in list(os.environ):
        if key.upper().startswith("PIP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


@pytest.fixture
def house(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "house"
    return {name: make_wheel(folder, name, version, files) for name, (version, files) in HOUSE_WHEELS.items()}


@pytest.fixture
def app(tmp_path: Path, house: dict[str, Path], clean_pip_env, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An app laid out like a real one: handlers in a package, a layer, locks, docs and infra beside."""
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return fetch_app(tmp_path / "app", house)


def wheel_dirs(cache: Path) -> set[str]:
    wheels = cache / "wheels"
    return {p.name for p in wheels.iterdir() if len(p.name) == 64} if wheels.is_dir() else set()


def dist_zips(root: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in sorted((root / "dist").glob("*.zip"))}


@pytest.mark.parametrize("mode", ["json", "html"])
def test_a_cold_build_takes_the_wheels_from_the_index_without_pip(app, house, relay, monkeypatch, tmp_path, mode):
    with serving(Index(house["greeting"].parent, mode=mode)) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.simple)
        run = relay("build", cwd=app)
    assert run.code == 0, run.stderr
    assert f"downloading 2 wheels for python3.12/x86_64 from {index.simple}" in run.stderr
    assert index.pip_requests() == [], "pip was started"
    assert sorted(entry["path"] for entry in index.log) == [
        "/files/greeting-1.0-py3-none-any.whl", "/files/money-2.1-py3-none-any.whl",
        "/simple/greeting/", "/simple/money/"]
    assert wheel_dirs(tmp_path / "cache") == {sha256_of(house["greeting"]), sha256_of(house["money"])}
    assert not list((tmp_path / "cache/wheels/incoming").iterdir()), "scratch downloads are cleaned up"

    # The same lock through pip (forced by its own settings) gives byte-identical zips.
    direct = dist_zips(app)
    shutil.rmtree(app / "dist")
    monkeypatch.delenv("PIP_INDEX_URL")
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache-pip"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(house["greeting"].parent))
    monkeypatch.setenv("PIP_NO_BINARY", ":none:")  # a setting relay leaves to pip
    run = relay("build", cwd=app)
    assert run.code == 0, run.stderr
    assert "with pip (pip setting no-binary (PIP_NO_BINARY))" in run.stderr
    assert dist_zips(app) == direct and len(direct) == 2


def test_each_wheel_is_installed_as_soon_as_it_arrives_while_the_others_download(app, house, relay, monkeypatch):
    """The layer's wheel is held back by the index until the function's wheel is being installed."""
    from builder.bundle import install

    installing = threading.Event()
    write = install._Writer.write

    def noting(self, target, *args):
        if "/greeting/" in target:
            installing.set()
        return write(self, target, *args)

    monkeypatch.setattr(install._Writer, "write", noting)
    held = house["money"].name
    with serving(Index(house["greeting"].parent, hold={held: installing})) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.simple)
        run = relay("build", cwd=app)
    assert run.code == 0, run.stderr
    assert index.released == {held: True}, "greeting was not installed until every download had ended"
    assert (app / "dist/hello.zip").is_file() and (app / "dist/layer-base-x86_64.zip").is_file()


def test_a_tampered_wheel_under_the_pinned_name_is_refused_and_never_cached(app, house, relay, monkeypatch, tmp_path):
    evil = make_wheel(tmp_path / "evil", "greeting", "1.0", {"greeting/__init__.py": "EVIL = True\n"})
    index = Index(house["greeting"].parent, tamper={house["greeting"].name: evil.read_bytes()})
    with serving(index):
        monkeypatch.setenv("PIP_INDEX_URL", index.simple)
        run = relay("build", cwd=app)
    assert run.code == 4, run.stderr
    assert "hash mismatch for greeting==1.0" in run.stderr
    assert sha256_of(evil) in run.stderr and "which the lock does not pin" in run.stderr
    assert index.pip_requests() == [], "a refused file is the truth: no second opinion from pip"
    cache = tmp_path / "cache"
    assert sha256_of(evil) not in wheel_dirs(cache)
    assert not list((cache / "wheels/chosen").rglob("greeting-*")), "nothing recorded for the refused wheel"
    assert not (app / "dist/hello.zip").exists()


def test_an_index_without_the_page_falls_back_to_pip_which_fails_as_pip(app, house, relay, monkeypatch):
    with serving(Index(house["greeting"].parent, mode="404")) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.simple)
        run = relay("build", cwd=app)
    assert run.code == 4, run.stderr
    assert index.pip_requests(), "pip had its turn"
    assert "pip fetches 2 of 2 wheels" in run.stderr and "HTTP 404" in run.stderr


def test_an_unreadable_page_falls_back_to_pip_which_succeeds(app, house, relay, monkeypatch):
    with serving(Index(house["greeting"].parent, mode="garbage-unless-pip")) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.simple)
        run = relay("build", cwd=app)
    assert run.code == 0, run.stderr
    assert "unreadable JSON index page" in run.stderr
    assert {e["path"] for e in index.pip_requests()} >= {"/files/greeting-1.0-py3-none-any.whl"}


def test_index_credentials_are_sent_and_the_password_never_shown(app, house, relay, monkeypatch):
    index = Index(house["greeting"].parent, user="deploy", password="s3cret-pw")
    with serving(index):
        monkeypatch.setenv("PIP_INDEX_URL", index.simple.replace("http://", "http://deploy:s3cret-pw@"))
        run = relay("build", cwd=app)
    assert run.code == 0, run.stderr
    assert index.pip_requests() == [] and all(e["auth"].startswith("Basic ") for e in index.log)
    assert "s3cret-pw" not in run.stdout + run.stderr
    assert f"from {index.simple.replace('http://', 'http://deploy:****@')}" in run.stderr


def test_a_failing_index_with_a_password_never_shows_it(app, house, relay, monkeypatch):
    index = Index(house["greeting"].parent, mode="404", user="deploy", password="s3cret-pw")
    with serving(index):
        monkeypatch.setenv("PIP_INDEX_URL", index.simple.replace("http://", "http://deploy:s3cret-pw@"))
        run = relay("build", cwd=app)
    assert run.code == 4, run.stderr
    assert "s3cret-pw" not in run.stdout + run.stderr


def test_a_requirement_the_index_does_not_serve_plainly_goes_to_pip_the_rest_does_not(app, house, relay, monkeypatch,
                                                                                     tmp_path):
    with serving(Index(house["greeting"].parent, garbage_for={"money"})) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.simple)
        run = relay("build", cwd=app)
    assert run.code == 0, run.stderr
    assert "pip fetches 1 of 2 wheels for python3.12/x86_64" in run.stderr
    assert {e["path"] for e in index.pip_requests()} == {"/simple/money/", "/files/money-2.1-py3-none-any.whl"}
    assert wheel_dirs(tmp_path / "cache") == {sha256_of(house["greeting"]), sha256_of(house["money"])}


def test_a_server_error_is_retried_then_left_to_pip(house, clean_pip_env, tmp_path):
    from builder.bundle import index as direct

    with serving(Index(house["greeting"].parent, failures=2)) as flaky:
        files = direct.Client(flaky.simple).files("greeting")
        assert [f.filename for f in files] == ["greeting-1.0-py3-none-any.whl"]
        flaky.failures = 10
        with pytest.raises(direct.Unserved, match="HTTP 503"):
            direct.Client(flaky.simple, attempts=3).files("greeting")
    assert len(flaky.log) == 3 + 3


def test_an_unreadable_ca_bundle_leaves_the_download_to_pip(app, house, relay, monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "no-such-ca.pem"))
    with serving(Index(house["greeting"].parent)) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.simple)
        run = relay("build", cwd=app)
    assert "no-such-ca.pem" in run.stderr
    assert index.pip_requests(), "pip had its turn"
