"""The run directory: the unit of persistence and exchange, the same for every model family.

::

    RUN_DIR/
      run.json            what was trained on what: family (kind), data source, SHA-256, rows, the split
                          (seed, sizes, SHA-256 of the row positions), the random streams, device, the fit
                          (its ``best_epoch``, as history's ``epoch``, counts from 0; messages count from 1;
                          ``keep``: the rule that chose it, the best monitor score or the last epoch)
      config.json         the family's config, complete (re-usable as --config)
      generator.pt        the kept epoch's generator weights (loads with weights_only=True)
      checkpoints/        best.pt (the kept weights) and last.pt (everything a resumed training needs)
      history.parquet     one row per epoch snapshot (score and the family's figures)
      steps.parquet       averaged losses every few steps
      metrics.json        the final figures on the test split
      …                   the family's own files: its fitted preprocessing and its test split
                          (recogan_app.families.tabular, recogan_app.families.zdc)

Every file is written atomically (temporary name, fsync, then rename), so a crash never leaves a
file that looks complete. The directory itself is built in a folder of the training process
beside it, ``.NAME.partial-<host>-<pid>-<random>/``, renamed into place when complete
(:func:`building`); until then it also holds ``resume.json`` (settings and where the data came
from) and, for ZDC, ``aux.pt`` (the pretrained aux regressor): after a kill, ``train --resume``
continues from there (:func:`take_over`), and the next training to the same place removes it.
Nothing here executes code from the files it reads.
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch

from recogan_app import __version__, streams
from recogan_app.errors import InputError
from recogan_app.files import fsync_path, is_stale, process_tag, write_atomic, write_json


_INFO = {"recogan_version": str, "kind": str, "data": dict, "device": str, "fit": dict}
_DATA = {"source": (str, type(None)), "n_train": int, "sha256": (str, type(None))}


def read_info(path, data_schema: dict | None = None, kinds=None) -> dict:
    """The run's run.json, checked: an object of one of ``kinds`` (when given) with the entries a
    run needs (and ``data_schema``'s entries under ``data``), each of its type: an edited or
    damaged file is one InputError, never a crash later."""
    info_path = Path(path) / "run.json"
    try:
        info = json.loads(info_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"could not be read: {exc}", path=info_path) from None
    if not isinstance(info, dict):
        raise InputError(f"holds {type(info).__name__}, not the object a run writes", path=info_path)
    if kinds is not None and info.get("kind") not in kinds:
        raise InputError(f"unknown run kind {info.get('kind')!r}", path=info_path,
                         hint=f"one of {', '.join(map(repr, kinds))}")
    for where, types in (("", _INFO), ("data.", {**_DATA, **(data_schema or {})})):
        values = info if not where else info["data"]
        for key, expected in types.items():
            if key not in values:
                raise InputError(f"has no '{where}{key}' entry", path=info_path)
            if not isinstance(values[key], expected) or isinstance(values[key], bool):
                raise InputError(f"entry '{where}{key}' has the wrong type ({type(values[key]).__name__})",
                                 path=info_path)
    return info


@contextmanager
def unreadable_as_input_error(path: Path):
    """Turn a damaged run file (bad JSON, missing key, wrong tensor shapes) into one InputError."""
    try:
        yield
    except InputError:
        raise
    except (json.JSONDecodeError, OSError, RuntimeError, KeyError, ValueError) as exc:
        reason = " ".join(str(exc).split())  # one line: torch's shape errors span many
        raise InputError(f"run directory could not be read: {reason[:300]}", path=path) from None


def load_weights(path: Path, device) -> dict:
    """The tensors of a ``.pt`` file (``weights_only=True``): one holding any other Python object,
    which only unpickling could rebuild (and run code doing so), is refused."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise InputError("holds Python objects besides tensors, which are never loaded (unpickling can run code)",
                         path=path) from None


