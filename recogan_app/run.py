"""The run directory: the unit of persistence and exchange.

::

    RUN_DIR/
      run.json            what was trained on what: data source, SHA-256, rows, device, how the fit ended
      config.json         the TabularConfig, complete (re-usable as --config)
      preprocessing.json  the fitted FeaturePipeline
      generator.pt        best-by-validation generator weights (loads with weights_only=True)
      checkpoints/        best.pt (best weights) and last.pt (everything a resumed training needs)
      history.parquet     one row per epoch snapshot (score, mean/max KS, per-feature KS and WS…)
      steps.parquet       averaged losses every few steps
      heldout.parquet     the test split of the MC, never used for training or model selection
      metrics.json        the final figures on that test split

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
from collections import deque
from contextlib import contextmanager
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recogan_app import __version__
from recogan_app.config import TabularConfig, ZDCConfig
from recogan_app.data.zdc import (CONDITIONS, IMAGE_SHAPE, ConditionScaler, ZDCSample, counts_from_log1p,
                                  load_zdc)
from recogan_app.errors import InputError
from recogan_app.files import file_sha256, fsync_path, is_stale, process_tag, write_atomic, write_json
from recogan_app.losses import MarginalTargets
from recogan_app.models.tabular import TabularGAN
from recogan_app.models.zdc import Generator as ZDCGenerator
from recogan_app.preprocessing import FeaturePipeline

REQUIRED = ("run.json", "config.json", "preprocessing.json", "generator.pt")


def complete_run_dir(path, required, what: str) -> Path:
    """``path`` as a Path, refused unless it is a directory holding every ``required`` file."""
    path = Path(path)
    if not path.is_dir():
        raise InputError("run directory not found", path=path)
    for name in required:
        if not (path / name).is_file():
            raise InputError(f"is not a complete {what}: {name} is missing", path=path)
    return path


_INFO = {"recogan_version": str, "kind": str, "data": dict, "device": str, "fit": dict}
_DATA = {"source": (str, type(None)), "n_train": int, "sha256": (str, type(None))}
_TABULAR_DATA = {"tree": (str, type(None)), "features": list, "n_rows": int, "n_dropped_invalid": int}


def read_info(path) -> dict:
    """The run's run.json, checked: an object with the entries a run needs, each of its type
    (an edited or damaged file is one InputError, never a crash later)."""
    info_path = Path(path) / "run.json"
    try:
        info = json.loads(info_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"could not be read: {exc}", path=info_path) from None
    if not isinstance(info, dict):
        raise InputError(f"holds {type(info).__name__}, not the object a run writes", path=info_path)
    kind = info.get("kind")
    if kind not in ("tabular", "zdc"):
        raise InputError(f"unknown run kind {kind!r}", path=info_path, hint="one of 'tabular', 'zdc'")
    data = info.get("data")
    for where, values, types in (("", info, _INFO), ("data.", data, _DATA),
                                 ("data.", data, _TABULAR_DATA if kind == "tabular" else {})):
        for key, expected in types.items():
            if key not in values:
                raise InputError(f"has no '{where}{key}' entry", path=info_path)
            if not isinstance(values[key], expected) or isinstance(values[key], bool):
                raise InputError(f"entry '{where}{key}' has the wrong type ({type(values[key]).__name__})",
                                 path=info_path)
    if kind == "tabular" and not all(isinstance(name, str) for name in data["features"]):
        raise InputError("entry 'data.features' is not a list of column names", path=info_path)
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


def write_run(directory: Path, *, config: TabularConfig, info: dict, pipeline: FeaturePipeline,
              generator: torch.nn.Module, history: pd.DataFrame, steps: pd.DataFrame,
              heldout: pd.DataFrame) -> None:
    """Write every file of a run directory (metrics.json comes later, from the written run)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "run.json", {"recogan_version": __version__, **info})
    write_json(directory / "config.json", config.to_dict())
    pipeline.save(directory / "preprocessing.json")
    state = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
    write_atomic(directory / "generator.pt", lambda tmp: torch.save(state, tmp))
    for name, frame in (("history", history), ("steps", steps), ("heldout", heldout)):
        write_atomic(directory / f"{name}.parquet", lambda tmp, f=frame: f.to_parquet(tmp, index=False))


MAX_WORKERS = 8
"""Most generation threads by default: each holds a chunk in memory."""


