"""The normalizing-flow family: its likelihood against a closed form, its exact inverse, and a
tiny training through the CLI whose run generates, validates and resumes like a GAN run."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from zuko.transforms import MonotonicRQSTransform

from recogan_app.cli import main as recogan
from recogan_app.config import FlowConfig
from recogan_app.families import load_run
from recogan_app.families.flow import FlowRun
from recogan_app.models.flow import SplineFlow, rqs_inverse, with_end_derivatives
from recogan_app.models.latent import NOISE_BLOCK, noise_passes
from recogan_app.training.schedule import describe

COVARIANCE = np.array([[1.0, 0.8], [0.8, 1.0]])


@pytest.fixture(scope="module")
def gaussian_flow() -> SplineFlow:
    """A small flow fitted by maximum likelihood to a correlated 2-D Gaussian."""
    torch.manual_seed(0)
    data = torch.from_numpy(np.random.default_rng(0).multivariate_normal([0, 0], COVARIANCE, 20_000)).float()
    flow = SplineFlow(2, FlowConfig(coupling_transforms=2, hidden_widths=[32], learning_rate=1e-2))
    optimizer = flow.configure_optimizers()
    for step in range(300):
        batch = data[torch.randint(len(data), (512,))]
        optimizer.zero_grad()
        flow.loss(batch)["loss"].backward()
        optimizer.step()
    return flow


def test_log_likelihood_matches_the_closed_form(gaussian_flow):
    x = np.random.default_rng(1).multivariate_normal([0, 0], COVARIANCE, 5000)  # never trained on
    exact = stats.multivariate_normal([0, 0], COVARIANCE).logpdf(x)
    with torch.no_grad():
        flow = gaussian_flow.generator.log_prob(torch.from_numpy(x).float()).numpy()
    assert abs(flow.mean() - exact.mean()) < 0.03  # nats per row; the mean is -2.33
    assert np.corrcoef(flow, exact)[0, 1] > 0.98
    assert gaussian_flow.nll(torch.from_numpy(x).float()) == pytest.approx(-flow.mean(), abs=1e-4)


def test_sampler_inverts_the_flow_exactly(gaussian_flow):
    """Forward(sampled rows) gives back the noise they were drawn from, and row i depends only on
    (seed, i): the same rows from any start."""
    rows = gaussian_flow.generator.sampler()
    x = rows(5, 0, NOISE_BLOCK + 100)
    noise = torch.cat([z.clone()[keep] for z, keep, _ in noise_passes(5, 0, NOISE_BLOCK + 100,
                                                                        torch.empty(NOISE_BLOCK, 2), 2048)])
    with torch.no_grad():
        back = gaussian_flow.generator.flow().transform(x.contiguous())
    assert (back - noise).abs().max() < 1e-4
    assert torch.equal(rows(5, NOISE_BLOCK - 3, NOISE_BLOCK + 3), x[NOISE_BLOCK - 3:NOISE_BLOCK + 3])
    sample = x.numpy()
    assert np.corrcoef(sample.T)[0, 1] == pytest.approx(0.8, abs=0.03)


def test_spline_inverse_matches_zuko():
    torch.manual_seed(1)
    bins = 6
    params = 2 * torch.randn(1000, 3, 3 * bins - 1)
    y = 3 * torch.randn(1000, 3)  # some beyond ±5: the identity there
    spline = MonotonicRQSTransform(*params.split((bins, bins, bins - 1), -1))
    x = rqs_inverse(y, with_end_derivatives(params, bins), bins)
    assert (x - spline.inv(y)).abs().max() < 1e-4
    assert (spline(x) - y).abs().max() < 5e-4  # float32 on steep splines (zuko's own inverse: 4e-5 here)


def _mc(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.gamma(2.0, 1.0, n)
    return pd.DataFrame({"p": p.astype(np.float32),
                         "n_hits": rng.binomial(6, 0.6, n).astype(np.int16),
                         "cos_pa": np.cos(np.abs(rng.normal(0, 0.02 + 0.02 / p, n))).astype(np.float32)})


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    """``recogan train --model flow`` on 1,500 rows with an integer and a bounded column."""
    folder = tmp_path_factory.mktemp("flow")
    mc = _mc(1500, 0)
    mc.to_parquet(folder / "mc.parquet", index=False)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        done = recogan(["train", "--model", "flow", "--data", str(folder / "mc.parquet"), "--out", str(folder / "run"),
                        "--time-limit", "15", "--set", "batch_size=256", "--set", "snapshot_rows=300",
                        "--set", "max_epochs=4", "--set", "hidden_widths=[16]", "--set", "coupling_transforms=2"])
    assert done == 0 and "nats per row" in printed.getvalue()  # the held-out log-likelihood, said
    return folder, mc


def test_flow_run_generates_integers_within_the_mc_range(flow_run):
    folder, mc = flow_run
    run = load_run(folder / "run")
    assert isinstance(run, FlowRun) and run.info["kind"] == "flow"
    assert np.isfinite(run.metrics()["test_nll"]) and "nll" in run.history().columns
    assert recogan(["generate", "--run", str(folder / "run"), "--n", "20000", "--out", str(folder / "gen.parquet"),
                    "--seed", "1", "--device", "cpu"]) == 0
    generated = pd.read_parquet(folder / "gen.parquet")
    assert list(generated.columns) == list(mc.columns) and dict(generated.dtypes) == dict(mc.dtypes)
    assert set(np.unique(generated["n_hits"])) <= set(np.unique(mc["n_hits"]))
    for column in mc.columns:
        assert mc[column].min() <= generated[column].min() and generated[column].max() <= mc[column].max()
    assert generated["cos_pa"].max() <= 1.0


def test_a_flow_with_a_time_limit_trains_to_it_without_early_stopping(flow_run):
    """Its learning rate anneals to the time limit: stopping on a plateau would skip the low-rate end."""
    run = load_run(flow_run[0] / "run")
    assert run.info["schedule"]["early_stopping"] is False
    assert "no early stop (the learning rate anneals to the time limit)" in describe(run.info["schedule"])
    assert "patience" not in describe(run.info["schedule"])


def test_validate_takes_a_flow_run(flow_run):
    folder, _ = flow_run
    assert recogan(["validate", "--reference", str(folder / "run" / "heldout.parquet"), "--run", str(folder / "run"),
                    "--json", str(folder / "validation.json")]) == 0
    figures = json.loads((folder / "validation.json").read_text())
    assert figures["features"] == ["p", "n_hits", "cos_pa"] and figures["integer_features"] == ["n_hits"]
    assert figures["n_synthetic"] == figures["n_reference"] == len(pd.read_parquet(folder / "run" / "heldout.parquet"))


def test_last_checkpoint_restores_the_flow(flow_run):
    """What ``--resume`` starts from: the module, its optimiser (with the schedule's initial rate)
    and the schedule's seconds trained, all in last.pt (tensors and plain values only)."""
    folder, _ = flow_run
    state = torch.load(folder / "run" / "checkpoints" / "last.pt", weights_only=True)
    run = load_run(folder / "run")
    module = SplineFlow(3, run.config)
    module.load_state_dict(state["model"])  # strict: every tensor of the flow is there
    optimizer = module.configure_optimizers()
    optimizer.load_state_dict(state["optimizers"][0])
    assert optimizer.param_groups[0]["initial_lr"] == run.config.learning_rate
    assert optimizer.param_groups[0]["lr"] < run.config.learning_rate  # on its cosine
    assert state["callbacks"]["CosineSchedule"]["trained_s"] > 0


@pytest.mark.parametrize("options, words", [
    (["--kind", "zdc", "--model", "flow", "--data", "zdc.npz", "--out", "run"], "--kind zdc has gan and vae"),
    (["--resume", "run", "--model", "flow"], "--model cannot go with --resume"),
])
def test_model_options_that_cannot_apply_exit_2(options, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert recogan(["train", *options]) == 2
    assert words in capsys.readouterr().err and not any(tmp_path.iterdir())


AUTO = ["--model", "auto", "--time-limit", "120", "--set", "max_epochs=3", "--set", "batch_size=128",
        "--set", "snapshot_rows=200", "--set", "hidden_widths=[16]", "--set", "coupling_transforms=2"]
"""Epochs end the trials (20 s each at most), not the machine's load."""


@pytest.mark.parametrize("features", [None, "p"])
def test_model_auto_trains_the_family_a_classifier_tells_least_from_the_monitor_rows(features, tmp_path, capsys):
    """A few hundred rows: both families tried (a flow's own settings go to the flow only), the
    lower monitor AUC trained, the choice said and kept in run.json; on one feature the flow
    refuses and the GAN is trained."""
    _mc(400, 3).to_parquet(tmp_path / "mc.parquet", index=False)
    chosen = ["--features", features] if features else []
    assert recogan(["train", "--data", str(tmp_path / "mc.parquet"), "--out", str(tmp_path / "run"), *AUTO, *chosen]) == 0
    said = capsys.readouterr().out
    run = load_run(tmp_path / "run")
    choice = run.info["model_choice"]
    scored = {kind: auc for kind, auc in choice["monitor_auc"].items() if auc is not None}
    assert choice["chosen"] == run.kind == min(scored, key=scored.get)
    assert all(0 <= auc <= 1 for auc in scored.values()) and choice["monitor_rows"] == run.info["data"]["n_monitor"]
    assert f"gan {scored['tabular']:.3f}" in said
    if features:
        assert run.kind == "tabular" and "a coupling flow needs at least 2" in choice["refused"]["flow"]
        assert "flow refused" in said
    else:
        assert set(scored) == {"tabular", "flow"} and f"flow {scored['flow']:.3f}" in said


@pytest.mark.parametrize("options, words", [
    (["--set", "spline_binz=4"], "unknown setting 'spline_binz'"),
    (["--config", "config.json"], "--model auto trains both families"),
])
def test_model_auto_refuses_what_no_family_takes(options, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _mc(400, 3).to_parquet("mc.parquet", index=False)
    assert recogan(["train", "--data", "mc.parquet", "--out", "run", "--model", "auto", *options]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "run").exists()
