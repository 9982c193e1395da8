"""A cold download shares the requirements out to several pip processes, and still files every wheel by its pin.

pip spends a cold download on one thread (starting, reading index pages); with `jobs` > 1 and enough
requirements, relay runs that many pip processes at once. Hashes are still enforced per wheel.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_helpers import make_wheel, sha256_of

from builder.bundle import wheels
from builder.errors import BuildFailed
from builder.lock.lockfile import LockedRequirement

NAMES = [f"pkg{i}" for i in range(9)]


@pytest.fixture
def house(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    folder = tmp_path / "wheelhouse"
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_NO_BINARY", ":none:")  # relay reads find-links itself; this setting is pip's alone
    return {name: make_wheel(folder, name, "1.0", {f"{name}/__init__.py": f"NAME = {name!r}\n"}) for name in NAMES}


@pytest.fixture
def pip_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    original = wheels._run_pip

    def counting(args: list[str], *, step: str) -> None:
        calls.append(args)
        original(args, step=step)

    monkeypatch.setattr(wheels, "_run_pip", counting)
    return calls


def pins(house: dict[str, Path]) -> list[LockedRequirement]:
    return [LockedRequirement(name, "1.0", (f"sha256:{sha256_of(wheel)}",)) for name, wheel in house.items()]


def test_two_jobs_run_two_pips_and_every_wheel_is_filed_by_its_pin(tmp_path: Path, house, pip_calls) -> None:
    cache = wheels.WheelCache(tmp_path / "cache")

    wheels.fetch(pins(house), cache, runtime="python3.12", arch="x86_64", offline=False, jobs=2)

    assert len(pip_calls) == 2
    for req in pins(house):
        chosen = cache.chosen(req, "python3.12", "x86_64")
        assert chosen is not None and sha256_of(chosen) == sha256_of(house[req.name])


def test_a_few_requirements_take_one_pip(tmp_path: Path, house, pip_calls) -> None:
    wheels.fetch(pins(house)[:3], wheels.WheelCache(tmp_path / "cache"), runtime="python3.12", arch="x86_64",
                 offline=False, jobs=2)

    assert len(pip_calls) == 1


def test_a_wrong_pin_in_either_share_fails_the_download(tmp_path: Path, house, pip_calls) -> None:
    reqs = pins(house)
    reqs[-1] = LockedRequirement(reqs[-1].name, "1.0", ("sha256:" + "0" * 64,))

    with pytest.raises(BuildFailed) as failure:
        wheels.fetch(reqs, wheels.WheelCache(tmp_path / "cache"), runtime="python3.12", arch="x86_64",
                     offline=False, jobs=2)

    assert "hash" in str(failure.value).lower()
