"""Bootstrap ensembles: honest uncertainties for histograms of generated data (seed 004).

A generator trained on N MC events carries no more information than those N events: their
fluctuations become a systematic of every synthetic sample that no number of generated events
shrinks. An ensemble measures it. Its K members (:func:`train_ensemble`, a
:mod:`~recogan_app.scan` over K repeats) share one train/monitor/test split and each trains on
its own bootstrap resample of the training rows (``bootstrap_of``, :mod:`recogan_app.splits`);
the spread of their predictions estimates the training-sample fluctuation. Three steps:

- **Predict** (:func:`predict`): each bin's central value and uncertainty (formulas there).
- **Validate** (:func:`check`): χ²/ndf and the 1σ coverage of the prediction against the
  held-out test split, which no member trained on; coverage below :data:`COVERAGE` flags the
  quoted errors as too small.
- **Effective statistics** (:attr:`Prediction.n_effective`): the number of true-MC events whose
  histogram would have the same total uncertainty, to compare with N_train and N_generated.

The results (:meth:`Ensemble.assess`) are written as ``ensemble.json``, the per-bin table
``ensemble.parquet`` and the figure ``ensemble.png`` (:func:`write_results`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from recogan_app import scan
from recogan_app.errors import InputError
from recogan_app.files import write_atomic, write_json
from recogan_app.histograms import check_edges
from recogan_app.metrics.distributions import effective_size
from recogan_app.run import is_run_dir
from recogan_app.splits import draw_split

COVERAGE = (0.60, 0.76)
"""Share of bins within ±1σ that a right-sized error gives (68.3 % expected): below, the errors
undercover; above, they are larger than needed."""
UNTESTED = 0.2
"""Below this share of σ² in the compared variance (:attr:`Check.tested`) a warning says the held-out
MC is too small to test the errors."""
OVERSOLD = 2.0
"""N_generated above this many times the upper end of N_eff's interval draws a warning."""
ONE_SIGMA = INTERVAL = 0.6827
"""Probability content of ±1σ, and of N_eff's interval."""
RESULTS, TABLE, FIGURE = "ensemble.json", "ensemble.parquet", "ensemble.png"
BAND_COLOUR = "#ff7f0e"


@dataclass(frozen=True)
class Prediction:
    """The ensemble's prediction of B values (histogram fractions, a mean…) with their errors.

    With p̄ the members' mean (``central``), s² their variance (``spread``, ddof 1) and
    g = per_event / n_generated the variance one member's finite generated sample adds, the
    central value is p̄ (K·n_generated events) and its variance

        σ² = max(s² − (1 − 1/K)·g, g/K)

    s² holds the training-sample fluctuation (each member saw another resample of the MC) plus
    one member's generation noise g; the central value keeps all of the former (averaging
    models of one MC sample does not average its fluctuation away) and g/K of the latter.
    """

    central: np.ndarray
    spread: np.ndarray
    per_event: np.ndarray
    """Variance one true event adds to each value (``p(1-p)`` for a bin fraction ``p``)."""
    members: int
    n_generated: int
    """Events each member generated."""

    @property
    def generation(self) -> np.ndarray:
        return self.per_event / self.n_generated

    @property
    def sigma(self) -> np.ndarray:
        """Each value's uncertainty (formula above)."""
        k = self.members
        return np.sqrt(np.maximum(self.spread - (1 - 1 / k) * self.generation, self.generation / k))

    @property
    def n_effective(self) -> float:
        """N_eff = Σ per_event / Σ σ²: the true-MC events whose values would have the same total
        variance (Σ p(1-p)/N for a histogram of N events). The sum takes the formula above on the
        totals (Σ s² − (1 − 1/K)·Σ g, at least Σ g / K) rather than each bin's floored σ², which
        would overstate the variance where the spread is mostly generation noise."""
        k, generation = self.members, float(np.sum(self.generation))
        variance = max(float(np.sum(self.spread)) - (1 - 1 / k) * generation, generation / k)
        return float(np.sum(self.per_event)) / variance if variance > 0 else math.inf

    @property
    def n_effective_interval(self) -> tuple[float, float]:
        """N_eff's :data:`INTERVAL` interval from the K members: the variance estimate taken as
        χ² with K-1 degrees of freedom (conservative: the bins' variances are summed, which
        averages their independent part out)."""
        dof = self.members - 1
        low, high = stats.chi2.ppf([(1 - INTERVAL) / 2, (1 + INTERVAL) / 2], dof) / dof
        return self.n_effective * float(low), self.n_effective * float(high)


