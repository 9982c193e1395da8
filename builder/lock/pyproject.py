"""The requirements a pyproject.toml declares: PEP 621, PEP 735 dependency groups, or poetry's tables.

`declared_requirements(path, group)` returns PEP 508 requirements, normalised
(canonical names, sorted extras and specifiers, sorted and deduplicated), so
that reformatting the file or bumping `[project].version` changes nothing.

- no group: `[project].dependencies`, or poetry's `[tool.poetry.dependencies]`
  without `python` (and without `optional = true` ones, which only extras install);
- a group: `[project.optional-dependencies].<g>`, `[dependency-groups].<g>`
  (`{include-group = ...}` followed), `[tool.poetry.group.<g>.dependencies]`,
  `[tool.poetry.extras].<g>`, or poetry's legacy `dev-dependencies` for `dev`.
  A group is that group's requirements only, not the main ones as well.

Poetry constraints become PEP 440 specifiers as poetry reads them: `^1.2`
is `>=1.2,<2.0`, `~1.2` is `>=1.2,<1.3`, `*` is anything, a bare `1.2` is
`==1.2`; `python`/`platform`/`markers` become markers. Versions are parsed by
`packaging`, never by hand. What relay cannot lock with hashes from an index
(a path, git or URL dependency) is a ConfigError naming the file and the key.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import attrs
from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

_LOCAL_KEYS = ("path", "git", "url", "file")  # poetry dependencies relay cannot lock from an index
_POETRY_OPERATORS = ("==", "!=", "<=", ">=", "~=", "<", ">", "=")


@attrs.frozen
class Where:
    """Which file and config key a requirement came from, for messages."""

    file: Path
    key: str  # e.g. "functions.api.requirements"

    def error(self, message: str, hint: str | None = None) -> Exception:
        from builder.errors import ConfigError

        return ConfigError(f"{self.key}: {self.file.name}: {message}", hint=hint)


def declared_requirements(path: Path, group: str | None, key: str) -> tuple[str, ...]:
    """The normalised PEP 508 requirements `path` declares (for `group`, when given)."""
    where = Where(path, key)
    document = _read(where)
    raw = _group(document, group, where) if group else _main(document, where)
    return tuple(sorted({canonical(r) for r in raw}))


def canonical(requirement: Requirement) -> str:
    """`Pydantic[Email] >= 2 ,<3` -> `pydantic[email]<3,>=2`: the same text for the same meaning."""
    extras = f"[{','.join(sorted(canonicalize_name(e) for e in requirement.extras))}]" if requirement.extras else ""
    marker = f"; {requirement.marker}" if requirement.marker else ""
    return f"{canonicalize_name(requirement.name)}{extras}{requirement.specifier}{marker}"


def project_name(document: dict) -> str | None:
    name = document.get("project", {}).get("name") or document.get("tool", {}).get("poetry", {}).get("name")
    return canonicalize_name(name) if isinstance(name, str) else None


# -- reading -------------------------------------------------------------------------------------


def _read(where: Where) -> dict:
    try:
        with open(where.file, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise where.error("file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise where.error(f"not valid TOML: {exc}") from None


def _main(document: dict, where: Where) -> list[Requirement]:
    project = document.get("project")
    poetry = _poetry(document)
    if isinstance(project, dict) and "dependencies" in project:
        return _pep508_list(project["dependencies"], "[project].dependencies", document, where)
    if "dependencies" in poetry:
        return _poetry_table(poetry["dependencies"], "[tool.poetry.dependencies]", where, main=True)
    if isinstance(project, dict):
        if "dependencies" in project.get("dynamic", ()):
            raise where.error("[project].dependencies is dynamic: relay cannot read it without building the project",
                              hint="List the dependencies in [project].dependencies, or use a requirements .in.")
        return []  # a project without dependencies
    raise where.error("no [project] or [tool.poetry] table",
                      hint="Declare dependencies in [project].dependencies (PEP 621) or [tool.poetry.dependencies].")


def _group(document: dict, group: str, where: Where) -> list[Requirement]:
    wanted = canonicalize_name(group)
    poetry = _poetry(document)
    places: list[tuple[str, str, object]] = []  # (where it is declared, its kind, its value)
    for name, value in document.get("project", {}).get("optional-dependencies", {}).items():
        if canonicalize_name(name) == wanted:
            places.append((f"[project.optional-dependencies].{name}", "extra", value))
    for name in document.get("dependency-groups", {}):
        if canonicalize_name(name) == wanted:
            places.append((f"[dependency-groups].{name}", "dependency-group", name))
    for name, value in poetry.get("group", {}).items():
        if canonicalize_name(name) == wanted:
            places.append((f"[tool.poetry.group.{name}.dependencies]", "poetry-group", value.get("dependencies", {})))
    for name, value in poetry.get("extras", {}).items():
        if canonicalize_name(name) == wanted:
            places.append((f"[tool.poetry.extras].{name}", "poetry-extra", value))
    if wanted == "dev" and "dev-dependencies" in poetry and not any(kind == "poetry-group" for _, kind, _ in places):
        places.append(("[tool.poetry.dev-dependencies]", "poetry-group", poetry["dev-dependencies"]))
    if not places:
        raise where.error(f"no group {group!r}", hint=f"Groups it declares: {', '.join(_group_names(document)) or 'none'}.")
    if len(places) > 1:
        raise where.error(f"group {group!r} is declared more than once: {', '.join(p[0] for p in places)}",
                          hint="Rename one of them, so the group names one list.")
    label, kind, value = places[0]
    if kind == "extra":
        return _pep508_list(value, label, document, where)
    if kind == "dependency-group":
        return _dependency_group(document.get("dependency-groups", {}), str(value), where, ())
    if kind == "poetry-group":
        return _poetry_table(value, label, where, main=False)
    return _poetry_extra(poetry, value, label, where)


def _group_names(document: dict) -> list[str]:
    poetry = _poetry(document)
    names = [*document.get("project", {}).get("optional-dependencies", {}), *document.get("dependency-groups", {}),
             *poetry.get("group", {}), *poetry.get("extras", {}), *(["dev"] if "dev-dependencies" in poetry else [])]
    return sorted(set(names))


def _poetry(document: dict) -> dict:
    poetry = document.get("tool", {}).get("poetry", {})
    return poetry if isinstance(poetry, dict) else {}


# -- PEP 621 and PEP 735 -------------------------------------------------------------------------


def _pep508_list(values: object, label: str, document: dict, where: Where) -> list[Requirement]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise where.error(f"{label} is not a list of requirement strings")
    found: list[Requirement] = []
    for value in values:
        requirement = _pep508(value, label, where)
        if project_name(document) == canonicalize_name(requirement.name):
            found.extend(_self_reference(document, requirement, where))  # `app[aws]` inside app's own extras
        else:
            found.append(requirement)
    return found


def _self_reference(document: dict, requirement: Requirement, where: Where) -> list[Requirement]:
    """`app[a,b]` in app's own optional dependencies: app's main requirements and extras a and b."""
    found = list(_main(document, where))
    for extra in sorted(requirement.extras):
        found.extend(_group(document, extra, where))
    return found


def _pep508(value: str, label: str, where: Where) -> Requirement:
    try:
        requirement = Requirement(value)
    except InvalidRequirement as exc:
        raise where.error(f"{label}: malformed requirement {value!r}: {exc}") from None
    if requirement.url:
        raise where.error(f"{label}: {requirement.name} comes from {requirement.url}: relay can lock only index packages",
                          hint="Publish it to an index (or a wheel folder in pip's find-links), or ship it as a layer package.")
    return requirement


def _dependency_group(groups: dict, name: str, where: Where, seen: tuple[str, ...]) -> list[Requirement]:
    """A PEP 735 group, following `{include-group = "..."}` (a cycle is an error)."""
    if name in seen:
        raise where.error(f"[dependency-groups]: {name!r} includes itself ({' -> '.join([*seen, name])})")
    label = f"[dependency-groups].{name}"
    found: list[Requirement] = []
    for item in groups.get(name, ()):
        if isinstance(item, str):
            found.append(_pep508(item, label, where))
        elif isinstance(item, dict) and set(item) == {"include-group"}:
            included = next((g for g in groups if canonicalize_name(g) == canonicalize_name(item["include-group"])), None)
            if included is None:
                raise where.error(f"{label}: includes unknown group {item['include-group']!r}")
            found.extend(_dependency_group(groups, included, where, (*seen, name)))
        else:
            raise where.error(f"{label}: unexpected entry {item!r}",
                              hint='Entries are requirement strings or {include-group = "name"}.')
    return found


# -- poetry --------------------------------------------------------------------------------------


def _poetry_table(table: object, label: str, where: Where, *, main: bool) -> list[Requirement]:
    if not isinstance(table, dict):
        raise where.error(f"{label} is not a table")
    found: list[Requirement] = []
    for name, spec in table.items():
        if main and canonicalize_name(name) == "python":
            continue  # the interpreter, not a package
        for one in spec if isinstance(spec, list) else [spec]:
            if main and isinstance(one, dict) and one.get("optional"):
                continue  # installed only through an extra
            found.append(poetry_requirement(name, one, f"{label}.{name}", where))
    return found


def _poetry_extra(poetry: dict, names: object, label: str, where: Where) -> list[Requirement]:
    """`[tool.poetry.extras] aws = ["boto3"]`: those (optional) main dependencies."""
    if not isinstance(names, list):
        raise where.error(f"{label} is not a list of package names")
    table = poetry.get("dependencies", {})
    by_name = {canonicalize_name(n): (n, spec) for n, spec in table.items()}
    found: list[Requirement] = []
    for item in names:
        # An extra lists names, optionally with a constraint after them, e.g. "psycopg2 (>=2.9)".
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", str(item))
        entry = by_name.get(canonicalize_name(match.group(1))) if match else None
        if entry is None:
            raise where.error(f"{label}: {item!r} is not in [tool.poetry.dependencies]")
        name, spec = entry
        for one in spec if isinstance(spec, list) else [spec]:
            found.append(poetry_requirement(name, one, f"[tool.poetry.dependencies].{name}", where))
    return found


def poetry_requirement(name: str, spec: object, label: str, where: Where) -> Requirement:
    """One poetry dependency (`"^1.2"` or `{version = ..., extras = ..., markers = ..., python = ...}`) as PEP 508."""
    if isinstance(spec, str):
        spec = {"version": spec}
    if not isinstance(spec, dict):
        raise where.error(f"{label}: expected a version string or a table, found {spec!r}")
    local = [key for key in _LOCAL_KEYS if key in spec]
    if local:
        raise where.error(f"{label}: a {local[0]} dependency ({spec[local[0]]}): relay can lock only index packages",
                          hint="Publish it to an index (or a wheel folder in pip's find-links), or ship it as a layer package.")
    specifier = poetry_specifier(str(spec.get("version", "*")), label, where)
    markers = [f"({m})" for m in _poetry_markers(spec, label, where)]
    extras = f"[{','.join(spec['extras'])}]" if spec.get("extras") else ""
    text = f"{name}{extras}{specifier}" + (f"; {' and '.join(markers)}" if markers else "")
    return _pep508(text, label, where)


def _poetry_markers(spec: dict, label: str, where: Where) -> list[str]:
    markers: list[str] = []
    if "python" in spec:
        markers.append(python_marker(str(spec["python"]), label, where))
    if "platform" in spec:
        markers.append(f'sys_platform == "{spec["platform"]}"')
    if "markers" in spec:
        try:
            markers.append(str(Marker(str(spec["markers"]))))
        except InvalidMarker as exc:
            raise where.error(f"{label}: malformed markers {spec['markers']!r}: {exc}") from None
    return [m for m in markers if m]


def python_marker(constraint: str, label: str, where: Where) -> str:
    """poetry's `python = "^3.9"` as a marker: `python_version >= "3.9" and python_version < "4.0"`."""
    specifier = poetry_specifier(constraint, label, where)
    parts = []
    for item in sorted(specifier, key=str):
        variable = "python_full_version" if len(Version(item.version.rstrip(".*")).release) > 2 else "python_version"
        parts.append(f'{variable} {item.operator} "{item.version}"')
    return " and ".join(parts)