class Run:
    """A trained run, loaded from its directory: generate samples, read its history and metrics.

    Example
    -------
    >>> run = Run.load("runs/xic")                     # doctest: +SKIP
    >>> synthetic = run.generate(1_000_000, seed=1)    # doctest: +SKIP
    """

    def __init__(self, path: Path, info: dict, config: TabularConfig, pipeline: FeaturePipeline,
                 module: TabularGAN):
        self.path, self.info, self.config, self.pipeline, self.module = path, info, config, pipeline, module

    @classmethod
    def load(cls, path, *, device: str | torch.device = "cpu") -> "Run":
        path = complete_run_dir(path, REQUIRED, "run directory")
        info = read_info(path)
        with unreadable_as_input_error(path):
            config = TabularConfig.from_dict(json.loads((path / "config.json").read_text()),
                                             source=str(path / "config.json"))
            pipeline = FeaturePipeline.load(path / "preprocessing.json")
            state = load_weights(path / "generator.pt", device)
            n = len(pipeline.columns_)
            placeholder = MarginalTargets.from_data(torch.zeros(2, n), n_knots=2)  # penalties unused for sampling
            module = TabularGAN(n, config, placeholder)
            module.generator.load_state_dict(state)  # config.json edited: the shapes differ
        module.to(device).eval()
        return cls(path, info, config, pipeline, module)

    @property
    def features(self) -> list[str]:
        return list(self.pipeline.columns_)

    def iter_generate(self, n: int, *, seed: int | None = None, chunk_rows: int = 500_000,
                      workers: int | None = None) -> Iterator[pd.DataFrame]:
        """Synthetic rows in chunks of at most ``chunk_rows``, in physical units with the MC's
        column names and dtypes; memory bounded whatever ``n``.

        ``workers`` threads (default: one per core torch may use, at most :data:`MAX_WORKERS`,
        and no more than there are chunks) each sample a chunk and map it back to physical units
        while the caller consumes (writes) the previous ones: torch and numpy release the GIL.
        The cores are shared out between the workers (one each when there are as many workers
        as cores): several workers each spreading small matrix products over every core
        oversubscribe the cores, and idle OpenMP threads spin. Row i depends only on ``seed``
        and i (see :data:`~recogan_app.models.tabular.NOISE_BLOCK`), never on ``chunk_rows`` or
        ``workers``.

        Raises ValueError at the call, not at the first chunk, for ``n`` < 0 (it would silently
        give no rows) or ``chunk_rows`` < 1.
        """
        if n < 0 or chunk_rows < 1:
            raise ValueError(f"n must be at least 0 and chunk_rows at least 1, got n={n}, chunk_rows={chunk_rows}")
        return self._chunks(n, seed=seed, chunk_rows=chunk_rows, workers=workers)

    def _chunks(self, n: int, *, seed: int | None, chunk_rows: int, workers: int | None) -> Iterator[pd.DataFrame]:
        seed = seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        cores = torch.get_num_threads()
        chunks = -(-n // chunk_rows)
        workers = max(1, min(workers if workers is not None else min(cores, MAX_WORKERS), chunks))
        threads = max(1, cores // workers)
        rows = self.module.generator.sampler()

        def chunk(start: int) -> pd.DataFrame:
            torch.set_num_threads(threads)  # this thread's OpenMP team (and the default for new threads)
            return self.pipeline.inverse_transform(rows(seed, start, min(start + chunk_rows, n)).cpu().numpy())

        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                starts = iter(range(0, n, chunk_rows))
                pending = deque(pool.submit(chunk, start) for start in islice(starts, workers))
                while pending:
                    done = pending.popleft().result()
                    pending.extend(pool.submit(chunk, start) for start in islice(starts, 1))
                    yield done
        finally:
            torch.set_num_threads(cores)  # the default restored

    def generate(self, n: int, *, seed: int | None = None) -> pd.DataFrame:
        """``n`` synthetic rows at once (see :meth:`iter_generate` for large ``n``)."""
        chunks = list(self.iter_generate(n, seed=seed))
        return pd.concat(chunks, ignore_index=True) if chunks else self.pipeline.inverse_transform(
            np.empty((0, len(self.features)), dtype=np.float32))

    def validate(self, rows: int = 0, *, training: pd.DataFrame | None = None, **options):
        """:func:`recogan_app.validation.validate_run` of this run. Validation builds on runs, never the
        reverse (no cycle); the import stays inside so that loading a run does not load xgboost."""
        from recogan_app.validation import validate_run

        return validate_run(self, rows, training=training, **options)

    def heldout(self) -> pd.DataFrame:
        """The test split of the MC: never trained on, never used to pick a checkpoint."""
        path = self.path / "heldout.parquet"
        if not path.is_file():
            raise InputError("is missing: the run's held-out MC test split is gone", path=path,
                             hint="pass --reference with an independent MC file to validate against")
        with unreadable_as_input_error(path):
            return pd.read_parquet(path)

    def independent_reference(self, path) -> str | None:
        """The SHA-256 of the reference file ``path``, refused when it is the run's training file:
        most of that file is the training split, so the model would be judged on the events it
        learnt and look better than it is. None when ``path`` is not a file (an embedded toy)."""
        if not Path(path).is_file():
            return None
        digest = file_sha256(path)
        data = self.info.get("data", {})
        if digest == data.get("sha256"):
            share = f"{data['n_train'] / data['n_rows']:.0%}" if data.get("n_rows") else "most"
            raise InputError(f"is the file this run was trained on ({share} of its rows are the training split), "
                             f"so a comparison with it is biased in the model's favour", path=path,
                             hint="omit --reference to use the run's held-out split, or give an independent MC file")
        return digest

    def history(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "history.parquet")

    def metrics(self) -> dict:
        path = self.path / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_metrics(self, metrics: dict) -> None:
        write_json(self.path / "metrics.json", metrics)


# --- ZDC runs ------------------------------------------------------------------------------------
#
# RUN_DIR/ (kind "zdc")
#   run.json, config.json (ZDCConfig), generator.pt, checkpoints/, history.parquet, steps.parquet,
#   metrics.json   as for tabular runs
#   conditions.json  the fitted ConditionScaler (how the 9 conditions are standardised)
#   heldout.npz      the test split (images, conditions): never trained on, never used for a choice

ZDC_REQUIRED = ("run.json", "config.json", "conditions.json", "generator.pt")


def write_zdc_run(directory: Path, *, config: ZDCConfig, info: dict, scaler: ConditionScaler,
                  generator: torch.nn.Module, history: pd.DataFrame, steps: pd.DataFrame,
                  heldout: ZDCSample) -> None:
    """Write every file of a ZDC run directory (metrics.json comes later, from the written run)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "run.json", {"recogan_version": __version__, **info})
    write_json(directory / "config.json", config.to_dict())
    write_json(directory / "conditions.json", scaler.to_dict())
    state = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
    write_atomic(directory / "generator.pt", lambda tmp: torch.save(state, tmp))
    for name, frame in (("history", history), ("steps", steps)):
        write_atomic(directory / f"{name}.parquet", lambda tmp, f=frame: f.to_parquet(tmp, index=False))
    heldout.save(directory / "heldout.npz")


class ZDCRun(Run):
    """A trained ZDC run: one generated ZP response per row of conditions.

    Shares the run directory's history and metrics with :class:`Run`; generation takes the
    conditions to respond to instead of a number of rows.

    Example
    -------
    >>> run = ZDCRun.load("runs/zdc")                                  # doctest: +SKIP
    >>> images = run.generate(run.heldout().conditions, seed=1)        # doctest: +SKIP
    """

    def __init__(self, path: Path, info: dict, config: ZDCConfig, scaler: ConditionScaler,
                 generator: ZDCGenerator):
        self.path, self.info, self.config, self.scaler, self.module = path, info, config, scaler, generator

    @classmethod
    def load(cls, path, *, device: str | torch.device = "cpu") -> "ZDCRun":
        path = complete_run_dir(path, ZDC_REQUIRED, "ZDC run directory")
        info = read_info(path)
        with unreadable_as_input_error(path):
            config = ZDCConfig.from_dict(json.loads((path / "config.json").read_text()),
                                         source=str(path / "config.json"))
            scaler = ConditionScaler.from_dict(json.loads((path / "conditions.json").read_text()))
            state = load_weights(path / "generator.pt", device)
            generator = ZDCGenerator(config.latent_dim, config.generator_channels)
            generator.load_state_dict(state)
        return cls(path, info, config, scaler, generator.to(device).eval())

    @property
    def features(self) -> list[str]:
        """The conditions a generation needs, in order."""
        return list(CONDITIONS)

    def iter_generate(self, conditions, *, seed: int | None = None,
                      chunk_rows: int = 4096) -> Iterator[np.ndarray]:
        """Photon-count images (int32, (rows, 56, 30)) for consecutive chunks of ``conditions`` (N, 9)."""
        device = next(self.module.parameters()).device
        noise = torch.Generator(device=device)
        noise.manual_seed(seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0]))
        standard = torch.from_numpy(self.scaler.transform(conditions)).to(device)
        for chunk in standard.split(chunk_rows):
            yield counts_from_log1p(self.module.sample(chunk, generator=noise).cpu().numpy()[:, 0])

    def generate(self, conditions, *, seed: int | None = None) -> np.ndarray:
        """One photon-count image per row of ``conditions`` (N, 9): (N, 56, 30) int32."""
        chunks = list(self.iter_generate(conditions, seed=seed))
        return np.concatenate(chunks) if chunks else np.zeros((0, *IMAGE_SHAPE), np.int32)

    def heldout(self) -> ZDCSample:
        """The test split: never trained on, never used to pick a checkpoint."""
        return load_zdc(self.path / "heldout.npz")


def run_kind(path) -> str:
    """"tabular" or "zdc", from the run's run.json (a folder without one counts as tabular, whose
    loading then says what is missing)."""
    return read_info(path)["kind"] if (Path(path) / "run.json").is_file() else "tabular"


def load_run(path, *, device: str | torch.device = "cpu") -> Run:
    """The run at ``path`` as :class:`Run` or :class:`ZDCRun`, from the ``kind`` in its run.json."""
    return (ZDCRun if run_kind(path) == "zdc" else Run).load(path, device=device)