def predict(values: np.ndarray, per_event: np.ndarray, n_generated: int) -> Prediction:
    """The ensemble's :class:`Prediction` from ``values`` (members × B, each member's values measured
    on its own ``n_generated`` generated events) and ``per_event``, each value's variance per event."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        raise InputError(f"an ensemble needs at least 2 members to measure a spread, got {len(values)}")
    return Prediction(values.mean(axis=0), values.var(axis=0, ddof=1), np.asarray(per_event, dtype=float),
                      len(values), n_generated)


def fractions(x: np.ndarray, edges: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Each bin's share of all of ``x`` (events outside the edges count in the total, so each
    fraction is binomial with per-event variance p(1-p)); with event ``weights``, its share of Σw
    (binomial in the effective number of events)."""
    if weights is None:
        return np.histogram(x, edges)[0] / max(len(x), 1)
    return np.histogram(x, edges, weights=weights)[0] / weights.sum()


def histogram(samples: Sequence[np.ndarray], edges: np.ndarray) -> Prediction:
    """The prediction for a histogram of one feature with ``edges``, from each member's generated
    values of it (all of the same size)."""
    values = np.array([fractions(np.asarray(s), edges) for s in samples])
    central = values.mean(axis=0)
    return predict(values, central * (1 - central), len(samples[0]))


@dataclass(frozen=True)
class Check:
    """The prediction against true MC: pulls, χ², 1σ coverage, and the verdict on the errors."""

    pulls: np.ndarray
    """(MC − central) / √(σ² + the MC's own variance), per compared bin (NaN: not compared)."""
    tested: float = math.nan
    """Mean share of σ² in each compared bin's variance: near 0 the MC's own fluctuation makes
    every pull, and the coverage cannot tell right errors from none (too few held-out events)."""

    @property
    def compared(self) -> np.ndarray:
        return self.pulls[np.isfinite(self.pulls)]

    @property
    def ndf(self) -> int:
        return len(self.compared)

    @property
    def chi2(self) -> float:
        return float(np.sum(self.compared ** 2))

    @property
    def coverage(self) -> float:
        """Share of the compared bins whose MC value lies within ±1σ."""
        return float(np.mean(np.abs(self.compared) <= 1)) if self.ndf else math.nan

    @property
    def chance(self) -> float:
        """Probability that right-sized errors leave as few bins within ±1σ (binomial, 68.27 %):
        with 20 bins the coverage scatters by ±10 % by chance alone."""
        return float(stats.binom.cdf(round(self.coverage * self.ndf), self.ndf, ONE_SIGMA)) if self.ndf else math.nan

    @property
    def verdict(self) -> str:
        if not self.ndf:
            return "no bins"
        return ("undercovers" if self.coverage < COVERAGE[0] else
                "overcovers" if self.coverage > COVERAGE[1] else "covers")


def check(prediction: Prediction, observed: np.ndarray, n_observed: int) -> Check:
    """``observed`` (fractions of ``n_observed`` true-MC events) against ``prediction``.

    The difference's variance is σ² plus the MC's binomial variance p̄(1-p̄)/n_observed, p̄
    floored at one event of the K·n_generated generated (so an empty prediction still has one);
    a bin empty in both is not compared. For right-sized errors 68.3 % of the bins lie within
    ±1σ and χ²/ndf ≈ 1.
    """
    p = np.maximum(prediction.central, 1 / (prediction.members * prediction.n_generated))
    variance = prediction.sigma ** 2 + p * (1 - p) / n_observed
    pulls = (np.asarray(observed, dtype=float) - prediction.central) / np.sqrt(variance)
    empty = (prediction.central == 0) & (np.asarray(observed) == 0)
    return Check(np.where(empty, np.nan, pulls), float(np.mean((prediction.sigma ** 2 / variance)[~empty])))


