"""The direct wheel fetch reads pip's configuration as pip does, and steps aside only for what it does not do.

Real config files, real HTTP (`index_server.py`), real pip as the oracle: pip's own option parser says what
`pip download` would read, and a pip-forced build of the same lock gives the same zips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_helpers import fetch_app, make_wheel, sha256_of
from index_server import Index, serving

from builder.bundle import index, pipconfig

FORCE_PIP = {"PIP_NO_BINARY": ":none:"}  # a setting relay does not read itself: pip keeps the download


@pytest.fixture
def no_pip_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No PIP_* variable, and HOME/XDG dirs in tmp (this host has user and global pip files): the home folder."""
    for key in list(os.environ):
        if key.startswith("PIP_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "no-xdg"))
    return home


@pytest.fixture
def wheels(tmp_path: Path) -> dict[str, Path]:
    """greeting on the index's folder, money only in a find-links folder."""
    return {
        "greeting": make_wheel(tmp_path / "served", "greeting", "1.0",
                               {"greeting/__init__.py": "def hello(name):\n    return f'hello {name}'\n"}),
        "money": make_wheel(tmp_path / "links", "money", "2.1",
                            {"money/__init__.py": "def cents(amount):\n    return round(amount * 100)\n"}),
    }


@pytest.fixture
def app(tmp_path: Path, wheels: dict[str, Path], no_pip_env, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    return fetch_app(tmp_path / "app", wheels)


def dist_zips(root: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in sorted((root / "dist").glob("*.zip"))}


def chosen_files(cache: Path) -> set[str]:
    return {p.name for p in (cache / "wheels").glob("*/*.whl")}


def pip_sees(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """What `pip download` itself would read from this environment's configuration (pip's own parser)."""
    from pip._internal.commands import create_command

    options, _ = create_command("download").parse_args([])
    return {"index-url": options.index_url, "extra-index-url": options.extra_index_urls,
            "find-links": options.find_links, "no-index": options.no_index}


def relay_sees(environ=None) -> dict[str, object]:
    s = pipconfig.settings(dict(os.environ) if environ is None else environ)
    return {"index-url": s.index_url, "extra-index-url": list(s.extra_index_urls),
            "find-links": list(s.find_links), "no-index": s.no_index}


def build_twice_and_compare(app: Path, relay, monkeypatch, tmp_path: Path, served: Index) -> dict[str, str]:
    """A direct cold build, then a pip-forced one with the same configuration: the zips must be equal."""
    run = relay("build", cwd=app)
    assert run.code == 0, run.stderr
    assert served.pip_requests() == [], "pip was started"
    direct = dist_zips(app)
    assert len(direct) == 2
    shutil.rmtree(app / "dist")
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache-pip"))
    for key, value in FORCE_PIP.items():
        monkeypatch.setenv(key, value)
    run = relay("build", cwd=app)
    assert run.code == 0, run.stderr
    assert "with pip (pip setting no-binary (PIP_NO_BINARY))" in run.stderr
    assert dist_zips(app) == direct
    for key in FORCE_PIP:
        monkeypatch.delenv(key)
    return direct


def test_a_config_file_naming_an_index_and_find_links_is_read_and_used_directly(app, wheels, relay, monkeypatch,
                                                                               tmp_path):
    with serving(Index(wheels["greeting"].parent)) as served:
        conf = tmp_path / "pip.conf"
        conf.write_text(f"[global]\nindex-url = {served.simple}\nfind-links = {wheels['money'].parent}\n")
        monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
        assert relay_sees() == pip_sees(monkeypatch)
        run = relay("build", cwd=app)
        assert run.code == 0, run.stderr
        assert f"from {served.simple}, {wheels['money'].parent}" in run.stderr
        assert served.pip_requests() == [] and served.log, "relay asked the index itself"
        assert "/simple/money/" in {e["path"] for e in served.log} and "/files/money-2.1-py3-none-any.whl" not in {
            e["path"] for e in served.log}, "money came from the folder"
        assert chosen_files(tmp_path / "cache") == {wheels["greeting"].name, wheels["money"].name}
        shutil.rmtree(app / "dist")
        shutil.rmtree(tmp_path / "cache")
        build_twice_and_compare(app, relay, monkeypatch, tmp_path, served)


def test_a_user_config_file_is_read_as_pip_reads_it(app, wheels, relay, monkeypatch, no_pip_env, tmp_path):
    with serving(Index(wheels["greeting"].parent, mode="html")) as served:
        user_file = no_pip_env / ".config/pip/pip.conf"
        user_file.parent.mkdir(parents=True)
        user_file.write_text(f"[global]\nindex_url = {served.simple}\n--find-links = {wheels['money'].parent}\n")
        (no_pip_env / ".pip").mkdir()
        (no_pip_env / ".pip/pip.conf").write_text("[global]\nindex-url = http://127.0.0.1:9/never/\n")  # overridden
        assert relay_sees() == pip_sees(monkeypatch)
        build_twice_and_compare(app, relay, monkeypatch, tmp_path, served)


def test_an_extra_index_as_a_local_pep503_tree_with_relative_links_is_read_directly(app, wheels, relay, monkeypatch,
                                                                                   tmp_path):
    tree = tmp_path / "mirror"
    (tree / "files").mkdir(parents=True)
    shutil.copy(wheels["money"], tree / "files")
    page = tree / "simple/money/index.html"
    page.parent.mkdir(parents=True)
    page.write_text(f'<!DOCTYPE html><html><body><a href="../../files/{wheels["money"].name}'
                    f'#sha256={sha256_of(wheels["money"])}">{wheels["money"].name}</a></body></html>\n')
    with serving(Index(wheels["greeting"].parent)) as served:
        monkeypatch.setenv("PIP_INDEX_URL", served.simple)
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", (tree / "simple").as_uri())
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
        run = relay("build", cwd=app)
        assert run.code == 0, run.stderr
        assert served.pip_requests() == []
        assert f"from {served.simple}, {(tree / 'simple').as_uri()}" in run.stderr
        assert chosen_files(tmp_path / "cache") == {wheels["greeting"].name, wheels["money"].name}


def test_precedence_is_pips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_pip_env: Path) -> None:
    # two files: the later global file's [global] loses to the earlier one's [download]; env beats both
    xdg = tmp_path / "xdg"
    (xdg / "pip").mkdir(parents=True)
    (xdg / "pip/pip.conf").write_text("[download]\nindex-url = https://download.example/simple\n"
                                      "[global]\nextra-index-url = https://a.example/simple\n")
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(xdg))
    user = no_pip_env / ".config/pip/pip.conf"
    user.parent.mkdir(parents=True)
    user.write_text("[global]\nindex-url = https://global.example/simple\n"
                    "extra-index-url = https://b.example/simple  https://c.example/simple\nno-index = off\n")
    assert relay_sees()["index-url"] == "https://download.example/simple"
    assert relay_sees() == pip_sees(monkeypatch)

    monkeypatch.setenv("PIP_INDEX_URL", "https://env.example/simple")
    monkeypatch.setenv("PIP_NO_INDEX", "yes")
    assert relay_sees()["index-url"] == "https://env.example/simple" and relay_sees()["no-index"] is True
    assert relay_sees() == pip_sees(monkeypatch)

    # a named file that exists replaces the user files; /dev/null replaces every file
    named = tmp_path / "named.conf"
    named.write_text("[global]\nfind-links = /srv/wheels /srv/more\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(named))
    assert relay_sees() == pip_sees(monkeypatch)
    assert relay_sees()["extra-index-url"] == ["https://a.example/simple"]
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    assert relay_sees() == pip_sees(monkeypatch)
    assert relay_sees()["extra-index-url"] == [] and relay_sees()["find-links"] == []


def test_what_relay_does_not_do_itself_stays_with_pip(tmp_path: Path) -> None:
    base = {"PIP_CONFIG_FILE": os.devnull}
    missing_ca = index.route({**base, "PIP_CERT": str(tmp_path / "no-such-ca.pem")})
    assert missing_ca.settings is None and "no-such-ca.pem" in missing_ca.reason
    assert "client-cert" in index.route({**base, "PIP_CLIENT_CERT": "/me.pem"}).reason
    assert "use-feature" in index.route({**base, "PIP_USE_FEATURE": "fast-deps"}).reason
    assert "holds ${...}" in index.route({**base, "PIP_INDEX_URL": "https://${TOKEN}@idx.example/simple"}).reason
    assert "not a trusted-host" in index.route({**base, "PIP_INDEX_URL": "http://mirror.example/simple"}).reason
    trusted = index.route({**base, "PIP_INDEX_URL": "http://mirror.example:8080/simple",
                           "PIP_TRUSTED_HOST": "mirror.example:8080"})
    assert trusted.settings is not None
    nested = tmp_path / "c.txt"
    nested.write_text("-c other.txt\n")
    assert "option line" in index.route({**base, "PIP_CONSTRAINT": str(nested)}).reason
    assert "nowhere" in index.route({**base, "PIP_NO_INDEX": "1"}).reason
    # harmless settings do not matter
    assert index.route({**base, "PIP_QUIET": "1", "PIP_PREFER_BINARY": "1", "PIP_CACHE_DIR": "/tmp/x"}).settings


def test_no_index_with_find_links_only_builds_from_the_folder(app, wheels, relay, monkeypatch, tmp_path):
    shutil.copy(wheels["greeting"], wheels["money"].parent)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "true")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels["money"].parent))
    monkeypatch.setenv("PIP_PROXY", "http://127.0.0.1:9")  # never used: no HTTP at all
    run = relay("build", "--json", cwd=app)
    assert run.code == 0, run.stderr
    downloads = json.loads(run.stdout)["downloads"]
    assert [(d["source"], d["direct"], d["pip"]) for d in downloads] == [(f"from {wheels['money'].parent}", 2, 0)]
    assert chosen_files(tmp_path / "cache") == {wheels["greeting"].name, wheels["money"].name}


