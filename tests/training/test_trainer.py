"""The loop on a tiny stand-in module: hook order, control from another thread, recovery."""

import math
import threading
import time
from types import SimpleNamespace

import pytest
import torch

from recogan_app.training.callbacks import Callback, Checkpoint, EarlyStopping
from recogan_app.training.control import TrainingControl
from recogan_app.training.trainer import ShuffledBatches, Trainer


class Tiny(torch.nn.Module):
    """A 'GAN' whose losses are simple quadratics; ``poison`` makes chosen D losses NaN."""

    def __init__(self, poison=()):
        super().__init__()
        self.generator = torch.nn.Linear(1, 1)
        self.discriminator = torch.nn.Linear(1, 1)
        self.poison, self.calls, self.delay = set(poison), 0, 0.0

    def configure_optimizers(self):
        return (torch.optim.SGD(self.generator.parameters(), lr=0.1),
                torch.optim.SGD(self.discriminator.parameters(), lr=0.1))

    def discriminator_loss(self, x):
        self.calls += 1
        time.sleep(self.delay)
        loss = (self.discriminator(x) ** 2).mean()
        return {"d_loss": loss * math.nan if self.calls in self.poison else loss}

    def generator_loss(self, x):
        return {"g_loss": ((self.generator(torch.ones_like(x)) - 1) ** 2).mean()}


def batches(n=64):
    """Training data: 64 rows, 4 batches of 16 (the tests' Trainer batch size)."""
    return (torch.randn(n, 1),)


def validate_with(scores):
    scores = iter(scores)
    return lambda module: (next(scores), {"mean_ks": 0.1}, {}, 10)


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, trainer):
        self.calls.append("fit_start")

    def on_step_end(self, trainer, event):
        self.calls.append("step")

    def on_snapshot(self, trainer, snapshot):
        self.calls.append("snapshot")

    def on_message(self, trainer, message):
        self.calls.append(f"message:{message.level}")

    def on_status(self, trainer, status):
        self.calls.append(f"status:{status.status}")

    def on_fit_end(self, trainer, result):
        self.calls.append("fit_end")


def test_hook_order():
    rec = Recorder()
    result = Trainer(batch_size=16, max_epochs=2, callbacks=[rec], log_every=2).fit(Tiny(), batches(), validate_with([3, 2]))
    epoch = ["step", "step", "snapshot"]  # 4 batches per epoch, a StepEnd every 2 steps
    assert rec.calls == ["fit_start", "status:running", *epoch, *epoch, "fit_end", "status:finished"]
    assert result.reason == "max_epochs" and result.steps == 8 and result.best_epoch == 1
    assert list(result.history["score"]) == [3, 2]