def plan(members: int, *, kind: str = "tabular", settings: dict | None = None, seed: int = 0) -> list[scan.Training]:
    """The ``members`` trainings of an ensemble (``r0`` … ``r<K-1>``), each config checked now.

    Every member's split is the one ``seed`` draws (``bootstrap_of``), so all share one test
    split; each member's own seed (from ``seed`` and its number, :func:`~recogan_app.scan.plan`)
    draws its resample, initial weights and batches.
    """
    if members < 2:
        raise InputError(f"--members must be at least 2 to measure a spread, got {members}")
    return scan.plan({}, kind=kind, base={**(settings or {}), "bootstrap_of": seed}, repeats=members, seed=seed)


def train_ensemble(client, load: Callable[[], object], members: int, out, *, kind: str = "tabular",
                   settings: dict | None = None, seed: int = 0, **options) -> pd.DataFrame:
    """Train the :func:`plan` of ``members`` on the data ``load()`` returns into ``out`` as a scan on
    ``client`` (:func:`~recogan_app.scan.run_scan`, its ``options``: resumable, one run directory
    per member); the scan's results table. Then :meth:`Ensemble.load` the directory."""
    return scan.run_scan(client, load, plan(members, kind=kind, settings=settings, seed=seed), out, **options)


def members(path: Path) -> list[str]:
    """The member run directories the ensemble in ``path`` finished: those of its last scan's
    results table (:data:`~recogan_app.scan.RESULTS`, the trainings the last ``recogan ensemble``
    planned), else those ``ensemble.json`` names."""
    if (path / scan.RESULTS).is_file():
        table = pd.read_parquet(path / scan.RESULTS, columns=["run", "status"])
        names = table.loc[table["status"].isin(["done", "done earlier"]), "run"].astype(str).tolist()
    elif (path / RESULTS).is_file():
        names = Results.read(path).summary["runs"]
    else:
        raise InputError(f"is not an ensemble directory (neither {scan.RESULTS} nor {RESULTS} in it)", path=path)
    for name in names:
        if Path(name).name != name:  # a file's text must not lead outside the directory
            raise InputError(f"names a member '{name}' outside the ensemble directory", path=path)
    return names


