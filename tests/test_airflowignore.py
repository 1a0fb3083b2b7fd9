""".airflowignore: matched as pathspec's regular expressions match, in time linear in the path
(Python's `re` backtracks: one pattern beside a long name hung a sync for minutes)."""

from __future__ import annotations

import re
import warnings

from hypothesis import given, settings
from hypothesis import strategies as st

from gitdags.orchestrators.airflow.ignore import AirflowIgnore, Linear
from tests.conftest import GitRepo
from tests.test_airflow_py import py_source

HOSTILE = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*ax"  # from the issue: > 300 s with `re`
DAG = "from airflow.sdk import DAG\n\nwith DAG(dag_id={!r}):\n    pass\n"


def pathspec_regex(pattern: str) -> str | None:
    try:
        from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern as Pattern
    except ImportError:
        from pathspec.patterns import GitWildMatchPattern as Pattern  # type: ignore[no-redef]
    try:
        regex, include = Pattern.pattern_to_regex(pattern)
    except Exception:
        return None
    return regex if include is not None else None


@settings(max_examples=1500, deadline=None)
@given(
    st.text(alphabet="ab*?/[]!-\\.x^ ", min_size=1, max_size=10),
    st.lists(st.text(alphabet="ab/.x]-\n ^", max_size=12), min_size=1, max_size=6),
)
def test_linear_matching_agrees_with_re_on_pathspec_s_expressions(
    pattern: str, paths: list[str]
) -> None:
    regex = pathspec_regex(pattern)
    if regex is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            compiled = re.compile(regex)
        except re.error:
            return  # pathspec itself cannot use it
    linear = Linear(regex)
    for path in paths:
        assert linear.search(path) == (compiled.search(path) is not None), (pattern, regex, path)


def test_the_hostile_pattern_is_matched_in_linear_time() -> None:
    regex = pathspec_regex(HOSTILE)
    assert regex is not None
    linear = Linear(regex)
    assert not linear.search("a" * 250 + ".py")  # `re` would run for years on this one
    assert linear.search("a" * 250 + "x")
    assert linear.search("b" + "ab" * 20 + "ax/") and not linear.search("ab" * 14 + "ax")
    ignore = AirflowIgnore({"": f"{HOSTILE}\n"})
    assert ignore.ignored("a" * 200 + "x/dag.py") and not ignore.ignored("a" * 250 + ".py")


def test_a_hostile_ignore_pattern_beside_a_long_name_never_hangs_a_sync(
    repo: GitRepo, make_engine
) -> None:
    long_dag = "a" * 240 + ".py"  # does not match: the pattern ends in x
    ignored_folder = "a" * 200 + "x"  # matches: the folder's files are no DAG files
    repo.commit(
        "hostile ignore",
        {
            "dags/.airflowignore": f"# from a fuzzer\n{HOSTILE}\n",
            f"dags/{long_dag}": DAG.format("long_name"),
            f"dags/{ignored_folder}/inside.py": DAG.format("ignored_one"),
            "dags/plain.py": DAG.format("plain"),
        },
    )
    engine = make_engine(py_source(repo))
    (result,) = engine.sync()
    assert result.error is None, result.error
    assert {d.dag_id for d in engine.served()} == {"long_name", "plain"}
