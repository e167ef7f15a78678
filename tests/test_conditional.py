"""Conditional fast simulation: targets given conditions (the toys, the families, generate, validation)."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from recogan_app.config import FlowConfig, QuantileConfig, TabularConfig
from recogan_app.data import toy_pid, toy_wjet
from recogan_app.errors import InputError
from recogan_app.families import load_run, train_flow, train_quantile, train_tabular
from recogan_app.losses import PLUS_ONE_SIGMA, pinball_loss
from recogan_app.metrics.conditional import QUANTILES, efficiency_ratios, validate_conditional
from recogan_app.models.flow import SplineFlow
from recogan_app.models.latent import NOISE_BLOCK, OneHot, noise_passes
from recogan_app.models.quantile import QuantileModel, QuantileRegressor, even_levels, scores_of, values_at
from recogan_app.preprocessing import FeaturePipeline
from recogan_app.training.schedule import describe_fit

TOYS = {"pid": (toy_pid, ["dll_e", "dll_k", "dll_p"], toy_pid.CONDITIONS),
        "wjet": (toy_wjet, toy_wjet.TARGETS[:4], toy_wjet.CONDITIONS[:4])}
FEW_STEPS = dict(max_epochs=2, batch_size=256, snapshot_rows=300, device="cpu", seed=3)


def recogan(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recogan_app.cli", *map(str, args)], capture_output=True, text=True)


# -- toys ---------------------------------------------------------------------------------------

def test_the_toys_are_seeded_and_their_response_follows_the_conditions():
    pid = toy_pid.generate(20_000, seed=4)
    assert pid.equals(toy_pid.generate(20_000, seed=4)) and not pid.equals(toy_pid.generate(20_000, seed=5))
    kaons, pions = pid[pid.species == 321], pid[pid.species == 211]
    assert kaons.dll_k.median() > 0 > pions.dll_k.median()  # the RICH tells kaons from pions
    slow, fast = pions[pions.p < 10], pions[pions.p > 60]
    assert slow.dll_k.std() > 3 * fast.dll_k.std()  # rings merge at high momentum: the DLLs shrink
    busy = pions.n_tracks > pions.n_tracks.quantile(0.8)
    assert pions[busy].dll_k.median() > pions[~busy].dll_k.median()  # occupancy blurs the separation

    events = toy_wjet.generate(5_000, seed=4)
    assert list(events.columns) == toy_wjet.CONDITIONS + toy_wjet.TARGETS
    def pt_residual(name):
        gen, reco = (np.hypot(events[f"{level}_{name}_px"], events[f"{level}_{name}_py"]) for level in ("gen", "reco"))
        return (reco - gen) / gen

    assert pt_residual("mu").abs().max() < 0.1 < pt_residual("jet").abs().quantile(0.8)  # seed 003's muon match


# -- the validation's pieces ----------------------------------------------------------------------

def test_efficiency_ratio_and_its_binomial_errors_on_a_constructed_case():
    """Two bins of a two-valued condition, 100 MC rows each holding 0…99: the median threshold
    49.5 passes half of each. The model matches bin 0 and puts bin 1's 200 rows 20 higher:
    70 % pass there."""
    values = np.arange(100.0)
    reference = pd.DataFrame({"c": np.repeat([0, 1], 100), "x": np.tile(values, 2)})
    synthetic = pd.DataFrame({"c": np.repeat([0, 1], [100, 200]), "x": np.concatenate([values, np.tile(values, 2) + 20])})
    table = efficiency_ratios(reference, synthetic, ["x"], ["c"])
    assert len(table) == 2 * len(QUANTILES)
    median = table[table["quantile"] == 50].set_index("bin")
    assert median.threshold.tolist() == [49.5, 49.5]
    assert median.loc["0", ["pass_mc", "n_mc", "pass_gen", "n_gen"]].tolist() == [50, 100, 50, 100]
    assert median.loc["1", ["pass_mc", "n_mc", "pass_gen", "n_gen"]].tolist() == [50, 100, 140, 200]
    assert median.loc["0", "ratio"] == 1.0 and median.loc["0", "pull"] == 0.0
    err_mc, err_gen = np.sqrt(0.5 * 0.5 / 100), np.sqrt(0.7 * 0.3 / 200)  # √(ε(1−ε)/N) by hand
    row = median.loc["1"]
    assert row.err_mc == pytest.approx(0.05) and row.err_gen == pytest.approx(0.0324037, rel=1e-5)
    assert row.ratio == pytest.approx(1.4)
    assert row.ratio_error == pytest.approx(1.4 * np.hypot(err_gen / 0.7, err_mc / 0.5))
    assert row.pull == pytest.approx(0.2 / np.hypot(err_gen, err_mc)) and row.pull == pytest.approx(3.3567, rel=1e-4)


def test_relative_residuals_pair_reco_targets_with_their_gen_conditions():
    mc = toy_wjet.generate(4_000, seed=1)
    same = validate_conditional(mc, toy_wjet.generate(4_000, seed=2), toy_wjet.TARGETS, toy_wjet.CONDITIONS)
    assert same.residuals.target.tolist() == toy_wjet.TARGETS
    assert same.residuals.condition.tolist() == toy_wjet.CONDITIONS
    assert same.residuals.ks.max() < 0.05  # two samples of the same detector
    blurred = mc.assign(reco_mu_px=mc.gen_mu_px * (1 + 0.05 * np.random.default_rng(0).standard_normal(len(mc))))
    worse = validate_conditional(mc, blurred, toy_wjet.TARGETS, toy_wjet.CONDITIONS).residuals.set_index("target")
    assert worse.ks["reco_mu_px"] > 0.2 and worse.width_gen["reco_mu_px"] > 3 * worse.width_mc["reco_mu_px"]


def test_pinball_loss_gradient_is_the_analytic_subgradient():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=generator, dtype=torch.float64)
    q = torch.randn(500, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    pinball_loss(q, x).sum().backward()
    # d/dq of γ(x − q) where x is above, of (1 − γ)(q − x) where below
    analytic = torch.where(x > q, torch.full_like(x, -PLUS_ONE_SIGMA), torch.full_like(x, 1 - PLUS_ONE_SIGMA))
    torch.testing.assert_close(q.grad, analytic, rtol=0, atol=1e-15)
    # and its minimiser over a constant q is the sample's γ quantile (one σ above a Gaussian's mean)
    sample = torch.randn(20_000, generator=generator, dtype=torch.float64)
    grid = torch.linspace(0, 2, 401, dtype=torch.float64)
    best = grid[pinball_loss(grid[:, None], sample[None]).mean(1).argmin()]
    assert float(best) == pytest.approx(float(torch.quantile(sample, PLUS_ONE_SIGMA)), abs=0.005)


def test_pinball_loss_at_a_vector_of_levels_by_hand():
    """x = 1 against quantiles 0 (below x) and 3 (above x) at levels 0.25 and 0.75: above x the
    loss is (1 − τ)(q − x), below it τ(x − q); d/dq is −τ below x and 1 − τ above."""
    q = torch.tensor([[0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    levels = torch.tensor([0.25, 0.75], dtype=torch.float64)
    loss = pinball_loss(q, torch.tensor([[1.0]], dtype=torch.float64), levels)
    assert loss.tolist() == [[0.25 * 1, 0.25 * 2]]
    loss.sum().backward()
    assert q.grad.tolist() == [[-0.25, 0.25]]


# -- the quantile model's pieces ---------------------------------------------------------------------

def test_the_quantiles_are_monotone_by_construction_whatever_the_weights():
    torch.manual_seed(0)
    regressor = QuantileRegressor(3, 4, widths=[16], levels=even_levels(20))
    for parameter in regressor.parameters():
        parameter.data.normal_(0, 3)  # far from any trained state
    quantiles = regressor(torch.randn(2_000, 3) * 5)
    assert quantiles.shape == (2_000, 4, 20) and (quantiles.diff(dim=-1) >= 0).all()


def test_an_increment_is_bent_by_the_exponential_of_its_output():
    """Ten levels, the network's last layer zero but for the bias of the increment between levels 7
    and 8, set to log 40: the quantiles are the standard normal's,
    those at levels 8 and 9 raised by 39 times that increment (Φ⁻¹(0.85) − Φ⁻¹(0.75)); softplus
    (before) needs the output 40 ln 2 + log(1 − 2⁻⁴⁰) for the same factor."""
    levels = even_levels(10)
    normal = stats.norm.ppf(levels.numpy())
    expected = normal + np.r_[np.zeros(8), 39 * (normal[8] - normal[7]) * np.ones(2)]
    for increments, output in (("exp", np.log(40)), ("softplus", np.log(np.expm1(40 * np.log(2))))):
        regressor = QuantileRegressor(2, 1, widths=[4], levels=levels, increments=increments)
        last = regressor.quantiles[-1]
        torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
        with torch.no_grad():
            last.bias[2 + 7] = output  # location, scale, then the increments from level 0 to 1, 1 to 2, …
        with torch.no_grad():
            quantiles = regressor(torch.zeros(3, 2))[:, 0].numpy()
        np.testing.assert_allclose(quantiles, np.tile(expected, (3, 1)), atol=2e-5)


def test_a_jump_raises_the_quantiles_above_its_level_by_its_height():
    """Ten levels, one jump, the last layer zero but for the jump's outputs: height output √1.5
    (the height is its square), level output logit(0.62) − logit(0.5) (the jump starts at 0.5),
    width output −8 (0.02 e⁻⁸ of a level): the standard normal's quantiles, those at levels above
    0.62 (0.65 … 0.95) raised by 1.5, the others unchanged. A zero output is no jump at all; weights
    saved before the jumps existed load."""
    levels = even_levels(10)
    normal = stats.norm.ppf(levels.numpy())
    regressor = QuantileRegressor(2, 1, widths=[4], levels=levels, jumps=1)
    last = regressor.quantiles[-1]
    torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
    with torch.no_grad():
        np.testing.assert_allclose(regressor(torch.zeros(2, 2))[:, 0].numpy(), np.tile(normal, (2, 1)), atol=2e-6)
        last.bias[1 + 10:] = torch.tensor([1.5 ** 0.5, float(torch.logit(torch.tensor(0.62))), -8.0])
        quantiles = regressor(torch.zeros(2, 2))[:, 0].numpy()
    np.testing.assert_allclose(quantiles, np.tile(normal + 1.5 * (levels.numpy() > 0.62), (2, 1)), atol=2e-5)
    before = QuantileRegressor(2, 1, widths=[4], levels=levels)  # weights saved before the jumps existed
    state = before.state_dict()
    del state["jump_starts"]
    QuantileRegressor(2, 1, widths=[4], levels=levels).load_state_dict(state)


def test_inverse_cdf_sampling_reproduces_a_known_distributions_quantiles():
    """A skewed distribution (Γ(2)) given by its quantiles at 50 levels: samples by the inverse CDF
    have its quantiles (scipy's) at the levels, a tail beyond them, and the normal scores of those
    samples give back the noise."""
    levels, gamma = even_levels(50), stats.gamma(2.0)
    quantiles = torch.tensor(gamma.ppf(levels.numpy()), dtype=torch.float32).expand(1, 1, 50)
    z = torch.randn(200_000, 1, generator=torch.Generator().manual_seed(0))
    x = values_at(levels.float(), quantiles.expand(len(z), 1, 50), z)[:, 0].numpy()
    checked = np.array([0.01, 0.05, 0.11, 0.25, 0.49, 0.75, 0.89, 0.95, 0.99])  # levels: exact but for the sampling
    # in levels: the sample's quantile within 2σ of the sampling (√(τ(1 − τ)/n) ≤ 0.0011) of the level
    np.testing.assert_allclose(gamma.cdf(np.quantile(x, checked)), checked, atol=0.0022)
    assert x.min() < gamma.ppf(0.005) and x.max() > gamma.ppf(0.995)  # tails beyond the extreme levels
    back = scores_of(levels.float(), quantiles.expand(len(z), 1, 50), torch.from_numpy(x)[:, None])
    assert (back - z).abs().max() < 5e-3  # float32 logs beyond 4σ
    # seed 003's response: μ + |q − μ|·z, here μ = 1 and σ = 0.5
    seed003 = QuantileRegressor(2, 1, widths=[4])
    mean_and_q = torch.tensor([[[1.0, 0.5]]]).expand(3, 1, 2)
    assert seed003.values(mean_and_q, torch.tensor([[-1.0], [0.0], [2.0]])).tolist() == [[0.5], [1.0], [2.0]]


def test_the_copula_learns_and_keeps_a_constructed_correlation():
    """Two targets, each N(0, 1) whatever the conditions (the network's output fixed at the
    standard normal's quantiles), correlated by ρ = 0.6: the copula's likelihood learns R₁₀ ≈ 0.6
    and the generated rows carry it."""
    rng = np.random.default_rng(0)
    targets = torch.from_numpy(rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], 20_000).astype(np.float32))
    conditions = torch.zeros(len(targets), 1)
    model = QuantileModel(2, 1, QuantileConfig(hidden_widths=[4]))
    last = model.generator.quantiles[-1]
    torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
    optimiser = torch.optim.Adam([model.generator.copula], lr=0.05)
    for step in range(300):
        rows = slice(step * 1000 % 19_000, step * 1000 % 19_000 + 1000)
        optimiser.zero_grad()
        model.loss(targets[rows], conditions[rows])["copula"].backward()
        optimiser.step()
    factor = model.generator.cholesky().detach()
    assert (factor @ factor.t())[1, 0] == pytest.approx(0.6, abs=0.03)
    sample = model.sample(20_000, seed=1, conditions=conditions).numpy()
    assert np.corrcoef(sample.T)[0, 1] == pytest.approx(0.6, abs=0.03)


def test_the_monitor_loss_is_the_training_pinball_term_by_hand():
    """Three levels, the network's last layer zero: every row's quantiles are the standard normal's
    at 1/6, 1/2, 5/6, q = (−0.967, 0, 0.967). Targets 0 and 2 of one target: the pinball losses by
    hand, averaged over levels then rows, are the monitor loss and the training loss's term."""
    model = QuantileModel(1, 1, QuantileConfig(hidden_widths=[4], levels=3))
    last = model.generator.quantiles[-1]
    torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
    targets, conditions = torch.tensor([[0.0], [2.0]]), torch.zeros(2, 1)
    levels, q = np.array([1, 3, 5]) / 6, stats.norm.ppf(np.array([1, 3, 5]) / 6)
    by_hand = np.mean([np.mean(np.where(x >= q, levels * (x - q), (1 - levels) * (q - x))) for x in (0.0, 2.0)])
    assert model.monitor_loss(targets, conditions) == pytest.approx(by_hand, rel=1e-6)
    assert float(model.loss(targets, conditions)["pinball"].detach()) == pytest.approx(by_hand, rel=1e-6)


def test_a_condition_of_few_values_is_read_one_hot_beside_its_coordinate():
    """Species 211, 211, 321, 2212 quantile-mapped: levels 0, 1/3, 2/3, 1, each value at the middle
    of its run of levels (1/6, 2/3, 1 − 10⁻⁷ at the clip), so its points are Φ⁻¹ of those; a
    momentum (continuous) and a multiplicity of more values than asked for get no one-hot block."""
    frame = pd.DataFrame({"species": np.array([211, 211, 321, 2212], np.int16), "p": [3.0, 5.0, 7.0, 9.0],
                          "n_tracks": np.array([10, 20, 30, 40], np.int16)})
    pipeline = FeaturePipeline({"species": "quantile", "n_tracks": "quantile"}).fit(frame)
    points = pipeline.categories(3)
    assert list(points) == ["species"]
    np.testing.assert_allclose(points["species"], stats.norm.ppf([1 / 6, 2 / 3, 1 - 1e-7]), rtol=1e-9)
    assert list(pipeline.categories(4)) == ["species", "n_tracks"]
    assert FeaturePipeline().fit(frame).categories(10) == {}  # dequantised ('integer+quantile'): no points
    encode = OneHot(3, {0: points["species"]})
    given = torch.from_numpy(pipeline.transform(frame.iloc[[2, 0]]))
    expected = torch.cat((given, torch.tensor([[0.0, 1, 0], [1, 0, 0]])), 1)
    assert encode.size == 6 and torch.equal(encode(given), expected)
    unseen = given.clone()
    unseen[0, 0] = 0.0  # between the points: a species the training never saw sets no bit
    assert encode(unseen)[0, 3:].sum() == 0


# -- the families, through the one recipe -----------------------------------------------------------

SMALL = {TabularConfig: dict(generator_widths=[32, 32], discriminator_widths=[32, 32]),
         QuantileConfig: dict(hidden_widths=[32, 32]), FlowConfig: dict(hidden_widths=[32], coupling_transforms=2)}


@pytest.mark.parametrize("toy, train, config_class", [
    ("pid", train_tabular, TabularConfig), ("wjet", train_tabular, TabularConfig), ("pid", train_quantile, QuantileConfig),
    ("wjet", train_quantile, QuantileConfig), ("wjet", train_flow, FlowConfig)],
    ids=["gan-pid", "gan-wjet", "quantile-pid", "quantile-wjet", "flow-wjet"])
def test_a_conditional_family_trains_a_few_steps_and_generates_given_conditions(tmp_path, toy, train, config_class):
    module, targets, conditions = TOYS[toy]
    frame = module.generate(2_000, seed=0)[conditions + targets]
    run = train(frame, config_class(features=targets, conditions=conditions, **FEW_STEPS, **SMALL[config_class]),
                tmp_path / "run")
    assert run.info["fit"]["steps"] > 0 and run.info["data"]["features"] == conditions + targets
    if train is train_quantile and toy == "pid":  # a given species is one point each, not a dequantised band
        assert run.condition_pipeline.specs_["species"] == "quantile"
        assert len(np.unique(run.condition_pipeline.transform(frame)[:, conditions.index("species")])) == 5
        assert run.module.generator.encode.size == len(conditions) + 5  # and one-hot: species' five values
    figures = run.metrics()
    assert figures["efficiency_bins"] == len(targets) * len(QUANTILES) * sum(
        min(frame[c].nunique(), 5) if frame[c].nunique() > 10 else frame[c].nunique() for c in conditions)
    given = module.generate(700, seed=9)[conditions].sample(frac=1, random_state=0)  # shuffled index: ignored
    trained = run.generate(given, seed=2)
    run = load_run(run.path)
    synthetic = run.generate(given, seed=2)
    assert synthetic.equals(trained)  # the run's files give the trained model back
    assert list(synthetic.columns) == conditions + targets and len(synthetic) == len(given)
    assert synthetic[conditions].equals(given.reset_index(drop=True))
    assert synthetic.equals(run.generate(given, seed=2)) and np.isfinite(synthetic[targets].to_numpy()).all()
    # row i depends on its own conditions and the seed only: a prefix generates the same rows
    assert synthetic.iloc[:100].equals(run.generate(given.iloc[:100], seed=2))
    with pytest.raises(InputError, match="is a conditional run"):
        run.generate(10, seed=1)
    with pytest.raises(InputError, match=f"column '{conditions[1]}'"):
        run.generate(given.drop(columns=conditions[1]), seed=1)


def test_the_conditional_flow_samples_by_inverting_its_density_given_the_conditions():
    """Running the flow forward on rows sampled given conditions (given the same conditions)
    gives back their noise; other conditions give other rows from the same noise."""
    torch.manual_seed(0)
    flow = SplineFlow(3, FlowConfig(coupling_transforms=2, hidden_widths=[16]), n_conditions=2)
    for parameter in flow.parameters():  # a flow far from the identity, as after training
        parameter.data.normal_(0, 0.3)
    given = torch.randn(NOISE_BLOCK + 100, 2)
    rows = flow.generator.sampler()
    sample = rows(5, 0, len(given), given)
    noise = torch.cat([z.clone()[keep] for z, keep, _ in noise_passes(5, 0, len(given), torch.empty(NOISE_BLOCK, 3),
                                                                        2048)])
    with torch.no_grad():
        back = flow.generator.flow(given).transform(sample.contiguous())
    assert (back - noise).abs().max() < 1e-3  # float32 through two strongly bent couplings
    assert torch.equal(rows(5, NOISE_BLOCK - 3, NOISE_BLOCK + 3, given[NOISE_BLOCK - 3:NOISE_BLOCK + 3]),
                       sample[NOISE_BLOCK - 3:NOISE_BLOCK + 3])
    assert (rows(5, 0, 100, given[:100] + 1) - sample[:100]).abs().mean() > 0.05


def test_the_quantile_model_starts_each_reco_target_at_its_gen_value(tmp_path):
    """Seed 003's transfer function: before learning, μ = q = the paired gen-level condition
    (with the networks' last layers zero); a trained-for-nothing run (learning rate 1e-9) keeps
    that map, pairing reco_<f> with gen_<f> by name whatever the columns' order."""
    given = torch.randn(50, 3)
    seed003 = QuantileRegressor(3, 2, widths=[8], pairs=[(0, 2), (1, 0)])
    for network in (seed003.mean, seed003.quantile):
        torch.nn.init.zeros_(network[-1].weight), torch.nn.init.zeros_(network[-1].bias)
    mean, quantile = seed003(given).unbind(-1)
    assert torch.equal(mean, given[:, [2, 0]]) and torch.equal(quantile, mean)
    levels = even_levels(10)
    regressor = QuantileRegressor(3, 2, widths=[8], levels=levels, pairs=[(0, 2), (1, 0)])
    torch.nn.init.zeros_(regressor.quantiles[-1].weight), torch.nn.init.zeros_(regressor.quantiles[-1].bias)
    # the paired gen value plus the standard normal's quantiles (the preprocessed marginal)
    expected = given[:, [2, 0], None] + torch.special.ndtri(levels).float()
    torch.testing.assert_close(regressor(given), expected, rtol=0, atol=1e-5)

    conditions, targets = ["gen_jet_px", "gen_met_x", "gen_mu_px"], ["reco_mu_px", "reco_met_y", "reco_jet_px"]
    frame = toy_wjet.generate(2_000, seed=0)[conditions + targets]
    config = QuantileConfig(features=targets, conditions=conditions, learning_rate=1e-9, **FEW_STEPS,
                            **SMALL[QuantileConfig])
    transfer = train_quantile(frame, config, tmp_path / "q").module.generator.transfer.weight.detach()
    np.testing.assert_allclose(transfer.numpy(), [[0, 0, 1], [0, 0, 0], [1, 0, 0]], atol=1e-6)


@pytest.mark.parametrize(("settings", "keep"), [({"time_limit": 120}, "last"), ({}, "best"),
                                               ({"time_limit": 120, "response": "seed003"}, "best")])
def test_a_quantile_fit_annealed_to_its_time_limit_keeps_its_last_epoch(tmp_path, settings, keep):
    """The cosine to the time limit ends at the settled model, which the run keeps (its monitor loss
    picks mid-run epochs that validate worse); a fit that may stop early keeps its best epoch.
    A small sample's batch is cut (1,200 training rows: 150 a batch) and Adam's rate in proportion."""
    conditions, targets = ["gen_mu_px", "gen_met_x"], ["reco_mu_px", "reco_met_x"]
    frame = toy_wjet.generate(1_500, seed=0)[conditions + targets]
    config = QuantileConfig(features=targets, conditions=conditions, **{**FEW_STEPS, "max_epochs": 3},
                            **SMALL[QuantileConfig], **settings)
    run = train_quantile(frame, config, tmp_path / "q")
    fit, batch = run.info["fit"], run.info["schedule"]["batch_size"]
    assert (run.info["data"]["n_train"], batch) == (1_200, 150) and config.batch_size == 256
    assert run.info["learning_rate"] == pytest.approx(config.learning_rate * 150 / 256)
    model = QuantileModel(2, 2, config, learning_rate=run.info["learning_rate"])
    assert model.configure_optimizers().param_groups[0]["lr"] == run.info["learning_rate"]
    scores = pd.read_parquet(tmp_path / "q" / "history.parquet")["score"]
    assert fit["keep"] == keep and fit["epochs"] == 3
    assert fit["best_epoch"] == (2 if keep == "last" else scores.idxmin()) and fit["best_score"] == scores[fit["best_epoch"]]
    assert describe_fit(fit, 1).endswith("kept the last finite epoch, 3" if keep == "last" else f"best epoch {fit['best_epoch'] + 1}")


def test_a_quantile_run_saved_before_the_k_level_response_loads_as_seed_003s(tmp_path):
    """Runs of seed 003's model written before the ``response`` setting existed name none in their
    config.json: they load as seed 003's, generating what they did."""
    conditions, targets = ["gen_mu_px", "gen_met_x"], ["reco_mu_px", "reco_met_x"]
    frame = toy_wjet.generate(1_000, seed=0)[conditions + targets]
    config = QuantileConfig(features=targets, conditions=conditions, response="seed003", **FEW_STEPS,
                            **SMALL[QuantileConfig])
    run = train_quantile(frame, config, tmp_path / "q")
    weights = torch.load(run.path / "generator.pt", weights_only=True)
    torch.save({**weights, "copula": torch.zeros_like(weights["copula"])}, run.path / "generator.pt")
    given = frame[conditions].head(200)
    expected = load_run(run.path).generate(given, seed=3)  # seed 003's independent targets
    saved = json.loads((run.path / "config.json").read_text())
    del saved["response"], saved["levels"]
    (run.path / "config.json").write_text(json.dumps(saved))  # nor had it a copula or a levels buffer:
    torch.save({name: value for name, value in weights.items() if name not in ("copula", "levels")},
               run.path / "generator.pt")
    old = load_run(run.path)
    assert old.config.response == "seed003"
    pd.testing.assert_frame_equal(old.generate(given, seed=3), expected)


def test_the_quantile_family_maps_targets_and_their_gen_conditions_by_the_flat_quantile_map(tmp_path):
    """The targets and the gen-level conditions paired with them end in ``flatquantile`` (a pair
    shares its map, so reco starts at gen); other conditions keep theirs. A run saved before the
    setting existed reads as ``target_map=quantile`` and keeps the pipeline it was trained with."""
    conditions, targets = ["gen_mu_px", "gen_met_x", "gen_jet_px"], ["reco_mu_px", "reco_met_x"]
    frame = toy_wjet.generate(1_000, seed=0)[conditions + targets]
    config = QuantileConfig(features=targets, conditions=conditions, **FEW_STEPS, **SMALL[QuantileConfig])
    run = train_quantile(frame, config, tmp_path / "q")
    specs = {**run.pipeline.specs_, **run.condition_pipeline.specs_}
    assert [specs[c] for c in targets + conditions] == ["flatquantile"] * 4 + ["quantile"]
    saved = json.loads((run.path / "config.json").read_text())
    del saved["target_map"]
    (run.path / "config.json").write_text(json.dumps(saved))
    old = load_run(run.path)  # its pipeline is the run's file: the map it was trained with
    assert old.config.target_map == "quantile" and old.pipeline.specs_ == run.pipeline.specs_


@pytest.mark.parametrize("setting, before, now", [("increments", "softplus", "exp"), ("jumps", 0, 4)])
def test_a_quantile_run_saved_before_a_setting_existed_loads_as_it_was_trained(tmp_path, setting, before, now):
    """A run trained as before a setting existed (softplus increments, no jumps) whose config.json
    does not name it loads with the value it was trained with and generates what it did; new runs
    take the new default."""
    conditions, targets = ["gen_mu_px", "gen_met_x"], ["reco_mu_px", "reco_met_x"]
    frame = toy_wjet.generate(1_000, seed=0)[conditions + targets]
    assert getattr(QuantileConfig(), setting) == now
    config = QuantileConfig(features=targets, conditions=conditions, **{setting: before}, **FEW_STEPS,
                            **SMALL[QuantileConfig])
    run = train_quantile(frame, config, tmp_path / "q")
    given = frame[conditions].head(200)
    expected = run.generate(given, seed=3)
    saved = json.loads((run.path / "config.json").read_text())
    del saved[setting]
    (run.path / "config.json").write_text(json.dumps(saved))
    old = load_run(run.path)
    assert getattr(old.config, setting) == before and getattr(old.module.generator, setting) == before
    pd.testing.assert_frame_equal(old.generate(given, seed=3), expected)


def test_the_quantile_model_needs_conditions(tmp_path):
    frame = toy_pid.generate(500, seed=0)
    with pytest.raises(InputError, match="needs conditions"):
        train_quantile(frame, QuantileConfig(**FEW_STEPS), tmp_path / "q")


# -- the command line -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cond")
    assert recogan("data", "toy-wjet", "--n", "2000", "--out", folder / "w.parquet").returncode == 0
    done = recogan("train", "--data", folder / "w.parquet", "--model", "quantile", "--targets", "reco_mu_px,reco_jet_px",
                   "--conditions", "gen_mu_px,gen_jet_px,gen_met_x", "--set", "max_epochs=2", "--set",
                   "snapshot_rows=300", "--set", "hidden_widths=[32,32]", "--out", folder / "run")
    assert done.returncode == 0, done.stderr
    assert "given the test rows' conditions" in done.stdout
    return folder


def test_generate_copies_the_conditions_through_unchanged(conditional_run, tmp_path):
    rng = np.random.default_rng(0)
    given = pd.DataFrame({"event": np.arange(300, dtype=np.int64),  # a further column: left out
                          "gen_jet_px": rng.normal(0, 40, 300), "gen_met_x": rng.normal(0, 30, 300).astype(np.float32),
                          "gen_mu_px": rng.normal(0, 30, 300)})  # float64 and float32, another order
    given.to_parquet(tmp_path / "given.parquet", index=False)
    done = recogan("generate", "--run", conditional_run / "run", "--conditions", tmp_path / "given.parquet",
                   "--out", tmp_path / "out.parquet", "--seed", 4, "--chunk-rows", 128)
    assert done.returncode == 0, done.stderr
    out = pd.read_parquet(tmp_path / "out.parquet")
    conditions = ["gen_mu_px", "gen_jet_px", "gen_met_x"]
    assert list(out.columns) == conditions + ["reco_mu_px", "reco_jet_px"] and len(out) == 300
    for name in conditions:  # bit for bit, dtype included
        assert out[name].dtype == given[name].dtype
        assert out[name].to_numpy().tobytes() == given[name].to_numpy().tobytes()

    given.drop(columns="gen_met_x").to_csv(tmp_path / "lacking.csv", index=False)
    done = recogan("generate", "--run", conditional_run / "run", "--conditions", tmp_path / "lacking.csv",
                   "--out", tmp_path / "bad.parquet")
    assert done.returncode == 2 and "lacking.csv" in done.stderr and "gen_met_x" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "bad.parquet").exists()
    done = recogan("generate", "--run", conditional_run / "run", "--n", 5, "--out", tmp_path / "bad.parquet")
    assert done.returncode == 2 and "is a conditional run" in done.stderr


def test_conditions_are_read_from_the_chosen_tree_of_a_root_file_of_several(tmp_path):
    """A ROOT file of several trees: without ``--tree`` the conditions come from the tree the run
    was trained on, else ``--tree`` picks one; a file of neither is refused naming its trees."""
    import uproot

    frame = toy_wjet.generate(1200, seed=2)
    conditions = ["gen_mu_px", "gen_jet_px"]
    with uproot.recreate(tmp_path / "mc.root") as file:
        file["events"] = {name: frame[name].to_numpy() for name in [*conditions, "reco_mu_px"]}
        file["lumi"] = {"lumi": np.ones(3)}
    assert recogan("train", "--data", tmp_path / "mc.root", "--tree", "events", "--model", "quantile", "--targets",
                   "reco_mu_px", "--conditions", ",".join(conditions), "--set", "max_epochs=1", "--set",
                   "snapshot_rows=200", "--set", "hidden_widths=[16]", "--out", tmp_path / "run").returncode == 0
    with uproot.recreate(tmp_path / "given.root") as file:
        for tree, rows in (("events", slice(0, 50)), ("candidates", slice(50, 80)), ("lumi", slice(0, 3))):
            file[tree] = {name: frame[name].to_numpy()[rows] for name in conditions}
    for tree, rows in ((None, 50), ("candidates", 30)):
        done = recogan("generate", "--run", tmp_path / "run", "--conditions", tmp_path / "given.root",
                       *(["--tree", tree] if tree else []), "--seed", 1, "--out", tmp_path / "out.parquet",
                       "--overwrite")
        assert done.returncode == 0, done.stderr
        assert len(pd.read_parquet(tmp_path / "out.parquet")) == rows
    with uproot.recreate(tmp_path / "other.root") as file:
        file["a"] = file["b"] = {name: frame[name].to_numpy()[:10] for name in conditions}
    done = recogan("generate", "--run", tmp_path / "run", "--conditions", tmp_path / "other.root",
                   "--out", tmp_path / "bad.parquet")
    assert done.returncode == 2 and "holds 2 trees ('a', 'b'); choose one with --tree" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "bad.parquet").exists()


