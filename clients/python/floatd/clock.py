"""Time source and timers. Every time rule of the SDK goes through a Clock, so tests drive it with FakeClock.

Times are seconds (floats): ``now()`` is the wall clock (epoch seconds), ``monotonic()`` elapsed time that
the wall clock cannot move.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any, Callable, Protocol

TimerHandle = Any


class Clock(Protocol):
    def now(self) -> float: ...
    def monotonic(self) -> float: ...
    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle: ...
    def cancel(self, handle: TimerHandle) -> None: ...
    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Waits; returns False when ``stop`` was set first."""
        ...


class SystemClock:
    """The real clock. Timers run on one daemon thread per clock: the SDK's background renewal thread."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._seq = itertools.count(1)
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        with self._cv:
            hid = next(self._seq)
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), hid, fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="floatd-renewal", daemon=True)
                self._thread.start()
            self._cv.notify()
            return hid

    def cancel(self, handle: TimerHandle) -> None:
        with self._cv:
            self._cancelled.add(handle)
            self._cv.notify()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while True:
                    while self._heap and self._heap[0][1] in self._cancelled:
                        self._cancelled.discard(heapq.heappop(self._heap)[1])
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        _, hid, fn = heapq.heappop(self._heap)
                        break
                    self._cv.wait(None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic()))
            try:
                fn()
            except Exception:  # noqa: BLE001 - a timer's failure must not stop the thread
                import traceback

                traceback.print_exc()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(max(0.0, seconds))
            return True
        return not stop.wait(max(0.0, seconds))


class FakeClock:
    """A clock for tests: ``advance(s)`` moves wall and elapsed time and runs the timers that fall due, in the
    caller's thread, before it returns; ``set_wall(t)`` moves the wall clock alone (a user setting it back)."""

    def __init__(self, wall: float | None = None) -> None:
        self._wall = time.time() if wall is None else wall
        self._elapsed = 0.0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count(1)
        self._lock = threading.RLock()
        self.errors: list[BaseException] = []
        #: called with the seconds of every advance (e.g. to move a server's clock along)
        self.linked: list[Callable[[float], None]] = []

    def now(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._elapsed

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        with self._lock:
            hid = next(self._seq)
            self._timers.append((self._elapsed + max(0.0, delay), hid, fn))
            return hid

    def cancel(self, handle: TimerHandle) -> None:
        with self._lock:
            self._timers = [t for t in self._timers if t[1] != handle]

    def pending(self) -> int:
        return len(self._timers)

    def set_wall(self, wall: float) -> None:
        self._wall = wall

    def advance(self, seconds: float) -> None:
        for f in self.linked:
            f(seconds)
        target = self._elapsed + max(0.0, seconds)
        while True:
            with self._lock:
                due = sorted((t for t in self._timers if t[0] <= target), key=lambda t: (t[0], t[1]))
                if not due:
                    break
                at, hid, fn = due[0]
                self._timers = [t for t in self._timers if t[1] != hid]
                step = at - self._elapsed
                self._elapsed = at
                self._wall += step
            try:
                fn()
            except Exception as err:  # noqa: BLE001
                self.errors.append(err)
        self._wall += target - self._elapsed
        self._elapsed = target

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.advance(seconds)
        return not (stop is not None and stop.is_set())
