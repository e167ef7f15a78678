"""The state of one dashboard session: what is loaded, chosen, training and trained.

:class:`Session` is a plain :class:`param.Parameterized` without Panel: every view reads it and
calls its methods; only :meth:`Session.poll` (called on the UI's own thread) turns the training
worker's queued events into parameter changes, so views never race the worker. A notebook can
drive the same object without any view, or call the engine functions it calls (``MCSample.describe``,
``preprocessing.suggest_transforms`` / ``preview_transform`` / ``check_transforms``, ``splits.subsample``)
directly. :class:`TrainingState` is what it shares with the ZDC tab's state
(:class:`~recogan_app.ui.zdc_state.ZDCSession`): notices and one background training.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import param

from recogan_app.config import MODELS, Settings, TabularSettings
from recogan_app import streams
from recogan_app.data.derived import Derivations, Suggestion, suggest
from recogan_app.data.selection import Selection
from recogan_app.data.sources import (EMBEDDED, FORMATS, MCSample, is_remote, list_keys, load_mc, named_like_weight,
                                      read_columns)
from recogan_app.ensemble import Results
from recogan_app.errors import ExportRefused, InputError
from recogan_app.export import export
from recogan_app.report import write_report
from recogan_app.preprocessing import TRANSFORMS, check_transforms, preview_transform, suggest_transforms
from recogan_app.families import FAMILIES
from recogan_app.families.choice import auto_models, fit_chosen
from recogan_app.families.recipe import fit_to_run
from recogan_app.families.tabular import TabularRun
from recogan_app.run import Run
from recogan_app.splits import subsample
from recogan_app.training.background import BackgroundTraining
from recogan_app.training.device import describe_device, page_training_threads, resolve_device
from recogan_app.training.events import FitResult, Message, Snapshot, StatusChange, StepEnd
from recogan_app.training.schedule import describe_fit
from recogan_app.ui.server import SERVER_OWNER, TRAININGS, Limits, Training
from recogan_app.validation import Validation

__all__ = ["ACTIVE", "AUTO_SETTINGS", "SPECS", "Session", "TrainingState", "file_stamp", "files_under", "inside"]

SPECS = ("quantile", *(f"{name}+quantile" for name in TRANSFORMS
                       if name not in ("quantile", "identity", "standardise")), "standardise", "identity")
"""The transform specs offered per feature (the suggestion is always among them)."""
ACTIVE = ("running", "pausing", "paused", "stopping")
"""Statuses in which a training process exists."""
EMBEDDED_LABELS = {"Ξc+ toy, 8 features (embedded)": "toy-xic", "Ξc+ toy, 12 features (embedded)": "toy-xic-12"}
MAX_LISTED_FILES = 1000
MAX_WALKED = 50_000
"""Directory entries a listing of the data root looks at, at most (:func:`files_under`)."""

AUTO_SETTINGS = ["max_epochs", "time_limit", "monitor_fraction", "test_fraction", "seed", "device"]
"""The settings of ``model = "auto"``: what both families' trainings share (the split, the schedule's
bounds, the seed, the device); each candidate keeps its own defaults for the rest."""


def inside(root: Path, name: str | Path) -> Path:
    """``root / name`` resolved, refusing anything (``..``, absolute paths, symlinks) that leaves ``root``.

    The served dashboard may only read what its operator put under ``--data-root``.
    """
    root = Path(root).resolve()
    try:
        path = (root / name).resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        raise InputError("is a symbolic link loop", path=name) from None
    if not path.is_relative_to(root):
        raise InputError("is outside the data root", path=name, hint=f"files are read only under {root}")
    return path


def files_under(root: Path, suffixes=FORMATS, names=frozenset()) -> list[str]:
    """Readable files below ``root`` whose suffix is in ``suffixes`` or whose name is in ``names``
    (paths relative to it, hidden files and folders skipped, symbolic links to folders not
    followed), sorted. The walk gives up after :data:`MAX_WALKED` entries: a data root on a large
    shared disk (EOS on SWAN) must not hold a page that opens; what it did not reach is not offered."""
    root, found, walked = Path(root), [], 0
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        walked += len(subfolders) + len(files)
        found += [Path(folder, name).relative_to(root) for name in files if not name.startswith(".")
                  and (Path(name).suffix.lower() in suffixes or name in names) and Path(folder, name).is_file()]
        if walked >= MAX_WALKED:
            break
    return sorted(str(p) for p in found)[:MAX_LISTED_FILES]


def file_stamp(path: str) -> tuple:
    """(mtime, size) of a file, () for an embedded name or a missing file (whose reader says so):
    the cache keys that make a changed file read again."""
    stat = Path(path).stat() if Path(path).is_file() else None
    return (stat.st_mtime_ns, stat.st_size) if stat else ()


@functools.lru_cache(maxsize=64)
def _keys_cached(path: str, stamp: tuple) -> list[str] | InputError:
    """``list_keys``, or the refusal it raised, shared between sessions: a page lists the keys in a
    worker thread, then the state lists them again from here on the page's thread."""
    try:
        return list_keys(path)
    except InputError as exc:
        return exc