def test_checkpoint_restores_best_weights_and_early_stopping_stops(tmp_path):
    module = Tiny()
    checkpoint = Checkpoint(tmp_path)
    seen = []

    class Weights(Callback):
        def on_snapshot(self, trainer, snapshot):
            seen.append(module.generator.weight.item())

    result = Trainer(batch_size=16, max_epochs=50, callbacks=[checkpoint, EarlyStopping(patience=2), Weights()]).fit(
        module, batches(), validate_with([5, 1, 4, 3, 2, 0]))
    assert result.reason == "early_stop" and result.epochs == 4
    assert checkpoint.best_epoch == 1 and module.generator.weight.item() == pytest.approx(seen[1])
    saved = torch.load(tmp_path / "best.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["score"] == 1


@pytest.mark.parametrize(("keep", "scores", "kept"), [
    ("best", [5, 1, 4, math.inf], 1),
    ("last", [5, 1, 4, math.inf], 2),  # the last epoch with finite figures, not a worse-scored later one's
    ("last", [5, 1, 4, 3], 3),
    ("best", [math.inf, math.nan], None),  # no finite figures: nothing to keep (the recipe refuses to save)
    ("last", [math.nan, math.inf], None),
])
def test_the_kept_epoch_follows_the_rule_in_the_result_the_weights_and_best_pt(tmp_path, keep, scores, kept):
    module, checkpoint, seen = Tiny(), Checkpoint(tmp_path), []

    class Weights(Callback):
        def on_snapshot(self, trainer, snapshot):
            seen.append(module.generator.weight.item())

    result = Trainer(batch_size=16, max_epochs=len(scores), callbacks=[checkpoint, Weights()], keep=keep).fit(
        module, batches(), validate_with(scores))
    assert result.best_epoch == checkpoint.best_epoch == kept
    if kept is None:
        assert result.best_score is None and not (tmp_path / "best.pt").exists()
        return
    assert result.best_score == scores[kept] and module.generator.weight.item() == pytest.approx(seen[kept])
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == kept


def test_an_unknown_keep_rule_is_refused_before_training():
    with pytest.raises(ValueError, match="keep must be one of"):
        Trainer(batch_size=16, max_epochs=1, keep="median")


def test_nan_loss_rolls_back_with_a_message_and_repeated_nans_diverge():
    rec = Recorder()
    result = Trainer(batch_size=16, max_epochs=1, callbacks=[rec]).fit(Tiny(poison={2}), batches(), validate_with([1.0]))
    assert result.reason == "max_epochs" and result.steps == 3  # the poisoned batch was not applied
    assert "message:warning" in rec.calls
    rec = Recorder()
    result = Trainer(batch_size=16, max_epochs=5, callbacks=[rec]).fit(Tiny(poison=range(1, 100)), batches(),
                                                                validate_with([1.0] * 5))
    assert result.reason == "diverged" and "message:error" in rec.calls and rec.calls[-1] == "status:failed"


def test_time_limit():
    module = Tiny()
    module.delay = 0.01
    result = Trainer(batch_size=16, max_epochs=10_000, time_limit=0.3).fit(module, batches(),
                                                                          validate_with([1.0] * 10_000))
    assert result.reason == "time_limit" and 0.3 <= result.elapsed_s < 1.0


def test_pause_resume_stop_from_another_thread():
    module, control, rec = Tiny(), TrainingControl(), Recorder()
    module.delay = 0.002
    trainer = Trainer(batch_size=16, max_epochs=100_000, control=control, callbacks=[rec])
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", trainer.fit(module, batches(), validate_with([1.0] * 100_000))))
    thread.start()
    time.sleep(0.2)
    control.pause()
    time.sleep(0.2)
    calls_paused = module.calls
    time.sleep(0.3)
    assert module.calls == calls_paused, "steps were taken while paused"
    assert "status:paused" in rec.calls
    control.resume()
    time.sleep(0.2)
    assert module.calls > calls_paused
    control.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and out["r"].reason == "stopped"
    assert rec.calls.count("status:running") >= 2 and rec.calls[-1] == "status:stopped"


def test_stop_while_paused_ends_the_fit():
    module, control = Tiny(), TrainingControl()
    module.delay = 0.002
    trainer = Trainer(batch_size=16, max_epochs=100_000, control=control)
    thread = threading.Thread(target=trainer.fit, args=(module, batches(), validate_with([1.0] * 100_000)))
    thread.start()
    time.sleep(0.1)
    control.pause()
    time.sleep(0.1)
    control.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_shuffled_batches_cover_every_row_once_per_epoch():
    data = torch.arange(10.0).unsqueeze(1)
    b = ShuffledBatches(data, batch_size=3, generator=torch.Generator().manual_seed(0))
    rows = torch.cat([x for (x,) in b]).squeeze(1)
    assert len(b) == 3 and len(set(rows.tolist())) == 9  # the incomplete batch is dropped
    assert len(ShuffledBatches(data, batch_size=100, generator=torch.Generator())) == 1


def test_paused_time_does_not_count_against_the_command_deadline():
    from recogan_app.training.control import Deadline
    from recogan_app.training.events import StatusChange

    deadline = Deadline(10.0)
    deadline.on_status(None, StatusChange("paused"))
    time.sleep(0.5)
    deadline.on_status(None, StatusChange("running"))
    assert 9.8 < deadline.left() <= 10.0 and Deadline(None).fit_seconds() is None
    assert deadline.fit_seconds() == pytest.approx(deadline.left() - 1.5, abs=0.05)  # 15 % kept for evaluation


def test_time_limit_leaves_room_for_the_closing_snapshot(monkeypatch):
    """On a clock that a batch moves by 0.1 s and a snapshot by 0.5 s: the last epoch is cut so that
    its snapshot ends within the limit (it used to start at the limit and end 0.5 s past it)."""
    clock = [0.0]
    monkeypatch.setattr("recogan_app.training.trainer.time", SimpleNamespace(perf_counter=lambda: clock[0]))

    class Ticking(Tiny):
        def discriminator_loss(self, x):
            clock[0] += 0.1
            return super().discriminator_loss(x)

    def validation(module):
        clock[0] += 0.5
        return 1.0, {"mean_ks": 0.1}, {}, 10

    result = Trainer(batch_size=16, max_epochs=10_000, time_limit=2.0).fit(Ticking(), batches(), validation)
    assert result.reason == "time_limit" and result.epochs == 2 and result.elapsed_s == pytest.approx(1.8)


def test_a_likelihood_module_trains_with_one_optimiser_to_the_maximum_likelihood():
    """A unit-variance Gaussian's mean by maximum likelihood: the closed form is the sample mean."""

    class GaussianMean(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.generator = torch.nn.Linear(1, 1, bias=False)  # holds the mean (the run keeps `generator`)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.05)

        def loss(self, x):
            return {"loss": 0.5 * ((x - self.generator.weight[0]) ** 2).mean()}

    data = torch.randn(256, 1, generator=torch.Generator().manual_seed(1)) + 3.0
    module = GaussianMean()
    result = Trainer(batch_size=256, max_epochs=400, log_every=1000).fit(module, (data,), validate_with([1.0] * 400))
    assert result.reason == "max_epochs" and result.steps == 400
    assert module.generator.weight.item() == pytest.approx(data.mean().item(), abs=1e-3)
