"""Giving the host memory a forward pass freed back to the operating system.

A CPU forward pass allocates and frees hundreds of MB of activations. glibc's allocator keeps
freed blocks below its mmap threshold (which grows to 32 MB as large blocks are freed) in its
heaps, and only returns the top of a heap, so between frames the process stays resident with
what it no longer uses (0.4 GB after an FC-CLIP RN50 call at 800x1216 here), and the next call's
peak starts from there. ``malloc_trim(0)`` hands the free pages back (``madvise``); the next call
faults them in again, which after a whole call cost nothing measurable (FC-CLIP case0, calls
alternated in one process; the README's benchmark section has the figures). PyTorch has no CPU
allocator setting for this (its caching allocator is CUDA's), hence this small ctypes call; on
other C libraries it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:  # pragma: no cover - no C library by that name
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the allocator's free heap pages to the OS; True if the C library could (glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
