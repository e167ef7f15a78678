"""ZDC training end to end on a tiny toy: aux-regressor pretraining, a few-step fit that writes a
run, generation from it, and the CLI (including refusals with exit code 2)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from recogan_app.cli import main as recogan
from recogan_app.config import ZDCConfig
from recogan_app.data import toy_zdc
from recogan_app.data.zdc import IMAGE_SHAPE, counts_from_log1p, load_zdc
from recogan_app.metrics.zdc import five_channel_ws, hottest_pixel
from recogan_app.families import ZDCRun, load_run
from recogan_app.families.zdc import ZDCValidation, draw_seeds, pretrain_aux_regressor, train_zdc
from recogan_app.models.zdc import Generator
from recogan_app.run import load_weights

TINY = {"generator_channels": 4, "batch_size": 32, "max_epochs": 2, "aux_epochs": 1, "snapshot_rows": 50,
        "eval_draws": 2, "device": "cpu"}
QUICK = {**TINY, "max_epochs": 1, "lambda_aux": 0}  # no aux pretraining: the CLI test checks wiring only


def test_aux_regressor_learns_the_hottest_pixel():
    torch.manual_seed(0)
    sample = toy_zdc.generate(2400, seed=2)
    bright = sample.subset(sample.photon_sums >= 20)
    images = torch.from_numpy(np.log1p(bright.images).astype(np.float32)[:, None])
    target = torch.from_numpy(hottest_pixel(bright.images).astype(np.float32))
    order = np.random.default_rng(0).permutation(len(bright))
    train, test = order[len(bright) // 4:], order[:len(bright) // 4]
    aux, epochs = pretrain_aux_regressor(images[train], target[train], epochs=4, lr=3e-3, batch_size=64, seed=0)
    assert epochs == 4
    with torch.inference_mode():
        error = (aux(images[test]) - target[test]).norm(dim=1).mean().item()
    guess = (target[train].mean(dim=0) - target[test]).norm(dim=1).mean().item()  # always the mean position
    assert error < 0.4 * guess, (error, guess)  # 1.7 px against 6.3 px when written


@pytest.fixture(scope="module")
def run(toy_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "zdc"
    return train_zdc(load_zdc(toy_file), ZDCConfig(**TINY), out)


def test_profiles_fill_only_the_sizes_left_open():
    config = ZDCConfig(generator_channels=24)
    assert config.for_device(cuda=False).profile == "cpu" and config.for_device(cuda=True).profile == "gpu"
    paper = config.updated(profile="seed001").for_device(cuda=False)
    assert (paper.profile, paper.generator_channels, paper.batch_size, paper.lr_generator, paper.aux_epochs) == (
        "seed001", 24, 128, 1e-4, 10)  # the width set explicitly wins, the rest are seed 001's
    assert paper.for_device(cuda=True).to_dict() == paper.to_dict()  # resolved once, for good


def test_training_writes_a_zdc_run(run):
    names = {p.name for p in run.path.iterdir()}
    assert {"run.json", "config.json", "conditions.json", "generator.pt", "history.parquet", "steps.parquet",
            "heldout.npz", "metrics.json", "checkpoints"} <= names
    assert run.info["kind"] == "zdc" and run.info["aux_regressor"]["test_error_px"] >= 0
    profile = json.loads((run.path / "run.json").read_text())["profile"]  # the sizes it ran with
    assert profile["name"] == "cpu" and profile["snapshot_rows"] == 50 and profile["lr_generator"] == 2e-3
    assert run.config.profile == "cpu" and run.config.lr_generator == 2e-3
    history = run.history()
    assert len(history) == 2 and {"ws_mean", "ws_ch5", "empty_generated", "hottest_pixel_error"} <= set(history)
    metrics = run.metrics()
    assert metrics["sample_size"] == len(run.heldout()) and metrics["draws"] == 2
    assert np.isfinite(metrics["ws_mean"])


def test_run_generates_one_image_per_condition_row(run):
    assert isinstance(load_run(run.path), ZDCRun)
    conditions = run.heldout().conditions[:7]
    images = run.generate(conditions, seed=4)
    assert images.shape == (7, *IMAGE_SHAPE) and images.dtype == np.int32 and images.min() >= 0
    assert np.array_equal(images, run.generate(conditions, seed=4))


def test_cli_train_and_generate(toy_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert recogan(["train", "--kind", "zdc", "--model", "gan", "--data", str(toy_file), "--out", str(out),
                    "--device", "cpu", "--profile", "seed001",
                    *sum((["--set", f"{k}={json.dumps(v)}"] for k, v in QUICK.items() if k != "device"), [])]) == 0
    assert "profile seed001 (generator 4 channels, batch 32, learning rates 0.0001/1e-05" in capsys.readouterr().out
    assert recogan(["generate", "--run", str(out), "--conditions", str(toy_file), "--out", str(tmp_path / "g.npz"),
                    "--seed", "1"]) == 0
    generated, source = load_zdc(tmp_path / "g.npz"), load_zdc(toy_file)
    assert generated.images.shape == source.images.shape
    assert np.array_equal(generated.conditions, source.conditions)


def test_cli_refusals_exit_2(run, toy_file, tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", images=np.zeros((5, 30, 56)), conditions=np.zeros((5, 9)))
    assert recogan(["train", "--kind", "zdc", "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "r")]) == 2
    assert "expected (N, 56, 30)" in capsys.readouterr().err
    np.savez(tmp_path / "cond.npz", Energy=np.ones(3))
    assert recogan(["generate", "--run", str(run.path), "--conditions", str(tmp_path / "cond.npz"),
                    "--out", str(tmp_path / "g.npz")]) == 2
    assert "column 'Vx': condition not found" in capsys.readouterr().err
    (tmp_path / "c.pkl").write_bytes(b"not read")
    assert recogan(["generate", "--run", str(run.path), "--conditions", str(tmp_path / "c.pkl"),
                    "--out", str(tmp_path / "g.npz")]) == 2
    assert "c.pkl: is a pickle file, which is never read" in capsys.readouterr().err
    for extra in ([], ["--n", "5"], ["--n", "5", "--conditions", str(toy_file)]):  # the run's kind decides the message
        assert recogan(["generate", "--run", str(run.path), "--out", str(tmp_path / "g.parquet"), *extra]) == 2
        assert "is a ZDC run: it generates one image per row of --conditions FILE" in capsys.readouterr().err
    assert recogan(["train", "--kind", "zdc", "--model", "gan", "--data", str(toy_file), "--out", str(tmp_path / "r"),
                    "--set", "lambda_aux=-1"]) == 2
    assert recogan(["train", "--data", str(toy_file), "--out", str(tmp_path / "r"), "--profile", "cpu"]) == 2
    assert "--profile sizes a --kind zdc training" in capsys.readouterr().err
    assert not (tmp_path / "g.npz").exists() and not (tmp_path / "r").exists()


def test_snapshot_scores_a_generator_alike_every_time_on_its_draws(run):
    """The monitor score picks the checkpoint: the same generator scores the same at every epoch
    (the same conditions and noise draws), and the score is the mean over ``snapshot_draws`` draws."""
    config, events = run.config.updated(snapshot_draws=3), run.heldout()
    generator = Generator(config.latent_dim, config.generator_channels)
    generator.load_state_dict(load_weights(run.path / "generator.pt", "cpu"))
    trained = SimpleNamespace(generator=generator)  # what the snapshot reads of the training module
    score, metrics, details, rows = ZDCValidation(events, run.scaler, config)(trained)
    again = ZDCValidation(events, run.scaler, config)(trained)  # a new snapshot: the seeds come from the config
    assert (again[0], again[1]) == (score, metrics) and rows == len(events)
    standard = torch.from_numpy(run.scaler.transform(events.conditions))
    draws = [counts_from_log1p(generator.sample(standard, generator=torch.Generator().manual_seed(seed)).numpy()[:, 0])
             for seed in draw_seeds(config.seed, 3, "snapshot")]  # the unfused network: the same images
    assert len({d.tobytes() for d in draws}) == 3 and np.array_equal(details["gallery_generated"], draws[0][:8])
    assert score == pytest.approx(five_channel_ws(events.images, draws)["mean"], rel=1e-6)
