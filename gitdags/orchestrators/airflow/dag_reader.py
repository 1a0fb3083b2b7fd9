"""The DAGs, tasks and dependencies of an Airflow Python file, from walking its syntax tree."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gitdags.model import Issue
from gitdags.orchestrators.airflow.imports import dotted, guarded_names
from gitdags.orchestrators.airflow.literals import MAX_LOOP_IDS, UNKNOWN, literal_value

MAX_LOOP_STEPS = 10_000  # rounds of all a file's loops together (nested loops multiply)


@dataclass
class Dag:
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


class Reader:
    """Finds the DAGs of one module by walking its syntax tree with a tiny evaluator of
    constants: module-level string assignments and the variables of literal loops."""

    def __init__(self, path: str, tree: ast.Module, present: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.tree = tree
        self.found: dict[str, Dag] = {}  # every DAG made, by id
        self.registered: dict[str, Dag] = {}
        self.globals: dict[str, Dag] = {}  # module-level names that hold a DAG
        self.warnings: list[Issue] = []
        self.unresolved = False
        self.constants: dict[str, Any] = {"__file__": path, "__name__": "__main__"}
        self.depth = 0  # inside a function body: names there are not module globals
        self.steps = 0  # rounds of literal loops followed, in all
        # bound by an import that may fail, unless it is known to import where Airflow runs
        self.guarded = {n for n, m in guarded_names(tree).items() if not m or m not in present}
        self.called = {
            dotted(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call) and dotted(n.func)
        }

    def dags(self) -> dict[str, Dag]:
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
        self, body: list[ast.stmt], env: dict[str, Any], dag: Dag | None, names: dict[str, str]
    ) -> None:
        for stmt in body:
            self._stmt(stmt, env, dag, names)

    def _stmt(self, stmt: ast.stmt, env: dict[str, Any], dag: Dag | None, names: dict) -> None:
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            value = stmt.value
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if value is None:
                return
            made = self._expr(value, env, dag, names)
            for target in targets:
                if isinstance(made, Dag) and isinstance(target, ast.Subscript):
                    self._register(made)  # globals()[name] = DAG(...)
                if not isinstance(target, ast.Name):
                    continue
                if self.depth == 0:  # what the module-level name holds at the end
                    if isinstance(made, Dag):
                        self.globals[target.id] = made
                    else:
                        self.globals.pop(target.id, None)
                if isinstance(made, Dag):
                    names[target.id] = f"dag:{made.dag_id}"
                elif isinstance(made, str) and made.startswith("task:"):
                    names[target.id] = made
                else:
                    literal = literal_value(value, env)
                    if literal is not UNKNOWN:
                        env[target.id] = literal
                    else:  # no longer the value it had: never a stale constant
                        env.pop(target.id, None)
        elif isinstance(stmt, ast.Expr):
            made = self._expr(stmt.value, env, dag, names)
            if isinstance(made, Dag) and made.dag_id not in self.registered:
                self._warn(
                    stmt.lineno,
                    f"DAG {made.dag_id!r} is made here but neither used in `with` nor kept "
                    "in a module-level name, so Airflow does not load it.",
                )
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            inner = dag
            for item in stmt.items:
                made = self._expr(item.context_expr, env, dag, names)
                if isinstance(made, Dag):
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

    def _loop(self, stmt: ast.For, env: dict[str, Any], dag: Dag | None, names: dict) -> None:
        values = literal_value(stmt.iter, env)
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
            name = dotted(decorator)
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
                    dag_id = literal_value(call.args[0], env)
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
    def _expr(self, node: ast.expr, env: dict[str, Any], dag: Dag | None, names: dict) -> Any:
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
        name = dotted(node.func).split(".")[-1]
        if name == "DAG":
            args = self._kwargs(node, env)
            dag_id = literal_value(node.args[0], env) if node.args else args.get("dag_id", UNKNOWN)
            return self._new_dag(dag_id, node.lineno, args)
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            if isinstance(arg, ast.expr):
                self._expr(arg, env, dag, names)
        task_id = next((k.value for k in node.keywords if k.arg == "task_id"), None)
        owner = next((k.value for k in node.keywords if k.arg == "dag"), None)
        if isinstance(owner, ast.Name) and str(names.get(owner.id, "")).startswith("dag:"):
            dag = self.found.get(str(names[owner.id])[4:], dag)
        if task_id is not None and dag is not None:
            ident = literal_value(task_id, env)
            if isinstance(ident, str):
                dag.tasks.setdefault(ident, {"id": ident, "type": name, "depends_on": set()})
                return f"task:{ident}"
        return None

    def _depend(self, dag: Dag | None, ups: Any, downs: Any) -> None:
        if dag is None:
            return
        up_ids = [u[5:] for u in _flat(ups) if isinstance(u, str) and u.startswith("task:")]
        for down in _flat(downs):
            if isinstance(down, str) and down.startswith("task:") and down[5:] in dag.tasks:
                dag.tasks[down[5:]]["depends_on"].update(u for u in up_ids if u in dag.tasks)

    def _kwargs(self, call: ast.Call, env: dict[str, Any]) -> dict[str, Any]:
        return {k.arg: literal_value(k.value, env) for k in call.keywords if k.arg is not None}

    def _register(self, dag: Dag) -> None:
        self.registered.setdefault(dag.dag_id, dag)

    def _new_dag(self, dag_id: Any, line: int, args: dict[str, Any]) -> Dag | None:
        if not isinstance(dag_id, str):
            self.unresolved = True
            self._unresolved(line, "an expression known only when the file runs")
            return None
        made = self.found.get(dag_id)
        if made is None:
            made = self.found[dag_id] = Dag(dag_id, line, args)
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
            (isinstance(n, ast.Call) and dotted(n.func).split(".")[-1] in ("DAG", "dag"))
            or (
                isinstance(n, ast.FunctionDef)
                and any(dotted(d).split(".")[-1] == "dag" for d in n.decorator_list)
            )
            for stmt in body
            for n in ast.walk(stmt)
        )


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
