"""Memory the process gives back: large allocations mapped apart, returned when freed.

glibc's malloc serves a block of at least M_MMAP_THRESHOLD bytes from its own mapping,
unmapped when freed. By default the threshold climbs with every such block freed, up
to 32 MB: after the first batch, a batch's large strings come from the heap, which
keeps the pages of every batch read so far (a table of 64 KB rows then held about
1.5x what its batches need). A fixed threshold of 64 KB keeps large values in their
own mappings: 64 KB rows peak at about 240 MB instead of 290-370 MB (thresholds of
128 KB and 1 MB, measured), for more system time in mapping each large value: so a
full load fixes it only when a column can hold values larger than 64 KB
(``LARGE_VALUES``). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
THRESHOLD = 64 * 1024
_done: list[bool] = []
# Source column types (dialect, ``SourceColumn.kind``) whose values can exceed 64 KB.
LARGE_VALUES = frozenset(
    [("mysql", k) for k in ("mediumtext", "longtext", "mediumblob", "longblob", "json")]
    + [("postgresql", k) for k in ("text", "bytea", "json", "jsonb", "xml")]
    + [("sqlite", k) for k in ("text", "blob")])


def map_large_allocations() -> None:
    """Fix glibc's mmap threshold at THRESHOLD (once per process; never raises)."""
    if _done:
        return
    _done.append(True)
    try:
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, THRESHOLD)  # the process's own libc
    except (OSError, AttributeError):  # not glibc: its allocator decides
        pass

