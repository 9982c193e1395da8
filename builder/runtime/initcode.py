"""What a module's top level does when it is imported, read from its syntax tree (nothing runs).

The static import check (`static.py`) asks: does this `try` make an import
optional, is this `if` decided on the target (`sys.version_info`,
`sys.platform`) or a `TYPE_CHECKING` block, does this statement change
`sys.path`, and does the module bind the handler's name.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

# Exceptions whose handler makes an import inside the `try` optional.
IMPORT_GUARDS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
_OPERATORS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
              ast.Gt: operator.gt, ast.GtE: operator.ge}


def changes_sys_path(node: ast.stmt) -> bool:
    """`sys.path.insert(...)`, `sys.path += [...]`, `sys.path = ...`, `site.addsitedir(...)` at module level."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        called = ast.unparse(node.value.func)
        return called.startswith("sys.path.") or called in ("site.addsitedir", "addsitedir")
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(ast.unparse(t).startswith("sys.path") for t in targets)
    return False


def catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(_name(n) in IMPORT_GUARDS for n in names)


def suppresses_import_error(expr: ast.expr) -> bool:
    # contextlib.suppress(ImportError)
    return (isinstance(expr, ast.Call) and _name(expr.func) == "suppress"
            and any(_name(arg) in IMPORT_GUARDS for arg in expr.args))


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def is_type_checking(test: ast.expr) -> bool:
    return _name(test) == "TYPE_CHECKING"


def decide(test: ast.expr, version: tuple[int, int]) -> bool | None:
    """The value of `sys.version_info <op> (3, N)` or `sys.platform == "..."` on the target; None otherwise."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = decide(test.operand, version)
        return None if inner is None else not inner
    if (isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute) and test.func.attr == "startswith"
            and ast.unparse(test.func.value) == "sys.platform" and len(test.args) == 1
            and isinstance(test.args[0], ast.Constant) and isinstance(test.args[0].value, str)):
        return "linux".startswith(test.args[0].value)
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and len(test.comparators) == 1):
        return None
    left, op, right = test.left, test.ops[0], test.comparators[0]
    if isinstance(left, ast.Subscript):
        left = left.value  # sys.version_info[:2] compares like sys.version_info against a pair
    dotted = ast.unparse(left)
    try:
        value = ast.literal_eval(right)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None
    if dotted == "sys.version_info" and isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        ours = (*version, 0, "final", 0)[: max(len(value), 2)]
        return _compare(ours, op, value)
    if dotted == "sys.platform" and isinstance(value, str):
        return _compare("linux", op, value)
    return None


def _compare(left: Any, op: ast.cmpop, right: Any) -> bool | None:
    fn = _OPERATORS.get(type(op))
    try:
        return bool(fn(left, right)) if fn else None
    except TypeError:
        return None


def binds(body: list[ast.stmt], name: str) -> bool:
    """Whether module-level code binds `name` (or may: a star import, a module `__getattr__`)."""
    names = _bound_names(body)
    return name in names or "*" in names


def _bound_names(body: list[ast.stmt]) -> set[str]:
    """Names module-level code may bind (generous: a name stored anywhere in a statement counts)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names |= {node.name, "*"} if node.name == "__getattr__" else {node.name}
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {"*" if a.name == "*" else (a.asname or a.name.partition(".")[0]) for a in node.names}
            continue
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.stmt | ast.excepthandler | ast.match_case):
                names |= {n.id for n in ast.walk(child) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        blocks = [getattr(node, field, []) for field in ("body", "orelse", "finalbody")]
        blocks += [h.body for h in getattr(node, "handlers", [])] + [c.body for c in getattr(node, "cases", [])]
        for block in blocks:
            names |= _bound_names(block)
    return names