def is_run_dir(path) -> bool:
    """True for a run directory written by recogan: its run.json is a JSON object naming the version."""
    try:
        info = json.loads((Path(path) / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and "recogan_version" in info


def _beside(out: Path, what: str) -> list[tuple[Path, str]]:
    """(folder, process tag) of the ``.NAME.<what>-<tag>`` folders beside ``out``."""
    prefix = f".{out.name}.{what}-"
    if not out.parent.is_dir():
        return []
    return [(p, p.name[len(prefix):]) for p in out.parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]


def clean_stale(out: Path) -> None:
    """Remove what killed trainings of this host left beside ``out``: their partial folders (and the
    single ``.NAME.partial`` of older versions, which removed it at every start too), and a
    run that ``--overwrite`` had set aside (put back instead when ``out`` is missing: the kill came
    between the swap's two renames)."""
    for old, tag in _beside(out, "old"):
        if is_stale(tag):
            if out.exists():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.rename(out)
    for partial, tag in _beside(out, "partial"):
        if is_stale(tag):
            shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(out.parent / f".{out.name}.partial", ignore_errors=True)  # an older recogan's, named by no process


def check_destination(out, overwrite: bool) -> Path:
    """The run directory to create, once the leftovers of killed trainings beside it are cleaned.

    An existing non-empty folder is refused unless ``overwrite``, and even then unless it is a
    recogan run (its run.json says so): --overwrite replaces runs, never other folders."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("is a file, not a run directory", path=out, hint="choose another --out")
    folder = next(p for p in out.absolute().parents if p.exists())
    try:  # a file, a read-only or pseudo file system: said now, not after the training
        tempfile.TemporaryDirectory(dir=folder).cleanup()
    except OSError as exc:
        raise InputError(f"cannot be created in {folder}: {exc.strerror or exc}", path=out,
                         hint="choose another --out") from None
    clean_stale(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputError("run directory exists and is not empty", path=out,
                             hint="choose another --out, or pass --overwrite")
        if not is_run_dir(out):
            raise InputError("is not a recogan run directory (no run.json written by recogan): --overwrite "
                             "replaces only runs", path=out, hint="choose another --out")
    return out


@contextmanager
def building(out: Path, *, overwrite: bool = False, record: dict | None = None,
             resume: Path | None = None) -> Iterator[Path]:
    """A folder ``.<name>.partial-<host>-<pid>-<random>`` beside ``out``, this process's own,
    where the run is built (checkpoints included), put in place by :func:`publish` when the block
    completes and removed when it raises an error: ``out`` appears only when every file is written.

    ``record`` (what ``--resume`` needs: kind, settings, where the data came from) is written in
    it as ``resume.json``; ``resume`` is a partial folder taken over from a killed training
    (:func:`take_over`). After a kill or Ctrl-C the folder stays, named by a process that is gone:
    ``train --resume`` continues it, the next ``train`` to the same ``out`` removes it.
    """
    if resume is None:
        partial = out.parent / f".{out.name}.partial-{process_tag()}"
        try:
            partial.mkdir(parents=True)
        except OSError as exc:
            raise InputError(f"could not be created: {exc.strerror or exc}", path=out) from None
        if record is not None:
            write_json(partial / RESUME, record)
    else:
        partial = resume
    try:
        yield partial
        publish(partial, out, overwrite)
    except Exception:
        shutil.rmtree(partial, ignore_errors=True)
        raise


RESUME = "resume.json"


def publish(partial: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished ``partial`` to ``out``. An existing run (only with ``overwrite``) is
    first renamed aside, then deleted: at every moment ``out`` is either the old run or the new
    (or, killed between the renames, the old one is put back by :func:`clean_stale`)."""
    if out.exists() and not out.is_dir():
        raise InputError("is a file, not a run directory", path=out, hint="choose another --out")
    if out.exists() and any(out.iterdir()):
        if not (overwrite and is_run_dir(out)):
            raise InputError("exists already: another training wrote it meanwhile", path=out,
                             hint="choose another --out")
        old = out.parent / f".{out.name}.old-{process_tag()}"
        out.rename(old)
        partial.rename(out)
        fsync_path(out.parent)
        shutil.rmtree(old)
    else:
        partial.rename(out)  # over an empty folder too
        fsync_path(out.parent)
    (out / RESUME).unlink(missing_ok=True)  # kept until now: a kill before the rename leaves a resumable folder


def take_over(out) -> tuple[Path, dict] | None:
    """The partial folder of the latest killed training of ``out``, renamed to this process (two
    ``--resume`` at once: one wins, the other is refused), with its ``resume.json``; other stale
    partials are removed. None when there is none and ``out`` is a finished run."""
    out = Path(out)
    found = _beside(out, "partial")
    stale = [p for p, tag in found if is_stale(tag)]
    if not stale:
        if found:
            raise InputError(f"is being trained by another process (its folder {found[0][0].name} is in use)",
                             path=out)
        if is_run_dir(out):
            return None
        raise InputError(f"has no interrupted training to resume (no .{out.name}.partial-* folder beside it)",
                         path=out)

    def progress(folder: Path) -> float:
        last = folder / "checkpoints" / "last.pt"
        return (last if last.is_file() else folder).stat().st_mtime

    latest = max(stale, key=progress)
    try:
        record = json.loads((latest / RESUME).read_text())
    except (OSError, ValueError):
        raise InputError("records no settings to resume from (started by an older recogan?)", path=latest) from None
    if not record.get("origin"):
        raise InputError("was started from the dashboard or a notebook: there is no data file to read again",
                         path=latest, hint="start a new training")
    mine = out.parent / f".{out.name}.partial-{process_tag()}"
    try:
        latest.rename(mine)
    except FileNotFoundError:
        raise InputError("was taken over by another --resume meanwhile", path=latest) from None
    clean_stale(out)
    return mine, record


def write_run(directory: Path, *, config, info: dict, generator: torch.nn.Module, history: pd.DataFrame,
              steps: pd.DataFrame) -> None:
    """Write the files every run has (its family writes its own beside them; metrics.json comes
    later, from the written run)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "run.json", {"recogan_version": __version__, **info})
    write_json(directory / "config.json", config.to_dict())
    state = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
    write_atomic(directory / "generator.pt", lambda tmp: torch.save(state, tmp))
    for name, frame in (("history", history), ("steps", steps)):
        write_atomic(directory / f"{name}.parquet", lambda tmp, f=frame: f.to_parquet(tmp, index=False))


class Run:
    """A trained run, loaded from its directory: what every family's run shares.

    A family's run class (:class:`~recogan_app.families.tabular.TabularRun`,
    :class:`~recogan_app.families.zdc.ZDCRun`) names its ``kind``, config class and files, loads
    its generator in :meth:`_load`, and adds what it can do (generate, heldout, validate).
    :func:`recogan_app.families.load_run` loads a run of any family.
    """

    kind: str = ""
    config_class: type = None
    files: tuple[str, ...] = ()
    """The family's files besides run.json, config.json and generator.pt."""
    data_schema: dict = {}
    """Entries of run.json's ``data`` the family needs, with their types."""

    def __init__(self, path: Path, info: dict, config):
        self.path, self.info, self.config = path, info, config

    @classmethod
    def load(cls, path, *, device: str | torch.device = "cpu") -> "Run":
        """The run at ``path``, refused unless it is a directory holding every file of the family's runs."""
        path = Path(path)
        if not path.is_dir():
            raise InputError("run directory not found", path=path)
        for name in ("run.json", "config.json", *cls.files, "generator.pt"):
            if not (path / name).is_file():
                raise InputError(f"is not a complete {cls.kind} run directory: {name} is missing", path=path)
        info = read_info(path, cls.data_schema)
        if info["kind"] != cls.kind:
            raise InputError(f"is a {info['kind']} run, not a {cls.kind} run", path=path)
        with unreadable_as_input_error(path):
            config = cls.saved_config(json.loads((path / "config.json").read_text()), str(path / "config.json"))
            run = cls(path, info, config)
            run._load(load_weights(path / "generator.pt", device))
            run.module.to(device).eval()
        return run

    @classmethod
    def saved_config(cls, values, source: str):
        """The settings a run's ``config.json`` holds (a family whose settings grew may read an
        older run's here)."""
        return cls.config_class.from_dict(values, source=source)

    def _load(self, weights: dict) -> None:
        """Build the family's generator, ``self.module``, from ``weights`` (and its own files)."""
        raise NotImplementedError

    def stream_seed(self, name: str) -> int:
        """A seed from the run's random stream ``name`` (:mod:`recogan_app.streams`)."""
        return streams.stream_seed(self.config.seed, name)

    def history(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "history.parquet")

    def metrics(self) -> dict:
        path = self.path / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_metrics(self, metrics: dict) -> None:
        write_json(self.path / "metrics.json", metrics)
