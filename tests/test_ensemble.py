"""Bootstrap ensembles: the statistics on seed 004's toy and on constructed cases with known
answers (no training), then one real ``recogan ensemble`` on a 2-worker LocalCluster."""

import asyncio
import html
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recogan_app import ensemble, scan
from recogan_app.cli import main
from recogan_app.data import toy_xic
from recogan_app.errors import InputError
from recogan_app.splits import draw_split

N_TRUE = 100
"""Seed 004's toy: the "perfect GAN" is a Gaussian fitted to this many events of the truth N(0, 1)."""
MEMBERS = 10


def fitted_gaussians(truth: np.ndarray, members: int, rng) -> list[tuple[float, float]]:
    """One "perfect GAN" per member: a Gaussian fitted to a bootstrap resample of ``truth``."""
    resamples = [truth[rng.integers(0, len(truth), len(truth))] for _ in range(members)]
    return [(r.mean(), r.std(ddof=1)) for r in resamples]


def mean_prediction(models, n_generated: int, rng) -> ensemble.Prediction:
    """The ensemble's prediction of the mean, each member's measured on its own generated sample."""
    samples = [rng.normal(mu, sigma, n_generated) for mu, sigma in models]
    return ensemble.predict(np.array([[s.mean()] for s in samples]), [np.mean([s.var() for s in samples])],
                            n_generated)


def test_seed_004_toy_n_eff_of_the_mean_is_the_training_size_not_the_generated_size():
    rng = np.random.default_rng(4)
    inverse, pulls = [], []
    for _ in range(200):  # pseudo-experiments
        prediction = mean_prediction(fitted_gaussians(rng.normal(0, 1, N_TRUE), MEMBERS, rng), 10_000, rng)
        inverse.append(1 / prediction.n_effective)
        pulls.append(prediction.central[0] / prediction.sigma[0])  # the truth's mean is 0
    n_eff = 1 / np.mean(inverse)  # from the mean variance: unbiased where N_eff itself is not
    assert abs(n_eff - N_TRUE) < 0.25 * N_TRUE, n_eff
    assert n_eff < 0.01 * MEMBERS * 10_000
    assert 0.60 < np.mean(np.abs(pulls) <= 1) < 0.76  # the quoted σ of the mean covers the truth


def test_seed_004_toy_the_generated_mean_spread_stalls_at_one_over_root_n():
    rng = np.random.default_rng(40)
    spread = {}
    for n_generated in (100, 1_000, 10_000):
        means = []
        for _ in range(400):
            truth = rng.normal(0, 1, N_TRUE)  # one pseudo-experiment, its "perfect GAN" fitted to it
            means.append(rng.normal(truth.mean(), truth.std(ddof=1), n_generated).mean())
        spread[n_generated] = np.std(means)
    for n_generated, measured in spread.items():  # √(1/n + 1/N_gen), never below 1/√n
        assert measured == pytest.approx(math.sqrt(1 / N_TRUE + 1 / n_generated), rel=0.15)
    assert spread[10_000] == pytest.approx(1 / math.sqrt(N_TRUE), rel=0.15)


def test_n_eff_of_an_exact_model_grows_with_the_generated_size_a_fitted_one_stays_near_n():
    rng = np.random.default_rng(7)
    exact, fitted = {}, {}
    for n_generated in (1_000, 10_000):
        exact_inverse, fitted_inverse = [], []
        for _ in range(100):
            truth = rng.normal(0, 1, N_TRUE)
            exact_inverse.append(1 / mean_prediction([(0.0, 1.0)] * MEMBERS, n_generated, rng).n_effective)
            fitted_inverse.append(1 / mean_prediction(fitted_gaussians(truth, MEMBERS, rng), n_generated,
                                                      rng).n_effective)
        exact[n_generated], fitted[n_generated] = 1 / np.mean(exact_inverse), 1 / np.mean(fitted_inverse)
    # one value: where the spread is all generation noise, the floor g/K leaves N_eff below K·N_gen
    assert exact[10_000] > 5 * exact[1_000] and exact[1_000] > 0.25 * MEMBERS * 1_000
    for n_eff in fitted.values():
        assert abs(n_eff - N_TRUE) < 0.25 * N_TRUE, fitted


