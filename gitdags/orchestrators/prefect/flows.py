"""Prefect flow files, read from the syntax tree: no repository code runs.

A `.py` file of a Prefect source is a *flow file* when it defines a `@flow` function (the
decorator bare or called, as `flow` or `prefect.flow`, or `name = flow(fn)` at module level),
otherwise a helper module. For each flow this finds its name as Prefect derives it (`name=`,
else the function's name with `_` turned to `-`), its parameters (required ones have no
default), the `@task` functions and the other flows it calls (subflows); for the file, the
modules it imports and the imports `forbidden_imports` refuses (GD405).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitdags.model import DagFile, FileDefinitions, Issue
from gitdags.orchestrators.airflow.imports import dotted, forbidden_imports, imported_modules
from gitdags.orchestrators.airflow.kind import module_of, source_text

if TYPE_CHECKING:
    from gitdags.kinds import ReadContext

BANNED = "/%&><"  # characters Prefect refuses in flow and deployment names


@dataclass
class Flow:
    """One `@flow` function as the syntax tree shows it."""

    function: str
    name: str  # as Prefect names it; "" when `name=` is not a literal
    line: int
    parameters: list[dict[str, Any]] = field(default_factory=list)  # name, required, annotation
    var_keyword: bool = False  # **kwargs: any parameter is accepted
    calls: list[str] = field(default_factory=list)  # names the body calls, in order

    def spec(self, tasks: set[str], flows: dict[str, Flow]) -> dict[str, Any]:
        called = [c for c in dict.fromkeys(self.calls) if c in tasks or c in flows]
        return {
            "function": self.function,
            "flow_name": self.name,
            "line": self.line,
            "parameters": self.parameters,
            "var_keyword": self.var_keyword,
            "tasks": [
                {"id": c, "type": "subflow" if c in flows else "task", "depends_on": []}
                for c in called
            ],
            "subflows": [flows[c].name or c for c in called if c in flows],
        }


@dataclass
class FlowFile:
    """What one Python file of a Prefect source holds."""

    path: str
    flows: dict[str, Flow]  # by function name
    tasks: set[str]
    imports: tuple[str, ...]
    issues: list[Issue]
    error: Issue | None = None  # a syntax error: the file cannot be read


def _decorator(node: ast.expr) -> tuple[str, ast.Call | None]:
    """('flow' | 'task' | '', the call when the decorator is called with arguments)."""
    call = node if isinstance(node, ast.Call) else None
    name = dotted(call.func if call is not None else node)
    last = name.rsplit(".", 1)[-1]
    if name in ("flow", "prefect.flow", "task", "prefect.task"):
        return last, call
    return "", None


def _literal_name(call: ast.Call | None) -> str | None:
    """`name=` of a flow decorator: its text, "" when it is not a literal, None when absent."""
    if call is None:
        return None
    for kw in call.keywords:
        if kw.arg == "name":
            value = kw.value
            return (
                value.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str)
                else ""
            )
    return None


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[dict[str, Any]], bool]:
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    found = [
        {
            "name": a.arg,
            "required": i < first_default,
            "annotation": ast.unparse(a.annotation) if a.annotation is not None else None,
        }
        for i, a in enumerate(positional)
    ]
    found += [
        {
            "name": a.arg,
            "required": default is None,
            "annotation": ast.unparse(a.annotation) if a.annotation is not None else None,
        }
        for a, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    return found, args.kwarg is not None


def _calls(fn: ast.AST) -> list[str]:
    calls = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            # `t.submit(...)`, `t.map(...)`, `t.with_options(...)(...)` call the task `t`
            head, _, tail = name.rpartition(".")
            calls.append(head if tail in ("submit", "map", "with_options") and head else name)
    return calls


def read_flows(path: str, raw: bytes, root: str = "", forbidden: tuple[str, ...] = ()) -> FlowFile:
    """The flows, tasks and imports of one Python file, from its syntax tree."""
    try:
        tree = ast.parse(raw, filename=path)
    except SyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) and exc.lineno > 0 else None
        reason = (exc.msg or "").strip().rstrip(".") or "Python gave no reason"
        error = Issue("GD401", "error", path, "", line, f"Syntax error: {reason}.")
        return FlowFile(path, {}, set(), (), [error], error)
    except (ValueError, RecursionError, MemoryError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        error = Issue("GD401", "error", path, "", None, f"The file cannot be parsed: {reason}.")
        return FlowFile(path, {}, set(), (), [error], error)
    module = module_of(path, root)
    imports = tuple(sorted(imported_modules(tree, module, path.endswith("__init__.py"))))
    issues = forbidden_imports(path, tree, module, forbidden)
    flows: dict[str, Flow] = {}
    tasks: set[str] = set()
    functions = {
        n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    for fn in functions.values():
        for deco in fn.decorator_list:
            what, call = _decorator(deco)
            if what == "task":
                tasks.add(fn.name)
            elif what == "flow":
                flows[fn.name] = _flow(fn.name, fn, _literal_name(call))
    for node in tree.body:  # `my_flow = flow(fn)` or `my_flow = flow(name="x")(fn)`
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not (isinstance(target, ast.Name) and isinstance(value, ast.Call) and value.args):
            continue
        inner = value.func if isinstance(value.func, ast.Call) else None
        what, call = _decorator(inner if inner is not None else value.func)
        wrapped = value.args[0]
        if what and isinstance(wrapped, ast.Name) and wrapped.id in functions:
            if what == "task":
                tasks.add(target.id)
            else:
                named = _literal_name(inner if inner is not None else value)
                flows[target.id] = _flow(target.id, functions[wrapped.id], named)
    for name, flow in flows.items():
        if flow.name and any(c in flow.name for c in BANNED):
            issues.append(
                Issue(
                    "GD104",
                    "error",
                    path,
                    name,
                    flow.line,
                    f"Flow name {flow.name!r} holds a character Prefect refuses "
                    f"({' '.join(BANNED)}); rename the flow.",
                )
            )
    return FlowFile(path, flows, tasks, imports, issues)


def _flow(name: str, fn: ast.FunctionDef | ast.AsyncFunctionDef, named: str | None) -> Flow:
    parameters, var_keyword = _parameters(fn)
    flow_name = fn.name.replace("_", "-") if named is None else named
    return Flow(name, flow_name, fn.lineno, parameters, var_keyword, _calls(fn))


def definitions(path: str, raw: bytes, digest: str, ctx: ReadContext) -> FileDefinitions:
    """A Python file of a Prefect source: a flow file ("prefect-flow") or a helper module
    ("module"); either is served at its last good blob, with the tree."""
    text, _encoding = source_text(raw)
    found = read_flows(path, raw, ctx.root, ctx.forbidden_imports)
    if found.error is not None:
        return FileDefinitions(path, "prefect-flow", digest, issues=(found.error,), content=text)
    for flow in found.flows.values():
        if not flow.name:
            found.issues.append(
                Issue(
                    "GD108",
                    "warning",
                    path,
                    flow.function,
                    flow.line,
                    f"Flow {flow.function!r} takes its name from code (name= is not a literal); "
                    "gitdags names its deployments by the function until Prefect loads it.",
                )
            )
    if not found.flows:
        return FileDefinitions(
            path, "module", digest, imports=found.imports, issues=tuple(found.issues), content=text
        )
    dags = tuple(
        DagFile(path, spec["dag_id"], spec, (), digest, text)
        for spec in sorted(
            (_row(flow, found) for flow in found.flows.values()), key=lambda s: s["line"]
        )
    )
    return FileDefinitions(
        path,
        "prefect-flow",
        digest,
        dags=_unique(dags),
        imports=found.imports,
        issues=tuple(found.issues),
        content=text,
    )


def _row(flow: Flow, found: FlowFile) -> dict[str, Any]:
    """A flow as a DAG of its own (listed, versioned; deployed through prefect.yaml)."""
    name = flow.name or flow.function.replace("_", "-")
    return {
        "dag_id": name,
        "format": "prefect-flow",
        "schedule": None,
        "owner": None,
        "tags": [],
        "depends_on_dags": [],
        **flow.spec(found.tasks, found.flows),
        "flow_name": name,
    }


def _unique(dags: tuple[DagFile, ...]) -> tuple[DagFile, ...]:
    """A flow name given twice in one file: the first keeps it (GD301 on the other)."""
    seen: set[str] = set()
    out = []
    for dag in dags:
        if dag.dag_id in seen:
            line = (dag.spec or {}).get("line")
            issue = Issue(
                "GD301",
                "error",
                dag.path,
                (dag.spec or {}).get("function", ""),
                line,
                f"Flow name {dag.dag_id!r} is given to two flows of this file; Prefect would "
                "file their runs under one flow. Rename one.",
            )
            dag = DagFile(dag.path, "", dag.spec, (issue,), dag.content_hash, dag.content)
        seen.add(dag.dag_id)
        out.append(dag)
    return tuple(out)
