"""Many trainings on Dask: λ grid scans and repeated seeds (and, later, bootstrap ensembles).

A scan is a list of :class:`Training` (one grid point × one repeat each, :func:`plan`), each one
Dask task calling :func:`~recogan_app.families.recipe.fit_to_run` through the family registry
and writing its own run directory ``SCAN_DIR/<point>+r<repeat>``. :func:`run_scan` submits them
to any ``distributed.Client`` (a :class:`~distributed.LocalCluster`, SWAN's HTCondor cluster,
a scheduler address: :func:`connect`) and returns the results table, also written to
``SCAN_DIR/results.parquet``.

- Reproducible: each training's seed comes from the scan's seed and its grid point through a
  :class:`numpy.random.SeedSequence` (:func:`~recogan_app.streams.spawned_seed`), so a rerun, or
  a grid grown by new values, trains every existing point with the same seed.
- The data travels once: one task reads it on a worker (``load``, from a path the workers share),
  Dask copies it to the other workers, and reads it again if the worker holding it is lost.
- Resumable: a training whose run directory is complete with the same settings is not trained
  again. A failed training is a row with its error; the others go on. A worker killed mid-training
  has its task retried on another worker by Dask's scheduler (``distributed.scheduler.allowed-failures``).
- The best configuration is the grid point with the lowest mean monitor score (each family's
  per-epoch snapshot score of the epoch its run kept, ``run.json``'s ``fit.best_score``) over its repeats: the test split
  stays unused for any choice; its figures are reported with their spread.

Dask messages are pickled between the client, the scheduler and the workers: run scans on a
cluster only you (or your team) can reach, as SWAN's and a LocalCluster are.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd

from recogan_app import streams
from recogan_app.errors import InputError
from recogan_app.files import write_atomic
from recogan_app.markup import escape_html

INSTALL = "pip install 'recogan_app[dask]'"
"""What to run when Dask is missing."""
RESULTS = "results.parquet"
FIXED = ("seed",)
"""Settings a grid cannot vary: the scan derives every training's seed itself (use repeats)."""


def distributed():
    """The ``distributed`` package, or an InputError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise InputError(f"scans run on Dask, which is not installed (run: {INSTALL})") from None
    return distributed


@dataclass(frozen=True)
class Training:
    """One training of a scan: its grid point, its repeat, the settings derived from both."""

    kind: str
    """The family (a key of :data:`recogan_app.families.FAMILIES`)."""
    point: dict
    """The grid's value of each axis."""
    repeat: int
    settings: dict
    """The family's complete, checked config (``config.json``), its seed included."""

    @property
    def name(self) -> str:
        """The run directory's name: the point's values and the repeat, e.g. ``lambda_ks=0.5+lambda_corr=3+r1``."""
        parts = [f"{axis}={value if isinstance(value, str) else json.dumps(value, separators=(',', ':'))}"
                 for axis, value in self.point.items()]
        name = re.sub(r"[^A-Za-z0-9._=+-]", "_", "+".join(parts))
        if len(name) > 120:  # a file name has 255 bytes at most: keep its start, tell points apart by a digest
            name = f"{name[:100]}-{point_digest(self.point)[:12]}"
        return f"{name}+r{self.repeat}" if name else f"r{self.repeat}"


def point_digest(point: dict) -> str:
    """SHA-256 of the point's canonical JSON: the same values give the same digest in any order."""
    return hashlib.sha256(json.dumps(point, sort_keys=True).encode()).hexdigest()


def parse_grid(lines: Sequence[str], flag: str = "--grid") -> dict[str, list]:
    """Grid axes from ``NAME=v1,v2`` lines (``recogan scan --grid``, the dashboard's Scan tab):
    values are JSON (numbers, lists…) or plain text; a JSON list after ``=`` lists values that hold
    commas themselves (``generator_widths=[[32,32],[64,64]]``)."""
    grid = {}
    for line in lines:
        name, sep, text = (part.strip() for part in line.partition("="))
        if not sep or not name:
            raise InputError(f"{flag} takes NAME=VALUE, got '{line}'")
        try:
            values = json.loads(text)
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, list):
            values = []
            for item in text.split(","):
                try:
                    values.append(json.loads(item))
                except json.JSONDecodeError:
                    values.append(item.strip())
        if name in grid:
            raise InputError(f"{flag} {name} is given twice: list its values once, comma-separated")
        grid[name] = values
    return grid


