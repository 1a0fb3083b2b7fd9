"""Airflow Python DAG files, read from the syntax tree: no repository code runs.

As in Airflow's safe mode, a `.py` file whose bytes do not contain both `airflow` and `dag`
(in any case) is a helper module: versioned and served with the tree, never a DAG itself.
For a DAG file this finds: the DAG ids of `DAG("id")`, `DAG(dag_id="id")`, `with DAG(...)` and
`@dag` (the function's name or its `dag_id=`), also inside loops over a literal list or tuple
and through module-level string constants and f-strings; the tasks whose `task_id` is a
literal, with their operator and the `>>`/`<<` dependencies between them; the modules the
file imports; and the calls at module level that Airflow's best practices warn about.
`dag_reader` finds the DAGs (with the evaluator of `literals`), `imports` the imports.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from gitdags.model import DagFile, FileDefinitions, Issue
from gitdags.orchestrators.airflow.dag_reader import Dag, Reader
from gitdags.orchestrators.airflow.imports import (
    dotted,
    forbidden_imports,
    imported_modules,
    module_level,
)
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
    imports = tuple(sorted(imported_modules(tree, module, path.endswith("__init__.py"))))
    issues = forbidden_imports(path, tree, module, ctx.forbidden_imports)
    if any(i == "dagfactory" or i.startswith("dagfactory.") for i in imports):
        # a dag-factory loader (`load_yaml_dags(globals())`): gitdags serves each dag-factory
        # DAG through a loader of its own, so this one is versioned, never served nor parsed
        return FileDefinitions(path, "loader", digest, imports=imports, content=text)
    if not dag_file:
        return FileDefinitions(
            path, "module", digest, imports=imports, issues=tuple(issues), content=text
        )
    reader = Reader(path, tree, ctx.present)
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


def _id_issues(path: str, dag: Dag) -> tuple[Issue, ...]:
    if len(dag.dag_id) <= ID_MAX and ID_RE.fullmatch(dag.dag_id):
        return ()
    message = (
        f"{dag.dag_id[:80]!r} is not a valid DAG id: use letters, digits, '_', '.', '-', "
        f"starting with a letter or digit, at most {ID_MAX} characters."
    )
    return (Issue("GD104", "error", path, "dag_id", dag.line, message),)


def _top_level_calls(path: str, tree: ast.Module) -> list[Issue]:
    issues = []
    for node in module_level(tree):
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func)
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
