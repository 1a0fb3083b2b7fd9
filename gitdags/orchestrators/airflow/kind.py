"""Airflow Python DAG files, read from the syntax tree: no repository code runs.

As in Airflow's safe mode, a `.py` file whose bytes do not contain both `airflow` and `dag`
(in any case) is a helper module: versioned and served with the tree, never a DAG itself.
For a DAG file this finds: the DAG ids of `DAG("id")`, `DAG(dag_id="id")`, `with DAG(...)` and
`@dag` (the function's name or its `dag_id=`), also inside loops over a literal list or tuple
and through module-level string constants and f-strings; the tasks whose `task_id` is a
literal, with their operator and the `>>`/`<<` dependencies between them; the modules the
file imports; and the calls at module level that Airflow's best practices warn about.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from gitdags.model import DagFile, FileDefinitions, Issue
from gitdags.spec import ID_MAX, ID_RE

if TYPE_CHECKING:
    from gitdags.kinds import ReadContext

# Calls at module level that run at every parse of the file (Airflow's "top-level code").
TOP_LEVEL_CALLS = {
    "Variable.get": "reads an Airflow Variable (a database query)",
    "Variable.set": "writes an Airflow Variable",
    "BaseHook.get_connection": "reads a connection",
    "Connection.get_connection_from_secrets": "reads a connection",
    "requests.get": "makes a network request",
    "requests.post": "makes a network request",
    "requests.request": "makes a network request",
    "httpx.get": "makes a network request",
    "httpx.post": "makes a network request",
    "urllib.request.urlopen": "makes a network request",
    "urlopen": "makes a network request",
    "socket.create_connection": "opens a network connection",
    "boto3.client": "creates a cloud client",
    "boto3.resource": "creates a cloud client",
    "psycopg2.connect": "connects to a database",
    "pymysql.connect": "connects to a database",
    "sqlite3.connect": "connects to a database",
    "snowflake.connector.connect": "connects to a database",
    "create_engine": "creates a database engine",
    "sqlalchemy.create_engine": "creates a database engine",
    "time.sleep": "sleeps",
    "subprocess.run": "runs a command",
    "subprocess.check_output": "runs a command",
    "os.system": "runs a command",
}
MAX_LOOP_IDS = 1000  # ids a loop may spell out before the static reading gives up
MAX_LOOP_STEPS = 10_000  # rounds of all a file's loops together (nested loops multiply)


def is_dag_file(content: bytes) -> bool:
    """Airflow's safe-mode heuristic: a DAG file mentions `airflow` and `dag` (or `asset`)."""
    lowered = content.lower()
    return b"airflow" in lowered and (b"dag" in lowered or b"asset" in lowered)