def test_validate_of_a_conditional_run_prints_and_reports_the_efficiency_ratios(conditional_run, tmp_path):
    run = conditional_run / "run"
    done = recogan("validate", "--run", run, "--reference", run / "heldout.parquet", "--json", tmp_path / "v.json",
                   "--report", tmp_path / "r.html")
    assert done.returncode == 0, done.stderr
    assert "efficiency ratios ε_gen/ε_MC" in done.stdout and "relative residual of reco_mu_px vs gen_mu_px" in done.stdout
    figures = json.loads((tmp_path / "v.json").read_text())["conditional"]["figures"]
    assert figures["efficiency_bins"] == 2 * 3 * 5 * len(QUANTILES) and 0 <= figures["pull_share"] <= 1
    page = (tmp_path / "r.html").read_text()
    assert '<section id="conditional">' in page and 'alt="efficiency ratios"' in page
    # The targets only: the conditions are copied from the MC rows, so they are not scored
    validation = json.loads((tmp_path / "v.json").read_text())
    assert set(validation["per_feature"]) == {"reco_mu_px", "reco_jet_px"}
    assert validation["conditions"] == ["gen_mu_px", "gen_jet_px", "gen_met_x"]
    assert "of 2 features indistinguishable" in done.stdout and "targets scored given the conditions" in done.stdout
    assert "Conditional run: targets scored given the conditions" in page and "conditional Gaussian copula" in page
    assert "recogan ensemble --data" not in page and "trains unconditional runs only" in page


