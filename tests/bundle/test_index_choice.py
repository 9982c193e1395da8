"""The direct fetch picks the very file pip picks, and knows when pip's configuration forbids it to act.

The choice is checked against real `pip download --platform ...` over a folder of wheels with many tags
(and, marked `network`, against PyPI for a package with dozens of wheels).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from builder.bundle import index, pipconfig, platform
from builder.lock.lockfile import LockedRequirement

RUNTIME = "python3.12"
FILES = {
    "alpha": ("1.0", [
        "alpha-1.0-py3-none-any.whl",
        "alpha-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "alpha-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "alpha-1.0-cp38-abi3-manylinux_2_34_x86_64.whl",
        "alpha-1.0-cp312-cp312-musllinux_1_2_x86_64.whl",
        "alpha-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "alpha-1.0-cp39-abi3-manylinux_2_28_aarch64.whl",
    ]),
    "beta": ("2.0", [
        "beta-2.0-py2.py3-none-any.whl",
        "beta-2.0-1-py3-none-any.whl",
        "beta-2.0-2-py3-none-any.whl",
    ]),
    # pip puts manylinux2010/manylinux1 right after manylinux2014, above manylinux_2_16 .. 2_5
    "gamma": ("3.0", [
        "gamma-3.0-cp312-cp312-manylinux_2_12_x86_64.whl",
        "gamma-3.0-cp312-cp312-manylinux1_x86_64.whl",
        "gamma-3.0-cp311-abi3-manylinux_2_5_x86_64.whl",
        "gamma-3.0-cp313-cp313-manylinux_2_28_x86_64.whl",
    ]),
}


def fake_wheel(folder: Path, filename: str) -> Path:
    """A wheel with `filename`'s tags and just enough inside for pip to accept it."""
    from packaging.utils import parse_wheel_filename

    name, version, _, tags = parse_wheel_filename(filename)
    info = f"{name}-{version}.dist-info"
    wheel_tags = "".join(f"Tag: {t}\n" for t in sorted(str(t) for t in tags))
    contents = {
        f"{name}/__init__.py": f"FILE = {filename!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: relay-tests\nRoot-Is-Purelib: false\n{wheel_tags}",
    }
    contents[f"{info}/RECORD"] = "".join(f"{p},,\n" for p in [*contents, f"{info}/RECORD"])
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / filename, "w") as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
    return folder / filename


def pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def pip_download(lines: list[str], arch: str, dest: Path, *source: str) -> set[str]:
    listing = dest.parent / f"requirements-{arch}.txt"
    listing.write_text("".join(lines), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--dest", str(dest), "--no-deps", "--require-hashes",
                           *platform.pip_target_args(RUNTIME, arch), *source, "-r", str(listing)],
                          capture_output=True, text=True, env=pip_env(), check=False)
    assert done.returncode == 0, done.stderr
    return {p.name for p in dest.glob("*.whl")}


def requirement(name: str, version: str, files: list[index.IndexFile]) -> LockedRequirement:
    return LockedRequirement(name, version, tuple(sorted(f"sha256:{f.sha256}" for f in files)))


