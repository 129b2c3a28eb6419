"""Micro-batching: images of requests that arrive together go to the model in one
call, in one inference thread, so that the event loop keeps accepting requests.

A batch is closed when it holds ``max_batch`` images, when ``max_wait`` seconds pass
without a new request, or ``4 * max_wait`` seconds after its first request. A
request's images are never split over two batches (a request holds at most
``max_batch`` of them). If the model fails on a batch, each of its
requests is retried alone, so that one bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batcher"]

# A batch stays open for at most this many max_wait windows.
_LONGEST = 4


@dataclass
class _Request:
    items: Sequence[Any]
    done: asyncio.Future = field(repr=False)


class Batcher:
    """Collects the items of concurrent requests into batches for ``predict``.

    Parameters
    ----------
    predict : callable
        ``predict(items) -> results``, one result per item, in order; blocking (it runs
        in the inference thread).
    max_batch : int
        Most items in one call.
    max_wait : float
        Seconds a batch waits for the next request (and at most 4 times as long in
        all).

    Examples
    --------
    >>> import asyncio
    >>> from sklimg.serving._batching import Batcher
    >>> calls = []
    >>> def double(items):
    ...     calls.append(len(items))
    ...     return [2 * x for x in items]
    >>> async def main():
    ...     batcher = Batcher(double, max_batch=8, max_wait=0.05)
    ...     batcher.start()
    ...     try:
    ...         return await asyncio.gather(batcher.submit([1, 2]), batcher.submit([3]))
    ...     finally:
    ...         await batcher.stop()
    >>> asyncio.run(main()), calls
    ([[2, 4], [6]], [3])
    """

    def __init__(self, predict: Callable, *, max_batch: int, max_wait: float) -> None:
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait
        # One thread: the model is called by one caller at a time (torch parallelises
        # each call itself), and other work for it (saliency maps) queues behind.
        self._executor: ThreadPoolExecutor | None = None
        #: ``predict`` calls made, the items they predicted and the seconds they took
        #: (``GET /health``): how busy the model is, beside the wall time.
        self.batches = 0
        self.items = 0
        self.seconds = 0.0
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        """Start collecting batches on the running event loop (once)."""
        if self._worker is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sklimg-model")
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop once the requests submitted so far have their results."""
        if self._worker is None:
            return
        await self._queue.join()
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._executor.shutdown(wait=True)
        # A later start (the same application served again) begins afresh.
        self._worker = self._queue = self._executor = None

    async def submit(self, items: Sequence) -> list:
        """The results of ``items``, predicted with those of concurrent requests."""
        # Started here too: an application mounted in another one gets no lifespan events.
        self.start()
        request = _Request(items, asyncio.get_running_loop().create_future())
        await self._queue.put(request)
        return await request.done

    async def call(self, function: Callable, *args) -> Any:
        """``function(*args)`` in the inference thread, after the batches before it."""
        self.start()
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def _run(self) -> None:
        held: _Request | None = None  # a request that did not fit in the last batch
        while True:
            first = held if held is not None else await self._queue.get()
            held = None
            batch, size = [first], len(first.items)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + _LONGEST * self.max_wait
            while size < self.max_batch:
                # Open while requests keep coming, max_wait apart at most: clients
                # answered together come back spread over a few milliseconds, and a
                # window counted from the first alone splits them into two half batches
                # that then alternate. Never open longer than _LONGEST windows.
                timeout = min(self.max_wait, deadline - loop.time())
                try:
                    request = (
                        self._queue.get_nowait()
                        if timeout <= 0
                        else await asyncio.wait_for(self._queue.get(), timeout)
                    )
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
                if size + len(request.items) > self.max_batch:
                    held = request
                    break
                batch.append(request)
                size += len(request.items)
            await self._predict(batch)
            for _ in batch:
                self._queue.task_done()

    def _timed(self, items: list) -> list:
        # Runs in the inference thread, its only writer of ``seconds``.
        start = time.perf_counter()
        try:
            return self.predict(items)
        finally:
            self.seconds += time.perf_counter() - start

    async def _predict(self, batch: list[_Request]) -> None:
        live = [request for request in batch if not request.done.done()]  # not cancelled
        if not live:
            return
        items = [item for request in live for item in request.items]
        self.batches += 1
        self.items += len(items)
        try:
            results = await self.call(self._timed, items)
        except Exception as exc:
            if len(live) == 1:
                if not live[0].done.done():  # not cancelled meanwhile
                    live[0].done.set_exception(exc)
                return
            for request in live:  # find the request the model fails on
                await self._predict([request])
            return
        start = 0
        for request in live:
            if not request.done.done():
                request.done.set_result(list(results[start : start + len(request.items)]))
            start += len(request.items)