def module_of(path: str, root: str) -> str:
    """The module name Airflow imports `path` as: its path under the DAGs folder (`root`)."""
    rel = PurePosixPath(path[len(root) :] if root and path.startswith(root) else path)
    parts = list(rel.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_text(raw: bytes) -> tuple[str, str]:
    """The text Python reads from a file's bytes, and its encoding: a BOM or a coding
    declaration (PEP 263) in its first two lines says how, UTF-8 otherwise (the standard
    library's `tokenize.detect_encoding` finds it). A file Python cannot decode gives its bytes
    as UTF-8 with replacements (to show them) and, as encoding, what was declared or ""."""
    try:
        encoding, _lines = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError:
        return raw.decode("utf-8", "replace"), ""
    try:
        return raw.decode(encoding), encoding
    except (LookupError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace"), encoding


def definitions(
    path: str, raw: bytes, digest: str, ctx: ReadContext, *, dag_file: bool
) -> FileDefinitions:
    """The definitions of one Python file, read from its bytes exactly as Python reads them:
    its coding declaration honoured (an unknown one, one that is not a text encoding, or one
    by which the file is no Python are an error of the file, as they are where Airflow runs)."""
    module = module_of(path, ctx.root)
    text, encoding = source_text(raw)
    try:
        tree = ast.parse(raw, filename=path)  # from the bytes: Python's own decoding rules
    except SyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) and exc.lineno > 0 else None
        reason = (exc.msg or "").strip().rstrip(".") or "Python gave no reason"
        if _declaration_at_fault(raw, encoding):
            how = f"as {encoding}, as its coding declaration says" if encoding else ""
            message = (
                f"Python cannot read the file {how or 'by its coding declaration'}: "
                f"{reason}; remove the declaration or declare utf-8."
            )
        elif encoding in ("utf-8", "utf-8-sig") and not _decodes(raw):
            issue = Issue(
                "GD002",
                "error",
                path,
                "",
                line,
                "The file is not UTF-8 text and declares no other coding; save it as UTF-8.",
            )
            return FileDefinitions(path, "none", digest, issues=(issue,))
        else:
            message = f"Syntax error: {reason}."
        issue = Issue("GD401", "error", path, "", line, message)
        kind = "airflow" if dag_file else "module"
        return FileDefinitions(path, kind, digest, issues=(issue,), content=text)
    except (ValueError, RecursionError, MemoryError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        issue = Issue("GD401", "error", path, "", None, f"The file cannot be parsed: {reason}.")
        return FileDefinitions(path, "module", digest, issues=(issue,), content=text)
    imports = tuple(sorted(_imports(tree, module, path.endswith("__init__.py"))))
    issues = _forbidden(path, tree, module, ctx.forbidden_imports)
    if any(i == "dagfactory" or i.startswith("dagfactory.") for i in imports):
        # a dag-factory loader (`load_yaml_dags(globals())`): gitdags serves each dag-factory
        # DAG through a loader of its own, so this one is versioned, never served nor parsed
        return FileDefinitions(path, "loader", digest, imports=imports, content=text)
    if not dag_file:
        return FileDefinitions(
            path, "module", digest, imports=imports, issues=tuple(issues), content=text
        )
    reader = _Reader(path, tree, ctx.present)
    found = reader.dags()
    issues += reader.warnings
    issues += _top_level_calls(path, tree)
    if not found and not reader.unresolved:
        # a helper module that happens to mention airflow and dag: served like any module
        # (Airflow's tier still parses it, in case running it makes DAGs)
        issues.append(
            Issue(
                "GD404",
                "warning",
                path,
                "",
                None,
                "The file looks like an Airflow DAG file (it mentions airflow and dag) but "
                "defines no DAG that can be seen without running it; it is served as a "
                "helper module.",
            )
        )
        return FileDefinitions(
            path, "module", digest, imports=imports, issues=tuple(issues), content=text
        )
    dags = tuple(
        DagFile(path, dag.dag_id, dag.spec(), _id_issues(path, dag), digest, text)
        for dag in sorted(found.values(), key=lambda d: d.line)
    )
    return FileDefinitions(
        path, "airflow", digest, dags=dags, imports=imports, issues=tuple(issues), content=text
    )


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _declaration_at_fault(raw: bytes, encoding: str) -> bool:
    """Whether a file Python cannot parse would parse as plain UTF-8: its coding declaration
    (or a BOM that contradicts it), not its code, is what is wrong."""
    if encoding in ("utf-8", "utf-8-sig"):
        return False
    try:
        ast.parse(raw.decode("utf-8-sig"))  # a str: any declaration in it is ignored
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def parsed_by_airflow(found: FileDefinitions) -> bool:
    """Whether Airflow's tier parses the file: a DAG file, or a module that mentions airflow
    and dag but shows no DAG to the static reading (running it may make some)."""
    if found.broken:
        return False
    return found.kind == "airflow" or (
        found.kind == "module" and any(i.code == "GD404" for i in found.issues)
    )


def _id_issues(path: str, dag: _Dag) -> tuple[Issue, ...]:
    if len(dag.dag_id) <= ID_MAX and ID_RE.fullmatch(dag.dag_id):
        return ()
    message = (
        f"{dag.dag_id[:80]!r} is not a valid DAG id: use letters, digits, '_', '.', '-', "
        f"starting with a letter or digit, at most {ID_MAX} characters."
    )
    return (Issue("GD104", "error", path, "dag_id", dag.line, message),)


# -- imports -----------------------------------------------------------------------------------
def _imports(tree: ast.Module, module: str, package: bool) -> set[str]:
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
    for node in _module_level(tree):
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
    for node in _module_level(tree):
        if not isinstance(node, ast.Try):
            continue
        for handler in node.handlers:
            kinds = handler.type
            names = (
                [_dotted(e) for e in kinds.elts]
                if isinstance(kinds, ast.Tuple)
                else [_dotted(kinds)]
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


def _forbidden(path: str, tree: ast.Module, module: str, forbidden: tuple[str, ...]) -> list[Issue]:
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


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _module_level(tree: ast.Module) -> Iterator[ast.AST]:
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


def _top_level_calls(path: str, tree: ast.Module) -> list[Issue]:
    issues = []
    for node in _module_level(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        what = TOP_LEVEL_CALLS.get(name) or TOP_LEVEL_CALLS.get(".".join(name.split(".")[-2:]))
        if what:
            issues.append(
                Issue(
                    "GD406",
                    "warning",
                    path,
                    "",
                    node.lineno,
                    f"{name}() at module level {what} every time Airflow parses the file; "
                    "move it into a task or use a template.",
                )
            )
    return issues


# -- DAGs --------------------------------------------------------------------------------------
@dataclass
class _Dag:
    dag_id: str
    line: int
    args: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        default_args = self.args.get("default_args")
        owner = default_args.get("owner") if isinstance(default_args, dict) else None
        schedule = self.args.get("schedule", self.args.get("schedule_interval"))
        tags = self.args.get("tags")
        start = self.args.get("start_date")
        description = self.args.get("description")
        return {
            "dag_id": self.dag_id,
            "format": "airflow",
            "description": description if isinstance(description, str) else "",
            "schedule": schedule if isinstance(schedule, str) or schedule is None else "(code)",
            "start_date": start if isinstance(start, str) else None,
            "owner": owner if isinstance(owner, str) else None,
            "tags": sorted(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else [],
            "depends_on_dags": [],
            "tasks": [
                {**task, "depends_on": sorted(task["depends_on"])} for task in self.tasks.values()
            ],
        }


class _Reader:
    """Finds the DAGs of one module by walking its syntax tree with a tiny evaluator of
    constants: module-level string assignments and the variables of literal loops."""

    def __init__(self, path: str, tree: ast.Module, present: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.tree = tree
        self.found: dict[str, _Dag] = {}  # every DAG made, by id
        self.registered: dict[str, _Dag] = {}
        self.globals: dict[str, _Dag] = {}  # module-level names that hold a DAG
        self.warnings: list[Issue] = []
        self.unresolved = False
        self.constants: dict[str, Any] = {"__file__": path, "__name__": "__main__"}
        self.depth = 0  # inside a function body: names there are not module globals
        self.steps = 0  # rounds of literal loops followed, in all
        # bound by an import that may fail, unless it is known to import where Airflow runs
        self.guarded = {n for n, m in guarded_names(tree).items() if not m or m not in present}
        self.called = {
            _dotted(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call) and _dotted(n.func)
        }

    def dags(self) -> dict[str, _Dag]:
        """The DAGs Airflow registers: those of `with DAG(...)`, of called `@dag` functions
        and `@asset`s, and those a module-level name holds at the end (a bare `DAG(...)`
        call, or one rebound in a loop, is not kept)."""
        self._block(self.tree.body, self.constants, None, {})
        if self.steps > MAX_LOOP_STEPS:  # read in part: no DAG it found can be trusted
            return {}
        for dag in self.globals.values():
            self.registered.setdefault(dag.dag_id, dag)
        return self.registered

    # -- statements ----------------------------------------------------------------------------
    def _block(
        self, body: list[ast.stmt], env: dict[str, Any], dag: _Dag | None, names: dict[str, str]
    ) -> None:
        for stmt in body:
            self._stmt(stmt, env, dag, names)

    def _stmt(self, stmt: ast.stmt, env: dict[str, Any], dag: _Dag | None, names: dict) -> None:
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            value = stmt.value
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if value is None:
                return
            made = self._expr(value, env, dag, names)
            for target in targets:
                if isinstance(made, _Dag) and isinstance(target, ast.Subscript):
                    self._register(made)  # globals()[name] = DAG(...)
                if not isinstance(target, ast.Name):
                    continue
                if self.depth == 0:  # what the module-level name holds at the end
                    if isinstance(made, _Dag):
                        self.globals[target.id] = made
                    else:
                        self.globals.pop(target.id, None)
                if isinstance(made, _Dag):
                    names[target.id] = f"dag:{made.dag_id}"
                elif isinstance(made, str) and made.startswith("task:"):
                    names[target.id] = made
                else:
                    literal = _literal(value, env)
                    if literal is not _UNKNOWN:
                        env[target.id] = literal
                    else:  # no longer the value it had: never a stale constant
                        env.pop(target.id, None)
        elif isinstance(stmt, ast.Expr):
            made = self._expr(stmt.value, env, dag, names)
            if isinstance(made, _Dag) and made.dag_id not in self.registered:
                self._warn(
                    stmt.lineno,
                    f"DAG {made.dag_id!r} is made here but neither used in `with` nor kept "
                    "in a module-level name, so Airflow does not load it.",
                )
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            inner = dag
            for item in stmt.items:
                made = self._expr(item.context_expr, env, dag, names)
                if isinstance(made, _Dag):
                    inner = made
                    self._register(made)
                    if isinstance(item.optional_vars, ast.Name):
                        names[item.optional_vars.id] = f"dag:{made.dag_id}"
            self._block(stmt.body, env, inner, names)
        elif isinstance(stmt, ast.For):
            self._loop(stmt, env, dag, names)
        elif isinstance(stmt, ast.If) and self._depends_on_guard(stmt.test):
            if self._creates_dag([*stmt.body, *stmt.orelse]):
                self.unresolved = True
                self._unresolved(
                    stmt.lineno,
                    "a branch taken only when an optional import (under try/except "
                    "ImportError) succeeds where Airflow runs",
                )
        elif isinstance(stmt, ast.If | ast.Try):
            for part in _branches(stmt):
                self._block(part, env, dag, names)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            self._function(stmt, env)

    def _loop(self, stmt: ast.For, env: dict[str, Any], dag: _Dag | None, names: dict) -> None:
        values = _literal(stmt.iter, env)
        if not isinstance(values, list | tuple) or len(values) > MAX_LOOP_IDS:
            before = len(self.found)
            self._block(stmt.body, env, dag, names)  # ids that do not depend on the loop
            if self._creates_dag(stmt.body) and len(self.found) == before:
                self.unresolved = True
                self._unresolved(stmt.lineno, "a loop over values known only when it runs")
            return
        for value in values:
            self.steps += 1
            if self.steps > MAX_LOOP_STEPS:  # nested loops multiply: 1000**3 is hours
                if not self.unresolved or self.steps == MAX_LOOP_STEPS + 1:
                    self._unresolved(stmt.lineno, "loops with more rounds than are followed")
                self.unresolved = True
                return
            scope = dict(env)
            if not _bind(stmt.target, value, scope):
                self.unresolved = True
                return
            self._block(stmt.body, scope, dag, dict(names))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, env: dict) -> None:
        for decorator in node.decorator_list:
            name = _dotted(decorator)
            if name.split(".")[-1] in ("asset", "multi") and "asset" in name.split("."):
                # @asset: a DAG named after the asset (its `name=`, else the function)
                call = decorator if isinstance(decorator, ast.Call) else None
                args = self._kwargs(call, env) if call is not None else {}
                asset_name = args.get("name")
                made = self._new_dag(
                    asset_name if isinstance(asset_name, str) else node.name, node.lineno, args
                )
                if made is not None:
                    self._register(made)
                continue
            if name.split(".")[-1] != "dag":
                continue
            call = decorator if isinstance(decorator, ast.Call) else None
            dag_id: Any = node.name
            args: dict[str, Any] = {}
            if call is not None:
                args = self._kwargs(call, env)
                if call.args:
                    dag_id = _literal(call.args[0], env)
                elif "dag_id" in args:
                    dag_id = args["dag_id"]
            if node.name not in self.called:
                self._warn(
                    node.lineno,
                    f"@dag function {node.name}() is never called, so it defines no DAG; "
                    f"call it at module level ({node.name}()).",
                )
                return
            made = self._new_dag(dag_id, node.lineno, args)
            if made is not None:
                self._register(made)
                self.depth += 1
                self._block(node.body, dict(env), made, {})
                self.depth -= 1

    # -- expressions ---------------------------------------------------------------------------
    def _expr(self, node: ast.expr, env: dict[str, Any], dag: _Dag | None, names: dict) -> Any:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift | ast.LShift):
            left = self._expr(node.left, env, dag, names)
            right = self._expr(node.right, env, dag, names)
            ups, downs = (left, right) if isinstance(node.op, ast.RShift) else (right, left)
            self._depend(dag, ups, downs)
            return right if isinstance(node.op, ast.RShift) else left
        if isinstance(node, ast.List | ast.Tuple):
            return [self._expr(e, env, dag, names) for e in node.elts]
        if isinstance(node, ast.Name):
            return names.get(node.id)
        if not isinstance(node, ast.Call):
            return None
        name = _dotted(node.func).split(".")[-1]
        if name == "DAG":
            args = self._kwargs(node, env)
            dag_id = _literal(node.args[0], env) if node.args else args.get("dag_id", _UNKNOWN)
            return self._new_dag(dag_id, node.lineno, args)
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            if isinstance(arg, ast.expr):
                self._expr(arg, env, dag, names)
        task_id = next((k.value for k in node.keywords if k.arg == "task_id"), None)
        owner = next((k.value for k in node.keywords if k.arg == "dag"), None)
        if isinstance(owner, ast.Name) and str(names.get(owner.id, "")).startswith("dag:"):
            dag = self.found.get(str(names[owner.id])[4:], dag)
        if task_id is not None and dag is not None:
            ident = _literal(task_id, env)
            if isinstance(ident, str):
                dag.tasks.setdefault(ident, {"id": ident, "type": name, "depends_on": set()})
                return f"task:{ident}"
        return None

    def _depend(self, dag: _Dag | None, ups: Any, downs: Any) -> None:
        if dag is None:
            return
        up_ids = [u[5:] for u in _flat(ups) if isinstance(u, str) and u.startswith("task:")]
        for down in _flat(downs):
            if isinstance(down, str) and down.startswith("task:") and down[5:] in dag.tasks:
                dag.tasks[down[5:]]["depends_on"].update(u for u in up_ids if u in dag.tasks)

    def _kwargs(self, call: ast.Call, env: dict[str, Any]) -> dict[str, Any]:
        return {k.arg: _literal(k.value, env) for k in call.keywords if k.arg is not None}

    def _register(self, dag: _Dag) -> None:
        self.registered.setdefault(dag.dag_id, dag)

    def _new_dag(self, dag_id: Any, line: int, args: dict[str, Any]) -> _Dag | None:
        if not isinstance(dag_id, str):
            self.unresolved = True
            self._unresolved(line, "an expression known only when the file runs")
            return None
        made = self.found.get(dag_id)
        if made is None:
            made = self.found[dag_id] = _Dag(dag_id, line, args)
        return made

    def _unresolved(self, line: int, why: str) -> None:
        self._warn(
            line,
            f"A DAG id here comes from {why}; the static reading cannot name it "
            '(python = "airflow" parses the file with Airflow).',
        )

    def _warn(self, line: int, message: str) -> None:
        self.warnings.append(Issue("GD404", "warning", self.path, "", line, message))

    def _depends_on_guard(self, test: ast.expr) -> bool:
        return any(isinstance(n, ast.Name) and n.id in self.guarded for n in ast.walk(test))

    def _creates_dag(self, body: list[ast.stmt]) -> bool:
        return any(
            (isinstance(n, ast.Call) and _dotted(n.func).split(".")[-1] in ("DAG", "dag"))
            or (
                isinstance(n, ast.FunctionDef)
                and any(_dotted(d).split(".")[-1] == "dag" for d in n.decorator_list)
            )
            for stmt in body
            for n in ast.walk(stmt)
        )


_UNKNOWN = object()
_PATHS = ("Path", "PurePath", "PurePosixPath")
_STR_METHODS = ("replace", "removesuffix", "removeprefix", "lower", "upper", "strip", "format")


def _branches(stmt: ast.If | ast.Try) -> list[list[ast.stmt]]:
    if isinstance(stmt, ast.If):
        return [stmt.body, stmt.orelse]
    return [stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody]


def _flat(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _flat(item)
    else:
        yield value


def _bind(target: ast.expr, value: Any, scope: dict[str, Any]) -> bool:
    if isinstance(target, ast.Name):
        scope[target.id] = value
        return True
    if isinstance(target, ast.Tuple | ast.List) and isinstance(value, list | tuple):
        if len(target.elts) != len(value):
            return False
        return all(_bind(t, v, scope) for t, v in zip(target.elts, value, strict=True))
    return False


MAX_TEXT = 10_000  # the longest string the static reading builds (a DAG id is at most 250)
_PERCENT = re.compile(r"%[sdri%]")  # the conversions it evaluates: no width, no precision
_FIELD = re.compile(r"\{\w*\}")  # the fields of `.format` it evaluates: no format spec


def _shown(value: Any) -> str:
    """str(value), or "" past MAX_TEXT (an int of 5,000 digits cannot even be shown)."""
    try:
        text = str(value)
    except ValueError:
        return "?" * (MAX_TEXT + 1)
    return text if len(text) <= MAX_TEXT else "?" * (MAX_TEXT + 1)


def _small(template: str, fields: int, args: Any) -> bool:
    """Whether formatting `template` (with `fields` fields) with `args` stays under MAX_TEXT."""
    values = args if isinstance(args, tuple | list) else [args]
    widest = max((len(_shown(a)) for a in values), default=0)
    return len(template) + fields * widest <= MAX_TEXT


def _literal(node: ast.expr, env: dict[str, Any]) -> Any:
    """The value of a constant expression: literals, known names, f-strings, `+`, `%` and
    `.format()` of strings; `_UNKNOWN` for anything else."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env.get(node.id, _UNKNOWN)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = [_literal(e, env) for e in node.elts]
        return _UNKNOWN if any(i is _UNKNOWN for i in items) else items
    if isinstance(node, ast.Dict):
        keys = [_literal(k, env) if k is not None else _UNKNOWN for k in node.keys]
        values = [_literal(v, env) for v in node.values]
        return {k: v for k, v in zip(keys, values, strict=True) if isinstance(k, str | int | float)}
    if isinstance(node, ast.JoinedStr):
        parts, size = [], 0
        for value in node.values:
            if isinstance(value, ast.Constant):
                part = str(value.value)
            elif isinstance(value, ast.FormattedValue):
                inner = _literal(value.value, env)
                if inner is _UNKNOWN or value.format_spec is not None:
                    return _UNKNOWN
                part = _shown(inner)
            else:
                return _UNKNOWN
            size += len(part)
            if size > MAX_TEXT:  # a string no DAG needs, that would cost memory and time
                return _UNKNOWN
            parts.append(part)
        return "".join(parts)
    if isinstance(node, ast.BinOp):
        left, right = _literal(node.left, env), _literal(node.right, env)
        if left is _UNKNOWN or right is _UNKNOWN:
            return _UNKNOWN
        if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
            return left + right if len(left) + len(right) <= MAX_TEXT else _UNKNOWN
        if isinstance(node.op, ast.Mod) and isinstance(left, str):
            args = tuple(right) if isinstance(right, list) else right
            if _PERCENT.sub("", left).count("%") or not _small(left, left.count("%"), args):
                return _UNKNOWN  # a width or precision: `%0300000000d` is 300 MB
            try:
                return left % args
            except (TypeError, ValueError):
                return _UNKNOWN
        return _UNKNOWN
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and not node.keywords
    ):
        template = _literal(node.func.value, env)
        args = [_literal(a, env) for a in node.args]
        if isinstance(template, str) and all(a is not _UNKNOWN for a in args):
            plain = template.replace("{{", "").replace("}}", "")
            fields = len(_FIELD.findall(plain))
            if "{" in _FIELD.sub("", plain) or not _small(template, fields, args):
                return _UNKNOWN  # a format spec: `{:300000000}` is 300 MB
            try:
                return template.format(*args)
            except (IndexError, KeyError, ValueError):
                return _UNKNOWN
    if isinstance(node, ast.Attribute) and node.attr in ("stem", "name", "parent"):
        inner = node.value  # Path(__file__).stem and the like
        if isinstance(inner, ast.Call) and _dotted(inner.func).split(".")[-1] in _PATHS:
            base = _literal(inner.args[0], env) if inner.args else _UNKNOWN
            if isinstance(base, str):
                return str(getattr(PurePosixPath(base), node.attr))
        return _UNKNOWN
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        method, target = node.func.attr, _literal(node.func.value, env)
        args = [_literal(a, env) for a in node.args]
        if (
            isinstance(target, str)
            and method in _STR_METHODS
            and all(isinstance(a, str) for a in args)
            and not node.keywords
            and method != "format"
        ):
            if method == "replace" and len(args) >= 2:  # "x".replace("", long) grows fast
                count = target.count(args[0]) if args[0] else len(target) + 1
                if len(target) + count * len(args[1]) > MAX_TEXT:
                    return _UNKNOWN
            try:
                return getattr(target, method)(*args)
            except (TypeError, ValueError):
                return _UNKNOWN
    if isinstance(node, ast.Call) and _dotted(node.func) in ("os.path.basename", "basename"):
        base = _literal(node.args[0], env) if node.args else _UNKNOWN
        return PurePosixPath(base).name if isinstance(base, str) else _UNKNOWN
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Call)
        and _dotted(node.value.func) in ("os.path.splitext", "splitext")
        and node.value.args
    ):
        base = _literal(node.value.args[0], env)
        index = _literal(node.slice, env)
        if isinstance(base, str) and index in (0, -2):
            return base.rsplit(".", 1)[0] if "." in PurePosixPath(base).name else base
    if isinstance(node, ast.Call) and _dotted(node.func).split(".")[-1] == "datetime":
        parts = [_literal(a, env) for a in node.args[:3]]  # datetime(2024, 1, 1)
        if len(parts) == 3 and all(isinstance(p, int) for p in parts):
            return f"{parts[0]:04}-{parts[1]:02}-{parts[2]:02}"
    if isinstance(node, ast.Call) and _dotted(node.func) in ("range",) and node.args:
        bounds = [_literal(a, env) for a in node.args]
        if all(isinstance(b, int) for b in bounds) and len(bounds) <= 3:
            values = range(*bounds)
            if len(values) <= MAX_LOOP_IDS:
                return list(values)
    return _UNKNOWN
