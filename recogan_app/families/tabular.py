"""The tabular GAN family (seed 000): candidates' features, one row per candidate.

Training (:func:`train_tabular`, the one entry point of the CLI, the dashboard and notebooks)
goes through :func:`~recogan_app.families.recipe.fit_to_run`: the preprocessing
(:class:`~recogan_app.preprocessing.FeaturePipeline`) and the marginal targets of the penalties
are fitted on the training split only; the monitor split scores every epoch; the test split is
kept in the run as ``heldout.parquet`` for the final figures and validation.

A weighted MC (event weights, :attr:`~recogan_app.data.sources.MCSample.weights`) keeps its weights
through the split. The preprocessing's quantiles, the penalties' targets, the discriminator's real
terms (the flow: its likelihood), the snapshots' KS and the final figures are weighted; so the
generator, whose rows are unweighted, learns the weighted distribution. The weights are used as
they are rather than by drawing batches with probability ∝ w: every row is seen every epoch, the
loop stays the same for every family, and the weights' column travels in ``heldout.parquet``.

A tabular run directory holds, beside the common files (:mod:`recogan_app.run`),
``preprocessing.json`` (the fitted pipeline) and ``heldout.parquet`` (the test split).

Derived columns (:mod:`recogan_app.data.derived`, run.json ``data.derived``) are not modelled: the
preprocessing and the network see the free columns (and a conditional model's conditions) only, and
every generated chunk gets the derived ones computed from those (:meth:`TabularRun._physical`), so that
every output holds them exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recogan_app import streams
from recogan_app.config import TabularConfig
from recogan_app.data.derived import Derivations
from recogan_app.data.selection import Selection
from recogan_app.data.sources import MCSample, load_mc
from recogan_app.errors import InputError
from recogan_app.files import file_sha256, write_atomic
from recogan_app.losses import MarginalTargets
from recogan_app.metrics.c2st import classifier_two_sample_test
from recogan_app.metrics.conditional import MIN_PASSING, PULL_LIMIT, validate_conditional
from recogan_app.metrics.correlations import (correlation_residual, max_abs_residual, noise_text, residual_noise,
                                              residual_undefined)
from recogan_app.metrics.distributions import ks_floor
from recogan_app.metrics.verdict import GOOD, bar_score, too_small_to_judge
from recogan_app.models.latent import batch_parts
from recogan_app.models.tabular import TabularGAN
from recogan_app.preprocessing import FeaturePipeline
from recogan_app.run import Run, unreadable_as_input_error
from recogan_app.families.recipe import TOO_SHORT, ModelFamily, Prepared, fit_to_run
from recogan_app.splits import Split, snapshot_positions
from recogan_app.training.schedule import plural
from recogan_app.validation import ks_comparison, validate_run

MAX_WORKERS = 8
"""Most generation threads by default: each holds a chunk in memory."""
SNAPSHOT_GENERATED = 2000
"""Fewest generated rows a snapshot compares with a smaller monitor split (within
``snapshot_rows``): KS between n monitor and m generated rows scatters as √(1/n + 1/m), so on a
small sample's monitor split the generated side's share of the noise, half at m = n, nearly goes."""
HELDOUT_GENERATED = 20_000
"""Fewest generated rows the final figures compare with the test split, for the same reason."""


def compare(reference: pd.DataFrame, synthetic: pd.DataFrame, weights=None) -> tuple[dict, dict]:
    """Per-feature KS and Wasserstein plus the Pearson residual (the reference's rows counting their
    event ``weights``, when given): the snapshot metrics.

    Returns flat ``metrics`` (floats, one history row; ``max_corr_residual`` NaN when it cannot be
    computed) and ``details`` (tables for plots, seed 000's ``verdict``, and ``corr_undefined``: why
    the residual could not be computed, or None).
    """
    per_feature, ks = ks_comparison(reference, synthetic, weights=weights)
    residual = correlation_residual(reference, synthetic, weights=weights)
    metrics = {"mean_ks": ks["mean"], "max_ks": ks["max"], "max_corr_residual": max_abs_residual(residual)}
    metrics.update({f"ks_{f}": float(v) for f, v in per_feature["ks"].items()})
    metrics.update({f"ws_{f}": float(v) for f, v in per_feature["wasserstein"].items()})
    return metrics, {"per_feature": per_feature, "corr_residual": residual, "verdict": ks["verdict"],
                     "corr_undefined": residual_undefined(residual)}


def noise_floors(n_test: int, n_generated: int, c2st_rows: int | None = None, n_features: int = 2) -> dict:
    """What the held-out figures show by chance alone at these sizes: KS between two samples of one
    distribution (68 % quantile), the Pearson residual of one pair and the largest of the
    ``n_features`` columns' pairs (:func:`~recogan_app.metrics.correlations.residual_noise`, as
    ``recogan validate`` says it) and the classifier AUC's 1σ around 0.5 (Mann–Whitney, ``c2st_rows``
    split between the classes)."""
    floors = {"ks": ks_floor(n_test, n_generated), "corr": residual_noise(n_test, n_generated, n_features)}
    if c2st_rows:
        half = c2st_rows / 2
        floors["c2st_auc"] = math.sqrt((c2st_rows + 1) / (12 * half * half))
    return floors


def heldout_summary(metrics: dict) -> str:
    """The final figures of metrics.json with the noise floor beside each, in one line; a conditional
    run's figures given the test rows' conditions in a second; a last says when the test split is
    too small to judge the model. A figure that could not be computed
    is said so, with the reason, never printed as a number."""
    noise = metrics["noise"]
    residual = metrics["max_corr_residual"]
    residual = (f"{residual:.3f} ({noise_text(noise['corr'])})" if residual is not None
                else f"not computable ({metrics['max_corr_residual_undefined']})")
    c2st = (f"classifier AUC {metrics['c2st_auc']:.3f} (chance 0.5 ± {noise['c2st_auc']:.3f})"
            if "c2st_auc" in metrics else f"classifier AUC not measured: {metrics['c2st_skipped']}")
    if "test_nll" in metrics:  # a likelihood model's exact held-out figure
        c2st += f", log-likelihood {-metrics['test_nll']:.3f} nats per row (preprocessed space)"
    n = metrics["sample_size"]
    weighted = f", effective size {metrics['effective_size']:,.0f}" if "effective_size" in metrics else ""
    line = (f"held-out test ({n:,} rows{weighted} against {metrics['generated_rows']:,} generated): mean KS "
            f"{metrics['mean_ks']:.4f}, max KS {metrics['max_ks']:.4f} (noise {noise['ks']:.4f} a feature; "
            f"{metrics['verdict']}), max |Pearson residual| {residual}, {c2st}")
    if "pull_share" in metrics:  # a conditional run, generated given the test rows' conditions
        large = metrics["efficiency_bins_large"]
        ratios = (f"max |ε_gen/ε_MC − 1| {metrics['max_ratio_deviation']:.3f} over {plural(large, 'bin')}" if large
                  else "no bin") + f" with ≥ {MIN_PASSING:,} passing MC rows"
        share, binned, residuals = (metrics[k] for k in ("pull_share", "max_binned_ks", "max_residual_ks"))
        line += (f"\ngiven the test rows' conditions: {ratios}, " + (f"{share:.1%}" if share is not None else "none")
                 + f" of {plural(metrics['efficiency_bins'], 'efficiency pull')} beyond {PULL_LIMIT:g}σ"
                 + (f", max KS in a condition bin {binned:.3f}" if binned is not None else "")
                 + (f", max relative-residual KS {residuals:.4f}" if residuals is not None else ""))
    if too_small_to_judge(noise["ks"]):
        line += (f"\nthe held-out split ({n:,} rows) is too small to judge the model: KS {noise['ks']:.3f} comes "
                 f"by chance at this size, above the 'good' bar's mean KS {GOOD[0]}; validate on an independent MC "
                 f"sample (recogan validate --reference FILE)")
    return line


def split_pipeline(pipeline: FeaturePipeline, conditions) -> tuple[FeaturePipeline, FeaturePipeline | None]:
    """The fitted pipeline of the generated columns and that of a conditional model's
    ``conditions`` (None for an unconditional one): one pipeline, fitted on both, is saved."""
    if not conditions:
        return pipeline, None
    return pipeline.select([c for c in pipeline.columns_ if c not in conditions]), pipeline.select(conditions)


class SnapshotValidation:
    """Compares a fixed-noise generated sample with the monitor split after every epoch.

    The same noise is used at every snapshot so that the curves show the generator changing,
    not the noise; the sample size (monitor rows) is stated with every snapshot. At most ``rows``
    monitor rows, and as many generated ones, at least :data:`SNAPSHOT_GENERATED` within ``rows``.
    A conditional model generates one row given each monitor row's conditions (``given``: their
    fitted pipeline), and its targets are compared.
    """

    def __init__(self, monitor: MCSample, pipeline: FeaturePipeline, rows: int, seed: int,
                 given: FeaturePipeline | None = None):
        reference = monitor.subset(snapshot_positions(len(monitor), rows, seed))
        self.reference, self.weights = reference.frame, reference.weights
        self.generated = (len(self.reference) if given is not None
                          else min(rows, max(len(self.reference), SNAPSHOT_GENERATED)))
        self.pipeline = pipeline
        self.given = {} if given is None else {"conditions": torch.from_numpy(given.transform(self.reference))}
        self.noise_seed = streams.stream_seed(seed, "snapshot")

    def record(self) -> dict:
        """run.json's ``snapshot``: the rows each snapshot compares."""
        return {"monitor_rows": len(self.reference), "generated_rows": self.generated}

    def __call__(self, module: TabularGAN):
        synthetic = self.pipeline.inverse_transform(
            module.sample(self.generated, seed=self.noise_seed, **self.given).cpu().numpy())
        reference = self.reference[self.pipeline.columns_]
        metrics, details = compare(reference, synthetic, self.weights)
        details.update(reference=reference, synthetic=synthetic)
        score = bar_score(metrics["mean_ks"], metrics["max_ks"], metrics["max_corr_residual"])
        finite = all(math.isfinite(v) for k, v in metrics.items() if k != "max_corr_residual") and (
            math.isfinite(metrics["max_corr_residual"]) or details["corr_undefined"])
        return (score if finite else math.inf), metrics, details, len(self.reference)


