"""Export of a synthetic sample at analysis scale: gated by validation, streamed, with provenance.

The exported file is what an analysis reads, so it must never be a half file, never hide how
good the model was, and never pass for more MC statistics than it holds (seed 004).

- **Gate**: before anything is written, a sample of the reference's size is compared with the
  reference (the run's held-out MC by default) feature by feature with the KS distance; below
  the required level the export is refused (:class:`~recogan_app.errors.ExportRefused`) unless
  forced, and a forced export says so in its provenance.
- **Streaming**: rows are generated and written chunk by chunk, so memory does not grow with N.
- **Atomic**: the file is written under a temporary name in the destination folder and renamed
  at the end; the sidecar ``FILE.provenance.json`` follows once the file is in place.
- **Formats**, each readable by its standard reader with the MC's column names and dtypes:

  ========  =============================================================================
  Parquet   one row group per chunk; provenance in the key-value metadata ``recogan_provenance``
  HDF5      PyTables "table" format under the key ``synthetic`` (one field per column), so
            ``pandas.read_hdf(path)`` and ``h5py`` (``f["synthetic/table"]["pt"]``) both read
            it; provenance in the attribute ``recogan_provenance`` of the ``/synthetic`` group
  ROOT      TTree ``synthetic`` (one branch per column, one ZSTD basket per chunk), provenance
            in the TObjString ``recogan_provenance``
  ========  =============================================================================

Example
-------
>>> run = TabularRun.load("runs/xic", device=resolve_device("auto"))          # doctest: +SKIP
>>> provenance = export(run, "xic_86M.parquet", 86_000_000, seed=1, progress=True)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from recogan_app import __version__
from recogan_app.data.sources import MCSample
from recogan_app.ensemble import Results, unmeasured
from recogan_app.errors import ExportRefused, InputError
from recogan_app.files import check_writable, write_atomic, write_json
from recogan_app.metrics.distributions import check_reference_rows, effective_size, ks_floor
from recogan_app.metrics.verdict import BARS, RANK, REQUIRABLE
from recogan_app.families.tabular import TabularRun
from recogan_app.validation import ks_comparison

__all__ = ["PROVENANCE_KEY", "SAMPLE_NAME", "WRITERS", "GateResult", "export", "gate", "provenance_path",
           "validation_summary", "write_hdf5", "write_parquet", "write_root"]

PROVENANCE_KEY = "recogan_provenance"
"""Name of the provenance JSON inside every exported file (metadata key, attribute, TObjString)."""
SAMPLE_NAME = "synthetic"
"""HDF5 key and ROOT tree name of the exported sample."""

Progress = Callable[[int], None]


def _tracked(chunks: Iterable[pd.DataFrame], progress: Progress | None) -> Iterator[pd.DataFrame]:
    """``chunks``, reporting each one's rows to ``progress`` once it has been written."""
    for chunk in chunks:
        yield chunk
        if progress is not None:
            progress(len(chunk))


def dictionary_columns(schema) -> list[str]:
    """Columns worth dictionary encoding: integers (few distinct values). Generated floats are
    all distinct, so a dictionary only costs time (4× the write time) and space before pyarrow
    falls back to plain encoding."""
    import pyarrow as pa

    return [field.name for field in schema if pa.types.is_integer(field.type)]