class Ensemble:
    """The trained members of an ensemble directory, their generated samples and held-out MC."""

    def __init__(self, path: Path, runs: list):
        self.path, self.runs = path, runs
        self._generated: dict[int, list[pd.DataFrame]] = {}

    @classmethod
    def load(cls, path, *, device: str = "cpu") -> "Ensemble":
        """The finished members of the ensemble in ``path`` (:func:`members`: never a leftover run
        directory of an earlier, larger ensemble there); refused when fewer than two finished or when
        they were not split alike (not one ensemble)."""
        from recogan_app.families import load_run

        path = Path(path)
        runs = [load_run(path / name, device=device) for name in members(path) if is_run_dir(path / name)]
        if len(runs) < 2:
            raise InputError(f"holds {len(runs)} finished member(s); an ensemble needs at least 2", path=path,
                             hint=f"see {scan.RESULTS} for the members' errors")
        for run in runs:
            split = run.info.get("split", {})
            if "resample" not in split or not hasattr(run, "heldout"):
                raise InputError("is not a tabular bootstrap member (trained without bootstrap_of)", path=run.path)
            shared = {k: split[k] for k in ("seed", "n_rows", "n_monitor", "n_test")}
            first = {k: runs[0].info["split"][k] for k in shared}
            if shared != first or run.features != runs[0].features:
                raise InputError(f"was split or trained unlike {runs[0].path.name} ({shared} vs {first}): "
                                 "not a member of the same ensemble", path=run.path)
        return cls(path, runs)

    @property
    def features(self) -> list[str]:
        return self.runs[0].features

    @property
    def n_train(self) -> int:
        return self.runs[0].info["data"]["n_train"]

    @property
    def training(self) -> dict:
        """What a run must share with the members for the ensemble's numbers to describe it (see
        :func:`check_run`): the MC, the cut, the split, and the split hashes of the members and of
        the split without resampling (a plain run trained with the ensemble's seed)."""
        split = self.runs[0].info["split"]
        shared = {k: split[k] for k in ("seed", "n_rows", "n_monitor", "n_test")}
        plain = draw_split(shared["n_rows"], shared["n_monitor"], shared["n_test"], shared["seed"]).digest()
        return {**trained_on(self.runs[0].info), "split": shared,
                "split_sha256": [r.info["split"]["sha256"] for r in self.runs] + [plain]}

    @cached_property
    def heldout(self) -> pd.DataFrame:
        """The test split every member left out (identical for all: one split)."""
        return self.runs[0].heldout()

    def generated(self, rows: int) -> list[pd.DataFrame]:
        """``rows`` events of each member, drawn from its stream "validation" (the same on every call)."""
        if rows not in self._generated:
            self._generated = {rows: [run.generate(rows, seed=run.stream_seed("validation")) for run in self.runs]}
        return self._generated[rows]

    def default_edges(self, feature: str, rows: int, bins: int) -> np.ndarray:
        """``bins`` bins holding equal shares of the members' pooled generated values (never the held-out
        MC's: the binning must not be chosen on the values it is tested against)."""
        pooled = np.concatenate([g[feature].to_numpy(float) for g in self.generated(rows)])
        return np.unique(np.quantile(pooled, np.linspace(0, 1, bins + 1)))

    def histogram(self, feature: str, edges, rows: int) -> Prediction:
        """The prediction for the histogram of ``feature`` with ``edges`` from ``rows`` generated per member."""
        if feature not in self.features:
            raise InputError("is not a feature of the ensemble", column=feature, path=self.path)
        edges = check_edges(edges, feature)
        return histogram([g[feature].to_numpy(float) for g in self.generated(rows)], edges)

    def assess(self, rows: int, bins: int = 20, edges: dict | None = None) -> tuple[dict, pd.DataFrame]:
        """Predict, validate and count effective statistics for every feature: the summary (as in
        ``ensemble.json``) and the per-bin table. ``edges`` maps a feature to its bin edges
        (default: :meth:`default_edges`)."""
        test, weights = self.heldout, self.runs[0].heldout_weights()  # a weighted MC: its weighted shares
        n_test = len(test) if weights is None else effective_size(weights, len(test))
        per_feature, tables, pulls, tested = {}, [], [], []
        for feature in self.features:
            chosen = (edges or {}).get(feature)
            cuts = np.asarray(self.default_edges(feature, rows, bins) if chosen is None else chosen, float)
            prediction = self.histogram(feature, cuts, rows)
            observed = fractions(test[feature].to_numpy(float), cuts, weights)
            result = check(prediction, observed, n_test)
            pulls.append(result.compared)
            low, high = prediction.n_effective_interval
            tested.append(result.tested)
            per_feature[feature] = {
                "coverage": result.coverage, "chance": result.chance, "chi2": result.chi2, "ndf": result.ndf,
                "verdict": result.verdict, "tested": result.tested,
                "n_effective": prediction.n_effective, "n_effective_interval": [low, high]}
            tables.append(pd.DataFrame({"feature": feature, "low": cuts[:-1], "high": cuts[1:],
                                        "central": prediction.central, "sigma": prediction.sigma,
                                        "heldout": observed, "pull": result.pulls}))
        overall = Check(np.concatenate(pulls), float(np.mean(tested)))
        summary = {"members": len(self.runs), "runs": [r.path.name for r in self.runs], "n_train": self.n_train,
                   "n_test": len(test), "n_effective_test": n_test, "n_generated": rows, "bins": bins, "coverage_band": list(COVERAGE),
                   "training": self.training, "features": per_feature,
                   "overall": {"coverage": overall.coverage, "chance": overall.chance, "chi2": overall.chi2,
                               "ndf": overall.ndf, "verdict": overall.verdict, "tested": overall.tested}}
        summary["warnings"] = warnings(summary)
        return summary, pd.concat(tables, ignore_index=True)


