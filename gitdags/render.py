"""Plain-text rendering of model objects for the CLI (tables that stay readable when piped)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitdags.model import (
    CONSUMER_STATES,
    AuditEntry,
    DagDetail,
    DagState,
    Issue,
    SourceStatus,
    SyncResult,
    Version,
)


def short(sha: str | None) -> str:
    return sha[:10] if sha else "-"


def when(iso: str | None) -> str:
    """A stored time for people: in UTC, said so (`2026-12-01 20:40:45Z`); git's times keep
    their author's zone and are converted."""
    if not iso:
        return "-"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if moment.tzinfo is not None else "")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def counts(result: SyncResult) -> str:
    return (
        f"+{result.added} added  ~{result.changed} changed  -{result.deleted} deleted  "
        f"!{result.invalid} invalid  ={result.unchanged} unchanged"
    )


def sync_result(result: SyncResult, *, publish_error: bool = True) -> str:
    """A sync's outcome; without its publish error when `publish_error` is False (the CLI
    says that on stderr, see `not_published`)."""
    prefix = "[dry run] " if result.dry_run else ""
    if result.error:
        return f"{prefix}{result.source}: FAILED: {result.error}"
    shown = result.publish_error if publish_error else None
    if result.nothing_new:
        return f"{prefix}{result.source}: up to date at {short(result.to_commit)}, no changes" + (
            f"\n  NOT PUBLISHED: {shown}" if shown else ""
        )
    head = (
        f"{prefix}{result.source}: {short(result.from_commit)} -> {short(result.to_commit)}"
        f"{' (force-push: compared with the database)' if result.forced else ''}  "
        f"{counts(result)}  ({result.duration_ms:.0f} ms)"
    )
    lines = [head] + ([f"  ({result.note})"] if result.note else [])
    for change in result.changes:
        version = f" v{change.version}" if change.version else ""
        moved = f" (from {change.old_path})" if change.old_path else ""
        lines.append(f"  {change.change:<9} {change.dag_id}{version}  {change.path}{moved}")
    lines += [f"  {issue}" for issue in result.issues if issue.severity == "error"]
    skipped = sorted({i.file for i in result.issues if i.code == "GD007"})
    if skipped:
        names = ", ".join(skipped[:5]) + (
            f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        )
        lines.append(f"  {len(skipped)} files are not DAG definitions (GD007), no DAG: {names}")
    if shown:
        lines.append(f"  NOT PUBLISHED: {shown}")
    return "\n".join(lines)


def not_published(result: SyncResult) -> str:
    return f"{result.source}: NOT PUBLISHED: {result.publish_error}"


def dags(states: list[DagState], *, wide: bool = False) -> str:
    """The DAG table; `wide` adds the file, the schedule and the tags (as `-o wide` does)."""
    headers = ["dag_id", "status", "served", "newest", "commit", "source", "owner", "updated"]
    consumers = sorted({c for d in states for c in d.consumers})
    headers += consumers  # what each orchestrator runs: landed, pending 12s, broken...
    if wide:
        headers += ["path", "schedule", "tags"]
    rows = []
    for d in states:
        gone = d.status == "deleted"
        row = [
            d.dag_id,
            d.status,
            f"v{d.served_version}" if d.served_version and not gone else "-",
            f"v{d.newest_version}" if d.newest_version != d.served_version or gone else "",
            short(d.served_commit) if not gone else "-",
            d.source,
            d.owner,
            when(d.updated_at),
        ]
        row += [landing(d.consumers.get(c)) for c in consumers]
        if wide:
            row += [d.path, d.schedule, ",".join(d.tags)]
        rows.append(row)
    return table(headers, rows)


def landing(there: dict[str, Any] | None) -> str:
    """What a consumer has of a DAG, in a word or two: `landed`, `pending 12s`, `broken`."""
    if not there:
        return "-"
    state = str(there.get("state"))
    if state == "pending" and there.get("since"):
        state += f" {_age(there['since'])}"
    return state + (" (paused)" if there.get("paused") else "")


def _age(stamp: str) -> str:
    try:
        seconds = max(0.0, time.time() - datetime.fromisoformat(stamp).timestamp())
    except ValueError:
        return ""
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def issues(found: Iterable[Issue]) -> str:
    return "\n".join(str(i) for i in found)


def github(found: Iterable[Issue]) -> str:
    lines = []
    for i in found:
        kind = "error" if i.severity == "error" else "warning"
        where = f"file={i.file}" + (f",line={i.line}" if i.line else "")
        message = i.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        lines.append(f"::{kind} {where},title={i.code}::{message}")
    return "\n".join(lines)