class TabularRun(Run):
    """A trained tabular run: generate any number of rows, validate, read its history and metrics.

    Example
    -------
    >>> run = TabularRun.load("runs/xic")              # doctest: +SKIP
    >>> synthetic = run.generate(1_000_000, seed=1)    # doctest: +SKIP

    A conditional run (``conditions`` set) generates its targets (``features``) given a frame
    of conditions, one row per row: ``run.generate(frame, seed=1)``.
    """

    kind = "tabular"
    config_class = TabularConfig
    files = ("preprocessing.json",)
    data_schema = {"tree": (str, type(None)), "features": list, "n_rows": int, "n_dropped_invalid": int}

    def _load(self, weights: dict) -> None:
        if not all(isinstance(name, str) for name in self.info["data"]["features"]):
            raise InputError("entry 'data.features' is not a list of column names", path=self.path / "run.json")
        self.pipeline, self.condition_pipeline = split_pipeline(FeaturePipeline.load(self.path / "preprocessing.json"),
                                                   self.conditions)
        self.module = self._module(len(self.pipeline.columns_))
        self.module.generator.load_state_dict(weights)  # config.json edited: the shapes differ
        self._load_derived()

    def _load_derived(self) -> None:
        """The derived columns of run.json ``data.derived`` (name: {expression, dtype}) and the output's
        column order, ``data.features``; both checked against the fitted preprocessing."""
        data, where = self.info["data"], self.path / "run.json"
        derived = data.get("derived") or {}
        if not (isinstance(derived, dict) and all(isinstance(d, dict) and isinstance(d.get("expression"), str)
                                                  and isinstance(d.get("dtype"), str) for d in derived.values())):
            raise InputError("entry 'data.derived' is not a table of {expression, dtype} per column", path=where)
        try:
            self.derived = Derivations({name: d["expression"] for name, d in derived.items()})
            self.derived.check([*self.conditions, *self.pipeline.columns_])
            self.derived_dtypes = {name: str(np.dtype(d["dtype"])) for name, d in derived.items()}
        except (InputError, TypeError) as exc:
            raise InputError(f"entry 'data.derived' cannot be used: {exc}", path=where) from None
        self.columns = ([c for c in data["features"] if c not in self.conditions] if derived
                        else list(self.pipeline.columns_))
        if sorted(self.columns) != sorted([*self.pipeline.columns_, *derived]):
            raise InputError("entry 'data.features' does not list the modelled and derived columns", path=where)

    def _module(self, n_features: int) -> torch.nn.Module:
        """The family's module of ``n_features`` from the run's config, its generator to be loaded."""
        placeholder = MarginalTargets.from_data(torch.zeros(2, n_features), n_knots=2)  # penalties unused for sampling
        return TabularGAN(n_features, self.config, placeholder, len(self.conditions))

    @property
    def features(self) -> list[str]:
        """The generated columns in the MC's order: the modelled ones (a conditional run's targets) and
        the derived ones."""
        return list(self.columns)

    def _physical(self, matrix: np.ndarray, given: pd.DataFrame | None = None) -> pd.DataFrame:
        """Generated rows of the network's space in physical units, after their ``given`` conditions
        (copied through), the derived columns computed from both."""
        frame = self.pipeline.inverse_transform(matrix)
        if given is not None:
            frame = pd.concat([given.reset_index(drop=True), frame], axis=1)
        if not self.derived:
            return frame
        return self.derived.complete(frame, self.derived_dtypes)[self.conditions + self.columns]

    @property
    def weight_column(self) -> str | None:
        """The column of event weights the run was trained with (None: unweighted)."""
        return (self.info["data"].get("weights") or {}).get("column")

    def outside_cut(self, frame: pd.DataFrame) -> int | None:
        """How many generated rows of ``frame`` the training's cut would remove (the MC kept none such);
        None when the run had no cut or its cut reads a column the run does not generate."""
        cut = self.info["data"].get("cut")
        selection = Selection(cut) if cut else None
        if selection is None or not set(selection.columns) <= set(frame.columns):
            return None
        return int((~selection.mask({c: frame[c].to_numpy() for c in selection.columns})).sum())

    @property
    def conditions(self) -> list[str]:
        """The columns a conditional run is given (none for an unconditional one)."""
        return list(self.config.conditions or [])

    def iter_generate(self, n: int | pd.DataFrame, *, seed: int | None = None, chunk_rows: int = 500_000,
                      workers: int | None = None) -> Iterator[pd.DataFrame]:
        """Synthetic rows in chunks of at most ``chunk_rows``, in physical units with the MC's
        column names and dtypes, derived columns computed; memory bounded whatever ``n``.

        ``n`` is the number of rows, or for a conditional run the frame of conditions (any
        further columns are ignored): one row per row, its conditions copied through unchanged
        (same values and dtypes) before the generated targets.

        ``workers`` threads (default: one per core torch may use, at most :data:`MAX_WORKERS`,
        and no more than there are chunks) each sample a chunk and map it back to physical units
        while the caller consumes (writes) the previous ones: torch and numpy release the GIL.
        The cores are shared out between the workers (one each when there are as many workers
        as cores): several workers each spreading small matrix products over every core
        oversubscribe the cores, and idle OpenMP threads spin. Row i depends only on ``seed``
        and i (see :data:`~recogan_app.models.latent.NOISE_BLOCK`), never on ``chunk_rows`` or
        ``workers``.

        Raises ValueError at the call, not at the first chunk, for ``n`` < 0 (it would silently
        give no rows) or ``chunk_rows`` < 1; InputError for a number of rows to a conditional run,
        conditions to an unconditional one, or conditions lacking a column.
        """
        given = self.conditions_of(n)
        n = n if given is None else len(given)
        if n < 0 or chunk_rows < 1:
            raise ValueError(f"n must be at least 0 and chunk_rows at least 1, got n={n}, chunk_rows={chunk_rows}")
        return self._chunks(n, given, seed=seed, chunk_rows=chunk_rows, workers=workers)

    def conditions_of(self, n: int | pd.DataFrame) -> pd.DataFrame | None:
        """The conditions of a conditional run's rows (None for an unconditional run), checked."""
        if not self.conditions:
            if isinstance(n, pd.DataFrame):
                raise InputError("is not a conditional run: it takes a number of rows, not conditions", path=self.path)
            return None
        if not isinstance(n, pd.DataFrame):
            raise InputError(f"is a conditional run: it generates {', '.join(self.features)} given a table of "
                             f"{', '.join(self.conditions)}, one row per row", path=self.path)
        missing = [c for c in self.conditions if c not in n.columns]
        if missing:
            raise InputError("is a condition of the run but not a column of the conditions", column=missing[0],
                             hint=f"the run needs {', '.join(self.conditions)}")
        return n[self.conditions].reset_index(drop=True)

    def read_conditions(self, path, *, tree: str | None = None) -> MCSample:
        """A conditional run's conditions read from a file of any MC format (``generate`` and
        ``export --conditions``, the dashboard's Export tab): only their columns, checked as MC is,
        a missing or unusable one named as a condition of the run."""
        try:
            return load_mc(path, tree=tree, features=self.conditions)
        except InputError as exc:
            if exc.column not in self.conditions:
                raise
            raise InputError(f"{exc.problem}: it is a condition of the run, which generates given "
                             f"{', '.join(self.conditions)}", path=exc.path, column=exc.column, hint=exc.hint) from None

    def _chunks(self, n: int, given: pd.DataFrame | None, *, seed: int | None, chunk_rows: int,
                workers: int | None) -> Iterator[pd.DataFrame]:
        seed = seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        matrix = None if given is None else torch.from_numpy(self.condition_pipeline.transform(given))
        cores = torch.get_num_threads()
        chunks = -(-n // chunk_rows)
        workers = max(1, min(workers if workers is not None else min(cores, MAX_WORKERS), chunks))
        threads = max(1, cores // workers)
        rows = self.module.generator.sampler()

        def chunk(start: int) -> pd.DataFrame:
            torch.set_num_threads(threads)  # this thread's OpenMP team (and the default for new threads)
            stop = min(start + chunk_rows, n)
            if matrix is None:
                return self._physical(rows(seed, start, stop).cpu().numpy())
            return self._physical(rows(seed, start, stop, matrix[start:stop]).cpu().numpy(), given.iloc[start:stop])

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

    def generate(self, n: int | pd.DataFrame, *, seed: int | None = None) -> pd.DataFrame:
        """``n`` synthetic rows (or one per row of a conditional run's conditions ``n``) at once
        (see :meth:`iter_generate` for large ``n``)."""
        chunks = list(self.iter_generate(n, seed=seed))
        if chunks:
            return pd.concat(chunks, ignore_index=True)
        empty = np.empty((0, len(self.pipeline.columns_)), dtype=np.float32)
        return self._physical(empty, n[self.conditions] if self.conditions else None)

    def histogram(self, feature: str, edges, n: int, *, seed: int | None = None):
        """:func:`recogan_app.histograms.of_run`: ``feature``'s histogram in ``n`` generated events,
        with the generated sample's own errors only."""
        from recogan_app.histograms import of_run

        return of_run(self, feature, edges, n, seed=seed)

    def validate(self, rows: int = 0, **options):
        """:func:`recogan_app.validation.validate_run` of this run (validation takes any run: no cycle)."""
        return validate_run(self, rows, **options)

    def heldout(self) -> pd.DataFrame:
        """The test split of the MC: never trained on, never used to pick a checkpoint (a conditional
        run's conditions, then its features; a weighted run's weights: :meth:`heldout_weights`)."""
        return self._heldout(self.conditions + self.features)

    def heldout_weights(self) -> np.ndarray | None:
        """The event weights of the :meth:`heldout` rows (None for an unweighted run)."""
        column = self.weight_column
        return None if column is None else self._heldout([column])[column].to_numpy()

    def _heldout(self, columns: list[str]) -> pd.DataFrame:
        path = self.path / "heldout.parquet"
        if not path.is_file():
            raise InputError("is missing: the run's held-out MC test split is gone", path=path,
                             hint="pass --reference with an independent MC file to validate against")
        with unreadable_as_input_error(path):
            return pd.read_parquet(path, columns=columns)

    def training_rows(self, mc: pd.DataFrame | None = None) -> tuple[pd.DataFrame | None, str]:
        """The MC this run was trained on: the recorded split applied to ``mc`` (the caller holds
        the frame it trained on), or by default to the run's source read again.

        The copula baseline must learn from the same events as the model: every file read again,
        with the same cut; a weighted run's frame holds the weight column after the features.
        Refused (None) when a source file cannot be read or has changed, when the split drawn again
        differs from the recorded one, or when the run (written by recogan 0.1) recorded no split.

        Returns
        -------
        frame : DataFrame or None
            The training split, or None when it cannot be rebuilt.
        note : str
            What was used, or why nothing could be.
        """
        data, record, column = self.info["data"], self.info.get("split"), self.weight_column
        source = data.get("source")
        if record is None:
            return None, f"the run was written by recogan {self.info['recogan_version']}, which recorded no split"
        if mc is None and not source:
            return None, "the run records no data source"
        files = data.get("sources") or [{"path": source, "sha256": data.get("sha256")}]  # runs before "sources"
        if not (isinstance(files, list) and all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in files)):
            return None, "run.json's 'data.sources' is not a list of files"
        try:
            if mc is None:
                changed = [f["path"] for f in files if f["sha256"] and Path(f["path"]).is_file()
                           and file_sha256(f["path"]) != f["sha256"]]
                if changed:
                    return None, f"{changed[0]} has changed since training (SHA-256 differs)"
                derive = {name: d["expression"] for name, d in (data.get("derived") or {}).items()}
                sample = load_mc([f["path"] for f in files], tree=data.get("tree"), cut=data.get("cut"), weights=column,
                                 derive=derive, features=[f for f in data["features"] if f not in derive],
                                 drop_invalid=bool(data.get("n_dropped_invalid")))
                mc = sample.frame if column is None else sample.frame.assign(**{column: sample.weights})
            split = Split.rebuild(record, len(mc), source or "the training MC")
        except InputError as exc:
            return None, f"the run's training MC could not be rebuilt ({exc})"
        columns = data["features"] + ([column] if column in mc else [])
        train = mc[columns].iloc[split.train].reset_index(drop=True)
        return train, f"the training split of {source} ({len(train):,} rows)"

    def independent_reference(self, path) -> str | None:
        """The SHA-256 of the reference file ``path``, refused when it is the run's training file:
        most of that file is the training split, so the model would be judged on the events it
        learnt and look better than it is. None when ``path`` is not a file (an embedded toy)."""
        if not Path(path).is_file():
            return None
        digest = file_sha256(path)
        data = self.info.get("data", {})
        trained = {data.get("sha256"), *(f.get("sha256") for f in data.get("sources") or [] if isinstance(f, dict))}
        if digest in trained - {None}:
            share = f"{data['n_train'] / data['n_rows']:.0%}" if data.get("n_rows") else "most"
            raise InputError(f"is the file this run was trained on ({share} of its rows are the training split), "
                             f"so a comparison with it is biased in the model's favour", path=path,
                             hint="omit --reference to use the run's held-out split, or give an independent MC file")
        return digest


class TabularFamily(ModelFamily):
    """The tabular GAN: a dense generator of the preprocessed features, seed 000's penalties."""

    kind = "tabular"
    config_class = TabularConfig
    run_class = TabularRun
    min_train = 50
    headline = ("mean_ks", "max_ks", "max_corr_residual", "c2st_auc")

    def usable(self, sample: MCSample | pd.DataFrame) -> MCSample:
        """The conditions (if any), then the features and the derived columns; :attr:`free` the
        generated features: every numeric column but the conditions and the derived ones when the
        settings name none. Event weights are refused with conditions: the conditional figures
        (efficiency ratios, binned KS) are unweighted."""
        cut, weights, derive = self.config.cut, self.config.weights, self.config.derive
        conditions = self.config.conditions or []
        if isinstance(sample, pd.DataFrame):
            sample = load_mc(sample, features=self.config.columns, cut=cut, weights=weights, derive=derive)
        elif cut is not None and sample.cut != cut:
            raise InputError(f"was read with the cut {sample.cut!r}, but the settings ask for the cut {cut!r}",
                             path=sample.source, hint="read it with load_mc(..., cut=...) as the settings say")
        elif weights is not None and sample.weight_column != weights:
            raise InputError(f"was read with the weights {sample.weight_column!r}, but the settings ask for the "
                             f"weights {weights!r}", path=sample.source,
                             hint="read it with load_mc(..., weights=...) as the settings say")
        elif sample.derived != Derivations(derive).record():
            raise InputError(f"was read with the derived columns {sample.derived}, but the settings derive {derive}",
                             path=sample.source, hint="read it with load_mc(..., derive=...) as the settings say")
        if conditions and sample.weights is not None:
            raise InputError("event weights cannot yet be combined with conditions (the conditional validation "
                             "is unweighted)", path=sample.source, column=sample.weight_column,
                             hint="train the conditional model without --weights")
        sample.check_trainable_weights()
        features = self.config.features or [c for c in sample.frame.columns
                                             if c not in conditions and c not in sample.derived]
        missing = [f for f in conditions + features if f not in sample.frame.columns]
        if missing:
            raise InputError("not among the loaded columns", path=sample.source, column=missing[0])
        both = [f for f in features if f in conditions]
        if both:
            raise InputError("is both a feature (generated) and a condition (given)", path=sample.source, column=both[0])
        given_derived = [c for c in conditions if c in sample.derived]
        if given_derived:
            raise InputError("is both a condition (given) and derived (computed from the generated columns)",
                             path=sample.source, column=given_derived[0])
        if not features:
            raise InputError("has no column left to generate besides the conditions", path=sample.source)
        self.source, self.selected, self.free = sample.source, sample.selected(), features
        if (refused := self.refusal()) is not None:
            message, hint = refused
            raise InputError(message, path=sample.source, hint=hint)
        derived = [c for c in sample.frame.columns if c in sample.derived]
        kept = ([*features, *derived] if self.config.features
                else [c for c in sample.frame.columns if c not in conditions])  # the file's order
        return dataclasses.replace(sample, frame=sample.frame[conditions + kept])

    def refusal(self) -> tuple[str, str] | None:
        """(problem, hint) when this family cannot model the chosen columns (:attr:`free`, the
        conditions), for :meth:`usable` to refuse in one line; None when it can."""
        return None

    def counted(self, n: int) -> str:
        return f"{n:,} rows" + (f"; {self.selected}" if self.selected else "")

    def fit_pipeline(self, train: MCSample) -> tuple[torch.Tensor, ...]:
        """Fit the preprocessing on the training split's modelled columns, conditions and generated
        features alike (weighted by its event weights); returns the training tensors: the features
        preprocessed, then a conditional model's conditions, then a weighted MC's weights (mean 1)."""
        try:
            self.pipeline = FeaturePipeline(self.transforms(train), random_state=streams.stream_seed(
                self.config.seed, "preprocessing")).fit(train.frame[[*(self.config.conditions or []), *self.free]], weights=train.weights)
        except InputError as exc:
            raise exc.in_file(self.source) from None
        data = tuple(torch.from_numpy(part.transform(train.frame)) for part in self.pipelines() if part is not None)
        self.n_effective_train = train.n_effective
        if train.weights is None:
            return data
        return *data, torch.from_numpy((train.weights / train.weights.mean()).astype(np.float32))

    def transforms(self, train: MCSample) -> dict[str, str]:
        """The preprocessing specs the settings give (the rest suggested by the pipeline)."""
        return self.config.transforms

    def pipelines(self) -> tuple[FeaturePipeline, FeaturePipeline | None]:
        """The fitted pipeline of the generated features and that of the conditions (or None)."""
        return split_pipeline(self.pipeline, self.config.conditions)

    def announce(self, train: MCSample, monitor: MCSample, test: MCSample) -> str:
        conditions = len(self.config.conditions or [])
        derived = train.frame.shape[1] - conditions - len(self.free)
        weighted = "" if train.weights is None else (
            f", weighted by '{train.weight_column}' (effective size {train.n_effective:,.0f})")
        return (f"training {len(train):,} rows × {len(self.free)} features"
                f"{f' given {conditions} conditions' if conditions else ''}"
                f"{f' (and {derived} derived)' if derived else ''}{weighted}; monitor split {len(monitor):,}, "
                f"test split {len(test):,}")

    def prepare(self, train, monitor, test, folder, device, deadline) -> Prepared:
        config = self.config
        data = self.fit_pipeline(train)
        generated, given = self.pipelines()
        conditions, weights = batch_parts(data[1:], given is not None)
        targets = MarginalTargets.from_data(data[0], inverse=generated.inverse_transform, weights=weights,
                                            generator=streams.torch_generator(config.seed, "preprocessing"))
        snapshot = SnapshotValidation(monitor, generated, config.snapshot_rows, config.seed, given)
        n_conditions = 0 if conditions is None else conditions.shape[1]
        return Prepared(module=TabularGAN(data[0].shape[1], config, targets, n_conditions), data=data,
                        snapshot=snapshot, announce=self.announce(train, monitor, test),
                        info={"snapshot": snapshot.record()})

    def data_info(self, sample: MCSample, usable: MCSample) -> dict:
        weights = usable.weighting()
        if weights is not None:  # the events the model learnt from
            weights["n_effective_train"] = self.n_effective_train
        return {"tree": usable.tree, "features": list(usable.frame.columns), "n_rows": len(usable.frame),
                "n_dropped_invalid": usable.n_dropped, "cut": usable.cut, "n_before_cut": usable.n_before_cut,
                "n_after_cut": usable.n_after_cut, "weights": weights,
                "derived": {name: {"expression": formula, "dtype": str(usable.frame[name].dtype)}
                            for name, formula in usable.derived.items()}}

    def failure_hint(self, result, train: MCSample, prepared: Prepared) -> str:
        if result.reason == "time_limit":
            return TOO_SHORT
        frame = train.frame
        largest = frame.abs().max().idxmax()
        return (f"after non-finite losses, check the features' scales (largest: column '{largest}', up to "
                f"{frame[largest].abs().max():.3g}) or lower the learning rates")

    def save(self, folder: Path, test: MCSample) -> None:
        self.pipeline.save(folder / "preprocessing.json")
        frame = test.frame if test.weights is None else test.frame.assign(**{test.weight_column: test.weights})
        write_atomic(folder / "heldout.parquet", lambda tmp: frame.to_parquet(tmp, index=False))

    def evaluate(self, run: TabularRun, test: MCSample, deadline) -> dict:
        """KS/WS per feature, the Pearson residual and a classifier two-sample AUC on the test split
        (weighted for a weighted MC), each with the sample sizes it was measured on (and the effective
        size) and its noise floor (:func:`noise_floors`); a conditional run's generated given the test
        rows' conditions, with the conditional figures
        (:meth:`~recogan_app.metrics.conditional.ConditionalValidation.figures`). A residual that cannot
        be computed is None, ``max_corr_residual_undefined`` saying why. The classifier (the slowest
        part) is left out, and ``c2st_skipped`` says why, when ``deadline`` has passed."""
        seed = streams.stream_seed(self.config.seed, "evaluation")
        synthetic = run.generate(test.frame if run.conditions else max(len(test), HELDOUT_GENERATED), seed=seed)
        metrics, details = compare(test.frame[run.features], synthetic[run.features], test.weights)
        figures = {"sample_size": len(test), "generated_rows": len(synthetic), "verdict": details["verdict"],
                   **metrics, "noise": noise_floors(test.n_effective, len(synthetic), n_features=len(run.features))}
        if test.weights is not None:
            figures["effective_size"] = test.n_effective
        if details["corr_undefined"]:
            figures.update(max_corr_residual=None, max_corr_residual_undefined=details["corr_undefined"])
        if run.conditions:  # the classifier below sees the conditions too: targets given conditions, twins paired
            figures.update(validate_conditional(test.frame, synthetic, run.features, run.conditions).figures())
        if deadline.left() <= 0:
            return {**figures, "c2st_skipped": f"the time limit ({deadline.seconds:g} s) was reached"}
        c2st = classifier_two_sample_test(test.frame, synthetic, n_max=50_000, seed=seed, weights=test.weights,
                                          paired=bool(run.conditions))  # twins given the same conditions
        return {**figures, "c2st_auc": c2st.auc, "c2st_auc_interval": list(c2st.auc_interval),
                "c2st_rows": c2st.n_test,
                "noise": noise_floors(test.n_effective, len(synthetic), c2st.n_test, len(run.features))}


def train_tabular(sample: MCSample | pd.DataFrame, config: TabularConfig, out, **options) -> TabularRun:
    """Train a tabular GAN on ``sample`` (an MCSample from :func:`~recogan_app.data.sources.load_mc`,
    or a DataFrame, checked here) and write the run directory ``out``; ``config.features`` (if
    set) selects and orders the columns. ``options``: see
    :func:`~recogan_app.families.recipe.fit_to_run` (callbacks, control, overwrite, deadline,
    origin, resume). Returns the run with its best-by-monitor generator."""
    return fit_to_run(TabularFamily(config), sample, out, **options)