def test_the_training_summary_of_a_conditional_run_scores_its_twins_in_one_fold(conditional_run):
    """Its classifier AUC is not below chance (split twins made it 7σ below): metrics.json against the
    Mann–Whitney noise it states, and its KS are those of the targets."""
    metrics = json.loads((conditional_run / "run" / "metrics.json").read_text())
    assert metrics["c2st_auc"] > 0.5 - 2 * metrics["noise"]["c2st_auc"]
    assert {k for k in metrics if k.startswith("ks_")} == {"ks_reco_mu_px", "ks_reco_jet_px"}


def test_model_auto_tries_every_conditional_family_given_the_monitor_conditions(tmp_path, capsys):
    from recogan_app.cli import main

    toy_pid.generate(3_000, seed=0).to_parquet(tmp_path / "pid.parquet", index=False)
    assert main(["train", "--data", str(tmp_path / "pid.parquet"), "--targets", "dll_e,dll_k,dll_p", "--conditions",
                 "species,p,eta,n_tracks", "--model", "auto", "--set", "max_epochs=2", "--set", "snapshot_rows=300",
                 "--time-limit", "120", "--out", str(tmp_path / "run")]) == 0
    choice = json.loads((tmp_path / "run" / "run.json").read_text())["model_choice"]
    assert set(choice["monitor_auc"]) == {"tabular", "flow", "quantile"} and not choice["refused"]
    assert all(0.5 <= auc <= 1 for auc in choice["monitor_auc"].values())
    assert "--model auto: gan" in capsys.readouterr().out


