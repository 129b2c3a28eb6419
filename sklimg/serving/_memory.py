"""How the serving process allocates memory: glibc's malloc set to keep the memory a
batch frees for the next batch.

Each forward pass allocates its activations anew (at 224x224, blocks of tens of
megabytes per layer for a batch of 32). By default glibc returns large freed blocks to
the operating system at once (those over its mmap threshold, and the free top of the
heap), and a thread other than the main one allocates from an arena of its own whose
heaps are capped at 64 MB, so larger blocks are mmapped every time. The next batch
then touches fresh pages, one page fault per 4 KB: measured here, 50,000 to 75,000
faults per ``predict_proba`` call of 32 images at 224x224 in the inference thread, and
a call 20-30% slower than with the memory kept. PyTorch's CPU tuning guide recommends
an allocator that keeps it (jemalloc, TCMalloc); this gets the same from glibc itself,
with no library to install. The cost: the process keeps the memory of its largest
batch, as a server does anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["GLIBC_TUNABLES", "keep_freed_memory"]

# mallopt's parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
#: Freed memory kept at the top of the heap, at most (beyond it, it is returned): the
#: largest value mallopt takes, an int (2 GiB).
KEPT_BYTES = 2**31 - 1

#: The same settings for a process started by someone else (an application that
#: mounts :func:`sklimg.serving.create_app`): set in its environment before it starts.
GLIBC_TUNABLES = (
    f"glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold={KEPT_BYTES}"
)


def keep_freed_memory() -> bool:
    """Set this process's C allocator (glibc's malloc) to keep the memory a batch frees
    for the next one, instead of returning it to the operating system.

    ``sklimg serve`` calls it at start: at 224x224 each batch's predictions then run
    without the 50,000 or more page faults of fresh memory, 20-30% faster. Call it
    in a process of your own that serves :func:`create_app`, before the model is
    loaded and the server's threads start; or set ``GLIBC_TUNABLES`` (the value of
    ``sklimg.serving.GLIBC_TUNABLES``) in its environment. Process-wide and not
    undone: the process keeps the memory of its largest batch (up to 2 GiB freed at
    the top of the heap), as a server does anyway. Settings: one arena for every
    thread (the main heap, which can grow), no separately mapped large blocks, no
    trimming of the heap.

    Returns
    -------
    applied : bool
        False where the C library is not glibc (musl, macOS, Windows): nothing changed.

    Examples
    --------
    At the start of a process that will serve (not run here: it would change the
    allocator of the process running the doctests):

    >>> from sklimg.serving import keep_freed_memory
    >>> keep_freed_memory()  # doctest: +SKIP
    True
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, TypeError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; each setting is applied even if another fails.
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, KEPT_BYTES))
    applied = [mallopt(parameter, value) == 1 for parameter, value in settings]
    return all(applied)