@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0])
def test_coverage_on_a_constructed_case_matches_the_normal_probability(scale):
    """Bins whose true error is known: quoted right (scale 1), too small or too large."""
    rng = np.random.default_rng(1)
    bins, members, n_generated, n_observed = 4000, 10, 10_000, 100_000
    central = np.full(bins, 0.05)
    true_sigma = np.full(bins, 0.004)
    per_event = central * (1 - central)
    spread = (scale * true_sigma) ** 2 + (1 - 1 / members) * per_event / n_generated  # σ = scale × the truth
    prediction = ensemble.Prediction(central, spread, per_event, members, n_generated)
    assert prediction.sigma == pytest.approx(scale * true_sigma)
    observed_sigma = np.sqrt(true_sigma ** 2 + per_event / n_observed)
    observed = central + rng.normal(0, 1, bins) * observed_sigma
    result = ensemble.check(prediction, observed, n_observed)
    quoted = np.sqrt((scale * true_sigma) ** 2 + per_event / n_observed)
    expected = 2 * stats.norm.cdf(quoted[0] / observed_sigma[0]) - 1
    assert result.ndf == bins and abs(result.coverage - expected) < 3 * math.sqrt(expected * (1 - expected) / bins)
    assert result.verdict == {1.0: "covers", 0.5: "undercovers", 2.0: "overcovers"}[scale]
    assert (result.chance < 1e-6) == (scale == 0.5)  # so few within ±1σ: not by chance
    assert result.tested == pytest.approx((scale * true_sigma[0] / quoted[0]) ** 2)  # σ²'s share of the variance
    assert result.chi2 / result.ndf == pytest.approx(np.mean((observed_sigma / quoted) ** 2), rel=0.1)


def test_warnings_name_undercoverage_oversold_samples_and_a_held_out_split_too_small():
    feature = {"coverage": 0.4, "chance": 0.01, "chi2": 40.0, "ndf": 20, "verdict": "undercovers", "tested": 0.1,
               "n_effective": 900.0, "n_effective_interval": [500.0, 1300.0]}
    summary = {"n_generated": 100_000, "n_train": 1_000, "n_test": 125, "features": {"pt": feature},
               "overall": {**feature, "tested": 0.1}}
    lines = ensemble.warnings(summary)
    assert lines[0].startswith("pt: the quoted errors UNDERCOVER: 40% of 20 bins within ±1σ") and "p = 0.01" in lines[0]
    assert lines[1] == ("pt: 100,000 generated events carry the information of only ~900 MC events (N_train 1,000): "
                        "generating more does not make the sample more precise")
    assert lines[2].startswith("the 125 held-out MC events test the quoted errors weakly: their own fluctuation is 90%")
    fine = {**feature, "verdict": "covers", "tested": 0.5}
    assert ensemble.warnings({**summary, "n_generated": 2_000, "features": {"pt": fine}, "overall": fine}) == []


def test_weighted_held_out_shares_are_binomial_in_the_effective_size():
    """A weighted MC's bin shares are shares of Σw (events outside the edges in the total), and their
    spread over repeated samples is √(p(1-p)/N_eff): what :func:`check` is given for a weighted run."""
    shares = ensemble.fractions(np.array([0.5, 1.5, 1.5, 5.0]), np.array([0.0, 1.0, 2.0]), np.array([1.0, 2, 3, 4]))
    assert shares == pytest.approx([1 / 10, 5 / 10])
    rng, n, edges = np.random.default_rng(3), 2_000, np.array([-np.inf, 0.0, np.inf])
    draws = []
    for _ in range(2_000):
        x = rng.normal(size=n)
        draws.append(ensemble.fractions(x, edges, rng.exponential(1.0, n))[0])  # exponential weights: N_eff ≈ n/2
    assert np.mean(draws) == pytest.approx(0.5, abs=0.002)
    assert np.std(draws) == pytest.approx(math.sqrt(0.25 / (n / 2)), rel=0.08)