def plan(grid: dict[str, Sequence], *, kind: str = "tabular", base: dict | None = None, repeats: int = 1,
         seed: int = 0) -> list[Training]:
    """Every grid point × repeat as a :class:`Training`, each config checked now (a bad value is
    one InputError before anything starts).

    ``grid`` maps a setting to its values; the axis ``model`` picks the family (``gan``: the GAN of
    ``kind``'s data; otherwise a key of :data:`~recogan_app.families.FAMILIES`). ``base`` holds the
    settings every training shares. The seed of repeat ``r`` of a point is drawn from
    ``SeedSequence(seed, spawn_key=(w0, w1, w2, w3, r))``, the ``w`` the first four little-endian
    32-bit words of :func:`point_digest`: the point's values, not its place in the grid, choose it.
    """
    from recogan_app.families import FAMILIES

    if repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {repeats}")
    for axis, values in grid.items():
        if axis in FIXED:
            raise InputError(f"'{axis}' cannot be a grid axis: each training's seed derives from the scan's "
                             "--seed and its grid point", hint="use --repeats for more seeds")
        if not values or len(set(map(json.dumps, values))) < len(values):
            raise InputError(f"grid axis '{axis}' needs distinct values, got {list(values)}")
    trainings = []
    for values in product(*grid.values()):
        point = dict(zip(grid, values))
        model = point.get("model", "gan")
        family = kind if model == "gan" else model
        if family not in FAMILIES:
            raise InputError(f"unknown model '{model}'", hint=f"one of gan, {', '.join(FAMILIES)}")
        key = np.frombuffer(bytes.fromhex(point_digest(point))[:16], dtype="<u4")  # little-endian on any machine
        settings = {**(base or {}), **{a: v for a, v in point.items() if a != "model"}}
        for repeat in range(repeats):
            settings["seed"] = streams.spawned_seed(seed, (*map(int, key), repeat))
            where = ", ".join(f"{a}={v}" for a, v in point.items())
            config = FAMILIES[family].config_class.from_dict(settings, source=f"grid point {where}" if where else None)
            trainings.append(Training(family, point, repeat, json.loads(json.dumps(config.to_dict()))))
    names = [t.name for t in trainings]
    if len(set(names)) < len(names):  # values differing only in characters a file name cannot hold
        raise InputError(f"two grid points share the run directory name '{max(names, key=names.count)}'",
                         hint="give the values differing in letters or digits")
    return trainings


def train_one(training: Training, sample, out: str) -> dict:
    """The task: train ``training`` on ``sample`` into ``out/<name>``; its status and wall time
    (a failure is returned as a status with its error, not raised: the scan goes on)."""
    from recogan_app.families import FAMILIES
    from recogan_app.families.recipe import fit_to_run

    family = FAMILIES[training.kind]
    started = time.monotonic()
    try:
        fit_to_run(family(family.config_class.from_dict(training.settings)), sample, Path(out) / training.name)
    except Exception as exc:  # noqa: BLE001 - recorded in the results table; a bug shows its type
        error = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        return {"status": "failed", "error": " ".join(error.split()), "wall_s": time.monotonic() - started}
    return {"status": "done", "error": None, "wall_s": time.monotonic() - started}


def finished(folder: Path, training: Training) -> bool:
    """True when ``folder`` is a complete run of exactly ``training``'s settings (skipped by a
    rerun); a complete run of other settings is refused: a scan directory holds one scan."""
    from recogan_app.run import is_run_dir

    if not is_run_dir(folder):  # a run directory appears complete or not at all (run.building)
        return False
    try:
        settings = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"could not be read: {exc}", path=folder / "config.json") from None
    if settings != training.settings:
        changed = sorted(k for k in {*settings, *training.settings} if settings.get(k) != training.settings.get(k))
        raise InputError(f"holds a run of other settings ({', '.join(changed)} differ)", path=folder,
                         hint="a scan directory holds one scan: choose another --out")
    return True


def result_row(folder: Path, training: Training, outcome: dict) -> dict:
    """One row of the results table: the point, seed, status, and for a finished run its device,
    fit and final figures (scalars of metrics.json), read from the run directory."""
    row = {"run": training.name, "kind": training.kind, **training.point, "repeat": training.repeat,
           "seed": training.settings["seed"], **outcome}
    if outcome["status"] in ("done", "done earlier"):
        info = json.loads((folder / "run.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        fit = info["fit"]
        row.update(device=info["device"], epochs=fit["epochs"], stopped_by=fit["reason"], fit_s=fit["elapsed_s"],
                   score=fit["best_score"],
                   **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)})
    return row


