"""The types the public API's hints name: what a call takes, as the code
reads it (a body is any value msgpack packs, so Any)."""
import datetime
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

# Seconds (a number), text as the command line takes it ("250ms", "10s",
# "1m30s"), or a timedelta (_durations.seconds).
Duration = Union[float, str, datetime.timedelta]

# A datetime (naive: UTC), a Unix time, or ISO 8601 text (_durations.unix_time).
When = Union[datetime.datetime, float, str]

# One broker's endpoint, or a replicated group's: comma-separated, or a list.
Endpoint = Union[str, Sequence[str]]

# (this side's secret certificate, the broker's public one): the paths zflow
# keygen wrote; or three Z85 keys (public, secret, the broker's public).
Curve = Sequence[Union[str, bytes]]

# An id: 32 hex digits (as Handle.id), or its 16 bytes.
Id = Union[str, bytes]

# Headers of a task: str to str.
Headers = Mapping[str, str]

# A message as a session gives it: (command, header map, body frames).
Message = Tuple[str, Dict[str, Any], List[bytes]]