def test_a_histogram_prediction_subtracts_the_generation_noise_from_the_spread():
    """Members that all are the truth: their spread is generation noise only, N_eff ≈ K·N_gen."""
    rng = np.random.default_rng(2)
    edges = np.linspace(-3, 3, 13)
    inverse = [1 / ensemble.histogram([rng.normal(0, 1, 5_000) for _ in range(MEMBERS)], edges).n_effective
               for _ in range(50)]
    assert 0.4 * MEMBERS * 5_000 < 1 / np.mean(inverse) <= MEMBERS * 5_000


def test_a_bootstrap_split_resamples_the_training_rows_only():
    plain = draw_split(1000, 100, 150, seed=5)
    members = [draw_split(1000, 100, 150, seed=5, resample=r) for r in (1, 2)]
    for member in members:
        assert np.array_equal(member.test, plain.test) and np.array_equal(member.monitor, plain.monitor)
        assert len(member.train) == len(plain.train) and set(member.train) <= set(plain.train)
        assert len(np.unique(member.train)) < len(plain.train)  # drawn with replacement
        assert member.record()["resample"] == {"seed": member.resample, "stream": "resample"}
    assert not np.array_equal(members[0].train, members[1].train)
    again = type(plain).rebuild(members[0].record(), 1000, "mc.parquet")
    assert np.array_equal(again.train, members[0].train)


TINY = ["--set", "max_epochs=2", "--set", "batch_size=256", "--set", "snapshot_rows=200", "--set", "latent_dim=8",
        "--set", "generator_widths=[16,16,16]", "--set", "discriminator_widths=[16,16]", "--device", "cpu"]


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")
    with scan.connect(workers=2) as client:
        yield client


def test_recogan_ensemble_on_a_local_cluster_writes_its_results(client, tmp_path, capsys):
    data = tmp_path / "xic.parquet"
    toy_xic.generate(n=1200, seed=0, n_features=8).to_parquet(data, index=False)
    out = tmp_path / "ens"
    command = ["ensemble", "--data", str(data), "--members", "3", *TINY, "--generate-rows", "2000", "--bins", "8",
               "--seed", "3", "--scheduler", client.scheduler.address, "--out", str(out)]
    assert main(command) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / ensemble.RESULTS).read_text())
    assert summary["members"] == 3 and summary["n_generated"] == 2000 and summary["runs"] == ["r0", "r1", "r2"]
    runs = [json.loads((out / f"r{k}" / "run.json").read_text()) for k in range(3)]
    assert len({r["split"]["sha256"] for r in runs}) == 3  # each its own resample…
    assert len({json.dumps({k: v for k, v in r["split"].items() if k in ("seed", "n_test", "n_monitor")})
                for r in runs}) == 1  # …of one split
    configs = [json.loads((out / f"r{k}" / "config.json").read_text()) for k in range(3)]
    assert [r["split"]["resample"]["seed"] for r in runs] == [c["seed"] for c in configs]
    assert {c["bootstrap_of"] for c in configs} == {3} == {r["split"]["seed"] for r in runs}
    tests = [pd.read_parquet(out / f"r{k}" / "heldout.parquet") for k in range(3)]
    assert all(t.equals(tests[0]) for t in tests)  # one held-out MC for all members
    bins = pd.read_parquet(out / ensemble.TABLE)
    for feature in toy_xic.FEATURES_8:
        r = summary["features"][feature]
        rows = bins[bins["feature"] == feature]
        assert r["ndf"] == rows["pull"].notna().sum() and r["chi2"] == pytest.approx((rows["pull"] ** 2).sum())
        assert r["coverage"] == pytest.approx((rows["pull"].abs() <= 1).sum() / r["ndf"])
        assert r["n_effective_interval"][0] < r["n_effective"] < r["n_effective_interval"][1]
        line = next(line for line in printed.splitlines() if line.startswith(feature))
        assert f"{r['coverage']:.0%}" in line and f"{r['n_effective']:,.0f}" in line and r["verdict"] in line
    assert summary["n_train"] == runs[0]["data"]["n_train"] and (out / ensemble.FIGURE).read_bytes()[:4] == b"\x89PNG"
    assert ("WARNING" in printed) == bool(summary["warnings"])

    members = ensemble.Ensemble.load(out)  # any binning the user picks
    prediction = members.histogram("pt", [0, 2, 4, 8, 30], rows=500)
    pooled = np.concatenate([g["pt"] for g in members.generated(500)])
    assert prediction.central == pytest.approx(np.histogram(pooled, [0, 2, 4, 8, 30])[0] / len(pooled))
    with pytest.raises(InputError, match="bin edges must be at least two finite, increasing numbers"):
        members.histogram("pt", [0, 4, 2], rows=500)
    shutil.copytree(out / "r0", tmp_path / "alone" / "r0")
    shutil.copy(out / scan.RESULTS, tmp_path / "alone")  # r1 and r2 recorded, but gone
    with pytest.raises(InputError, match="holds 1 finished member"):
        ensemble.Ensemble.load(tmp_path / "alone")