def test_a_constraint_contradicting_a_pin_leaves_it_to_pip_which_refuses(app, wheels, relay, monkeypatch, tmp_path):
    shutil.copy(wheels["greeting"], wheels["money"].parent)
    constraints = tmp_path / "constraints.txt"
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nno-index = 1\nfind-links = {wheels['money'].parent}\nconstraint = {constraints}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))

    constraints.write_text("# house rules\nmoney >=2, <3  # fine\ngreeting<=1.0\n")
    run = relay("build", cwd=app)
    assert run.code == 0, run.stderr
    assert "pip fetches" not in run.stderr

    shutil.rmtree(tmp_path / "cache")
    shutil.rmtree(app / "dist")
    constraints.write_text("money<2\n")
    run = relay("build", cwd=app)
    assert run.code == 4, run.stderr
    assert "pip fetches 1 of 2 wheels" in run.stderr and "excludes money==2.1" in run.stderr
    assert "money" in run.stderr and ("conflict" in run.stderr.lower() or "ResolutionImpossible" in run.stderr), \
        run.stderr
    assert wheels["greeting"].name in chosen_files(tmp_path / "cache"), "the unconstrained pin came directly"


# -- this machine's own configuration ----------------------------------------------------------------

MACHINE_FILES = [Path("/root/.config/pip/pip.conf"), Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf")]
PAIR = {"six": "1.17.0", "jmespath": "1.0.1"}


@pytest.mark.network
@pytest.mark.skipif(not all(p.exists() for p in MACHINE_FILES), reason="this host's pip configuration is absent")
def test_this_machines_configuration_is_read_directly_and_picks_what_pip_download_picks(tmp_path: Path) -> None:
    from builder.bundle import platform
    from builder.lock.lockfile import LockedRequirement

    way = index.route()
    assert way.settings is not None, way.reason
    client = way.client()
    reqs = []
    for name, version in PAIR.items():
        files = [f for f in index.Client(index.DEFAULT_INDEX).files(name) if f.sha256 and f"-{version}-" in f.filename]
        reqs.append(LockedRequirement(name, version, tuple(sorted(f"sha256:{f.sha256}" for f in files))))
    ours = {}
    for req in reqs:
        path, digest = index.fetch_one(client, req, "python3.12", "x86_64", tmp_path)
        ours[path.name] = digest
    listing = tmp_path / "requirements.txt"
    listing.write_text("".join(f"{r.name}=={r.version} " + " ".join(f"--hash={h}" for h in r.hashes) + "\n"
                               for r in reqs))
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--dest", str(tmp_path / "pip"), "--no-deps",
                           "--require-hashes", *platform.pip_target_args("python3.12", "x86_64"), "-r", str(listing)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert {p.name: sha256_of(p) for p in (tmp_path / "pip").glob("*.whl")} == ours
