"""Lock files: where they live, what relay's header says, and reading them.

A lock is pip-compile's output (`--generate-hashes`) with relay's header on top:

    # relay-lock: input-sha256=<hex> runtime=python3.12
    # relay-lock: resolved-under=python3.11     (only when not resolved under the runtime)

`input-sha256` covers the `.in` file and every file it pulls in with -r/-c, so
`relay lock --check` can tell a stale lock without resolving anything.
Installs run with `--require-hashes`, so the reader refuses what pip would then
refuse: a requirement that is not pinned with `==` or that has no hash.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from builder.errors import ConfigError, LockError

if TYPE_CHECKING:
    from packaging.requirements import Requirement

HEADER_PREFIX = "# relay-lock:"
_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDE_OPTIONS = {"-r": "-r", "--requirement": "-r", "-c": "-c", "--constraint": "-c"}
_STEP = "read lock"


@attrs.frozen
class LockedRequirement:
    name: str  # normalised (PEP 503)
    version: str
    hashes: tuple[str, ...] = attrs.field(converter=lambda v: tuple(sorted(v)))  # "sha256:<hex>"
    markers: str | None = None

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@attrs.frozen
class LockFile:
    path: Path
    sha256: str  # of the file's bytes
    input_sha256: str | None  # from the relay-lock header
    runtime: str | None
    requirements: tuple[LockedRequirement, ...] = attrs.field(
        converter=lambda v: tuple(sorted(v, key=lambda r: r.name))
    )
    resolved_under: str | None = None  # "python3.11" when not resolved under the runtime

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(sorted(r.pin for r in self.requirements))


@attrs.frozen
class LockHeader:
    input_sha256: str | None = None
    runtime: str | None = None
    resolved_under: str | None = None

    def lines(self) -> list[str]:
        lines = [f"{HEADER_PREFIX} input-sha256={self.input_sha256} runtime={self.runtime}"]
        if self.resolved_under:
            lines.append(f"{HEADER_PREFIX} resolved-under={self.resolved_under}")
        return lines


def lock_path_for(in_path: Path) -> Path:
    """`requirements.in` -> `requirements.txt`, next to it."""
    return in_path.with_suffix(".txt")


def read_lock(path: Path) -> LockFile:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LockError(_STEP, f"{path.name}: no lock file at {path}", hint="Run `relay lock`.") from None
    return parse_lock(data, path)


def parse_lock(data: bytes, path: Path) -> LockFile:
    """The lock in `data`; `path` is where it lives (or will), used in messages."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LockError(_STEP, f"{path.name}: not UTF-8 text") from None
    header = parse_header(text)
    requirements = _parse_requirements(text, path)
    return LockFile(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        input_sha256=header.input_sha256,
        runtime=header.runtime,
        requirements=requirements,
        resolved_under=header.resolved_under,
    )


def parse_header(text: str) -> LockHeader:
    """The `# relay-lock: key=value ...` lines at the top of a lock."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break  # the header is the leading comment block only
        if line.startswith(HEADER_PREFIX):
            for item in line[len(HEADER_PREFIX):].split():
                key, _, value = item.partition("=")
                fields[key] = value
    return LockHeader(
        input_sha256=fields.get("input-sha256") or None,
        runtime=fields.get("runtime") or None,
        resolved_under=fields.get("resolved-under") or None,
    )


def with_header(text: str, header: LockHeader) -> str:
    """`text` with any relay-lock lines replaced by `header`'s, at the very top."""
    body = [line for line in text.splitlines() if not line.startswith(HEADER_PREFIX)]
    return "\n".join([*header.lines(), *body]).rstrip("\n") + "\n"


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) after joining `\\` continuations and dropping comments.

    Mirrors pip's own requirement-file reader (`join_lines`, then `ignore_comments`):
    a comment line ends a continuation rather than being joined into it.
    """
    joined: list[tuple[int, str]] = []
    parts: list[str] = []
    first = 0
    for number, line in enumerate(text.splitlines(), start=1):
        is_comment = bool(re.match(r"^\s*#", line))
        if line.endswith("\\") and not is_comment:
            if not parts:
                first = number
            parts.append(line[:-1])
            continue
        if parts:
            parts.append(" " + line if is_comment else line)
            joined.append((first, "".join(parts)))
            parts = []
        else:
            joined.append((number, line))
    if parts:
        joined.append((first, "".join(parts)))
    cleaned = [(number, _COMMENT.sub("", line).strip()) for number, line in joined]
    return [(number, line) for number, line in cleaned if line]


def _parse_requirements(text: str, path: Path) -> list[LockedRequirement]:
    found: dict[str, LockedRequirement] = {}
    for number, line in logical_lines(text):
        requirement = _parse_line(line, f"{path.name} line {number}")
        if requirement.name in found:
            raise LockError(_STEP, f"{path.name} line {number}: {requirement.name} is listed twice")
        found[requirement.name] = requirement
    return list(found.values())


def _parse_line(line: str, where: str) -> LockedRequirement:
    spec, options = _split_options(line)
    if not spec:
        raise LockError(
            _STEP, f"{where}: unexpected option line {line!r}",
            hint="A relay lock holds only pinned requirements with hashes; rerun `relay lock`.",
        )
    hashes = _hashes(options, where)
    simple = _SIMPLE_PIN.fullmatch(spec)
    if simple:  # `name==version`, nearly every line: no need to load packaging's parser
        name, version, markers = _normalise_name(simple.group(1)), simple.group(2), None
    else:
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            requirement = Requirement(spec)
        except InvalidRequirement as exc:
            raise LockError(_STEP, f"{where}: not a requirement: {spec!r} ({exc})") from None
        name, version = _normalise_name(requirement.name), _pinned_version(requirement, where)
        markers = str(requirement.marker) if requirement.marker else None
    if not hashes:
        raise LockError(
            _STEP, f"{where}: {name} has no --hash",
            hint="Installs run with --require-hashes; rerun `relay lock` to regenerate the lock.",
        )
    return LockedRequirement(name=name, version=version, hashes=hashes, markers=markers)


# A pin as pip-compile writes it; anything else (markers, extras, URLs) goes to packaging.
_SIMPLE_PIN = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==([A-Za-z0-9.+!_-]+)")


def _normalise_name(name: str) -> str:
    """PEP 503 normalisation (packaging.utils.canonicalize_name, without importing packaging)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _split_options(line: str) -> tuple[str, list[str]]:
    # As pip does: the requirement is everything before the first token that
    # starts with "-"; the rest are per-requirement options such as --hash.
    # Split on spaces, not shell words: markers keep their quotes.
    tokens = line.split()
    for index, token in enumerate(tokens):
        if token.startswith("-"):
            rest = " ".join(tokens[index:])
            # shlex only when quoted: it costs ~3 ms per line, and locks have hundreds of hash lines.
            return " ".join(tokens[:index]), shlex.split(rest) if ("'" in rest or '"' in rest) else rest.split()
    return " ".join(tokens), []


