"""The ZDC Poisson-VAE family on a tiny toy: its likelihood against scipy's Poisson, the KL weight's
warm-up, z drawn from the nearest training events' posteriors, a few-step fit through the engine's
recipe, generation from the saved run, and the CLI."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.special import gammaln
from scipy.stats import binomtest, kstest, poisson

from recogan_app.cli import main as recogan
from recogan_app.config import ZDCVAEConfig
from recogan_app.data.zdc import IMAGE_SHAPE, load_zdc
from recogan_app.families import ZDCVAERun, load_run
from recogan_app.families.zdc_vae import KLWarmUp, train_zdc_vae
from recogan_app.models.zdc_poisson import ExpectedLight, PoissonVAE
from recogan_app.run import load_weights

TINY = {"decoder_width": 4, "batch_size": 32, "max_epochs": 2, "snapshot_rows": 50, "eval_draws": 2, "device": "cpu"}


def test_poisson_term_is_the_photon_counts_negative_log_likelihood():
    torch.manual_seed(0)
    module = PoissonVAE(ZDCVAEConfig(decoder_width=4)).eval()
    counts = torch.poisson(torch.full((3, 1, *IMAGE_SHAPE), 0.2))
    conditions = torch.randn(3, 9)
    torch.manual_seed(1)
    terms = module.loss(counts, conditions)
    torch.manual_seed(1)  # the same z: the reparametrised draw the loss made
    mean, log_var = module.encoder(counts, conditions)
    z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
    light = module.generator(z, conditions).exp().detach().double().numpy()
    n = counts.double().numpy()
    reference = -(poisson.logpmf(n, light) + gammaln(n + 1)).reshape(3, -1).sum(1).mean()  # log n! has no parameter
    assert terms["poisson_nll"].item() == pytest.approx(reference, rel=1e-5)
    kl = 0.5 * (mean ** 2 + log_var.exp() - 1 - log_var).sum(1).mean()
    assert terms["loss"].item() == pytest.approx((terms["poisson_nll"] + kl).item(), rel=1e-6)


def test_kl_weight_falls_to_one_over_the_warm_up():
    config = ZDCVAEConfig(kl_start=101.0, kl_warm_up=0.5)
    trainer = SimpleNamespace(time_limit=None, max_epochs=10, steps_per_epoch=10, optimizers=[],
                              module=SimpleNamespace(config=config, kl_weight=None))
    warm_up = KLWarmUp()
    warm_up.on_fit_start(trainer)
    weights = []
    for step in (0, 25, 50, 90):
        warm_up.on_step_end(trainer, SimpleNamespace(step=step))
        weights.append(trainer.module.kl_weight)
    assert weights == pytest.approx([101.0, 51.0, 1.0, 1.0])


def test_latents_are_drawn_from_the_nearest_training_events_posteriors():
    decoder = ExpectedLight(latent_dim=2, width=4, exemplars=2)
    z = decoder.latents(torch.zeros(4000, 9), generator=torch.Generator().manual_seed(0))
    assert kstest(z.flatten().numpy(), "norm").pvalue > 1e-3  # no library yet: N(0, 1)
    conditions = torch.zeros(3, 9)
    conditions[:, 0] = torch.tensor([0.0, 1.0, 5.0])  # events at 0 and 1 are the two nearest to 0.4
    mean = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [50.0, 0.0]])
    log_var = torch.log(torch.tensor([[0.25, 1.0], [0.04, 1.0], [1.0, 1.0]]))
    decoder.remember(conditions, mean, log_var)
    query = torch.zeros(4000, 9)
    query[:, 0] = 0.4
    z = decoder.latents(query, generator=torch.Generator().manual_seed(1)).numpy()
    first = z[:, 0] > 0
    assert np.abs(z[:, 0]).max() < 10  # never the third event's posterior
    assert binomtest(int(first.sum()), len(z), 0.5).pvalue > 1e-3  # either of the two, alike
    assert kstest((z[first, 0] - 5.0) / 0.5, "norm").pvalue > 1e-3  # and from its posterior
    assert kstest((z[~first, 0] + 5.0) / 0.2, "norm").pvalue > 1e-3
    assert kstest(z[:, 1], "norm").pvalue > 1e-3


def test_the_library_is_kept_with_the_weights_and_runs_saved_before_it_load():
    decoder = ExpectedLight(latent_dim=3, width=4)
    decoder.remember(torch.randn(20, 9), torch.randn(20, 3), torch.randn(20, 3))
    state = decoder.state_dict()
    reloaded = ExpectedLight(latent_dim=3, width=4)
    reloaded.load_state_dict(state)
    query = torch.randn(30, 9)
    assert torch.equal(reloaded.latents(query, generator=torch.Generator().manual_seed(2)),
                       decoder.latents(query, generator=torch.Generator().manual_seed(2)))
    before = {k: v for k, v in state.items() if not k.startswith("library_")}
    old = ExpectedLight(latent_dim=3, width=4)
    old.load_state_dict(before)  # strict: a run saved before the library loads all the same
    assert len(old.library_mean) == 0


@pytest.fixture(scope="module")
def run(toy_file, tmp_path_factory):
    return train_zdc_vae(load_zdc(toy_file), ZDCVAEConfig(**TINY), tmp_path_factory.mktemp("runs") / "vae")


def test_training_writes_a_run_that_generates_photon_counts(run):
    assert run.info["kind"] == "zdc-vae" and isinstance(load_run(run.path), ZDCVAERun)
    assert {"conditions.json", "generator.pt", "heldout.npz", "metrics.json"} <= {p.name for p in run.path.iterdir()}
    assert len(run.history()) == 2 and np.isfinite(run.metrics()["ws_mean"])
    assert len(run.module.library_mean) == len(run.module.library_conditions) > 0  # kept by the run
    conditions = run.heldout().conditions[:7]
    images = run.generate(conditions, seed=4)
    assert images.shape == (7, *IMAGE_SHAPE) and images.dtype == np.int32 and images.min() >= 0
    assert np.array_equal(images, run.generate(conditions, seed=4))
    assert run.generate(conditions[:0], seed=4).shape == (0, *IMAGE_SHAPE)
    decoder = ExpectedLight(run.config.latent_dim, run.config.decoder_width)
    decoder.load_state_dict(load_weights(run.path / "generator.pt", "cpu"))  # torch.load(weights_only=True)
    standard = torch.from_numpy(run.scaler.transform(conditions))
    assert np.array_equal(decoder.counts(standard, generator=torch.Generator().manual_seed(9)),
                          run.module.counts(standard, generator=torch.Generator().manual_seed(9)))


def test_the_frozen_decoder_draws_the_same_counts_with_its_activations_in_place():
    torch.manual_seed(3)
    decoder = ExpectedLight(width=4)
    with torch.no_grad():
        decoder.convolutions[-1].bias.fill_(0.5)  # a few photons a pixel, so that the draws say something
    frozen = decoder.fused()
    conditions = torch.randn(40, 9)
    draw = lambda network: network.counts(conditions, generator=torch.Generator().manual_seed(4), chunk_rows=16)
    assert all(layer.inplace for layer in frozen.modules() if isinstance(layer, torch.nn.LeakyReLU))
    assert not any(layer.inplace for layer in decoder.modules() if isinstance(layer, torch.nn.LeakyReLU))
    assert draw(frozen).sum() > 1000 and np.array_equal(draw(frozen), draw(decoder.eval()))


def test_no_light_gives_exactly_empty_responses():
    decoder = ExpectedLight(width=4).eval()
    with torch.no_grad():
        decoder.convolutions[-1].bias.fill_(-30.0)  # 1680 pixels × e^-30: no photon in a million events
        decoder.convolutions[-1].weight.zero_()
    images = decoder.counts(torch.randn(64, 9), generator=torch.Generator().manual_seed(0))
    assert images.shape == (64, *IMAGE_SHAPE) and not images.any()


def test_cli_trains_and_generates_the_vae(toy_file, tmp_path, capsys):
    out = tmp_path / "run"
    settings = sum((["--set", f"{k}={json.dumps(v)}"] for k, v in TINY.items() if k != "device"), [])
    assert recogan(["train", "--kind", "zdc", "--model", "vae", "--data", str(toy_file), "--out", str(out),
                    "--device", "cpu", *settings]) == 0
    assert "held-out test" in capsys.readouterr().out
    assert recogan(["generate", "--run", str(out), "--conditions", str(toy_file), "--out", str(tmp_path / "g.npz"),
                    "--seed", "1"]) == 0
    assert load_zdc(tmp_path / "g.npz").images.shape == load_zdc(toy_file).images.shape
    assert recogan(["generate", "--run", str(out), "--conditions", str(toy_file), "--tree", "conditions",
                    "--out", str(tmp_path / "t.npz")]) == 2
    assert "--tree is an option of tabular runs" in capsys.readouterr().err and not (tmp_path / "t.npz").exists()
    assert recogan(["train", "--kind", "zdc", "--model", "vae", "--profile", "cpu", "--data", str(toy_file),
                    "--out", str(tmp_path / "r")]) == 2
    assert "--profile sizes the GAN" in capsys.readouterr().err
    assert recogan(["train", "--model", "vae", "--data", str(toy_file), "--out", str(tmp_path / "r")]) == 2
    assert "--model vae is a model of --kind zdc" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