@functools.lru_cache(maxsize=8)
def _columns_cached(path: str, tree: str | None, names: tuple[str, ...],
                    stamp: tuple) -> tuple[dict, dict, int] | InputError:
    """``read_columns``, or its refusal, shared between sessions: a cut is counted as it is typed,
    on the few columns it reads, which are read once per version of the file."""
    try:
        return read_columns(path, names, tree=tree)
    except InputError as exc:
        return exc


@functools.lru_cache(maxsize=4)
def _load_cached(source: str, tree: str | None, drop_invalid: bool, cut: str | None, weights: str | None,
                 derive: tuple[tuple[str, str], ...], stamp: tuple) -> MCSample:
    """``load_mc`` shared between sessions; ``stamp`` (mtime, size) makes a changed file reload.

    The frames are only ever read, so sessions can share them; the embedded toy takes seconds to
    simulate and every session starts on it.
    """
    return load_mc(source, tree=tree, drop_invalid=drop_invalid, cut=cut, weights=weights, derive=dict(derive))


class TrainingState(param.Parameterized):
    """What every training tab's state shares: a work folder, one-line notices, and one training
    run in the background and followed through its events.

    Subclasses hold their data and settings (``config``) and start a training with :meth:`launch`;
    :meth:`poll`, called on the UI thread, turns the worker's events into parameter changes.
    """

    workdir = param.Path(default=None, allow_None=True, check_exists=False, constant=True,
                         doc="Folder for runs, uploads, reports and exports.")
    config = param.ClassSelector(class_=Settings, doc="Settings of the next training.")
    device_label = param.String(default="", doc="The device the next training would use.")
    status = param.Selector(default="idle", objects=["idle", "starting", *ACTIVE, "stopped", "finished", "failed"],
                            doc='"starting": a page pressed Start and prepares the training.')
    detached = param.Boolean(default=False, doc="Keep training when the page is closed.")
    progress = param.Number(default=0.0, bounds=(0, 1), doc="Share of the epoch or time budget used.")
    eta_s = param.Number(default=None, allow_None=True, doc="Seconds of training left, estimated.")
    snapshot = param.ClassSelector(class_=Snapshot, default=None, allow_None=True,
                                   doc="The latest per-epoch validation snapshot.")
    snapshots = param.List(default=[], item_type=Snapshot, doc="The snapshots of the last poll, oldest first.")
    losses = param.List(default=[], doc="Step-loss rows ({'step', 'epoch', term: value}) of the last poll.")
    log = param.List(default=[], doc="Messages from the training, oldest first.")
    result = param.ClassSelector(class_=FitResult, default=None, allow_None=True, doc="How the last fit ended.")
    run = param.ClassSelector(class_=Run, default=None, allow_None=True, doc="The last trained run.")
    notice = param.String(default="", doc="One line for the user; empty when there is nothing to say.")
    notice_level = param.Selector(default="info", objects=["info", "success", "warning", "danger"])
    limits = param.ClassSelector(class_=Limits, default=None, allow_None=True, constant=True,
                                 doc="The server's limits on what this page may ask; None (a notebook): none.")
    owner = param.String(default=SERVER_OWNER, constant=True,
                         doc="Whose trainings these are (the user name when the server has authentication).")

    def __init__(self, **params):
        params["workdir"] = params.get("workdir") or Path(tempfile.mkdtemp(prefix="recogan-"))
        super().__init__(**params)
        self.job: BackgroundTraining | None = None
        self.training: Training | None = None
        self.job_config: Settings | None = None
        self._follow_config()
        self.param.watch(self._follow_config, "config")

    def _follow_config(self, *_) -> None:
        self.config.param.watch(self._describe_device, "device")
        self._describe_device()

    # -- notices -------------------------------------------------------------------------------
    def tell(self, text: str, level: str = "info") -> None:
        self.param.update(notice=text, notice_level=level)

    @contextmanager
    def reporting(self):
        """Turn an :class:`InputError` (or a refused export) raised in the block into a notice.

        A page shows the one-line message instead of a traceback; the block's remaining work is
        skipped, so a failed action changes nothing else.
        """
        try:
            yield
        except InputError as exc:
            self.tell(str(exc), "danger")
        except ExportRefused as exc:
            self.tell(f"export refused: {exc}", "warning")

    # -- training ------------------------------------------------------------------------------
    def _describe_device(self, *_) -> None:
        self.device_label = "unavailable"
        with self.reporting():
            self.device_label = describe_device(resolve_device(self.config.device), page_training_threads())

    def check_idle(self) -> None:
        if self.status in ACTIVE:
            raise InputError("a training is running already", hint="stop it first")

    def run_folder(self) -> Path:
        """A new, uniquely named folder under ``workdir/runs`` (sessions may share a workdir)."""
        runs = Path(self.workdir) / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=runs))

    def bounded(self, config: Settings) -> Settings:
        """``config`` within the server's time limit: the limit itself when it has none; above it,
        refused (see :meth:`Limits.check_time_limit`)."""
        if self.limits is None:
            return config
        return config.updated(time_limit=self.limits.check_time_limit(config.time_limit))

    def launch(self, train: Callable, config: Settings, text: str, **reset) -> Path:
        """Start ``train`` (picklable; called as ``train(out=..., callbacks=..., control=...)``) in a
        child process, into a new :meth:`run_folder`, which it returns.

        ``config`` is what it trains with (progress follows its epochs and time limit), ``text``
        the notice that says so (and the server's list of trainings); ``reset`` gives further
        parameters their fresh values. Refused when the server runs its limit of trainings. A
        training that fails or is killed takes its unfinished folder with it.
        """
        folder = self.run_folder()
        job = BackgroundTraining(train, out=folder, threads=page_training_threads())
        grace = {"grace_s": self.limits.stop_grace_s} if self.limits else {}
        training = Training(self.owner, text, folder, job, **grace)
        try:
            TRAININGS.admit(training, self.limits and self.limits.trainings)
        except InputError:
            folder.rmdir()
            raise
        job.start()
        self.job_config, self.job_folder, self.job, self.training = config, folder, job, training
        self.param.update(status="running", progress=0.0, eta_s=None, snapshot=None, log=[], result=None,
                          run=None, **reset)
        self.tell(text)
        return folder

    def pause(self) -> None:
        if self.status == "running":
            self.job.pause()
            self.status = "pausing"

    def resume(self) -> None:
        if self.status in ("pausing", "paused"):
            self.job.resume()
            self.status = "running"

    def stop(self) -> None:
        """Ask the training to stop; one that has not stopped after the grace period is killed."""
        if self.status in ACTIVE:
            self.training.stop()
            self.status = "stopping"

    def close(self) -> None:
        """The page went away: stop the training unless it was detached, and stop collecting its
        events (a detached one goes on, listed under the server's trainings)."""
        if not self.detached:
            self.stop()
        if self.job is not None:
            self.job.unfollow()

    @property
    def pending(self) -> bool:
        """Whether the worker has queued events that :meth:`poll` would apply."""
        return self.job is not None and not self.job.events.empty()

    @property
    def polling(self) -> bool:
        """Whether :meth:`poll` still has something to collect."""
        job = self.job
        return job is not None and (job.running or not job.events.empty()
                                    or (job.result is not None and self.run is None))

    def poll(self) -> list:
        """Apply the worker's queued events to the parameters (call on the UI thread); returns them.

        Step losses and snapshots arrive in batches (:attr:`losses`, :attr:`snapshots`), so that
        a view redraws once per poll, not once per event.
        """
        if self.job is None:
            return []
        events = self.job.drain()
        losses, snapshots = [], []
        for event in events:
            if isinstance(event, StepEnd):
                losses.append({"step": event.step, "epoch": event.epoch, **event.losses})
            elif isinstance(event, Snapshot):
                snapshots.append(event)
            elif isinstance(event, Message):
                self.log = [*self.log, event]
                if event.level != "info":
                    self.tell(event.text, "danger" if event.level == "error" else "warning")
            elif isinstance(event, StatusChange):
                self.status = "stopping" if self.status == "stopping" and event.status == "running" else event.status
            elif isinstance(event, FitResult):
                self.result = event
        if losses:
            self.losses = losses
        if snapshots:  # one update per poll however many epochs passed: drawing costs more than training
            self._progress(snapshots[-1].epoch + 1, snapshots[-1].elapsed_s)
            self.param.update(snapshots=snapshots, snapshot=snapshots[-1])
        if not self.job.running and self.job.result is not None and self.run is None:
            self.param.update(run=self.job.result, progress=1.0, eta_s=0.0)
            info = self.run.info  # the CLI's words: epochs counted from 1, as drawn
            self.tell(f"run saved to {self.run.path}: {describe_fit(info['fit'], info['schedule']['steps_per_epoch'])} "
                      "(the one kept)", "success")
        return events

    def _progress(self, epochs: int, elapsed_s: float) -> None:
        """Progress by epochs or by the time limit, whichever is further; ETA by proportion."""
        done = epochs / self.job_config.max_epochs
        if self.job_config.time_limit:
            done = max(done, elapsed_s / self.job_config.time_limit)
        done = min(done, 1.0)
        self.param.update(progress=done, eta_s=elapsed_s * (1 - done) / done if done else None)

    def wait(self, timeout: float | None = None) -> TrainingState:
        """Block until the training ends, applying its events (for notebooks and scripts)."""
        if self.job is not None:
            self.job.join(timeout)
            self.poll()
        return self


