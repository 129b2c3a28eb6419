"""How the serving process allocates memory: glibc's malloc set, from the process's
start, to keep the memory a batch frees for the next batch.

Each forward pass allocates its activations anew (at 224x224, blocks of tens of
megabytes per layer for a batch of 32). By default glibc returns large freed blocks to
the operating system at once, and a thread other than the main one allocates from an
arena of its own whose heaps are capped at 64 MB, so larger blocks are mapped afresh
every time. The next batch then touches fresh pages, one page fault per 4 KB:
measured here, 50,000 to 75,000 faults per ``predict_proba`` call of 32 images at
224x224 in a worker thread, and a call 20-30% slower than with the memory kept.
PyTorch's CPU tuning guide recommends an allocator that keeps it (jemalloc, TCMalloc);
glibc's own tunables get the same with no library to install. They must be set when
the process starts: glibc fixes its number of arenas at the first one a thread
creates, which importing sklimg already does (``mallopt`` later left the inference
thread's faults as they were).
"""

from __future__ import annotations

__all__ = ["GLIBC_TUNABLES"]

#: Freed memory kept at the top of the heap, at most: the largest value glibc's
#: trim threshold takes, an int (2 GiB).
KEPT_BYTES = 2**31 - 1

#: glibc's malloc keeping freed memory for reuse: one arena for every thread (the main
#: heap, which can grow), no separately mapped large blocks, no trimming of the heap
#: up to ``KEPT_BYTES``. Set it in the environment of a process that serves
#: :func:`sklimg.serving.create_app`, before it starts; ``sklimg serve`` does.
GLIBC_TUNABLES = (
    f"glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold={KEPT_BYTES}"
)
