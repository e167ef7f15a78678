"""`recogan hist`: generated histograms as ROOT TH1D, read back by uproot with their contents and errors."""

import json

import numpy as np
import pytest
import uproot

from recogan_app import histograms
from recogan_app.cli import main
from recogan_app.data import toy_xic
from recogan_app.data.sources import MCSample
from recogan_app.ensemble import OVERSOLD, Ensemble
from recogan_app.families.tabular import train_tabular


def sample(n: int = 2000) -> MCSample:
    return MCSample(toy_xic.generate(n=n, seed=0, n_features=8), source="toy-xic", tree=None, n_dropped=0,
                    invalid_counts={})


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_config):
    return train_tabular(sample(), tiny_config(), tmp_path_factory.mktemp("hist") / "run")


def test_hist_of_a_run_writes_th1d_whose_contents_are_the_generated_events(run, tmp_path, capsys):
    out = tmp_path / "h.root"
    assert main(["hist", "--run", str(run.path), "--feature", "pt", "--feature", "inv_mass", "--n", "20000",
                 "--bins", "30", "--seed", "1", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "WARNING: one run's errors are the generated sample's own Poisson fluctuation only" in captured.err
    generated = run.generate(20000, seed=1)  # rows depend on the seed and their index only, not on chunking
    heldout = run.heldout()
    with uproot.open(out) as file:
        provenance = json.loads(str(file[histograms.PROVENANCE_KEY]))
        for feature in ("pt", "inv_mass"):
            h = file[feature]
            assert h.classname == "TH1D"
            edges = np.linspace(*np.quantile(heldout[feature], [0.001, 0.999]), 31)
            np.testing.assert_allclose(h.axis().edges(), edges)
            expected = np.histogram(generated[feature], edges)[0]
            np.testing.assert_array_equal(h.values(), expected)
            np.testing.assert_allclose(h.errors(), np.sqrt(expected))  # from fSumw2, not recomputed
            flow = h.values(flow=True)
            assert flow[0] == (generated[feature] < edges[0]).sum() and flow[-1] == (generated[feature] > edges[-1]).sum()
            assert flow.sum() == 20000 and h.member("fEntries") == 20000
    assert [h["feature"] for h in provenance["histograms"]] == ["pt", "inv_mass"]
    assert provenance["seed"] == 1 and "Poisson" in provenance["warnings"][0]


def test_variable_bins_and_a_yield_scale_counts_and_errors_alike(run, tmp_path):
    out = tmp_path / "h.root"
    assert main(["hist", "--run", str(run.path), "--feature", "pt", "--n", "5000", "--edges", "0,1,2,4,8,16",
                 "--scale-to", "50", "--seed", "2", "--out", str(out)]) == 0
    counts = np.histogram(run.generate(5000, seed=2)["pt"], [0, 1, 2, 4, 8, 16])[0]
    with uproot.open(out) as file:
        h = file["pt"]
        np.testing.assert_allclose(h.axis().edges(), [0, 1, 2, 4, 8, 16])
        np.testing.assert_allclose(h.values(), counts * 50 / 5000)
        np.testing.assert_allclose(h.errors(), np.sqrt(counts) * 50 / 5000)


@pytest.mark.parametrize("options, words", [
    (["--feature", "nope"], "column 'nope'"),
    (["--feature", "pt", "--edges", "1,0"], "increasing"),
    (["--feature", "pt", "--edges", "0,a"], "--edges takes comma-separated numbers"),
    (["--feature", "pt", "--edges", "0,1", "--range", "0", "1"], "--range goes with --bins"),
    (["--feature", "pt", "--range", "2", "1"], "increasing"),
    (["--feature", "pt", "--bins", "0"], "--bins must be at least 1"),
    (["--feature", "pt", "--scale-to", "-3"], "--scale-to must be a positive number"),
])
def test_bad_options_exit_2_naming_the_problem_and_write_nothing(run, tmp_path, capsys, options, words):
    out = tmp_path / "h.root"
    assert main(["hist", "--run", str(run.path), "--n", "100", "--out", str(out), *options]) == 2
    assert words in capsys.readouterr().err and not out.exists()


def test_an_existing_file_is_kept_without_overwrite(run, tmp_path, capsys):
    out = tmp_path / "h.root"
    out.write_bytes(b"keep")
    assert main(["hist", "--run", str(run.path), "--feature", "pt", "--n", "100", "--out", str(out)]) == 2
    assert "exists already" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert main(["hist", "--run", str(run.path), "--feature", "pt", "--n", "100", "--out", str(tmp_path / "h.txt")]) == 2


def test_an_ensemble_histogram_carries_its_sigma_and_effective_statistics(tmp_path, tiny_config):
    mc = sample(1500)
    runs = [train_tabular(mc, tiny_config(seed=k, bootstrap_of=0), tmp_path / f"r{k}") for k in range(3)]
    ensemble, edges = Ensemble(tmp_path, runs), np.linspace(0, 10, 11)
    prediction = ensemble.histogram("pt", edges, 4000)
    h = histograms.of_ensemble(ensemble, "pt", edges, 4000)
    np.testing.assert_allclose(h.counts, 4000 * prediction.central)
    np.testing.assert_allclose(h.errors, 4000 * prediction.sigma)
    assert h.n_effective == pytest.approx(prediction.n_effective) and h.n_effective < 4000
    histograms.write_root(tmp_path / "e.root", [h.scaled(0.5)], {"ensemble": str(tmp_path)})
    with uproot.open(tmp_path / "e.root") as file:
        np.testing.assert_allclose(file["pt"].errors(), 2000 * prediction.sigma)
        assert "over 3 members" in file["pt"].title


def test_hist_of_a_recorded_ensemble_gives_each_bin_the_ensembles_sigma(tiny_ensemble, tmp_path, capsys):
    members = Ensemble.load(tiny_ensemble.path).runs
    samples = [run.generate(3000, seed=run.stream_seed("validation"))["pt"].to_numpy() for run in members]
    edges = np.quantile(np.concatenate(samples), [0, 0.2, 0.4, 0.6, 0.8, 1])  # populated bins
    out = tmp_path / "e.root"
    assert main(["hist", "--ensemble", str(tiny_ensemble.path), "--feature", "pt", "--n", "3000", "--edges",
                 ",".join(map(repr, edges.tolist())), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "errors: the ensemble's σ over 3 members" in captured.out and "N_eff" in captured.out
    # by hand: σ² = max(s² − (1 − 1/K)·g, g/K), g = p̄(1 − p̄)/n, over K = 3 members' bin fractions
    p = np.array([np.histogram(x, edges)[0] / 3000 for x in samples])
    g = p.mean(axis=0) * (1 - p.mean(axis=0)) / 3000
    sigma = np.sqrt(np.maximum(p.var(axis=0, ddof=1) - (2 / 3) * g, g / 3))
    with uproot.open(out) as file:
        provenance = json.loads(str(file[histograms.PROVENANCE_KEY]))
        np.testing.assert_allclose(file["pt"].values(), 3000 * p.mean(axis=0))
        np.testing.assert_allclose(file["pt"].errors(), 3000 * sigma)
    record = provenance["histograms"][0]
    assert record["n_effective"] > 0 and provenance["ensemble"] == str(tiny_ensemble.path)
    oversold = 3000 > OVERSOLD * record["n_effective_interval"][1]  # the warning's rule, as ensemble.json's
    assert ("carry the information of only" in captured.err) == oversold