def run_scan(client, load: Callable[[], object], trainings: Sequence[Training], out, *,
             resources: dict | None = None, report: Callable[[str], None] | None = None,
             stop: threading.Event | None = None) -> pd.DataFrame:
    """Train every one of ``trainings`` on the data ``load()`` returns, as Dask tasks of ``client``;
    the results table (also written to ``out/results.parquet`` and ``results.html``, rewritten as
    each training ends, so that a long scan can be followed).

    ``load`` runs once, as a task (a picklable function of no arguments, e.g.
    ``functools.partial(load_mc, "/eos/.../mc.parquet")``: the workers must see the path and
    ``out``). ``resources`` is asked by each training (``{"GPU": 1}`` on a GPU cluster).
    ``report`` receives one line per finished training. A bad file raises its InputError before
    any training starts. On Ctrl-C, or once ``stop`` is set (a dashboard's Stop), the pending
    trainings are cancelled and written as ``cancelled``; Ctrl-C is raised again.
    """
    dask = distributed()
    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    todo = []
    for training in trainings:
        if finished(out / training.name, training):
            rows[training.name] = result_row(out / training.name, training, {"status": "done earlier", "error": None})
        else:
            todo.append(training)
    if not todo:
        return _write(out, rows, trainings)
    data = client.submit(load, key=f"recogan-data-{os.urandom(4).hex()}", pure=False)
    dask.wait(data)
    if data.status == "error":
        data.result()  # raises the reader's InputError here, before any training
    futures = {client.submit(train_one, t, data, str(out), key=f"recogan-{t.name}-{os.urandom(4).hex()}",
                             pure=False, resources=resources): t for t in todo}
    completed = dask.as_completed(futures)
    try:
        while not completed.is_empty() and not (stop is not None and stop.is_set()):
            for future in completed.next_batch(block=stop is None):  # with a stop to watch: look every 0.2 s
                training = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - lost workers past the allowed failures, a task cancelled
                    outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "wall_s": math.nan}
                rows[training.name] = result_row(out / training.name, training, outcome)
                _write(out, rows, trainings)
                if report:
                    report(f"[{len(rows)}/{len(trainings)}] {training.name}: {describe(rows[training.name])}")
            if stop is not None:
                time.sleep(0.2)
    except KeyboardInterrupt:
        _cancel(client, futures, rows, out)
        _write(out, rows, trainings)
        raise
    finally:
        client.cancel([data])
    _cancel(client, futures, rows, out)
    return _write(out, rows, trainings)


def _cancel(client, futures: dict, rows: dict[str, dict], out: Path) -> None:
    """Cancel the trainings not finished yet and record them as ``cancelled``."""
    client.cancel([future for future, training in futures.items() if training.name not in rows])
    for training in futures.values():
        rows.setdefault(training.name, result_row(out / training.name, training,
                                                  {"status": "cancelled", "error": "interrupted"}))


def describe(row: dict) -> str:
    """A finished training's row in one line, for the progress report."""
    if row["status"] == "failed":
        return f"failed: {row['error']}"
    return f"{row['status']} in {row['wall_s']:.1f} s on {row['device']}, monitor score {row['score']:.4g}"


