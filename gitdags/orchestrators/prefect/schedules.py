"""The schedules of a Prefect deployment, checked as `prefect deploy` reads them: each item
has exactly one of `cron` (with `day_or`), `interval` (seconds, ISO 8601 or HH:MM:SS, with
`anchor_date`) or `rrule` (text or JSON), an IANA `timezone`, and no other key than Prefect's
own. A value holding a `{{ template }}` is Prefect's to fill in and is not judged."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from gitdags.model import Issue

KEYS = frozenset(
    {
        "cron",
        "interval",
        "rrule",
        "timezone",
        "anchor_date",
        "active",
        "parameters",
        "slug",
        "replaces",
        "day_or",
    }
)
_ISO_DURATION = re.compile(
    r"-?P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
    r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?"
)
# pydantic's other durations: `1d`, `2 days`, `1 day, 01:00:00`, `01:00:00`, `00:30`
_CLOCK = re.compile(
    r"-?(?P<days>\d+\s*(?:d|days?))?,?\s*(?P<clock>\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
)

Where = tuple[str | int, ...]
MAX_RRULE = 6500  # Prefect's own limit (about a year of RDATEs)


def templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def check(
    path: str, where: Where, item: Any, line_of: Callable[[Where], int | None]
) -> tuple[str | None, list[Issue]]:
    """A summary of one schedule item (`cron 0 2 * * * Europe/Paris`), and its issues."""
    location = ".".join(str(w) for w in where)

    def issue(code: str, key: str, message: str, severity: str = "error") -> Issue:
        at = (*where, key) if key else where
        return Issue(
            code,
            severity,
            path,
            f"{location}.{key}" if key else location,  # type: ignore[arg-type]
            line_of(at) or line_of(where),
            message,
        )

    if not isinstance(item, dict):
        return None, [issue("GD102", "", "A schedule is a mapping with cron, interval or rrule.")]
    issues = [
        issue("GD103", key, f"{key!r} is not a key of a Prefect schedule; Prefect refuses it.")
        for key in item
        if key not in KEYS
    ]
    kinds = [k for k in ("cron", "interval", "rrule") if item.get(k) is not None]
    if len(kinds) != 1:
        issues.append(
            issue(
                "GD105",
                "",
                "A schedule needs exactly one of cron, interval or rrule"
                + (f" (it has {', '.join(kinds)})." if kinds else "."),
            )
        )
        return None, issues
    kind = kinds[0]
    value = item[kind]
    tz = item.get("timezone")
    if tz is not None and not templated(tz) and (not isinstance(tz, str) or not _zone(tz)):
        issues.append(
            issue(
                "GD105",
                "timezone",
                f"Timezone {tz!r} is not an IANA time zone name (Europe/Paris, UTC, ...).",
            )
        )
    summary = None
    if templated(value):
        summary = f"{kind} {value}"
    elif kind == "cron":
        summary, bad = _cron(value)
        if bad:
            issues.append(issue("GD105", "cron", bad))
    elif kind == "interval":
        summary, bad = _interval(value)
        if bad:
            issues.append(issue("GD106", "interval", bad))
        anchor = item.get("anchor_date")
        if anchor is not None and not templated(anchor) and not _date(anchor):
            issues.append(
                issue(
                    "GD107",
                    "anchor_date",
                    f"anchor_date {anchor!r} is not a date and time "
                    "(ISO 8601, e.g. 2024-01-01T00:00:00).",
                )
            )
    else:
        summary, bad = _rrule(value)
        if bad:
            issues.append(issue("GD105", "rrule", bad))
    for key in ("active", "day_or"):
        flag = item.get(key)
        if flag is not None and not isinstance(flag, bool) and not templated(flag):
            issues.append(issue("GD102", key, f"{key} must be true or false."))
    if item.get("parameters") is not None and not isinstance(item["parameters"], dict):
        issues.append(issue("GD102", "parameters", "A schedule's parameters are a mapping."))
    if summary and tz:
        summary = f"{summary} {tz}"
    return summary, issues


def _zone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _cron(value: Any) -> tuple[str | None, str]:
    from croniter import croniter

    if not isinstance(value, str) or not value.strip():
        return None, f"cron {value!r} is not a cron expression."
    try:
        ok = croniter.is_valid(value)
    except Exception:  # croniter raises more than it documents on odd input
        ok = False
    if not ok:
        return None, f"cron {value!r} is not a valid cron expression (e.g. '0 2 * * *')."
    if any(field.casefold() in ("r", "h") for field in value.split()):  # as Prefect refuses
        return None, f"cron {value!r}: Prefect refuses random (R) and hashed (H) fields."
    return f"cron {value}", ""


def _interval(value: Any) -> tuple[str | None, str]:
    if isinstance(value, bool):
        return None, "interval must be a number of seconds or a duration, not true/false."
    if isinstance(value, int | float):
        if value <= 0:
            return None, f"interval {value} must be more than 0 seconds."
        return f"every {value:g}s", ""
    clock = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if isinstance(value, str) and (
        _ISO_DURATION.fullmatch(value) or (clock and (clock["days"] or clock["clock"]))
    ):
        if value.startswith("-"):
            return None, f"interval {value!r} must be positive."
        return f"every {value}", ""
    return None, (
        f"interval {value!r} is not a duration: give seconds (3600), ISO 8601 (PT1H) or HH:MM:SS."
    )


def _rrule(value: Any) -> tuple[str | None, str]:
    from dateutil.rrule import rrulestr

    if not isinstance(value, str) or not value.strip():
        return None, f"rrule {value!r} is not an RFC 5545 recurrence rule."
    text = value
    try:
        loaded = json.loads(value)
    except ValueError:
        loaded = None
    if isinstance(loaded, dict):
        text = loaded.get("rrule") if isinstance(loaded.get("rrule"), str) else ""
    if len(text) > MAX_RRULE:
        return None, f"rrule is {len(text)} characters long; Prefect takes at most {MAX_RRULE}."
    try:
        rrulestr(text, cache=True)
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        return None, f"rrule {value!r} does not parse: {reason}."
    return f"rrule {text}", ""


def _date(value: Any) -> bool:
    if isinstance(value, dt.date):
        return True
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