def test_a_missing_data_file_exits_2_before_any_training(client, tmp_path, capsys):
    missing = tmp_path / "nowhere.parquet"
    assert main(["ensemble", "--data", str(missing), "--members", "2", "--scheduler", client.scheduler.address,
                 "--out", str(tmp_path / "e")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith(f"recogan: error: {missing}") and not list((tmp_path / "e").glob("r*"))


@pytest.mark.parametrize("options, message", [
    (["--members", "1"], "--members must be at least 2"),
    (["--members", "3", "--generate-rows", "0"], "--generate-rows must be at least 1"),
    (["--members", "3", "--set", "lambda_kz=1"], "unknown setting 'lambda_kz'"),
])
def test_bad_ensemble_options_exit_2_with_one_line(tmp_path, capsys, options, message):
    data = tmp_path / "xic.parquet"
    toy_xic.generate(n=300, seed=0, n_features=8).to_parquet(data, index=False)
    assert main(["ensemble", "--data", str(data), *options, "--out", str(tmp_path / "e")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0] and not (tmp_path / "e").exists()


def test_load_takes_only_the_members_the_ensemble_recorded(tiny_ensemble, tmp_path):
    """A leftover member of an earlier, larger ensemble in the same directory is no member."""
    ens = tmp_path / "ens"
    shutil.copytree(tiny_ensemble.path, ens)
    shutil.copytree(ens / "r0", ens / "r3")  # a finished run directory the last scan did not plan
    assert [r.path.name for r in ensemble.Ensemble.load(ens).runs] == ["r0", "r1", "r2"]  # by results.parquet
    (ens / scan.RESULTS).unlink()
    assert [r.path.name for r in ensemble.Ensemble.load(ens).runs] == ["r0", "r1", "r2"]  # by ensemble.json
    (ens / ensemble.RESULTS).unlink()
    with pytest.raises(InputError, match="is not an ensemble directory"):
        ensemble.Ensemble.load(ens)


def test_export_carries_the_ensembles_numbers_and_warns_when_the_sample_exceeds_them(tiny_ensemble, tmp_path,
                                                                                      capsys):
    from recogan_app.export import PROVENANCE_KEY, provenance_path
    import pyarrow.parquet as pq

    ens, out = tiny_ensemble.path, tmp_path / "x.parquet"
    summary = json.loads((ens / ensemble.RESULTS).read_text())
    command = ["export", "--run", str(ens / "r1"), "--n", "5000", "--require", "none", "--seed", "1", "--device", "cpu"]
    assert main([*command, "--out", str(out), "--ensemble", str(ens)]) == 0
    printed = capsys.readouterr()
    provenance = json.loads(provenance_path(out).read_text())
    assert json.loads(pq.read_schema(out).metadata[PROVENANCE_KEY.encode()]) == provenance  # in the file too
    numbers = provenance["effective_statistics"]
    assert (numbers["n_train"], numbers["n_sample"], numbers["members"]) == (summary["n_train"], 5000, 3)
    for feature, r in summary["features"].items():
        assert {k: numbers["features"][feature][k] for k in ("n_effective", "n_effective_interval", "verdict")} == {
            k: r[k] for k in ("n_effective", "n_effective_interval", "verdict")}
    oversold = [f for f, r in summary["features"].items() if 5000 > 2 * r["n_effective_interval"][1]]
    assert oversold  # 3 tiny members of 325 training events: N_eff far below 5,000
    for feature in oversold:
        line = f"{feature}: 5,000 generated events carry the information of only ~"
        assert sum(w.startswith(line) for w in numbers["warnings"]) == 1
        assert f"recogan: warning: {line}" in printed.err
    assert f"{summary['features']['pt']['n_effective']:,.0f}" in printed.out

    assert main([*command, "--out", str(tmp_path / "plain.parquet")]) == 0  # no ensemble: not measured, said so
    plain = json.loads(provenance_path(tmp_path / "plain.parquet").read_text())
    assert plain["effective_statistics"] == ensemble.unmeasured()
    assert "the statistical power of this sample is unknown" in capsys.readouterr().out


def test_export_takes_a_run_on_the_ensembles_split_and_refuses_another(tiny_ensemble, tmp_path, capsys):
    ens = tiny_ensemble.path
    for seed in (3, 4):  # 3: the ensemble's split, no resample; 4: another split of the same MC
        assert main(["train", "--data", str(tiny_ensemble.data), *tiny_ensemble.settings, "--seed", str(seed),
                     "--out", str(tmp_path / f"run{seed}")]) == 0
    capsys.readouterr()
    command = ["export", "--n", "1000", "--require", "none", "--device", "cpu", "--ensemble", str(ens)]
    assert main([*command, "--run", str(tmp_path / "run3"), "--out", str(tmp_path / "same.parquet")]) == 0
    capsys.readouterr()
    assert main([*command, "--run", str(tmp_path / "run4"), "--out", str(tmp_path / "other.parquet")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"recogan: error: {tmp_path / 'run4'}: was not trained like the "
                                                   f"ensemble {ens} (its split differ)")
    assert "--seed 3" in error[0] and not list(tmp_path.glob("other*"))
    (tmp_path / "empty").mkdir()
    for where, message in ((tmp_path / "nowhere", "is not an ensemble directory"),
                           (tmp_path / "empty", "holds no ensemble.json: not an ensemble directory")):
        command[-1] = str(where)
        assert main([*command, "--run", str(tmp_path / "run3"), "--out", str(tmp_path / "bad.parquet")]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith(f"recogan: error: {where}: {message}"), error
    assert not list(tmp_path.glob("bad*"))


def test_validate_report_and_json_carry_the_ensemble(tiny_ensemble, tmp_path, capsys):
    ens = tiny_ensemble.path
    summary = json.loads((ens / ensemble.RESULTS).read_text())
    report, metrics = tmp_path / "r.html", tmp_path / "m.json"
    assert main(["validate", "--reference", str(ens / "r0" / "heldout.parquet"), "--run", str(ens / "r0"), "--n",
                 "1000", "--ensemble", str(ens), "--report", str(report), "--json", str(metrics)]) == 0
    assert "recogan: warning: pt: 1,000 generated events carry" in capsys.readouterr().err
    numbers = json.loads(metrics.read_text())["ensemble"]
    assert numbers == json.loads(json.dumps(ensemble.Results.read(ens).statistics(1000)))
    page = report.read_text()
    section = page[page.index('<section id="effective">'):page.index('<section id="features">')]
    for feature, r in summary["features"].items():
        low, high = r["n_effective_interval"]
        assert f"<td>{feature}</td><td>{r['n_effective']:,.0f} [{low:,.0f}, {high:,.0f}]</td><td>" \
               f"{summary['n_train']:,}</td><td>1,000</td><td>{r['coverage']:.0%}</td>" in section
    for line in numbers["warnings"]:
        assert f"<li>{html.escape(line)}</li>" in section


def test_the_histogram_draws_the_ensembles_band_at_the_mcs_size(tiny_ensemble):
    from recogan_app import report
    from recogan_app.families import load_run

    results = ensemble.Results.read(tiny_ensemble.path)
    run = load_run(tiny_ensemble.path / "r0")
    v = run.validate(500, c2st_options={"n_estimators": 5})
    figure = report.histogram_figure("pt", v, results)
    band = next(p for p in figure.axes[0].patches if p.get_label() == "ensemble ±1σ")
    edges, central, sigma = results.band("pt")
    scale = v.n_reference * np.diff(v.histograms["pt"].edges).mean() / np.diff(edges)
    drawn = band.get_data()
    assert drawn.values == pytest.approx((central + sigma) * scale)
    assert drawn.baseline == pytest.approx(np.maximum(central - sigma, 0) * scale)
    assert drawn.edges == pytest.approx(edges)
    assert not any(p.get_label() == "ensemble ±1σ" for p in report.histogram_figure("pt", v).axes[0].patches)


def test_the_effective_statistics_table_shows_names_as_text():
    name = '<img src=x onerror="alert(1)">'
    r = {"coverage": 0.5, "chance": 0.1, "chi2": 9.0, "ndf": 6, "verdict": "undercovers", "tested": 0.5,
         "n_effective": 200.0, "n_effective_interval": [100.0, 400.0]}
    summary = {"members": 3, "runs": ["r0"], "n_train": 300, "n_test": 125, "n_generated": 2000,
               "features": {name: r}, "overall": r}
    from recogan_app.report import effective_statistics

    page = effective_statistics(ensemble.Results(Path("<ens>"), summary, pd.DataFrame()), 10_000)
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "&lt;ens&gt;" in page and page.count("<li>") == 3  # undercovers (the feature, all bins); 10,000 > 2 × 400


def test_a_dashboard_session_exports_and_reports_with_its_chosen_ensemble(tiny_ensemble, tmp_path, monkeypatch):
    """An export records the ensemble chosen on the Validation tab, also one chosen a moment before
    Export was clicked (still being read); the tab says when the page's run is not the ensemble's."""
    from recogan_app.export import provenance_path
    from recogan_app.families import load_run
    from recogan_app.ui.export import ExportView
    from recogan_app.ui.state import Session
    from recogan_app.ui.validation import ValidationView

    session = Session(data_root=tiny_ensemble.path.parent, workdir=tmp_path)
    session.run = load_run(tiny_ensemble.path / "r2")
    session.ensemble = ensemble.Results.read(tiny_ensemble.path)
    out = session.export(4000, require="none")
    assert json.loads(provenance_path(out).read_text())["effective_statistics"] == json.loads(
        json.dumps(session.ensemble.statistics(4000)))
    page = session.save_report(session.run.validate(300, c2st_options={"n_estimators": 5})).read_text()
    warnings = session.ensemble.statistics(300)["warnings"]
    assert warnings and all(f"<li>{html.escape(line)}</li>" in page for line in warnings)

    view = ValidationView(state=session)  # the tab says when the page's run is not the ensemble's
    assert "Bootstrap ensemble" in view.effective() and "was not trained like" not in view.effective()

    read = ensemble.Results.read.__func__
    monkeypatch.setattr(ensemble.Results, "read", classmethod(lambda cls, folder: (time.sleep(1), read(cls, folder))[1]))
    export = ExportView(state=session, require="none")
    export.rows = 3000
    view.ensemble.value = ""  # none: as a user leaves it, then picks one (a slow read) and clicks Export at once

    async def choose_and_export():  # on a running loop, as on the served page
        view.ensemble.value = view.ensemble.options["ens (data root)"]
        await export.run_export()

    asyncio.run(choose_and_export())
    assert session.notice_level == "success" and session.ensemble is not None, session.notice
    assert json.loads(provenance_path(session.exported).read_text())["effective_statistics"] == json.loads(
        json.dumps(session.ensemble.statistics(3000)))

    other = tmp_path / "other"
    shutil.copytree(tiny_ensemble.path / "r2", other)
    info = json.loads((other / "run.json").read_text())
    info["split"]["sha256"] = "0" * 64  # as if drawn otherwise
    (other / "run.json").write_text(json.dumps(info))
    session.run = load_run(other)
    assert f"{other}: was not trained like the ensemble {tiny_ensemble.path} (its split differ)" in view.effective()
