"""dag-factory YAML files: gitdags' static check per file against dag-factory's own load of the
same file in a warm Airflow process, and the first sync of 1,000 dag-factory DAGs in 200 files.

200 generated files (5 DAGs each, a `default:` block, 6-12 tasks per DAG, one task group in
two DAGs of three), under a `defaults.yml`, in a git repository with a bare remote. One run
measures, in the same run:
  - gitdags' static check of one file (`kinds.read`, warm, in-process; median over the files);
  - the baseline: dag-factory 1.x building the DAGs of one file in a warm Airflow process
    (`load_yaml_dags(config_filepath=...)`, the defaults chain included; median);
  - the first sync of the repository (fetch, read, check, record), and a one-file commit.

    python benchmarks/dagfactory_bench.py [--files 200]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from repo import WORK, commit_all, git  # noqa: E402

from gitdags.config import Settings, SourceConfig  # noqa: E402
from gitdags.engine import build_engine  # noqa: E402

BASH = "airflow.providers.standard.operators.bash.BashOperator"
EMPTY = "airflow.providers.standard.operators.empty.EmptyOperator"
DEFAULTS = "default_args:\n  owner: platform\n  retries: 2\ntags: [generated]\n"


def factory_file(i: int, rnd: random.Random, revision: int = 0) -> str:
    lines = [
        "default:",
        "  default_args:",
        f"    owner: team-{i % 17}",
        "    start_date: 2024-01-01",
        "  catchup: false",
        '  schedule: "@daily"',
        "",
    ]
    for d in range(5):
        lines += [f"df_{i:04}_{d}:", f"  description: generated {i} {d} rev {revision}"]
        grouped = d % 3 != 0
        if grouped:
            lines += ["  task_groups:", "    stage:", "      tooltip: staged tasks"]
        lines.append("  tasks:")
        names: list[str] = []
        for t in range(rnd.randint(6, 12)):
            name = f"t{t:02}"
            operator = BASH if t % 3 else EMPTY
            lines += [f"    {name}:", f"      operator: {operator}"]
            if operator == BASH:
                lines.append(f"      bash_command: echo {i} {d} {t}")
            if grouped and t % 4 == 1:
                lines.append("      task_group_name: stage")
            if names:
                lines.append(f"      dependencies: [{names[rnd.randrange(len(names))]}]")
            names.append(name)
        lines.append("")
    return "\n".join(lines)


def make_repo(files: int) -> tuple[Path, Path]:
    base = WORK / f"df{files}"
    shutil.rmtree(base, ignore_errors=True)
    work, bare = base / "work", base / "remote.git"
    (work / "dags").mkdir(parents=True)
    (work / "dags" / "defaults.yml").write_text(DEFAULTS)
    rnd = random.Random(files)
    for i in range(files):
        folder = work / "dags" / f"team{i % 10:02}"
        folder.mkdir(exist_ok=True)
        (folder / f"pipelines_{i:04}.yml").write_text(factory_file(i, rnd))
    commit_all(work, bare)
    return work, bare


STATIC_TIMER = """
import json, statistics, sys, time
from gitdags import kinds
from gitdags.kinds import ReadContext
root, paths = json.loads(sys.stdin.read())
defaults = open(root + "/defaults.yml").read()
ctx = ReadContext(root="dags/", defaults=(("dags/defaults.yml", defaults),))
contents = [("dags/" + p[len(root) + 1:], open(p, "rb").read()) for p in paths]
kinds.read(*contents[0], ctx=ctx)
samples = []
for _ in range(3):
    for path, content in contents:
        start = time.perf_counter()
        found = kinds.read(path, content, ctx=ctx)
        samples.append(time.perf_counter() - start)
        assert len(found.dags) == 5 and all(d.valid for d in found.dags), found.all_issues()
print(json.dumps({"median_ms": round(statistics.median(samples) * 1000, 3)}))
"""

FACTORY_TIMER = """
import json, logging, statistics, sys, time
logging.disable(logging.CRITICAL)
from dagfactory import load_yaml_dags
root, paths = json.loads(sys.stdin.read())
load_yaml_dags(globals_dict={}, config_filepath=paths[0], defaults_config_path=root)
samples = []
for _ in range(3):
    for path in paths:
        found = {}
        start = time.perf_counter()
        load_yaml_dags(globals_dict=found, config_filepath=path, defaults_config_path=root)
        samples.append(time.perf_counter() - start)
        assert len(found) == 5, path
print(json.dumps({"median_ms": round(statistics.median(samples) * 1000, 3)}))
"""


def timed(python: str, script: str, payload: object, env: dict[str, str] | None = None) -> float:
    done = subprocess.run(
        [python, "-c", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return float(json.loads(done.stdout.strip().splitlines()[-1])["median_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    work, bare = make_repo(args.files)
    root = str(work / "dags")
    paths = sorted(str(p) for p in (work / "dags").rglob("pipelines_*.yml"))

    static = timed(sys.executable, STATIC_TIMER, [root, paths])
    from airflow_bench import airflow_python

    python = airflow_python(install=True)
    factory = None
    if python is not None:
        home = WORK / "df-airflow-home"
        home.mkdir(parents=True, exist_ok=True)
        env = {"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin", "DO_NOT_TRACK": "1"}
        check = subprocess.run([str(python), "-c", "import dagfactory"], capture_output=True)
        if check.returncode != 0:
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "dag-factory>=1.0,<2"], check=True
            )
        factory = timed(str(python), FACTORY_TIMER, [root, paths], env)

    state = WORK / f"df{args.files}" / "state"
    shutil.rmtree(state, ignore_errors=True)
    source = SourceConfig(name="df", url=bare.as_uri(), subdir="dags", include=("**/*.yml",))
    engine = build_engine(Settings(database=state / "gitdags.db", listen="", sources=(source,)))
    start = time.perf_counter()
    (first,) = engine.sync()
    first_s = time.perf_counter() - start
    assert first.error is None and first.added == args.files * 5, (first.error, first.added)
    rnd = random.Random(1)
    target = Path(paths[0])
    target.write_text(factory_file(0, rnd, revision=1))
    git(work, "commit", "--quiet", "-am", "one file")
    git(work, "push", "--quiet", str(bare), "main")
    start = time.perf_counter()
    (one,) = engine.sync()
    one_ms = (time.perf_counter() - start) * 1000
    engine.close()
    assert one.changed == 5, one

    print(f"dag-factory files: {args.files} files, {args.files * 5} DAGs")
    print(f"static check, per file (median, warm)              {static:.2f} ms  (target <= 3 ms)")
    if factory is not None:
        ratio = static / factory
        print(f"baseline: dag-factory's load of one file (warm)    {factory:.2f} ms")
        print(f"static check / dag-factory load                    {ratio:.2f}x (target <= 0.5x)")
    else:
        print("baseline: skipped (no Airflow environment)")
    print(f"first sync of {args.files * 5} DAGs, fetch included          {first_s:.2f} s")
    print(f"one-file commit (5 DAGs changed), end to end       {one_ms:.0f} ms")
    print("(medians over 3 passes of every file)")


if __name__ == "__main__":
    main()