def write_parquet(path, chunks: Iterable[pd.DataFrame], provenance: dict | None = None,
                  progress: Progress | None = None) -> None:
    """Write ``chunks`` to one Parquet file, one row group per chunk (not atomic by itself).

    Parameters
    ----------
    path : str or Path
        The file to write (:func:`export` passes a temporary name).
    chunks : iterable of DataFrame
        Same columns and dtypes in every chunk; the first fixes the schema.
    provenance : dict, optional
        Stored as JSON under the key-value metadata key :data:`PROVENANCE_KEY`.
    progress : callable, optional
        Called with the rows of each chunk once written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for chunk in _tracked(chunks, progress):
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                schema = table.schema
                if provenance is not None:
                    schema = schema.with_metadata({**schema.metadata, PROVENANCE_KEY: _dumps(provenance)})
                writer = pq.ParquetWriter(path, schema, use_dictionary=dictionary_columns(table.schema))
            writer.write_table(table, row_group_size=len(table))
    finally:
        if writer is not None:
            writer.close()


def write_hdf5(path, chunks: Iterable[pd.DataFrame], provenance: dict | None = None,
               progress: Progress | None = None) -> None:
    """Write ``chunks`` as the PyTables table :data:`SAMPLE_NAME` (not atomic by itself).

    A bare h5py layout (one dataset per column) is not readable by ``pandas.read_hdf``; the
    PyTables table with every column a data column is, and h5py reads it as one compound
    dataset with a field per column. The row index runs on across chunks. Parameters as
    :func:`write_parquet`; the provenance goes to the group's attribute :data:`PROVENANCE_KEY`.
    """
    start = 0
    with pd.HDFStore(path, mode="w") as store:
        for chunk in _tracked(chunks, progress):
            store.append(SAMPLE_NAME, chunk.set_axis(pd.RangeIndex(start, start + len(chunk))),
                         format="table", data_columns=True, index=False)
            start += len(chunk)
        if provenance is not None:
            store.get_storer(SAMPLE_NAME).attrs[PROVENANCE_KEY] = _dumps(provenance)


def write_root(path, chunks: Iterable[pd.DataFrame], provenance: dict | None = None,
               progress: Progress | None = None) -> None:
    """Write ``chunks`` as the TTree :data:`SAMPLE_NAME` with uproot (not atomic by itself).

    Parameters as :func:`write_parquet`; float16 columns are stored as float32 (ROOT has no
    half-precision branch type; :func:`export` records it). The provenance goes to the TObjString
    :data:`PROVENANCE_KEY` beside the tree (uproot writes TObjString, not TNamed). Baskets are
    ZSTD level 1: uproot's default ZLIB level 1 takes 5× longer (1.7 s per million rows × 12
    columns, in the writing thread) for a 1 % larger file; ROOT reads ZSTD since 6.20, uproot
    through its cramjam dependency.
    """
    import uproot

    with uproot.recreate(path, compression=uproot.ZSTD(1)) as file:
        tree = None
        for chunk in _tracked(chunks, progress):
            chunk = chunk.astype({name: np.float32 for name in chunk.columns if chunk[name].dtype == np.float16})
            if tree is None:
                tree = file.mktree(SAMPLE_NAME, {name: chunk[name].dtype for name in chunk.columns},
                                   title=f"recogan synthetic sample (provenance: {PROVENANCE_KEY})")
            tree.extend({name: chunk[name].to_numpy() for name in chunk.columns})
        if provenance is not None:
            file[PROVENANCE_KEY] = _dumps(provenance)


WRITERS = {".parquet": write_parquet, ".h5": write_hdf5, ".hdf5": write_hdf5, ".root": write_root}
"""Writer by file suffix."""


def _dumps(value: dict) -> str:
    return json.dumps(value, default=float)


def provenance_path(out) -> Path:
    """The sidecar JSON of an exported file: ``FILE.provenance.json``."""
    out = Path(out)
    return out.with_name(out.name + ".provenance.json")


UNRESOLVED_SHARE = 0.5
"""Share of the required mean-KS bar above which the reference's own KS noise makes the verdict
largely a matter of which rows were drawn (a 2,000-row split: floor 0.030 against 0.035)."""


def validation_summary(provenance: dict) -> str:
    """The export-time validation in one line, beside the KS that MC noise alone reaches, and a
    warning when that noise is a large share of the bar asked for."""
    check = provenance["validation"]
    floor, bar = check["ks_noise_floor"], BARS.get(check["require"], (None,))[0]
    unresolved = (f"; MC noise alone is {floor / bar:.0%} of the '{check['require']}' mean-KS bar {bar}: at this "
                  f"reference size the verdict depends on the draw (a larger independent --reference settles it)"
                  if bar and floor >= UNRESOLVED_SHARE * bar else "")
    return (f"validation against {check['reference']} ({check['n_reference']:,} rows): mean KS "
            f"{check['mean_ks']:.4f}, max KS {check['max_ks']:.4f} ({check['verdict']}; two MC samples of this "
            f"size differ by KS {floor:.4f} at 68 %)" + unresolved
            + ("; FORCED below the required level" if provenance["forced"] else ""))


@dataclass(frozen=True)
class GateResult:
    """The validation of a run at export time.

    Attributes
    ----------
    require : str
        Level asked for: "excellent", "good" or "none".
    verdict : str
        Seed 000's verdict of the sample: "excellent", "good" or "poor".
    mean_ks, max_ks : float
        Over features.
    ks : dict of str to float
        KS distance per feature.
    failing : dict of str to float
        Features at or above the missed bar (the mean bar when the mean misses, else the max bar).
    ks_noise_floor : float
        KS two samples of this size from one distribution reach with 68 % probability: distances
        near it are indistinguishable from MC noise.
    n_reference : int
        Rows of the reference, and of the generated sample compared with it.
    reference : str
        What the reference was.
    seed : int
        Seed of the generated validation sample.
    outside_cut : int or None
        Generated validation rows the training's cut would remove (the MC kept none such; None:
        no cut, or one on columns the run does not generate): the share to expect in the export.
    """

    require: str
    verdict: str
    mean_ks: float
    max_ks: float
    ks: dict[str, float]
    failing: dict[str, float]
    ks_noise_floor: float
    n_reference: int
    reference: str
    seed: int
    outside_cut: int | None = None

    @property
    def passed(self) -> bool:
        return RANK[self.verdict] >= RANK[self.require]

    def refusal(self) -> ExportRefused:
        """The error an export below the required level raises."""
        mean_bar, max_bar = BARS[self.require]
        features = ", ".join(f"{name} KS={ks:.4f}" for name, ks in self.failing.items())
        return ExportRefused(
            f"validation against {self.reference} ({self.n_reference:,} rows) gives '{self.verdict}', "
            f"below the required '{self.require}' (mean KS {self.mean_ks:.4f}, bar < {mean_bar}; "
            f"max KS {self.max_ks:.4f}, bar < {max_bar}); failing features: {features} "
            f"(--force, or 'Export even if below' in the dashboard, exports anyway: the file will record that it "
            f"was forced)",
            failing=self.failing)


def gate(run: TabularRun, reference: pd.DataFrame, require: str = "good", *, seed: int,
         description: str = "the reference", weights: np.ndarray | None = None) -> GateResult:
    """Validate ``run`` against ``reference`` with a generated sample of the same size.

    Parameters
    ----------
    run : TabularRun
    reference : DataFrame
        MC never used in training (the run's held-out split, or an independent file); needs the
        run's feature columns, and a conditional run's conditions: its targets are generated given
        the reference rows' conditions and compared.
    require : {"excellent", "good", "none"}
        Level the verdict must reach for :attr:`GateResult.passed`.
    seed : int
        Seed of the generated validation sample.
    description : str
        How messages and the provenance name the reference.
    weights : ndarray, optional
        The reference's event weights (a weighted run's MC: its generator reproduces the weighted
        distribution, so an unweighted reference would refuse a good model); the noise floor is then
        that of the reference's effective size.

    Returns
    -------
    GateResult
    """
    if require not in REQUIRABLE:
        raise InputError(f"unknown validation level '{require}'", hint=f"one of {', '.join(REQUIRABLE)}")
    synthetic = run.generate(reference if run.conditions else len(reference), seed=seed)  # given its conditions
    metrics, summary = ks_comparison(reference, synthetic, run.features, weights=weights)
    n_reference = len(reference) if weights is None else effective_size(weights, len(reference))
    ks = metrics["ks"]
    failing = {}
    if require != "none":
        mean_bar, max_bar = BARS[require]
        bar = mean_bar if summary["mean"] >= mean_bar else max_bar
        failing = {str(name): float(value) for name, value in ks[ks >= bar].sort_values(ascending=False).items()}
    return GateResult(require=require, verdict=summary["verdict"], mean_ks=summary["mean"], max_ks=summary["max"],
                      ks={str(name): float(value) for name, value in ks.items()}, failing=failing,
                      ks_noise_floor=ks_floor(n_reference, len(reference)), n_reference=len(reference),
                      reference=description, seed=seed, outside_cut=run.outside_cut(synthetic))


def _statement(n_rows: int, data: dict) -> str:
    """What the sample can and cannot be used for (seed 004). A weighted MC's training split carries
    the information of its effective sample size (Σw)²/Σw², not of its rows: that sets the bound."""
    n_train = data["n_train"]
    n_effective = (data.get("weights") or {}).get("n_effective_train")
    if n_effective is None:
        trained, n, effective = f"{n_train:,} MC events", n_train, ""
    else:
        n, effective = round(n_effective), "effective "
        trained = (f"{n_train:,} weighted MC events, as many as {n:,} unweighted ones (effective sample size "
                   f"(Σw)²/Σw²)")
    return (
        f"Synthetic sample of {n_rows:,} rows generated by a model trained on {trained} "
        f"(training split of {data.get('source')}). Its statistical precision on distribution shapes is at "
        f"most that of about {n:,} {effective}MC events, however many rows it "
        f"has: the training sample's fluctuations are built into the model and do not shrink with more generated "
        f"rows. Use it to exercise analysis code at scale, to smooth templates and to study the validated features "
        f"in the ranges the MC covers; attach to any histogram of it an uncertainty at least that of the {n:,} "
        f"{effective}training events (relative error of a bin holding a fraction "
        f"p of the events at least 1/sqrt({n}*p)). Do not treat its own fluctuations as MC statistical "
        f"uncertainty, do not use it to claim more MC statistics than the training events, and do not trust it "
        f"outside the validated features and the ranges populated by the MC."
    )


def export(run: TabularRun, out, n: int | pd.DataFrame, *, reference: pd.DataFrame | MCSample | None = None, require: str = "good",
           force: bool = False, seed: int | None = None, chunk_rows: int = 1_000_000, overwrite: bool = False,
           progress: bool | Progress | None = None, ensemble: Results | str | Path | None = None,
           conditions_source: str = "a DataFrame") -> dict:
    """Validate ``run``, then stream ``n`` synthetic rows to ``out`` with their provenance.

    Parameters
    ----------
    run : TabularRun
        The trained run (load it on a GPU to generate faster).
    out : str or Path
        ``.parquet``, ``.h5``/``.hdf5`` or ``.root``; ``FILE.provenance.json`` is written beside it.
    n : int or DataFrame
        Rows to export; for a conditional run the frame of its conditions instead: one row per
        row, the conditions copied through unchanged (the provenance's ``conditional``).
    reference : DataFrame or MCSample, optional
        MC to validate against; the run's held-out test split by default. A file's SHA-256 is
        recorded in the provenance, and the run's own training file is refused.
    require : {"good", "excellent", "none"}
        Verdict the validation must reach.
    force : bool
        Export below the required level anyway; the provenance records ``"forced": true``.
    seed : int, optional
        Seed of the exported sample (fresh by default, and recorded). The validation sample has a
        seed of its own, the run's "gate" stream (:mod:`recogan_app.streams`): one run and reference always get the
        same verdict, whatever is exported.
    chunk_rows : int
        Rows generated and written at a time: bounds memory whatever ``n``.
    overwrite : bool
        Replace an existing ``out`` (and its sidecar).
    progress : bool or callable, optional
        True for a tqdm bar on stderr; a callable receives the rows of each written chunk.
    ensemble : Results or path, optional
        A bootstrap ensemble of the run (:mod:`recogan_app.ensemble`; the run one of its members or
        trained on the same MC and split): its per-feature N_eff, coverage and the warning when
        ``n`` exceeds the information go to the provenance's ``effective_statistics``. Without
        one, that says the sample's statistical power was not measured, and how to measure it.
    conditions_source : str
        What the conditions ``n`` of a conditional run were (the file), for the provenance.

    Returns
    -------
    dict
        The provenance, as embedded in the file and written to the sidecar.

    Raises
    ------
    InputError
        Unknown format or level, non-positive ``n`` or ``chunk_rows``, an existing or unwritable
        ``out``, a missing held-out split, a reference that is the run's training file, has
        too few rows or lacks the run's features, or an ensemble of other training data; all
        checked before anything is generated.
    ExportRefused
        The validation is below ``require`` and ``force`` is False; nothing is written.
    """
    out = Path(out)
    writer = WRITERS.get(out.suffix.lower())
    if writer is None:
        raise InputError(f"unknown export format '{out.suffix}'", path=out, hint="use " + ", ".join(WRITERS))
    given = run.conditions_of(n)  # a conditional run takes conditions, any other a number of rows
    n = n if given is None else len(given)
    for value, what in ((n, "rows to export (--n)" if given is None else "rows of the conditions"),
                        (chunk_rows, "rows per chunk (--chunk-rows)")):
        if value < 1:
            raise InputError(f"{what} must be at least 1, got {value}")
    if out.exists() and not overwrite:
        raise InputError("exists already", path=out, hint="pass --overwrite to replace it")
    check_writable(out)
    if ensemble is not None:
        ensemble = ensemble if isinstance(ensemble, Results) else Results.read(ensemble)
        ensemble.check_run(run.info, run.path)
    seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else seed
    digest = None
    weights, column = None, None
    if reference is None:
        frame, description, source = run.heldout(), "the run's held-out MC test split", run.path / "heldout.parquet"
        weights, column = run.heldout_weights(), run.weight_column
    elif isinstance(reference, MCSample):
        frame, source = reference.frame, reference.source
        weights, column = reference.weights, reference.weight_column
        description = source + (f" (tree {reference.tree})" if reference.tree else "")
        digests = [run.independent_reference(path) for path in reference.files]  # every file of it
        digest = digests[0] if len(digests) == 1 else digests or None
    else:
        frame, description = reference, "the given reference sample"
        source = description
    check_reference_rows(len(frame), source)
    if weights is not None:
        description += f", weighted by its column '{column}'"
    result = gate(run, frame, require, seed=run.stream_seed("gate"), description=description, weights=weights)
    if not result.passed and not force:
        raise result.refusal()

    data = run.info["data"]
    provenance = {
        "recogan_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": n,
        "features": run.features,
        "conditional": None if given is None else {
            "conditions": run.conditions, "source": conditions_source,
            "validation": "targets generated given the reference rows' conditions",
            "rows": "one per row of the conditions, which are copied through unchanged"},
        "statement": _statement(n, data),
        "effective_statistics": unmeasured(bool(run.conditions)) if ensemble is None else ensemble.statistics(n),
        "training_data": {key: data.get(key) for key in ("source", "tree", "sha256", "sources", "cut", "n_rows",
                                                         "n_train", "n_monitor", "n_test")},
        "seeds": {"training": run.config.seed, "sample": seed, "validation": run.stream_seed("gate")},
        "validation": {**asdict(result), "passed": result.passed, "reference_sha256": digest},
        "forced": not result.passed,
        "run": {"path": str(run.path), "fit": run.info.get("fit"), "heldout_metrics": run.metrics()},
        "config": run.config.to_dict(),
    }
    widened = [name for name, dtype in run.pipeline.dtypes_.items() if dtype == "float16"]
    if widened and writer is write_root:
        provenance["stored_as_float32"] = {"columns": widened, "why": "ROOT has no half-precision (float16) type"}
    chunks = run.iter_generate(n if given is None else given, seed=seed, chunk_rows=chunk_rows)  # overlaps writing
    sidecar = provenance_path(out)
    from tqdm.auto import tqdm

    bar = tqdm(total=n, unit="row", unit_scale=True, desc="exporting", file=sys.stderr) if progress is True else None

    def write(tmp: str) -> None:
        writer(tmp, chunks, provenance, bar.update if bar is not None else progress or None)
        if overwrite:  # an old sidecar must never sit beside the new file (without overwrite, it may be
            sidecar.unlink(missing_ok=True)  # the sidecar of another job's file, put in place meanwhile)

    with bar if bar is not None else nullcontext():
        write_atomic(out, write, overwrite=overwrite)
    write_json(sidecar, provenance)
    return provenance
