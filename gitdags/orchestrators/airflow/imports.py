"""What an Airflow Python file imports, from its syntax tree: guarded, forbidden (GD405)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from gitdags.model import Issue


def imported_modules(tree: ast.Module, module: str, package: bool) -> set[str]:
    """Absolute module names the file imports (relative imports resolved)."""
    here = module.split(".") if module else []
    base = here if package else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = base[: len(base) - (node.level - 1)] if node.level - 1 <= len(base) else []
                prefix = ".".join([*up, *([node.module] if node.module else [])])
            else:
                prefix = node.module or ""
            if not prefix:
                continue
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def module_level_imports(text: str) -> set[str]:
    """The modules a file needs when it is imported (not inside functions, nor under a `try`
    that catches the ImportError): `import a.b` and `from a.b import c` give `a.b`."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    guarded = {id(n) for t in _guards(tree) for stmt in t.body for n in ast.walk(stmt)}
    found: set[str] = set()
    for node in module_level(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return found


_IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")


def _guards(tree: ast.Module) -> list[ast.Try]:
    """The `try` statements at module level whose handlers catch an ImportError: what their
    body imports may be missing, as Python allows."""
    found = []
    for node in module_level(tree):
        if not isinstance(node, ast.Try):
            continue
        for handler in node.handlers:
            kinds = handler.type
            names = (
                [dotted(e) for e in kinds.elts]
                if isinstance(kinds, ast.Tuple)
                else [dotted(kinds)]
                if kinds is not None
                else ["BaseException"]
            )
            if any(n.split(".")[-1] in _IMPORT_ERRORS for n in names):
                found.append(node)
                break
    return found


def guarded_names(tree: ast.Module) -> dict[str, str]:
    """Names a guarded `try` binds (its imports, and what its handlers assign instead), each
    with the module whose import decides it ("" when that is not known)."""
    names: dict[str, str] = {}
    for node in _guards(tree):
        modules: set[str] = set()
        for stmt in node.body:
            for n in ast.walk(stmt):
                if isinstance(n, ast.Import):
                    for a in n.names:
                        names[(a.asname or a.name).split(".")[0]] = a.name
                        modules.add(a.name)
                elif isinstance(n, ast.ImportFrom) and n.module and not n.level:
                    for a in n.names:
                        names[a.asname or a.name] = n.module
                    modules.add(n.module)
        decided = next(iter(modules)) if len(modules) == 1 else ""
        for stmt in [*node.body, *(s for h in node.handlers for s in h.body)]:
            for n in ast.walk(stmt):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    names.setdefault(n.id, decided)
    return names


def optional_modules(text: str) -> set[str]:
    """The modules a file imports under a `try` that catches ImportError."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {m for m in guarded_names(tree).values() if m}


def forbidden_imports(
    path: str, tree: ast.Module, module: str, forbidden: tuple[str, ...]
) -> list[Issue]:
    if not forbidden:
        return []
    issues = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        for name in names:
            rule = next((f for f in forbidden if name == f or name.startswith(f + ".")), None)
            if rule is not None:
                issues.append(
                    Issue(
                        "GD405",
                        "error",
                        path,
                        "",
                        node.lineno,
                        f"Import of {name!r} is forbidden in this source (forbidden_imports "
                        f"has {rule!r}); move the code it needs into the DAGs' own modules.",
                    )
                )
    return issues


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    if isinstance(node, ast.Call):
        return dotted(node.func)
    return ""


def module_level(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node that runs when the module is imported: not inside a function or a class
    body's methods (a `with DAG(...)` block, loops and ifs do run)."""
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            todo.extend(node.decorator_list if not isinstance(node, ast.Lambda) else ())
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))