def history(versions: list[Version]) -> str:
    return table(
        ["version", "valid", "served", "commit", "author", "committed", "path", "message"],
        [
            (
                f"v{v.version}",
                "yes" if v.valid else "NO",
                "*" if v.served else "",
                short(v.commit),
                v.author,
                when(v.committed_at),
                v.path,
                v.message.splitlines()[0] if v.message else "",
            )
            for v in versions
        ],
    )


def status(sources: list[SourceStatus]) -> str:
    blocks = []
    for s in sources:
        counted = ", ".join(f"{n} {k}" for k, n in s.counts.items() if n) or "no DAGs"
        lines = [
            f"{s.source}  {s.url} ({s.branch})",
            f"  newest commit seen: {short(s.newest_commit)}",
            f"  served commit:      {short(s.served_commit)}"
            + (f"  (source pinned at {short(s.pinned_commit)})" if s.pinned_commit else ""),
            f"  last sync:          {when(s.last_sync_at)}",
            f"  DAGs:               {counted}",
        ]
        if s.sandbox:
            lines.append(
                "  parses:             with Airflow, in bubblewrap"
                if s.sandbox == "bwrap"
                else '  parses:             with Airflow, UNSANDBOXED (sandbox = "none")'
            )
        if s.file_errors:
            lines.append(
                f"  files with errors:  {s.file_errors} (not DAG files, or unreadable; "
                "`gitdags syncs` shows why)"
            )
        for name, c in s.consumers.items():
            counted = ", ".join(f"{c[k]} {k}" for k in CONSUMER_STATES if c.get(k))
            if c.get("oldest_pending_s") is not None:
                counted += f" (oldest pending {c['oldest_pending_s']:.0f}s)"
            if c.get("error"):
                counted += ("; " if counted else "") + f"last ask failed: {c['error']}"
            elif not c.get("checked_at"):
                counted = "not asked yet"
            elif not counted:
                counted = "none of its DAGs served"
            lines.append(f"  {'in ' + name + ':':<20}{counted}")
        if s.recovered:
            at, _, said = s.recovered.partition(": ")
            lines.append(f"  recovered:          {when(at)}, {said}")
        if s.last_error:
            lines.append(
                f"  last error (since {when(s.last_error_at)}, {s.failures} in a row): "
                f"{s.last_error}"
            )
            if s.newest_commit != s.served_commit:
                lines.append(f"  not yet served:     {short(s.newest_commit)}")
        blocks.append("\n".join(lines))
    hooks = sources[0].hooks if sources else ()
    if hooks:
        lines = ["hooks"]
        for h in hooks:
            state = (
                f"FAILING since {when(h.last_error_at)} ({h.failures}x): {h.last_error}"
                if h.last_error
                else f"ok, last delivered {when(h.last_ok_at)}"
            )
            lines.append(f"  {h.name}: {state}")
        blocks.append("\n".join(lines))
    targets = sources[0].publish if sources else {}
    if targets:
        lines = ["published"]
        for name, t in sorted(targets.items()):
            state = (
                f"FAILING since {when(t.get('at'))}: {t['error']}"
                if t.get("error")
                else f"{t.get('generation') or '-'} (commit {short(t.get('commit'))}) at "
                f"{when(t.get('at'))}"
            )
            lines.append(f"  {name}: {state}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "No sources configured."


SYNC_COLUMNS = ("started", "source", "from", "to", "+", "~", "-", "!", "=", "ms", "note")


def sync_row(r: SyncResult) -> tuple[Any, ...]:
    """One sync of the log, as the CLI and the console show it."""
    return (
        when(r.started_at),
        r.source,
        short(r.from_commit),
        short(r.to_commit),
        r.added,
        r.changed,
        r.deleted,
        r.invalid,
        r.unchanged,
        f"{r.duration_ms:.0f}",
        ("force-push " if r.forced else "") + (r.note + " " if r.note else "") + (r.error or ""),
    )


SHOWN_ERRORS = 5  # a sync's errors under its row in the text log; `-o wide` shows them all


def syncs(results: list[SyncResult], *, wide: bool = False) -> str:
    """The sync log, newest first; under each sync, the files it found in error and why (the
    first line of each message; `--json` has them whole)."""
    lines = table(SYNC_COLUMNS, [sync_row(r) for r in results]).splitlines()
    out = lines[:1]
    for result, line in zip(results, lines[1:], strict=True):
        out.append(line)
        errors = [i for i in result.issues if i.severity == "error"]
        shown = errors if wide else errors[:SHOWN_ERRORS]
        out += [f"    {str(issue).splitlines()[0]}" for issue in shown]
        if len(errors) > len(shown):
            out.append(f"    and {len(errors) - len(shown)} more errors (`-o wide` shows them)")
    return "\n".join(out)


def colored_diff(text: str) -> str:
    """ANSI colours for a unified diff on a terminal."""
    colors = {"+": "\x1b[32m", "-": "\x1b[31m", "@": "\x1b[36m"}
    out = []
    for line in text.rstrip("\n").splitlines():
        code = "\x1b[1m" if line.startswith(("+++", "---")) else colors.get(line[:1], "")
        out.append(f"{code}{line}\x1b[0m" if code else line)
    return "\n".join(out)


def audit(entries: list[AuditEntry]) -> str:
    def what(e: AuditEntry) -> str:
        d = e.detail
        if "to_version" in d:
            return f"v{d.get('from_version') or '-'} -> v{d['to_version']}"
        if "commit" in d:
            return f"as of {short(d['commit'])}"
        return ""

    return table(
        ["when", "actor", "action", "dag", "source", "what", "reason"],
        [
            (when(e.at), e.actor, e.action, e.dag_id or "-", e.source or "-", what(e), e.reason)
            for e in entries
        ],
    )


def next_steps(config: Path) -> str:
    """The commands to run after the demo, with --config when its config is not ./config.toml."""
    here = config.resolve() == (Path.cwd() / "config.toml").resolve()
    flag = "" if here else f"--config {config} "
    where = "./config.toml points at the demo" if here else f"{config} points at the demo"
    return (
        f"Next: gitdags {flag}list · gitdags {flag}history event_ingestion · "
        f"gitdags {flag}status · gitdags {flag}tui   ({where})"
    )


def demo_report(
    folder: Any, database: Any, steps: list[Any], dags: list[DagState], config: Path
) -> str:
    """What `gitdags demo` did: the commits, what each sync did, where it leaves you."""
    lines = [
        f"Built {folder}/sample_repo ({len(steps)} commits) and synced each one into {database}:",
        "",
    ]
    lines.append(
        table(
            ["#", "commit", "author", "message", "+", "~", "-", "!", "ms"],
            [
                (
                    i,
                    short(s.result.to_commit),
                    s.author,
                    s.message,
                    s.result.added,
                    s.result.changed,
                    s.result.deleted,
                    s.result.invalid,
                    f"{s.result.duration_ms:.0f}",
                )
                for i, s in enumerate(steps, 1)
            ],
        )
    )
    lines += ["", "What each sync did:"]
    for i, step in enumerate(steps, 1):
        if i == 1:
            lines.append(f"  1. added {step.result.added} DAGs")
            continue
        errors = [x for x in step.result.issues if x.severity == "error"]
        for change in step.result.changes:
            detail = f"  (from {change.old_path})" if change.old_path else ""
            if change.change == "invalid" and errors:
                detail = (
                    f"  {errors[0].code}: {errors[0].message} Still serving the last good version."
                )
            version = f" v{change.version}" if change.version else ""
            lines.append(f"  {i}. {change.change} {change.dag_id}{version}{detail}")
        named = {c.path for c in step.result.changes}
        for issue in errors:  # a file that defines no DAG of its own: a helper module
            if issue.file not in named:
                lines.append(
                    f"  {i}. held back {issue.file}  {issue.code}: {issue.message} "
                    "Still serving its last good version."
                )
                named.add(issue.file)
    by_status: dict[str, int] = {}
    for d in dags:
        by_status[d.status] = by_status.get(d.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
    lines += [
        "",
        f"Now: {len(dags)} DAGs ({summary}).",
        next_steps(config),
    ]
    return "\n".join(lines)


def detail(shown: DagDetail) -> str:
    """`gitdags show`: the DAG's state, the issues to fix, the spec shown."""
    import yaml

    d = shown.state
    lines = [
        f"{key + ':':<16}{value if value is not None else '-'}"
        for key, value in (
            ("dag_id", d.dag_id),
            ("status", d.status),
            ("source", d.source),
            ("path", d.path),
            ("served_version", d.served_version),
            ("newest_version", d.newest_version),
        )
    ]
    lines.append(f"{'served_commit:':<16}{short(d.served_commit)}")
    flags = [name for name, on in (("paused", d.paused), ("pinned", d.pinned)) if on]
    if flags:
        lines.append(f"{'flags:':<16}{', '.join(flags)}")
    for name, there in sorted(d.consumers.items()):
        said = landing(there)
        if there.get("version") is not None:
            said += f" (v{there['version']})"
        if there.get("parsed_at"):
            said += f", parsed {when(there['parsed_at'])}"
        if there.get("error"):
            said += f": {there['error']}"
        lines.append(f"{'in ' + name + ':':<16}{said}")
    if shown.issues:
        lines.append("issues:")
        lines += [
            f"  {i.severity} {i.code} [{i.location}] line {i.line or '-'}: {i.message}"
            for i in shown.issues
        ]
    if shown.spec is not None:
        lines.append(f"spec (v{shown.version}):")
        text = yaml.safe_dump(shown.spec, sort_keys=False, allow_unicode=True)
        lines.append("  " + text.rstrip().replace("\n", "\n  "))
    return "\n".join(lines)
