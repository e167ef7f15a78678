"""What every page of one dashboard server shares: its limits and the trainings it runs.

One server process serves every browser session, so one page's request can starve or take down
all the others. :class:`Limits` bounds what a page may ask for (``recogan serve`` options, or
``RECOGAN_*`` variables under a plain ``panel serve``); :data:`TRAININGS` lists every training the
server runs, by owner, so that a page can see and stop the ones its user left running after
closing another page ("Keep training when this page closes").
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import dataclasses
import gc
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import panel as pn
from panel.io.callbacks import PeriodicCallback
from tornado.websocket import WebSocketClosedError

from recogan_app.errors import InputError
from recogan_app.training.background import STOP_GRACE_S, BackgroundTraining

__all__ = ["ENV", "OPTIONS", "SERVER_OWNER", "TRAININGS", "Limits", "Training", "Trainings", "every", "in_served_page",
           "quiet_closed_websockets", "release_memory", "release_memory_later"]

SERVER_OWNER = "everyone on this server"
"""The owner of every training when the server has no authentication: all pages are one user's."""


def in_served_page() -> bool:
    """Whether the caller works for a page of a Panel server (a Bokeh session), not a notebook.

    Not ``pn.state.served``: that inspects the whole call stack (12 ms on an idle machine, and
    False anywhere but in the served script's own module)."""
    return pn.state.curdoc is not None and pn.state.curdoc.session_context is not None


def every(period_ms: int, callback) -> PeriodicCallback:
    """Call ``callback`` every ``period_ms`` on this page's thread, without marking the server busy.

    ``pn.state.add_periodic_callback`` marks each call in ``pn.state.busy``, one flag for the whole
    server that every page's busy indicator follows: with 4 pages training, each page's 4 polls a
    second redrew the indicator of every page, 29 % of the server thread's work (load test)."""
    periodic = PeriodicCallback(callback=callback, period=period_ms, background=True)
    periodic.start()
    return periodic


