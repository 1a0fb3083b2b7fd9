"""The files tables: every counted file of a source with its issues, and the DAGs it defines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gitdags.history.rows import CHUNK, StoreRows, _issues, dumps, loads
from gitdags.model import Issue

CROSS_CODES = ("GD301", "GD302", "GD303")  # issues that another file can cause, or mend


@dataclass(frozen=True, slots=True)
class FileRow:
    """A file as a sync records it."""

    path: str
    blob: str
    kind: str
    issues: tuple[Issue, ...] = ()
    imports: tuple[str, ...] = ()
    good: bool = False  # its blob may be served (a Python file that parsed, with good DAGs)


class FileTables(StoreRows):
    """Files and the DAG ids each defines; the rechecks one source asks of another."""

    # -- files -----------------------------------------------------------------------------------
    def file_blobs(self, source: str) -> dict[str, str]:
        rows = self._all("SELECT path, blob FROM files WHERE source = ?", (source,))
        return {r["path"]: r["blob"] for r in rows}

    def defaults_files(self, source: str) -> dict[str, str]:
        """path -> blob of the source's dag-factory defaults files (read or not)."""
        rows = self._all(
            "SELECT path, blob FROM files WHERE source = ? AND (path LIKE '%defaults.yml' "
            "OR path LIKE '%defaults.yaml')",
            (source,),
        )
        names = ("defaults.yml", "defaults.yaml")
        return {r["path"]: r["blob"] for r in rows if r["path"].rsplit("/", 1)[-1] in names}

    def files_of_kind(self, source: str, kind: str) -> dict[str, str]:
        """path -> blob of the source's files of one definition kind."""
        rows = self._all(
            "SELECT path, blob FROM files WHERE source = ? AND kind = ?", (source, kind)
        )
        return {r["path"]: r["blob"] for r in rows}

    def file_kinds(self, source: str) -> dict[str, str]:
        """path -> definition kind of each file the source counts."""
        rows = self._all("SELECT path, kind FROM files WHERE source = ?", (source,))
        return {r["path"]: r["kind"] for r in rows}

    def python_files(self, source: str) -> dict[str, str]:
        """path -> blob of the source's Python files and .airflowignore files."""
        rows = self._all(
            "SELECT path, blob FROM files WHERE source = ? AND kind IN ('airflow', 'module', "
            "'prefect-flow', 'dagster', 'ignore')",
            (source,),
        )
        return {r["path"]: r["blob"] for r in rows}

    def served_blobs(self, source: str, paths: Iterable[str]) -> dict[str, str]:
        """path -> the blob served for each of these files (those that have one)."""
        rows = self._all_in(
            "SELECT path, served_blob FROM files WHERE source = ? AND served_blob IS NOT NULL "
            "AND path IN ({marks})",
            sorted(set(paths)),
            source,
        )
        return {r["path"]: r["served_blob"] for r in rows}

    def python_imports(self, source: str) -> dict[str, tuple[str, ...]]:
        """path -> the modules each Python file of the source imports."""
        rows = self._all(
            "SELECT path, imports FROM files WHERE source = ? AND kind IN ('airflow', 'module', "
            "'prefect-flow', 'dagster')",
            (source,),
        )
        return {r["path"]: tuple(loads(r["imports"]) or ()) for r in rows}

    def save_files(
        self, source: str, files: list[FileRow], defines: list[tuple[str, str, bool]]
    ) -> None:
        """One row per file read; (path, dag_id, claimed) per DAG each defines. A file's
        served blob moves only when `served` is set (its new blob is good)."""
        paths = [(source, f.path) for f in files]
        self.conn.executemany("DELETE FROM file_dags WHERE source = ? AND path = ?", paths)
        self.conn.executemany(
            "INSERT INTO files (source, path, blob, kind, issues, imports, served_blob, recheck) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (source, path) DO UPDATE SET "
            "blob = excluded.blob, kind = excluded.kind, issues = excluded.issues, "
            "imports = excluded.imports, recheck = 0, "
            "served_blob = COALESCE(excluded.served_blob, served_blob)",
            [
                (
                    source,
                    f.path,
                    f.blob,
                    f.kind,
                    dumps([i.to_dict() for i in f.issues]) if f.issues else "[]",
                    dumps(list(f.imports)) if f.imports else "[]",
                    f.blob if f.good else None,
                )
                for f in files
            ],
        )
        self.conn.executemany(
            "INSERT INTO file_dags (source, path, dag_id, claimed) VALUES (?, ?, ?, ?)",
            [(source, p, d, int(c)) for p, d, c in defines],
        )

    def delete_files(self, source: str, paths: Iterable[str]) -> None:
        pairs = [(source, p) for p in paths]
        self.conn.executemany("DELETE FROM files WHERE source = ? AND path = ?", pairs)
        self.conn.executemany("DELETE FROM file_dags WHERE source = ? AND path = ?", pairs)

    def file_defines(self, source: str, path: str, dag_id: str) -> bool:
        """Whether the file (still) defines this DAG."""
        row = self._one(
            "SELECT 1 FROM file_dags WHERE source = ? AND path = ? AND dag_id = ?",
            (source, path, dag_id),
        )
        return row is not None

    def defined_ids(self, source: str, paths: Iterable[str]) -> set[str]:
        """The DAG ids these files of the source define, owned or refused."""
        rows = self._all_in(
            "SELECT dag_id FROM file_dags WHERE source = ? AND path IN ({marks})",
            sorted(set(paths)),
            source,
        )
        return {r["dag_id"] for r in rows}

    def waiting_files(self, source: str, dag_ids: Iterable[str]) -> dict[str, str]:
        """path -> blob of this source's files refused a DAG id of `dag_ids` (a duplicate)."""
        rows = self._all_in(
            "SELECT f.path, f.blob FROM file_dags d JOIN files f "
            "ON f.source = d.source AND f.path = d.path "  # +: look up by dag_id, not source
            "WHERE +d.source = ? AND d.claimed = 0 AND d.dag_id IN ({marks})",
            sorted(set(dag_ids)),
            source,
        )
        return {r["path"]: r["blob"] for r in rows}

    def dependent_files(self, source: str, dag_ids: Iterable[str]) -> dict[str, str]:
        """path -> blob of this source's files whose DAGs name one of `dag_ids` in
        depends_on_dags, or whose newest version is invalid for a cross-file reason only."""
        ids = sorted(set(dag_ids))
        paths = {
            r["path"]
            for r in self._all_in(
                "SELECT path FROM dags d WHERE source = ? AND deleted = 0 "
                "AND depends_on_dags != '[]' AND EXISTS (SELECT 1 FROM "
                "json_each(d.depends_on_dags) j WHERE j.value IN ({marks}))",
                ids,
                source,
            )
        }
        for r in self._all(
            "SELECT d.path, v.issues FROM dags d JOIN versions v "
            "ON v.dag_id = d.dag_id AND v.version = d.newest_version "
            "WHERE d.source = ? AND d.deleted = 0 AND d.newest_valid = 0",
            (source,),
        ):
            errors = {i.code for i in _issues(r["issues"]) if i.severity == "error"}
            if errors and errors <= set(CROSS_CODES):
                paths.add(r["path"])
        if not paths:
            return {}
        rows = self._all_in(
            "SELECT path, blob FROM files WHERE source = ? AND path IN ({marks})",
            sorted(paths),
            source,
        )
        return {r["path"]: r["blob"] for r in rows}

    def rechecks(self, source: str) -> dict[str, str]:
        """path -> blob of the files another source's sync asked this one to check again."""
        rows = self._all("SELECT path, blob FROM files WHERE source = ? AND recheck = 1", (source,))
        return {r["path"]: r["blob"] for r in rows}

    def ask_recheck(self, dag_ids: Iterable[str], *, besides: str) -> int:
        """Ask the other sources to check again their files that wait for (a duplicate) or
        depend on these DAG ids, at their next sync. Returns how many files were marked."""
        ids = sorted(set(dag_ids))
        pairs: set[tuple[str, str]] = set()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            for r in self._all(
                f"SELECT source, path FROM file_dags WHERE claimed = 0 AND dag_id IN ({marks}) "
                "AND +source != ? UNION SELECT source, path FROM dags d WHERE source != ? "
                "AND deleted = 0 AND depends_on_dags != '[]' AND EXISTS (SELECT 1 FROM "
                f"json_each(d.depends_on_dags) j WHERE j.value IN ({marks}))",
                [*chunk, besides, besides, *chunk],
            ):
                pairs.add((r["source"], r["path"]))
        self.conn.executemany(
            "UPDATE files SET recheck = 1 WHERE source = ? AND path = ?", sorted(pairs)
        )
        return len(pairs)

    def file_error_counts(self) -> dict[str, int]:
        """Per source, the files with a file-level error (not readable, not DAG definitions)."""
        rows = self._all(
            "SELECT source, count(*) AS n FROM files WHERE issues != '[]' AND EXISTS "
            "(SELECT 1 FROM json_each(files.issues) WHERE json_extract(value, '$.severity') "
            "= 'error') GROUP BY source"
        )
        return {r["source"]: r["n"] for r in rows}
