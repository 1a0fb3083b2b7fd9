"""Validation findings: the stable issue codes, one Issue, and whether any is an error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]

# Stable issue codes. The number never changes meaning; the name is for people.
CODES: dict[str, str] = {
    # the file itself
    "GD001": "file-too-large",
    "GD002": "binary-file",
    "GD003": "symlink",
    "GD004": "parse-error",
    "GD005": "not-a-mapping",
    "GD006": "unsupported-extension",
    "GD007": "not-a-dag-definition",
    # fields of one DAG
    "GD101": "missing-field",
    "GD102": "wrong-type",
    "GD103": "unknown-field",
    "GD104": "bad-id",
    "GD105": "bad-schedule",
    "GD106": "bad-duration",
    "GD107": "bad-date",
    "GD108": "bad-value",
    "GD109": "tasks-and-nodes",
    "GD110": "unknown-entrypoint",
    # tasks of one DAG
    "GD201": "duplicate-task-id",
    "GD202": "unknown-task",
    "GD203": "self-dependency",
    "GD204": "cycle",
    "GD205": "unknown-task-type",
    "GD206": "missing-config-key",
    "GD207": "no-tasks",
    # across files and sources
    "GD301": "duplicate-dag-id",
    "GD302": "unknown-dag-dependency",
    "GD303": "dag-cycle",
    "GD304": "namespace-violation",
    "GD305": "outside-namespace",
    "GD306": "dag-id-pattern",
    # Airflow Python files
    "GD401": "syntax-error",
    "GD402": "import-error",
    "GD403": "parse-timeout",
    "GD404": "no-dag-found",
    "GD405": "forbidden-import",
    "GD406": "top-level-call",
    "GD407": "missing-module",
    "GD408": "airflow3-removed",
    "GD409": "file-held-back",
    # Dagster code locations
    "GD420": "asset-key-collision",
    "GD421": "no-definitions",
    "GD422": "unknown-job-target",
    "GD423": "location-broken-elsewhere",
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One validation finding, located in a file."""

    code: str
    severity: Severity
    file: str
    location: str
    line: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "file": self.file,
            "location": self.location,
            "line": self.line,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Issue:
        return cls(
            code=data["code"],
            severity=data["severity"],
            file=data["file"],
            location=data["location"],
            line=data.get("line"),
            message=data["message"],
        )

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        loc = f" [{self.location}]" if self.location else ""
        return f"{where}: {self.severity} {self.code}{loc} {self.message}"


def has_errors(issues: tuple[Issue, ...] | list[Issue]) -> bool:
    return bool(issues) and any(i.severity == "error" for i in issues)