def poetry_specifier(constraint: str, label: str, where: Where) -> SpecifierSet:
    """A poetry version constraint as a PEP 440 specifier set (`^`, `~`, `*`, bare versions, `,` or spaces)."""
    text = constraint.strip()
    if "||" in text or re.search(r"(?<![|])\|(?![|])", text):
        raise where.error(f"{label}: {constraint!r}: an either-or constraint has no PEP 508 form",
                          hint="Narrow it to one range, or pin the package in a requirements .in.")
    specifiers: list[str] = []
    for part in _constraint_parts(text):
        specifiers.extend(_one_constraint(part, constraint, label, where))
    try:
        return SpecifierSet(",".join(specifiers))
    except InvalidSpecifier as exc:
        raise where.error(f"{label}: bad version constraint {constraint!r}: {exc}") from None


def _constraint_parts(text: str) -> list[str]:
    # poetry separates an AND by commas or by spaces; an operator may be followed by a space (">= 1.2").
    tokens = [t for t in re.split(r"[,\s]+", text) if t]
    parts: list[str] = []
    for token in tokens:
        if parts and parts[-1] in (*_POETRY_OPERATORS, "^", "~"):
            parts[-1] += token
        else:
            parts.append(token)
    return parts


def _one_constraint(part: str, constraint: str, label: str, where: Where) -> list[str]:
    if part in ("*", ""):
        return []
    if part.startswith("^"):
        return _caret(_version(part[1:], constraint, label, where))
    if part.startswith("~") and not part.startswith("~="):
        return _tilde(_version(part[1:], constraint, label, where))
    for operator in _POETRY_OPERATORS:
        if part.startswith(operator):
            rest = part[len(operator):]
            return [f"{'==' if operator == '=' else operator}{rest}"]
    if part.endswith(".*"):
        return [f"=={part}"]
    _version(part, constraint, label, where)
    return [f"=={part}"]


def _version(text: str, constraint: str, label: str, where: Where) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise where.error(f"{label}: bad version constraint {constraint!r}") from None


def _caret(version: Version) -> list[str]:
    """`^1.2.3` -> >=1.2.3,<2.0.0; `^0.2.3` -> <0.3.0; `^0.0.3` -> <0.0.4: the left-most non-zero part is fixed."""
    release = list(version.release)
    fixed = next((i for i, part in enumerate(release) if part != 0), len(release) - 1)
    upper = [*release[:fixed], release[fixed] + 1]
    upper += [0] * (len(release) - len(upper))
    return [f">={version}", f"<{'.'.join(map(str, upper))}"]


def _tilde(version: Version) -> list[str]:
    """`~1.2.3` -> >=1.2.3,<1.3.0; `~1.2` -> <1.3; `~1` -> <2."""
    release = list(version.release)
    bump = 0 if len(release) == 1 else 1
    upper = [*release[:bump], release[bump] + 1]
    upper += [0] * (len(release) - len(upper))
    return [f">={version}", f"<{'.'.join(map(str, upper))}"]