class Session(TrainingState):
    """One user's data, settings, training job and trained run.

    Parameters
    ----------
    data_root : pathlib.Path, optional
        Files under it can be chosen; nothing outside it is read, except files passed to :meth:`trust`.
    workdir : pathlib.Path, optional
        Where runs, uploads, reports and exports are written; a fresh temporary folder by default.

    Example
    -------
    >>> s = Session()                                       # doctest: +SKIP
    >>> s.load("toy-xic"); s.max_rows = 5000; s.start()     # doctest: +SKIP
    >>> s.wait().run.generate(10)                           # doctest: +SKIP
    """

    # -- data ----------------------------------------------------------------------------------
    data_root = param.Path(default=None, allow_None=True, check_exists=False, constant=True,
                           doc="Folder whose files may be read; None: only embedded, trusted and uploaded data.")
    source = param.Selector(default="toy-xic", objects=EMBEDDED_LABELS, check_on_set=False,
                            doc="The MC to load: an embedded toy or a file.")
    tree = param.Selector(default=None, objects=[None], allow_None=True, check_on_set=False,
                          doc="ROOT tree / HDF5 key / npz array, when the file holds several.")
    drop_invalid = param.Boolean(default=True, doc="Drop rows with NaN/inf instead of refusing the file.")
    cut = param.String(default="", doc="Selection in the syntax of --cut ('pt > 2 and abs(eta) < 0.8'; empty: "
                                       "every event), applied when the MC is loaded.")
    weights = param.Selector(default=None, objects=[None], allow_None=True, check_on_set=False,
                             doc="Column of event weights (--weights), applied when the MC is loaded: never modelled.")
    derive = param.Dict(default={}, doc="Derived columns (--derive), name to formula, applied when the MC is loaded: "
                                        "not modelled, computed exactly from the generated columns.")
    suggestions = param.List(default=[], item_type=Suggestion,
                             doc="Kinematic identities the loaded MC satisfies: derived columns to accept.")
    sample = param.ClassSelector(class_=MCSample, default=None, allow_None=True, doc="The loaded MC.")
    summary = param.DataFrame(default=None, allow_None=True, doc="Per feature: dtype, range, invalid values.")
    features = param.ListSelector(default=[], objects=[], doc="Columns to model, in order.")
    conditions = param.ListSelector(default=[], objects=[],
                                    doc="Columns a conditional model is given and never generates (the features "
                                        "besides them are its targets).")
    max_rows = param.Integer(default=0, bounds=(0, None),
                             doc="Train on a random subset of this many rows (0: all) for quick looks.")

    # -- preprocessing -------------------------------------------------------------------------
    suggested = param.Dict(default={}, doc="Suggested transform spec per feature.")
    transforms = param.Dict(default={}, doc="Chosen transform spec per feature.")
    preview_feature = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                                     doc="Feature whose transform is previewed.")

    # -- training ------------------------------------------------------------------------------
    model = param.Selector(default="gan", objects=[*MODELS, "auto"],
                           doc="The model of the next training (its family), or auto: the family a short trial picks.")
    config = param.ClassSelector(class_=TabularSettings, doc="Settings of the next training (the model's).")

    # -- results -------------------------------------------------------------------------------
    validation = param.ClassSelector(class_=Validation, default=None, allow_None=True,
                                     doc="The last validation of the run.")
    exported = param.Path(default=None, allow_None=True, check_exists=False, doc="The last exported file.")
    conditions_source = param.Selector(default=None, objects=[None], allow_None=True, check_on_set=False,
                                       doc="The file a conditional run's export generates one row per row of "
                                           "(offered as the MC sources are; None: none chosen yet).")
    conditions_tree = param.Selector(default=None, objects=[None], allow_None=True, check_on_set=False,
                                     doc="Its tree / key, when it holds several.")
    ensemble = param.ClassSelector(class_=Results, default=None, allow_None=True,
                                   doc="The bootstrap ensemble whose N_eff the Validation and Export tabs show and "
                                       "the export records.")

    def __init__(self, **params):
        model = params.get("model", "gan")
        self._configs = {name: FAMILIES[kind].config_class() for name, kind in MODELS.items()}
        self._configs["auto"] = TabularSettings()
        if params.get("config") is not None:
            self._configs[model] = params["config"]
        params["config"] = self._configs[model]
        super().__init__(**params)
        self.param.watch(lambda event: setattr(self, "config", self._configs[event.new]), "model")
        self._trusted: set[str] = set()
        self._trained_on: MCSample | None = None
        self._ensemble_choice: Path | None = None  # chosen, not yet read (settle_ensemble)
        self.refresh_sources()
        self._list_trees()

    # -- data ----------------------------------------------------------------------------------
    def refresh_sources(self) -> None:
        """List the embedded toys, trusted files and files under the data root as choices."""
        options = dict(EMBEDDED_LABELS)
        options.update({p if is_remote(p) else f"{Path(p).name} ({Path(p).parent})": p for p in sorted(self._trusted)})
        if self.data_root is not None:
            options.update({name: name for name in files_under(Path(self.data_root))})
        self.param.source.objects = self.param.conditions_source.objects = options

    def trust(self, path) -> str:
        """Allow reading ``path`` (the operator's ``--data`` file or URL, an upload) and offer it."""
        path = str(path) if is_remote(path) else str(Path(path).resolve())
        self._trusted.add(path)
        self.refresh_sources()
        return path

    def upload(self, filename: str, content: bytes) -> str:
        """Write an uploaded file to the work folder, offer it and select it."""
        name = Path(filename or "").name
        if Path(name).suffix.lower() not in FORMATS:
            raise InputError(f"has an unsupported extension '{Path(name).suffix}'", path=name or "upload",
                             hint=f"supported: {', '.join(FORMATS)}")
        uploads = Path(self.workdir) / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=uploads))  # sessions may share a workdir
        (folder / name).write_bytes(content)
        self.source = self.trust(folder / name)
        return self.source

    def locate(self, source: str) -> str:
        """What :func:`load_mc` reads for ``source``: the embedded name, a trusted file or a file
        under the data root; anything else is refused."""
        if source in EMBEDDED or str(source) in self._trusted:
            return str(source)
        if self.data_root is None:
            raise InputError("cannot be read: this dashboard reads no files", path=source,
                             hint="start it with --data-root DIR, or upload the file")
        return str(inside(Path(self.data_root), source))

    def keys(self, source: str | None = None) -> list[str]:
        """The trees / keys of ``source`` (default: the chosen one), remembered per version of the
        file (opening it is slow: safe in a worker thread)."""
        path = self.locate(self.source if source is None else source)
        keys = _keys_cached(path, file_stamp(path))
        if isinstance(keys, InputError):
            raise keys
        return keys

    @param.depends("source", watch=True)
    def _list_trees(self) -> None:
        self.param.update(weights=None, derive={}, cut="")  # columns of the previous file
        self._offer_trees("tree", self.source)

    @param.depends("conditions_source", watch=True)
    def _list_condition_trees(self) -> None:
        self._offer_trees("conditions_tree", self.conditions_source)

    def _offer_trees(self, name: str, source: str | None) -> None:
        """Offer the trees of ``source`` as the choices of the selector ``name``, the first chosen; a
        file of one tree gets none (its reader takes it), an unreadable one a notice."""
        keys = []
        if source is not None:
            with self.reporting():
                keys = self.keys(source)
        self.param[name].objects = [None] if len(keys) < 2 else keys
        setattr(self, name, None if len(keys) < 2 else keys[0])

    def read(self) -> MCSample:
        """Load and check the chosen MC (the slow part of :meth:`load`: safe in a worker thread)."""
        path = self.locate(self.source)
        return _load_cached(path, self.tree, self.drop_invalid, self.cut.strip() or None, self.weights,
                            tuple(self.derive.items()), file_stamp(path))

    def count_cut(self, cut: str) -> tuple[int, int]:
        """Rows of the chosen source, and rows the selection ``cut`` keeps (before any NaN/inf row is
        dropped), reading only the columns it names (safe in a worker thread)."""
        selection = Selection(cut)
        path = self.locate(self.source)
        found = _columns_cached(path, self.tree, tuple(sorted(selection.columns)), file_stamp(path))
        if isinstance(found, InputError):
            raise found
        available, columns, n_rows = found
        selection.check_columns(available, path=path)  # the words of train --cut
        return n_rows, int(np.broadcast_to(selection.mask(columns), n_rows).sum())  # a cut of no column: all or none

    def accept(self, suggestion: Suggestion) -> None:
        """Derive the suggested column from the others from the next load on (not modelled)."""
        self.derive = {**self.derive, suggestion.name: suggestion.formula}

    def use(self, sample: MCSample) -> None:
        """Make ``sample`` the session's MC: every numeric column chosen, transforms suggested."""
        frame = sample.frame
        suggested = suggest_transforms(frame)
        columns = [name for name in frame.columns if name not in sample.derived]  # derived: computed, not modelled
        named = [name for name in [*sample.skipped, *columns] if named_like_weight(name)]
        self.param.weights.objects = [None, *dict.fromkeys([*filter(None, [sample.weight_column]), *named, *columns])]
        self.suggestions = suggest(frame, sample.derived)
        # in this order: a page's selectors answer each change at once (a new list of columns picks its
        # first), and no column may be chosen while another sample is loaded (KeyError, the load lost)
        self.param.update(features=[], conditions=[], preview_feature=None)
        self.param.update(sample=sample, summary=sample.describe(), suggested=suggested, transforms=dict(suggested))
        self.param.features.objects = self.param.conditions.objects = columns
        self.param.preview_feature.objects = columns
        self.param.update(features=columns, preview_feature=columns[0])
        dropped = f"; dropped {sample.n_dropped:,} rows with NaN/inf" if sample.n_dropped else ""
        left_out = f"; left out {sample.left_out()}" if sample.skipped else ""
        self.tell(f"loaded {len(frame):,} rows × {len(columns)} features from {sample.source}{dropped}{left_out}",
                  "warning" if dropped or left_out else "success")

    def load(self, source: str | None = None) -> MCSample:
        """Choose ``source`` (default: the current choice), :meth:`read` it and :meth:`use` it."""
        if source is not None:
            self.source = source
        sample = self.read()
        self.use(sample)
        return sample

    # -- preprocessing -------------------------------------------------------------------------
    def choose_transform(self, feature: str, spec: str) -> None:
        self.transforms = {**self.transforms, feature: spec}
        self.preview_feature = feature

    def preview(self, feature: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~recogan_app.preprocessing.preview_transform` of a feature (default: the previewed
        one) under its chosen spec."""
        feature = feature or self.preview_feature
        return preview_transform(self.sample.frame[feature], self.transforms[feature])

    # -- training ------------------------------------------------------------------------------
    @property
    def targets(self) -> list[str]:
        """The chosen features a training generates: all but the conditions."""
        return [f for f in self.features if f not in self.conditions]

    def training_sample(self) -> MCSample:
        """The loaded MC restricted to the chosen conditions, features and the derived columns and,
        if asked, a seeded row subset (with its weights); refused when the selection, weights or
        derived columns chosen differ from those it was loaded with."""
        sample = self.sample
        if sample is None:
            raise InputError("no MC loaded", hint="load one on the Data tab")
        if not self.targets:
            raise InputError("no features chosen" + (" besides the conditions" if self.conditions else ""),
                             hint="choose some on the Data tab")
        chosen = (Selection(self.cut).expression if self.cut.strip() else None, self.weights,
                  Derivations(self.derive).record())
        if (sample.cut, sample.weight_column, sample.derived) != chosen:
            raise InputError("the selection, weights or derived columns chosen are not those of the loaded MC",
                             hint="press Load on the Data tab to apply them")
        kept = dataclasses.replace(sample, frame=sample.frame[[*self.conditions, *self.targets, *sample.derived]])
        return subsample(kept, self.max_rows, streams.rng(self.config.seed, "subsample"))

    def start(self) -> Path:
        """Start a training of the chosen features with the current settings; returns its run folder."""
        self.check_idle()
        sample = self._trained_on = self.training_sample()
        config = self.bounded(self.config.updated(
            features=self.targets, conditions=list(self.conditions) or None,
            transforms={f: self.transforms[f] for f in self.features}, cut=sample.cut,
            weights=sample.weight_column, derive=dict(sample.derived)))  # the keys of train --cut --weights --derive
        check_transforms(sample.frame[self.features], config.transforms)
        if self.model == "auto":  # each family's own defaults, with the settings the page shows for auto
            shared = {name: getattr(config, name) for name in
                      [*AUTO_SETTINGS, "features", "conditions", "transforms", "cut", "weights", "derive"]}
            models = auto_models(bool(self.conditions))
            train = partial(fit_chosen, [FAMILIES[kind](FAMILIES[kind].config_class().updated(**shared))
                                         for kind in models.values()], sample)
            what = f"the family a trial picks ({' or '.join(models)})"
        else:
            train, what = partial(fit_to_run, FAMILIES[MODELS[self.model]](config), sample), f"the {self.model}"
        given = f" given {len(self.conditions)} conditions" if self.conditions else ""
        return self.launch(train, config, f"training {what} on {len(sample.frame):,} rows × {len(self.targets)} "
                           f"features{given} on {self.device_label}", validation=None, exported=None)

    # -- validation and export (slow: safe in a worker thread, they set no parameter) ---------------
    def _need_run(self) -> TabularRun:
        if self.run is None:
            raise InputError("no trained run yet", hint="train one on the Training tab")
        return self.run

    def validate(self, rows: int = 0) -> Validation:
        """The full validation of the run: its held-out MC against ``rows`` generated rows (0: as
        many as the held-out MC, within the server's limit), with the copula baseline fitted on
        the run's training split."""
        if self.limits is not None:
            self.limits.check_rows(rows, "validate_rows", "Generated rows")
        run = self._need_run()
        if self.limits is not None and not rows and not run.conditions:  # a conditional run: a row per test row
            rows = min(run.info["data"]["n_test"], self.limits.validate_rows)
        trained_here = self._trained_on is not None and self.job is not None and self.job.result is run
        if not trained_here:
            return run.validate(rows)
        mc = self._trained_on
        mc = mc.frame if mc.weights is None else mc.frame.assign(**{mc.weight_column: mc.weights})
        return run.validate(rows, training=run.training_rows(mc)[0])

    def save_report(self, validation: Validation) -> Path:
        """Write ``validation`` of the run as a standalone HTML report in ``workdir/reports``."""
        if validation is None:
            raise InputError("no validation yet", hint="press Validate first")
        run = self._need_run()
        data = run.info["data"]
        provenance = {"run": run.path, "training data": data["source"], "features": ", ".join(data["features"]),
                      "MC rows (train / monitor / test)": f"{data['n_train']:,} / {data['n_monitor']:,} / "
                                                          f"{data['n_test']:,}",
                      "device": run.info["device"], "seed": run.config.seed,
                      "recogan version": run.info["recogan_version"]}
        path = Path(self.workdir) / "reports" / f"{run.path.name}-validation.html"
        return write_report(validation, path, title=f"Validation of {run.path.name}", provenance=provenance,
                            ensemble=self.ensemble)

    def read_conditions(self) -> MCSample:
        """The chosen conditions file (and tree) read for the run's conditions, checked as the CLI's
        ``export --conditions`` checks it (safe in a worker thread)."""
        run = self._need_run()
        if self.conditions_source is None:
            raise InputError("no conditions file chosen",
                             hint=f"the run generates one row per row of a table of {', '.join(run.conditions)}: "
                                  "choose the file on the Export tab")
        return run.read_conditions(self.locate(self.conditions_source), tree=self.conditions_tree)

    def choose_ensemble(self, folder: Path | None) -> None:
        """Choose the ensemble in ``folder`` (None: none); the page has none until :meth:`settle_ensemble` read it."""
        self.ensemble, self._ensemble_choice = None, folder

    async def settle_ensemble(self) -> None:
        """Make the ensemble chosen last the page's, read in a thread (nothing to do when none is pending).
        The chooser awaits this, and so does an action that records the ensemble: an Export clicked
        while the ensemble is read records it, not "not measured"."""
        folder, ensemble = self._ensemble_choice, None
        if folder is None:
            return
        with self.reporting():
            ensemble = await asyncio.to_thread(Results.read, folder)
        if self._ensemble_choice == folder:  # a later choice is not undone by this slower read
            self.ensemble, self._ensemble_choice = ensemble, None

    def export(self, n: int | MCSample, suffix: str = ".parquet", *, require: str = "good", force: bool = False,
               progress=None) -> Path:
        """Validate and export ``n`` synthetic rows, or for a conditional run one row per row of the
        conditions ``n`` (:meth:`read_conditions`, recorded as the provenance's conditions source),
        to ``workdir/exports``; returns the file.

        See :func:`recogan_app.export.export` (gate, provenance, atomic write); ``progress``
        receives the rows of each written chunk.
        """
        given = {}
        if isinstance(n, MCSample):
            given = {"conditions_source": n.source + (f" (tree {n.tree})" if n.tree else "")}
            n = n.frame
        rows = n if isinstance(n, int) else len(n)
        if self.limits is not None:
            self.limits.check_rows(rows, "export_rows", "Export")
        run = self._need_run()
        out = Path(self.workdir) / "exports" / f"{run.path.name}-{rows}{suffix}"
        export(run, out, n, require=require, force=force, overwrite=True, progress=progress, ensemble=self.ensemble,
               **given)
        return out
