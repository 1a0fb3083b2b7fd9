"""dag-factory's defaults (PRODUCT.md section 11): the `defaults.yml` / `defaults.yaml` files up
the folders to the DAGs folder, and the merge dag-factory makes of them with a file's `default:`
block and a DAG's block:

    block > defaults.yml keys (nearest folder first; `tags` joined) > the file's `default:`
    default_args: the block's > the `default:` block's > defaults.yml's (nearest first)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitdags import formats
from gitdags.model import Issue

if TYPE_CHECKING:
    from gitdags.kinds import ReadContext

DEFAULTS_FILES = ("defaults.yml", "defaults.yaml")  # in this order of preference


def is_defaults(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in DEFAULTS_FILES


@dataclass(frozen=True)
class Defaults:
    """One defaults.yml: its data, or the issue that keeps it from being read."""

    path: str
    data: dict[str, Any]
    problem: Issue | None = None


def read_defaults(files: tuple[tuple[str, str], ...]) -> dict[str, Defaults]:
    """folder -> the defaults file that counts there (defaults.yml before defaults.yaml)."""
    found: dict[str, Defaults] = {}
    for path, text in sorted(files, key=lambda f: DEFAULTS_FILES.index(_name(f[0]))):
        folder = path.rpartition("/")[0]
        if folder in found:
            continue
        parsed = formats.parse(path, text)
        problem = parsed.issues[0] if parsed.issues else None
        data = parsed.data if problem is None else {}
        if problem is None and data is None:
            data = {}
        if problem is None and not isinstance(data, dict):
            problem = Issue(
                "GD102",
                "error",
                path,
                "",
                1,
                f"The defaults file holds a {type(data).__name__}; it must be a mapping.",
            )
            data = {}
        found[folder] = Defaults(path, data, problem)
    return found


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def chain(path: str, ctx: ReadContext) -> list[Defaults]:
    """The defaults files that reach `path`, from the DAGs folder down to its own folder."""
    found = ctx.defaults_by_folder
    if not found:
        return []
    root = ctx.root.rstrip("/")
    folder = path.rpartition("/")[0]
    reached = []
    while True:
        if folder in found:
            reached.append(found[folder])
        if folder == root or not folder:
            break
        folder = folder.rpartition("/")[0]
        if root and not (folder == root or folder.startswith(root + "/")):
            break
    return reached[::-1]


def compose(
    block: dict[str, Any], default: dict[str, Any], reached: list[Defaults]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the `default` block, the DAG block) as dag-factory builds the DAG from them."""
    chain_args: dict[str, Any] = {}
    chain_dag: dict[str, Any] = {}
    for defaults in reached:  # the nearest last: it wins
        args = defaults.data.get("default_args")
        if isinstance(args, dict):
            chain_args.update(args)
        for key, value in defaults.data.items():
            if key == "default_args":
                continue
            if key == "tags" and isinstance(value, list):
                value = sorted({*chain_dag.get("tags", []), *value}, key=str)
            chain_dag[key] = value
    effective = copy.deepcopy(default)
    own = default.get("default_args")
    args = {**chain_args, **(own if isinstance(own, dict) else {})}
    if args:
        effective["default_args"] = args
    return effective, {**chain_dag, **block}


def merged(block: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """dag-factory's `merge_configs`: the block, with what it lacks filled from `default`."""
    out = dict(block)
    for key, value in default.items():
        if key not in out:
            out[key] = value
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merged(out[key], value)
    return out
