"""Durations and times as the zflow command line takes them: "250ms",
"10s", "1m30s", "2h", "1d" (a bare number is seconds), and times as a
datetime, a Unix time, or ISO 8601 text ("2026-12-24T18:00:00Z")."""
import datetime
import re
from typing import Optional, overload

from ._types import Duration, When

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|min|s|m|h|d)")


@overload
def seconds(value: None, what: str = ...) -> None:
    ...


@overload
def seconds(value: Duration, what: str = ...) -> float:
    ...


@overload
def seconds(value: Optional[Duration], what: str = ...) -> Optional[float]:
    ...


def seconds(value: Optional[Duration], what: str = "a duration") -> Optional[float]:
    """value (a number of seconds, or text such as "1m30s") in seconds;
    None stays None. Raises ValueError naming what for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("%s must be seconds or text such as \"10s\", not %r" % (what, value))
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("%s must not be negative: %r" % (what, value))
        return float(value)
    if isinstance(value, datetime.timedelta):
        return max(0.0, value.total_seconds())
    if isinstance(value, str):
        text = value.strip()
        try:
            return seconds(float(text), what)
        except ValueError:
            pass
        parts = _PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _UNITS[u] for n, u in parts)
    raise ValueError("%s %r is not a duration: give seconds, or text such as \"250ms\", "
                     "\"10s\", \"1m30s\", \"2h\"" % (what, value))


@overload
def unix_time(value: None, what: str = ...) -> None:
    ...


@overload
def unix_time(value: When, what: str = ...) -> float:
    ...


@overload
def unix_time(value: Optional[When], what: str = ...) -> Optional[float]:
    ...


def unix_time(value: Optional[When], what: str = "a time") -> Optional[float]:
    """value (a datetime, a Unix time, or ISO 8601 text) as a Unix time in
    seconds; None stays None. Text without a zone is UTC."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("%s must be a datetime, a Unix time or ISO 8601 text, not %r"
                         % (what, value))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            return unix_time(parsed, what)
    raise ValueError("%s %r is not a time: give a datetime, a Unix time, or ISO 8601 text "
                     "such as \"2026-12-24T18:00:00Z\"" % (what, value))
