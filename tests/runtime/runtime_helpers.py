"""Apps and wheels for the import check's tests: compiled wheels (fake ELF), Requires-Dist, cp314 tags.

Wheels are real files pip installs (RECORD with hashes); the "compiled"
modules are a few bytes with an ELF header naming their machine, which is all
the static check reads. Locks are relay's format with every wheel's hash.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import textwrap
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from bundle_helpers import write_tree

from builder.lock.lockfile import input_sha256

# ELF e_machine numbers
ELF_MACHINES = {"x86_64": 0x3E, "aarch64": 0xB7}


def fake_elf(machine: str) -> bytes:
    """The first bytes of a 64-bit little-endian shared object for `machine`."""
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4], header[5], header[6] = 2, 1, 1
    header[16] = 3  # ET_DYN
    header[18:20] = ELF_MACHINES[machine].to_bytes(2, "little")
    return bytes(header)


def build_wheel(folder: Path, name: str, version: str, files: dict[str, str | bytes], *, tag: str = "py3-none-any",
                requires: tuple[str, ...] = ()) -> Path:
    """A wheel `name-version-<tag>.whl` holding `files`, its METADATA listing `requires` as Requires-Dist."""
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    contents: dict[str, bytes] = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents[f"{dist_info}/METADATA"] = metadata.encode()
    pure = "true" if tag.endswith("-none-any") else "false"
    contents[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: relay-tests\nRoot-Is-Purelib: {pure}\nTag: {tag}\n").encode()
    rows = []
    for path, data in sorted(contents.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{path},sha256={digest},{len(data)}")
    rows.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(rows) + "\n").encode()
    wheel = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in sorted(contents.items()):
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return wheel


def lock_for(in_path: Path, pins: dict[tuple[str, str], list[Path]], runtime: str) -> Path:
    """relay's lock for `in_path`: each (name, version) pinned with the hash of every wheel given for it."""
    lines = [f"# relay-lock: input-sha256={input_sha256(in_path)} runtime={runtime}", "#"]
    for (name, version), wheels in sorted(pins.items()):
        lines.append(f"{name}=={version} \\")
        hashes = [f"    --hash=sha256:{hashlib.sha256(w.read_bytes()).hexdigest()}" for w in wheels]
        lines.append(" \\\n".join(hashes))
        lines.append(f"    # via -r {in_path.name}")
    lock = in_path.with_suffix(".txt")
    lock.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lock


def arm_project(root: Path, *, runtime: str, handler_code: str, requirements: str, architecture: str = "arm64",
                extra: dict[str, str] | None = None) -> Path:
    """One function `api` (handler `api.app.handle`) for `architecture`, its requirements in functions/api."""
    write_tree(root, {
        "relay.toml": textwrap.dedent(f"""\
            [app]
            name = "arm"
            runtime = "{runtime}"

            [functions.api]
            source = "functions/api"
            handler = "api.app.handle"
            architecture = "{architecture}"
            requirements = "functions/api/requirements.in"
            """),
        "functions/api/requirements.in": requirements,
        "functions/api/api/__init__.py": "",
        "functions/api/api/app.py": handler_code,
        **(extra or {}),
    })
    return root