def _write(out: Path, rows: dict[str, dict], trainings: Sequence[Training]) -> pd.DataFrame:
    """The table of the trainings ended so far, in plan order, as Parquet and as an HTML page
    (every value escaped: grid values and errors are the user's and the data's text)."""
    table = pd.DataFrame([rows[t.name] for t in trainings if t.name in rows])
    write_atomic(out / RESULTS, lambda tmp: table.to_parquet(tmp, index=False))
    page = (f"<!doctype html><meta charset='utf-8'><title>recogan scan {escape_html(out.name)}</title>"
            f"<h1>Scan {escape_html(out.name)}</h1><pre>{escape_html(summary(table, axes(trainings)))}</pre>"
            + table.to_html(index=False, escape=True, na_rep="", float_format="{:.4g}".format))
    write_atomic(out / "results.html", lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return table


def axes(trainings: Sequence[Training]) -> list[str]:
    """The grid's axes, in the order given."""
    return list(dict.fromkeys(axis for t in trainings for axis in t.point))


def along(table: pd.DataFrame, axis: str, column: str) -> pd.DataFrame:
    """``column`` of the finished trainings against each value of ``axis``: mean, standard
    deviation (ddof 1; NaN for one repeat) and count over the repeats and the other axes' values,
    one row per value in increasing order (what the dashboard draws with error bars)."""
    done = table[table["status"].isin(["done", "done earlier"])]
    if done.empty or axis not in done or column not in done:
        return pd.DataFrame(columns=["mean", "std", "count"])
    return done.groupby(axis)[column].agg(["mean", "std", "count"]).sort_index()


def best(table: pd.DataFrame, axes: Sequence[str]) -> tuple[dict, pd.DataFrame] | None:
    """The grid point with the lowest mean monitor score over its finished repeats, and the mean,
    standard deviation and count of every numeric column over those repeats; None if none finished."""
    done = table[table["status"].isin(["done", "done earlier"])]
    if done.empty:
        return None
    keys = [a for a in axes if a in done]
    groups = done.groupby([done[a].map(str) for a in keys]) if keys else [((), done)]
    _, repeats = min(groups, key=lambda group: group[1]["score"].mean())
    numeric = repeats.select_dtypes("number").drop(columns=["repeat", "seed"], errors="ignore")
    point = {a: repeats[a].iloc[0] for a in keys}
    return point, numeric.agg(["mean", "std", "count"]).T


def summary(table: pd.DataFrame, axes: Sequence[str], headline: Sequence[str] = ()) -> str:
    """Counts by status, then the best configuration with the spread over its repeats of the
    monitor score and the ``headline`` figures."""
    counts = table["status"].value_counts()
    lines = [f"{len(table)} trainings: " + ", ".join(f"{n} {status}" for status, n in counts.items())]
    for row in table[table["status"] == "failed"].itertuples():
        lines.append(f"  failed {row.run}: {row.error}")
    found = best(table, axes)
    if found is None:
        return "\n".join([*lines, "no training finished: no best configuration"])
    point, spread = found
    where = ", ".join(f"{a}={v}" for a, v in point.items()) or "the only configuration"
    lines.append(f"best configuration (lowest mean monitor score): {where}")
    for column in ("score", *headline, "fit_s"):
        if column in spread.index:
            mean, std, n = spread.loc[column]
            spread_text = f"± {std:.2g} (std over {n:.0f} repeats)" if n > 1 else "(one run: no spread)"
            lines.append(f"  {column:<20} {mean:.4g} {spread_text}")
    return "\n".join(lines)


@contextmanager
def connect(scheduler: str = "local", *, workers: int | None = None, cluster: str | None = None,
            gpu: bool = False) -> Iterator:
    """A ``distributed.Client``: on a new LocalCluster of ``workers`` single-threaded processes
    (``local``: one per core by default; with ``gpu`` one, on the first GPU), on the scheduler at
    an address (``tcp://host:8786``), or on a new ``dask_jobqueue.HTCondorCluster`` of ``workers``
    jobs (``cluster='htcondor'``). A cluster started here is closed on exit, its workers and
    running trainings with it."""
    dask = distributed()
    if cluster is not None and scheduler != "local":
        raise InputError("--cluster starts a new cluster: it cannot go with a --scheduler address")
    if workers is not None and (workers < 1 or (scheduler != "local")):
        raise InputError(f"--workers must be at least 1, got {workers}" if workers < 1 else
                         "--workers sizes a cluster started here: a running scheduler has its own workers")
    resources = {"GPU": 1} if gpu else None
    if cluster == "htcondor":
        try:
            from dask_jobqueue import HTCondorCluster
        except ImportError:
            raise InputError(f"--cluster htcondor needs dask-jobqueue (run: {INSTALL})") from None
        if shutil.which("condor_submit") is None:  # else the jobs fail in the background and the scan waits
            raise InputError("--cluster htcondor submits jobs with condor_submit, which is not on this machine",
                             hint="run on an HTCondor submit node (lxplus), or on SWAN start a cluster in "
                                  "the Dask panel and pass its --scheduler address")
        try:
            started = HTCondorCluster(cores=1, processes=1, memory="4 GiB", disk="4 GiB",
                                      worker_extra_args=["--resources GPU=1"] if gpu else [])
            started.scale(workers or 1)
        except Exception as exc:  # noqa: BLE001 - no condor_submit, no schedd, a bad jobqueue.yaml
            raise InputError(f"could not start an HTCondor cluster: {' '.join(str(exc).split())[:300]}") from None
    elif scheduler == "local":
        import logging

        from dask.system import CPU_COUNT  # the cores this process may use (cgroup quotas included)

        started = dask.LocalCluster(n_workers=workers or (1 if gpu else CPU_COUNT), threads_per_worker=1,
                                    resources=resources, silence_logs=logging.CRITICAL, dashboard_address=None)
        # the in-process scheduler's own INFO lines, e.g. a comm closed while the cluster shuts down
        # (logged with its traceback): noise in a notebook or in a served dashboard's log
        logging.getLogger("distributed").setLevel(logging.WARNING)
    else:
        started = None
    try:
        try:
            client = dask.Client(started or scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"could not reach the Dask scheduler {scheduler}: {exc}",
                             hint="an address looks like tcp://host:8786") from None
        with client:
            yield client
    finally:
        if started is not None:
            started.close()