def test_event_weights_with_conditions_are_refused_in_one_line(conditional_run, tmp_path):
    """The conditional figures are unweighted: a weighted conditional training or validation is
    refused (exit 2) naming the file and the weight column, and no run is written."""
    frame = pd.read_parquet(conditional_run / "w.parquet").assign(w=1.0)
    frame.to_parquet(tmp_path / "weighted.parquet", index=False)
    done = recogan("train", "--data", tmp_path / "weighted.parquet", "--model", "gan", "--targets", "reco_mu_px",
                   "--conditions", "gen_mu_px", "--weights", "w", "--set", "max_epochs=1", "--out", tmp_path / "run")
    assert done.returncode == 2 and "Traceback" not in done.stderr and not (tmp_path / "run").exists()
    assert "weighted.parquet" in done.stderr and "'w'" in done.stderr and "conditions" in done.stderr

    pd.read_parquet(conditional_run / "run" / "heldout.parquet").assign(w=1.0).to_parquet(tmp_path / "ref.parquet")
    done = recogan("validate", "--run", conditional_run / "run", "--reference", tmp_path / "ref.parquet",
                   "--weights", "w")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "conditions" in done.stderr


def test_derived_columns_of_a_conditional_run_are_computed_from_targets_and_conditions(conditional_run, tmp_path):
    """``--derive`` with ``--conditions``: a derived column may read the generated targets and the
    given conditions; it is never generated nor given, every output holds it exactly as its formula
    gives it from the output's own columns; a condition that is also derived is refused (exit 2)."""
    frame = pd.read_parquet(conditional_run / "w.parquet")
    frame = frame.assign(reco_mu_pt=np.hypot(frame.reco_mu_px, frame.reco_mu_py))
    frame = frame.assign(mu_scale=frame.reco_mu_pt / np.hypot(frame.gen_mu_px, frame.gen_mu_py))
    frame.to_parquet(tmp_path / "derived.parquet", index=False)
    derive = ["--derive", "reco_mu_pt = hypot(reco_mu_px, reco_mu_py)",
              "--derive", "mu_scale = reco_mu_pt / hypot(gen_mu_px, gen_mu_py)"]
    conditions = ["gen_mu_px", "gen_mu_py"]
    done = recogan("train", "--data", tmp_path / "derived.parquet", "--model", "gan", "--targets",
                   "reco_mu_px,reco_mu_py", "--conditions", ",".join(conditions), *derive,
                   "--set", "max_epochs=1", "--set", "snapshot_rows=300", "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert "× 2 features given 2 conditions (and 2 derived)" in done.stdout
    run = load_run(tmp_path / "run")
    assert run.pipeline.columns_ == ["reco_mu_px", "reco_mu_py"] and run.conditions == conditions
    assert run.features == ["reco_mu_px", "reco_mu_py", "reco_mu_pt", "mu_scale"]

    frame[conditions].iloc[:500].to_parquet(tmp_path / "given.parquet", index=False)
    done = recogan("generate", "--run", tmp_path / "run", "--conditions", tmp_path / "given.parquet",
                   "--out", tmp_path / "out.parquet", "--seed", 1)
    assert done.returncode == 0, done.stderr
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == conditions + run.features and len(out) == 500
    assert out[conditions].equals(frame[conditions].iloc[:500])
    pt = np.hypot(out.reco_mu_px.to_numpy(np.float64), out.reco_mu_py.to_numpy(np.float64))
    gen_pt = np.hypot(out.gen_mu_px.to_numpy(np.float64), out.gen_mu_py.to_numpy(np.float64))
    np.testing.assert_array_equal(out.reco_mu_pt, pt.astype(frame.reco_mu_pt.dtype))  # in float64, stored as the MC
    np.testing.assert_array_equal(out.mu_scale, (pt / gen_pt).astype(frame.mu_scale.dtype))

    done = recogan("train", "--data", tmp_path / "derived.parquet", "--targets", "reco_mu_px,reco_mu_py",
                   "--conditions", "gen_mu_px,reco_mu_pt", *derive[:2], "--set", "max_epochs=1",
                   "--out", tmp_path / "bad")
    assert done.returncode == 2 and "Traceback" not in done.stderr and not (tmp_path / "bad").exists()
    assert "reco_mu_pt" in done.stderr and "condition" in done.stderr


def test_export_of_a_conditional_run_writes_a_row_per_condition_row_and_says_so(conditional_run, tmp_path):
    """``recogan export --conditions FILE``: the ROOT file holds the conditions bit for bit and the
    targets ``generate`` gives with the same seed; the gate compared targets generated given the
    held-out rows' conditions, and the provenance says the export is conditional."""
    import uproot

    from recogan_app.export import PROVENANCE_KEY, SAMPLE_NAME

    conditions = ["gen_mu_px", "gen_jet_px", "gen_met_x"]
    given = pd.read_parquet(conditional_run / "w.parquet")[conditions[::-1]].iloc[:400]  # another order
    given.to_parquet(tmp_path / "given.parquet", index=False)
    done = recogan("export", "--run", conditional_run / "run", "--conditions", tmp_path / "given.parquet",
                   "--require", "none", "--seed", 5, "--chunk-rows", 150, "--out", tmp_path / "out.root")
    assert done.returncode == 0, done.stderr
    assert f"wrote 400 synthetic rows × 2 features given the conditions of {tmp_path / 'given.parquet'}" in done.stdout
    with uproot.open(tmp_path / "out.root") as file:
        out = file[SAMPLE_NAME].arrays(library="pd")
        embedded = json.loads(str(file[PROVENANCE_KEY]))
    assert list(out.columns) == conditions + ["reco_mu_px", "reco_jet_px"] and len(out) == 400
    for name in conditions:
        assert out[name].to_numpy().tobytes() == given[name].to_numpy().tobytes()
    assert recogan("generate", "--run", conditional_run / "run", "--conditions", tmp_path / "given.parquet",
                   "--seed", 5, "--out", tmp_path / "same.parquet").returncode == 0
    pd.testing.assert_frame_equal(out, pd.read_parquet(tmp_path / "same.parquet"))
    sidecar = json.loads((tmp_path / "out.root.provenance.json").read_text())
    assert sidecar == embedded and sidecar["rows"] == 400
    assert sidecar["conditional"]["conditions"] == conditions
    assert sidecar["conditional"]["source"] == str(tmp_path / "given.parquet")
    heldout = pd.read_parquet(conditional_run / "run" / "heldout.parquet")
    assert sidecar["validation"]["n_reference"] == len(heldout) and set(sidecar["validation"]["ks"]) == {
        "reco_mu_px", "reco_jet_px"}
    assert "recogan ensemble --data" not in sidecar["effective_statistics"]  # it takes unconditional runs only
    assert "trains unconditional runs only" in sidecar["effective_statistics"]

    done = recogan("export", "--run", conditional_run / "run", "--n", 100, "--out", tmp_path / "bad.root")
    assert done.returncode == 2 and "is a conditional run" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "bad.root").exists()