def line(req: LockedRequirement) -> str:
    return f"{req.name}=={req.version} " + " ".join(f"--hash={h}" for h in req.hashes) + "\n"


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_the_choice_among_many_tags_equals_pips(tmp_path: Path, arch: str) -> None:
    folder = tmp_path / "house"
    listed = {name: [index.IndexFile(f, f"file:///{f}", hashlib.sha256(fake_wheel(folder, f).read_bytes()).hexdigest())
                     for f in files]
              for name, (version, files) in FILES.items()}
    reqs = [requirement(name, FILES[name][0], files) for name, files in listed.items()]

    ours = {req.name: index.choose(listed[req.name], req, RUNTIME, arch) for req in reqs}
    servable = [req for req in reqs if ours[req.name] is not None]
    theirs = pip_download([line(r) for r in servable], arch, tmp_path / f"dl-{arch}", "--no-index", "--find-links", str(folder))

    assert {c.filename for c in ours.values() if c is not None} == theirs
    expected = {"x86_64": "alpha-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                "arm64": "alpha-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"}
    assert ours["alpha"] is not None and ours["alpha"].filename == expected[arch]
    assert ours["beta"] is not None and ours["beta"].filename == "beta-2.0-2-py3-none-any.whl"
    if arch == "x86_64":
        assert ours["gamma"] is not None and ours["gamma"].filename == "gamma-3.0-cp312-cp312-manylinux1_x86_64.whl"
    else:
        assert ours["gamma"] is None  # nothing for arm64: pip's turn (and pip finds nothing either)


def test_only_pinned_files_of_the_pinned_version_are_chosen() -> None:
    files = [index.IndexFile("alpha-1.0-cp312-cp312-manylinux_2_28_x86_64.whl", "u1", "a" * 64),
             index.IndexFile("alpha-1.0-py3-none-any.whl", "u2", "b" * 64),
             index.IndexFile("alpha-1.1-py3-none-any.whl", "u3", "c" * 64),
             index.IndexFile("alpha-1.0.tar.gz", "u4", "d" * 64)]
    only_pure = LockedRequirement("alpha", "1.0", ("sha256:" + "b" * 64, "sha256:" + "c" * 64, "sha256:" + "d" * 64))
    assert index.choose(files, only_pure, RUNTIME, "x86_64") == files[1]
    unpinned = LockedRequirement("alpha", "1.0", ("sha256:" + "e" * 64,))
    assert index.choose(files, unpinned, RUNTIME, "x86_64") is None
    too_new = [index.IndexFile("alpha-1.0-py3-none-any.whl", "u2", "b" * 64, requires_python=">=3.13")]
    assert index.choose(too_new, only_pure, RUNTIME, "x86_64") is None


def test_pages_in_json_and_html_read_alike() -> None:
    page = "https://idx.example/simple/alpha/"
    json_page = ('{"meta": {"api-version": "1.1"}, "name": "alpha", "files": [{"filename": "alpha-1.0-py3-none-any.whl", '
                 '"url": "../../files/alpha-1.0-py3-none-any.whl", "hashes": {"sha256": "ab"}, "yanked": "broken"}]}')
    html_page = ('<html><body><a href="../../files/alpha-1.0-py3-none-any.whl#sha256=ab" data-yanked="broken" '
                 'data-requires-python="&gt;=3.8">alpha-1.0-py3-none-any.whl</a></body></html>')
    from_json = index.parse_json(json_page, page)
    from_html = index.parse_html(html_page, page)
    assert [(f.filename, f.url, f.sha256, f.yanked) for f in from_json] == \
           [(f.filename, f.url, f.sha256, f.yanked) for f in from_html] == \
           [("alpha-1.0-py3-none-any.whl", "https://idx.example/files/alpha-1.0-py3-none-any.whl", "ab", True)]
    assert from_html[0].requires_python == ">=3.8"
    with pytest.raises(index.Unserved):
        index.parse_json("<html>", page)


def test_pip_configuration_is_read_from_every_file_pip_reads(tmp_path: Path, monkeypatch) -> None:
    from pip._internal.configuration import get_configuration_files

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-home"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{tmp_path / 'xdg1'}{os.pathsep}{tmp_path / 'xdg2'}")
    monkeypatch.delenv("PIP_CONFIG_FILE", raising=False)
    pips = [Path(p) for kind in ("global", "user", "site") for p in get_configuration_files()[kind]]
    assert pipconfig.config_files(dict(os.environ), home=tmp_path / "home") == pips

    user_file = tmp_path / "xdg-home/pip/pip.conf"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[global]\nindex-url = https://mirror.example/simple\n")
    way = index.route({"XDG_CONFIG_HOME": str(tmp_path / "xdg-home"), "XDG_CONFIG_DIRS": str(tmp_path / "none")},
                      home=tmp_path / "home", prefix=str(tmp_path))
    assert way.index == "https://mirror.example/simple"
    assert index.route({"PIP_CONFIG_FILE": os.devnull}).index == index.DEFAULT_INDEX


@pytest.mark.parametrize(("env", "direct"), [
    ({}, True),
    ({"PIP_INDEX_URL": "https://mirror.example/simple", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}, True),
    ({"PIP_EXTRA_INDEX_URL": "https://extra.example/simple"}, True),
    ({"PIP_FIND_LINKS": "/wheels"}, True),
    ({"PIP_NO_INDEX": "1"}, False),
    ({"PIP_TRUSTED_HOST": "mirror.example"}, True),
    ({"PIP_CERT": "/no-such-ca.pem"}, False),
    ({"PIP_PROXY": "http://proxy:3128"}, True),
    ({"PIP_INDEX_URL": "file:///srv/simple"}, True),
    ({"PIP_INDEX_URL": "ftp://mirror.example/simple"}, False),
    ({"PIP_PLATFORM": "win_amd64"}, False),
])
def test_pip_environment_decides_the_route(env: dict[str, str], direct: bool) -> None:
    way = index.route({"PIP_CONFIG_FILE": os.devnull, **env})
    assert (way.settings is not None) == direct, way
    if direct:
        assert way.index == env.get("PIP_INDEX_URL", index.DEFAULT_INDEX)


def test_passwords_are_redacted_as_pip_does() -> None:
    assert index.redact("https://u:p4ss@host/simple/") == "https://u:****@host/simple/"
    assert index.redact("https://tok3n@host/simple/") == "https://****@host/simple/"
    assert index.redact("https://host/simple/") == "https://host/simple/"
    assert "p4ss" not in index.Route(pipconfig.Settings(index_url="https://u:p4ss@host/simple/")).shown


@pytest.mark.network
@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_pypi_choice_for_a_package_with_many_wheels_equals_pips(tmp_path: Path, arch: str) -> None:
    client = index.Client(index.DEFAULT_INDEX, environ={})
    version = "2.27.2"
    files = [f for f in client.files("pydantic-core") if f"-{version}" in f.filename and f.sha256]
    assert len(files) > 40
    req = requirement("pydantic-core", version, files)

    chosen = index.choose(files, req, RUNTIME, arch)
    theirs = pip_download([line(req)], arch, tmp_path / "dl")

    assert chosen is not None and {chosen.filename} == theirs
    path, digest = index.fetch_one(client, req, RUNTIME, arch, tmp_path)
    assert path.name == chosen.filename and digest == hashlib.sha256((tmp_path / "dl" / chosen.filename).read_bytes()).hexdigest()