def _hashes(options: list[str], where: str) -> list[str]:
    hashes: list[str] = []
    items = iter(options)
    for option in items:
        if option == "--hash":
            value = next(items, "")
        elif option.startswith("--hash="):
            value = option.removeprefix("--hash=")
        else:
            raise LockError(_STEP, f"{where}: unsupported option {option!r}",
                            hint="relay locks hold only `--hash=sha256:...` options; rerun `relay lock`.")
        algorithm, _, digest = value.partition(":")
        if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise LockError(_STEP, f"{where}: bad hash {value!r}", hint="Expected --hash=sha256:<64 hex digits>.")
        hashes.append(f"sha256:{digest}")
    return hashes


def _pinned_version(requirement: Requirement, where: str) -> str:
    specifiers = list(requirement.specifier)
    exact = len(specifiers) == 1 and specifiers[0].operator == "==" and "*" not in specifiers[0].version
    if requirement.url or not exact:
        raise LockError(
            _STEP, f"{where}: {requirement.name} is not pinned with == ({requirement})",
            hint="Installs run with --require-hashes, which needs exact pins; rerun `relay lock`.",
        )
    return specifiers[0].version


def input_sha256(in_path: Path) -> str:
    """sha256 over the `.in` file and, recursively, every file it includes with -r/-c.

    Each included file enters the digest with the reference as written (not an
    absolute path), so the value is the same wherever the project lives.
    """
    digest = hashlib.sha256()
    digest.update(_file_sha256(in_path, in_path.name).encode())
    seen = {in_path.resolve()}
    for reference, path in _includes(in_path, seen):
        digest.update(f"\n{reference}\n{_file_sha256(path, reference)}".encode())
    return digest.hexdigest()


def includes(in_path: Path) -> list[tuple[str, Path]]:
    """(`-r base.in`, path) for every file `in_path` includes with -r/-c, recursively."""
    return _includes(in_path, {in_path.resolve()})


def _includes(in_path: Path, seen: set[Path]) -> list[tuple[str, Path]]:
    """(`-r base.in`, path) for every file `in_path` includes, depth first."""
    found: list[tuple[str, Path]] = []
    text = _read_text(in_path)
    for _number, line in logical_lines(text):
        reference = _include_reference(line)
        if reference is None or "://" in reference[1]:
            continue  # a URL's content cannot be hashed here; its text is in the parent's bytes
        option, target = reference
        path = in_path.parent / target
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        found.append((f"{option} {target}", path))
        found.extend(_includes(path, seen))
    return found


def _include_reference(line: str) -> tuple[str, str] | None:
    tokens = shlex.split(line, posix=True)
    if not tokens:
        return None
    first = tokens[0]
    for spelling, option in _INCLUDE_OPTIONS.items():
        if first == spelling and len(tokens) > 1:
            return option, tokens[1]
        if spelling.startswith("--") and first.startswith(spelling + "="):
            return option, first.split("=", 1)[1]
        if not spelling.startswith("--") and first.startswith(spelling) and len(first) > len(spelling):
            return option, first[len(spelling):]
    return None


def _file_sha256(path: Path, reference: str) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ConfigError(f"{reference}: file not found: {path}") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"requirements file not found: {path}") from None