def _default_trainings() -> int:
    """One training per core the pages leave free, and two at least, so that a second user of a
    small machine is not locked out. Each training is a process of its own (some 300 MB with
    torch) whose threads use every core but one: more trainings than cores only share them, each
    slower, while the pages' clicks wait longer (``benchmarks/load.py`` measures that)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
    return max(2, cores - 1)


@dataclass(frozen=True)
class Limits:
    """What one page may ask of the server; a request beyond it gets a notice naming the limit.

    Attributes
    ----------
    trainings : int
        Trainings running at once on the server, all pages and users together.
    validate_rows : int
        Generated rows the Validation tab may compare (they are held in memory with the MC's).
    export_rows : int
        Rows the Export tab may write (generation streams to disk in chunks; this bounds disk and time).
    time_limit_s : float
        Longest training time limit a page may set; a training with none gets this one.
    stop_grace_s : float
        Seconds a training has to stop after Stop before its process is terminated, then killed.
    """

    trainings: int = dataclasses.field(default_factory=_default_trainings)
    validate_rows: int = 1_000_000
    export_rows: int = 10_000_000
    time_limit_s: float = 3600.0
    stop_grace_s: float = STOP_GRACE_S

    def __post_init__(self):
        for name, value in dataclasses.asdict(self).items():
            if not value > 0 or value == float("inf"):  # NaN fails too
                raise InputError(f"{OPTIONS[name]} ({ENV[name]}) must be a positive finite number, got {value}")

    @classmethod
    def from_env(cls, environ=os.environ) -> Limits:
        """The defaults, overridden by the :data:`ENV` variables that are set."""
        values = {}
        for field in dataclasses.fields(cls):
            text = environ.get(ENV[field.name])
            if text:
                kind = float if field.type == "float" else int
                try:
                    values[field.name] = kind(text)
                except ValueError:
                    raise InputError(f"{ENV[field.name]} must be a {'number' if kind is float else 'whole number'}, "
                                     f"got '{text}'") from None
        return cls(**values)

    def check_rows(self, rows: int, limit: str, what: str) -> None:
        """Refuse ``rows`` above the limit named ``limit`` (``validate_rows``, ``export_rows``)."""
        cap = getattr(self, limit)
        if rows > cap:
            raise InputError(f"{what}: {rows:,} rows is above this server's limit of {cap:,}",
                             hint=f"ask for fewer, or start the dashboard with recogan serve {OPTIONS[limit]} N; "
                                  f"the CLI has no such limit")

    def check_time_limit(self, time_limit: float | None) -> float:
        """The training time limit to use: ``time_limit``, or this limit when it is unset; above it
        is refused."""
        if time_limit is None:
            return self.time_limit_s
        if time_limit > self.time_limit_s:
            raise InputError(f"time limit {time_limit:g} s is above this server's limit of {self.time_limit_s:g} s",
                             hint=f"set a shorter one, or start the dashboard with recogan serve "
                                  f"{OPTIONS['time_limit_s']} S")
        return time_limit


ENV = {"trainings": "RECOGAN_MAX_TRAININGS", "validate_rows": "RECOGAN_MAX_VALIDATE_ROWS",
       "export_rows": "RECOGAN_MAX_EXPORT_ROWS", "time_limit_s": "RECOGAN_MAX_TIME_LIMIT",
       "stop_grace_s": "RECOGAN_STOP_GRACE"}
"""Environment variable of each limit, read under a plain ``panel serve``."""
OPTIONS = {"trainings": "--max-trainings", "validate_rows": "--max-validate-rows", "export_rows": "--max-export-rows",
           "time_limit_s": "--max-time-limit", "stop_grace_s": "--stop-grace"}
"""The ``recogan serve`` option of each limit."""


@dataclass(eq=False)
class Training:
    """One training the server runs: whose, what, where, since when."""

    owner: str
    label: str
    folder: Path
    job: BackgroundTraining
    grace_s: float = STOP_GRACE_S
    started: float = dataclasses.field(default_factory=time.time)

    def stop(self) -> None:
        """Ask it to stop; killed when it has not after :attr:`grace_s`."""
        self.job.stop(self.grace_s)


class Trainings:
    """The trainings running in this process, admitted up to a limit; ended ones drop out by themselves."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: list[Training] = []

    def prune(self) -> None:
        """Forget the trainings that ended (and the runs their jobs loaded)."""
        with self._lock:
            self._running = [t for t in self._running if not t.job.ended]

    def admit(self, training: Training, limit: int | None) -> None:
        """Add ``training`` (before its job starts), refused when ``limit`` trainings run already."""
        self.prune()
        with self._lock:
            if limit is not None and len(self._running) >= limit:
                raise InputError(f"this server runs {len(self._running)} training(s) already, its limit",
                                 hint="wait for one to end, or stop one under 'Trainings on this server'")
            self._running.append(training)

    def of(self, owner: str) -> list[Training]:
        """``owner``'s running trainings, oldest first."""
        self.prune()
        with self._lock:
            return [t for t in self._running if t.owner == owner]


TRAININGS = Trainings()
"""Every training this server process runs."""


RELEASE_AFTER_S = 2.0
"""How long after a page's session is destroyed :func:`release_memory` runs: Bokeh calls the page's
destroy callbacks while it still holds the session, whose memory is only free after."""
_release_pending: asyncio.TimerHandle | None = None


def quiet_closed_websockets() -> None:
    """Drop, on this server's event loop, the one error a page closing mid-update leaves: tornado's
    write task fails with ``WebSocketClosedError`` and nobody awaits it, so asyncio logs a traceback
    ("Task exception was never retrieved") though nothing was lost (the page is gone). Every other
    exception still reaches the loop's handler."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a page built outside the server's loop: nothing of it to quiet
        return
    handler = loop.get_exception_handler()
    if getattr(handler, "quiets_closed_websockets", False):
        return

    def quieter(loop, context) -> None:
        if not isinstance(context.get("exception"), WebSocketClosedError):
            (handler or type(loop).default_exception_handler)(loop, context)

    quieter.quiets_closed_websockets = True
    loop.set_exception_handler(quieter)


def release_memory_later() -> None:
    """:func:`release_memory` in :data:`RELEASE_AFTER_S` on this event loop, once for pages that
    close together. Called at once, it ran before the closed page could be freed (server RSS 552 MB
    after a warm-up page, 613 then 632 MB after two rounds of 4 pages; load test)."""
    global _release_pending
    if _release_pending is not None:
        _release_pending.cancel()
    _release_pending = asyncio.get_running_loop().call_later(RELEASE_AFTER_S, release_memory)


M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the number of malloc arenas."""


def _libc():
    """glibc, or None elsewhere (macOS, musl): memory is then left to the platform's allocator."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def share_malloc_arenas() -> None:
    """Let the server's threads share two malloc arenas (glibc gives up to 8 per core, one per
    thread that allocates at once). Each arena keeps what it freed: after four pages had trained at
    once (their handlers, reader and relay threads), the server stayed 52-62 MB above its one-page
    level in 5 load tests, and 45-49 MB with two arenas in 2 (``benchmarks/load.py``, bar 50 MB),
    clicks as fast. Call before the server starts its threads."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, 2)


def release_memory() -> int:
    """Collect garbage, then hand the freed heap back to the operating system (glibc keeps it for
    reuse otherwise, so a server's RSS would stay at its peak after its pages closed); returns
    what :func:`gc.collect` found. Costs the server some 0.2-0.3 s (``benchmarks/load.py``)."""
    TRAININGS.prune()
    found = gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
    return found