def warnings(summary: dict, n_generated: int | None = None) -> list[str]:
    """The loud lines: quoted errors that undercover, and a sample of ``n_generated`` events (default:
    the members' own) larger than twice its information (:data:`OVERSOLD`)."""
    n = summary["n_generated"] if n_generated is None else n_generated
    lines = []
    for feature, r in summary["features"].items():
        if r["verdict"] == "undercovers":
            lines.append(f"{feature}: the quoted errors UNDERCOVER: {r['coverage']:.0%} of {r['ndf']} bins within "
                         f"±1σ (expected 68%, accepted {COVERAGE[0]:.0%}-{COVERAGE[1]:.0%}; as few by chance: "
                         f"p = {r['chance']:.2g}); do not trust them")
        if n > OVERSOLD * r["n_effective_interval"][1]:
            lines.append(f"{feature}: {n:,} generated events carry the information of only "
                         f"~{r['n_effective']:,.0f} MC events (N_train {summary['n_train']:,}): generating "
                         "more does not make the sample more precise")
    if summary["overall"]["tested"] < UNTESTED:
        lines.append(f"the {summary['n_test']:,} held-out MC events test the quoted errors weakly: their own "
                     f"fluctuation is {1 - summary['overall']['tested']:.0%} of each bin's variance, so even "
                     "errors of 0 would seem to cover; hold out more MC (--set test_fraction=…)")
    if summary["overall"]["verdict"] == "undercovers":
        lines.append(f"over all bins the quoted errors UNDERCOVER ({summary['overall']['coverage']:.0%} within ±1σ, "
                     f"as few by chance: p = {summary['overall']['chance']:.2g})")
    return lines


def table(summary: dict) -> str:
    """The per-feature table the CLI prints."""
    lines = [f"{'feature':<22}{'coverage':>9}{'chi2/ndf (ndf)':>16}  {'N_eff [68% interval]':<28}{'N_train':>9}"
             f"{'N_gen':>11}  verdict"]
    rows = [*summary["features"].items(), ("all bins", summary["overall"])]
    for name, r in rows:
        n_eff = (f"{r['n_effective']:,.0f} [{r['n_effective_interval'][0]:,.0f}, "
                 f"{r['n_effective_interval'][1]:,.0f}]") if "n_effective" in r else ""
        lines.append(f"{name[:21]:<22}{r['coverage']:>9.0%}{r['chi2'] / max(r['ndf'], 1):>10.2f} ({r['ndf']:>3})  "
                     f"{n_eff:<28}{summary['n_train']:>9,}{summary['n_generated']:>11,}  {r['verdict']}")
    return "\n".join(lines)


def trained_on(info: dict) -> dict:
    """The MC a run (its ``run.json``) trained on: its files' SHA-256 (a URL's address, which has
    none; the source's name for an embedded toy) and the cut."""
    data = info["data"]
    return {"data_sha256": sorted(f["sha256"] or f["path"] for f in data.get("sources") or [])
            or [data.get("sha256") or data["source"]],
            "cut": data.get("cut")}


def unmeasured(conditional: bool = False) -> str:
    """What the provenance of an export without an ensemble says of its effective statistics, and how
    to measure them: not for a conditional run, since an ensemble trains unconditional runs only."""
    return ("not measured: the statistical power of this sample is unknown, at most that of its N_train training "
            "events; " + ("a bootstrap ensemble (`recogan ensemble`) trains unconditional runs only, so it cannot be "
                          "measured for this conditional run yet" if conditional else
                          "measure it with `recogan ensemble --data MC --members 10 --out ENS_DIR` (the same MC and "
                          "--seed as this run) and pass --ensemble ENS_DIR"))


@dataclass(frozen=True)
class Results:
    """An ensemble's numbers as :func:`write_results` left them in its directory (``ensemble.json``
    and ``ensemble.parquet``): what the export, the report and the dashboard show, no model loaded."""

    path: Path
    summary: dict
    bins: pd.DataFrame

    @classmethod
    def read(cls, path) -> "Results":
        """The :class:`Results` in the ensemble directory ``path``; refused with one line when it holds
        none (not an ensemble, or one whose ``recogan ensemble`` has not finished)."""
        path = Path(path)
        if not path.is_dir():
            raise InputError("is not an ensemble directory", path=path)
        for name in (RESULTS, TABLE):
            if not (path / name).is_file():
                raise InputError(f"holds no {name}: not an ensemble directory, or its `recogan ensemble` has not "
                                 "finished", path=path)
        try:
            summary = json.loads((path / RESULTS).read_text(encoding="utf-8"))
            bins = pd.read_parquet(path / TABLE)
        except (OSError, ValueError) as exc:
            raise InputError(f"could not be read: {exc}", path=path / RESULTS) from None
        needed = {"members", "runs", "n_train", "n_test", "n_generated", "features", "overall"}
        per_feature = {"n_effective", "n_effective_interval", "coverage", "chi2", "ndf", "verdict"}
        if not (isinstance(summary, dict) and needed <= set(summary) and isinstance(summary["features"], dict)
                and all(isinstance(r, dict) and per_feature <= set(r) for r in summary["features"].values())
                and {"feature", "low", "high", "central", "sigma", "heldout"} <= set(bins.columns)):
            raise InputError("is not an ensemble's results file (missing fields)", path=path / RESULTS)
        return cls(path, summary, bins)

    @property
    def features(self) -> list[str]:
        return list(self.summary["features"])

    def band(self, feature: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``feature``'s bin edges, central fractions and σ."""
        b = self.bins[self.bins["feature"] == feature]
        return np.append(b["low"].to_numpy(), b["high"].iloc[-1]), b["central"].to_numpy(), b["sigma"].to_numpy()

    def check_run(self, info: dict, where) -> None:
        """Refuse a run (its ``run.json`` ``info``, at ``where``) the ensemble's numbers do not describe:
        one neither a member nor trained on the same MC, cut and split (by their recorded SHA-256)."""
        training = self.summary.get("training")
        if training is None:
            raise InputError("records no training data (written by an earlier recogan)", path=self.path / RESULTS,
                             hint="run the same `recogan ensemble` command again: it trains nothing again and "
                                  "records it")
        mine = trained_on(info)
        differs = [what for what, same in (
            ("MC files", mine["data_sha256"] == training["data_sha256"]), ("cut", mine["cut"] == training["cut"]),
            ("split", info["split"]["sha256"] in training["split_sha256"])) if not same]
        if differs:
            split = training["split"]
            raise InputError(f"was not trained like the ensemble {self.path} (its {' and '.join(differs)} differ): "
                             "the ensemble's N_eff and errors do not describe it", path=where,
                             hint=f"use one of its members ({', '.join(self.summary['runs'][:3])}…) or a run "
                                  f"trained on the same MC with --seed {split['seed']} and its split "
                                  f"({split['n_monitor']:,} monitor, {split['n_test']:,} test rows)")

    def statistics(self, n: int) -> dict:
        """The numbers a sample of ``n`` events carries with it (export provenance, the report's JSON):
        per feature N_eff with its interval, coverage and verdict; N_train; the warnings for ``n``."""
        s = self.summary
        keep = ("n_effective", "n_effective_interval", "coverage", "chi2", "ndf", "verdict")
        return {"ensemble": str(self.path), "members": s["members"], "n_train": s["n_train"], "n_test": s["n_test"],
                "n_generated_per_member": s["n_generated"], "n_sample": n,
                "features": {f: {k: r[k] for k in keep} for f, r in s["features"].items()},
                "overall": {k: s["overall"][k] for k in ("coverage", "chi2", "ndf", "verdict")},
                "warnings": warnings(s, n)}


def describe(statistics: dict | str) -> str:
    """:meth:`Results.statistics` (or :func:`unmeasured`) in one line for a terminal."""
    if isinstance(statistics, str):
        return f"effective statistics: {statistics}"
    return "effective statistics, N_eff [68% interval]: " + ", ".join(
        f"{f} {r['n_effective']:,.0f} [{r['n_effective_interval'][0]:,.0f}, {r['n_effective_interval'][1]:,.0f}]"
        for f, r in statistics["features"].items()) + f" (N_train {statistics['n_train']:,}, {statistics['ensemble']})"


def write_results(out, summary: dict, bins: pd.DataFrame) -> None:
    """``ensemble.json``, ``ensemble.parquet`` and ``ensemble.png`` into ``out``."""
    out = Path(out)
    write_json(out / RESULTS, without_nan(summary))
    write_atomic(out / TABLE, lambda tmp: bins.to_parquet(tmp, index=False))
    figure = band_figure(summary, bins)
    write_atomic(out / FIGURE, lambda tmp: figure.savefig(tmp, format="png", dpi=90, metadata={"Software": None}))


def without_nan(value):
    """``value`` with NaN (a coverage of no bins) as None: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nan(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def band_figure(summary: dict, bins: pd.DataFrame):
    """Per feature, the ensemble's band (central ± σ) over the held-out MC (binomial errors) as
    densities, N_eff and the coverage in the title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    features = list(summary["features"])
    columns = min(4, len(features))
    rows = -(-len(features) // columns)
    figure = Figure(figsize=(3.2 * columns, 2.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    n_test = summary.get("n_effective_test", summary["n_test"])  # ensembles written before weights: unweighted
    for axis, feature in zip(axes, features):
        b = bins[bins["feature"] == feature]
        edges = np.append(b["low"].to_numpy(), b["high"].iloc[-1])
        width = np.diff(edges)  # densities: a histogram's shape whatever the bins' widths
        mc = b["heldout"].to_numpy() / width
        mc_error = np.sqrt(b["heldout"].to_numpy() * (1 - b["heldout"].to_numpy()) / n_test) / width
        draw_band(axis, edges, b["central"].to_numpy(), b["sigma"].to_numpy())
        axis.errorbar((edges[1:] + edges[:-1]) / 2, mc, mc_error, fmt="o", ms=2, lw=0.8, color="#444444",
                      label="held-out MC")
        r = summary["features"][feature]
        axis.set_title(f"{feature}: N_eff {r['n_effective']:,.0f}, {r['coverage']:.0%} within 1σ", fontsize=8,
                       parse_math=False)
        axis.set_xlabel(feature, fontsize=7, parse_math=False)
        axis.set_ylabel("fraction per unit", fontsize=7)
        axis.tick_params(labelsize=6)
    for axis in axes[len(features):]:
        axis.set_visible(False)
    axes[0].legend(fontsize=6)
    return figure


def draw_band(axis, edges: np.ndarray, central: np.ndarray, sigma: np.ndarray, per_unit: float = 1.0) -> None:
    """The band central ± σ (fractions in bins of ``edges``, at least 0) on a matplotlib ``axis`` as a
    density times ``per_unit`` (1: fraction per unit of the feature; n × w: entries of n events in bins of width w)."""
    scale = per_unit / np.diff(edges)
    axis.stairs((central + sigma) * scale, edges, baseline=np.maximum(central - sigma, 0) * scale, fill=True,
                color=BAND_COLOUR,
                alpha=0.4, lw=0, label="ensemble ±1σ")
