"""The training loop: steps, snapshots, control and recovery; nothing model-specific.

The loop owns the device, the optimisers, the clock and the pause/stop switches. The module
(e.g. :class:`~recogan_app.models.tabular.TabularGAN`) owns the networks and their losses and
provides ``configure_optimizers``, ``discriminator_loss(*batch)`` and ``generator_loss(*batch)``
(conditional models take their conditions from the batch; unconditional ones only its size).
A validation function turns the module into a :class:`Snapshot` at the end of every epoch.
The loop never prints or plots: it emits events to its callbacks.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence

import pandas as pd
import torch

from recogan_app.training.callbacks import Callback
from recogan_app.training.control import TrainingControl
from recogan_app.training.events import FitResult, Message, Snapshot, StatusChange, StepEnd

MAX_ROLLBACKS = 5  # consecutive non-finite losses tolerated before the fit is declared diverged


class ShuffledBatches:
    """Batches of rows of tensors that live on the training device, reshuffled every epoch.

    The last incomplete batch is dropped (batch norm needs more than one row); a data set smaller
    than a batch gives one batch of all rows.
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, generator: torch.Generator):
        self.tensors = tensors
        self.n = tensors[0].shape[0]
        self.batch_size = min(batch_size, self.n)
        self.generator = generator

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = torch.randperm(self.n, generator=self.generator).to(self.tensors[0].device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            pick = order[start:start + self.batch_size]
            yield tuple(t[pick] for t in self.tensors)


Validation = Callable[[torch.nn.Module], tuple[float, dict, dict, int]]
"""``validate(module) -> (score, metrics, details, sample_size)``; lower score is better."""


class Trainer:
    """Alternating discriminator/generator optimisation with events, control and recovery.

    Parameters
    ----------
    max_epochs : int
        Passes over the training batches at most.
    time_limit : float, optional
        Seconds of active training at most (paused time does not count).
    discriminator_steps : int
        Discriminator updates per generator update.
    callbacks : sequence of Callback
        Called in order at each hook.
    control : TrainingControl, optional
        Pause/resume/stop switches shared with another thread.
    log_every : int
        Emit a :class:`StepEnd` every this many steps (losses are averaged over them).
    """

    def __init__(self, *, max_epochs: int, time_limit: float | None = None, discriminator_steps: int = 1,
                 callbacks: Sequence[Callback] = (), control: TrainingControl | None = None,
                 log_every: int = 10):
        self.max_epochs = max_epochs
        self.time_limit = time_limit
        self.discriminator_steps = discriminator_steps
        self.callbacks = list(callbacks)
        self.control = control or TrainingControl()
        self.log_every = log_every
        self.module: torch.nn.Module | None = None
        self.optimizers: tuple = ()
        self.history: list[dict] = []
        self._stop_reason: str | None = None

    # -- what callbacks may call ------------------------------------------------------------------
    def request_stop(self, reason: str, why: str | None = None) -> None:
        """Finish after the current step (used by early stopping)."""
        if self._stop_reason is None:
            self._stop_reason = reason
            if why:
                self._emit("on_message", Message(f"stopping: {why}"))

    def module_state(self) -> dict:
        """A detached copy of the module's weights (for checkpoints)."""
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    # -- the loop -------------------------------------------------------------------------------
    def fit(self, module: torch.nn.Module, batches, validate: Validation, *, announce: str | None = None) -> FitResult:
        """Train ``module`` on ``batches`` until a limit, a stop or divergence; ``announce`` is a first
        message for the observers (what is trained on what)."""
        self.module, self.history, self._stop_reason = module, [], None
        self.optimizers = module.configure_optimizers()
        opt_g, opt_d = self.optimizers
        self._emit("on_fit_start")
        if announce:
            self._emit("on_message", Message(announce))
        self._emit("on_status", StatusChange("running"))
        last_good = self._full_state()
        active, started = 0.0, time.perf_counter()
        step, epoch, rollbacks, since_snapshot = 0, 0, 0, 0
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for epoch in range(self.max_epochs):
            for batch in batches:
                if self.control.paused:
                    active += time.perf_counter() - started
                    self._emit("on_status", StatusChange("paused"))
                    self.control.wait_while_paused()
                    self._emit("on_status", StatusChange("running"))
                    started = time.perf_counter()
                if self.control.stop_requested:
                    self.request_stop("stopped")
                if self.time_limit is not None and active + time.perf_counter() - started >= self.time_limit:
                    self.request_stop("time_limit")
                if self._stop_reason:
                    break
                values = self._optimise(opt_d, module.discriminator_loss(*batch), "d_loss")
                if values is not None and (step + 1) % self.discriminator_steps == 0:
                    g_values = self._optimise(opt_g, module.generator_loss(*batch), "g_loss")
                    values = None if g_values is None else {**values, **g_values}
                if values is None:
                    rollbacks += 1
                    self._restore(last_good)
                    if rollbacks > MAX_ROLLBACKS:
                        self._emit("on_message", Message(
                            f"non-finite loss {rollbacks} times in a row: training diverged; "
                            "lower the learning rates or the λ weights", "error"))
                        self.request_stop("diverged")
                    continue
                rollbacks = 0
                step += 1
                since_snapshot += 1
                for k, v in values.items():
                    sums[k], counts[k] = sums.get(k, 0.0) + v, counts.get(k, 0) + 1
                if step % self.log_every == 0:
                    self._emit("on_step_end", StepEnd(step, epoch, {k: v / counts[k] for k, v in sums.items()}))
                    sums, counts = {}, {}
            if since_snapshot:
                last_good = self._snapshot(validate, epoch, step, active + time.perf_counter() - started) or last_good
                since_snapshot = 0
            if self._stop_reason:
                break
        elapsed = active + time.perf_counter() - started
        reason = self._stop_reason or "max_epochs"
        best = min(self.history, key=lambda row: row["score"]) if self.history else None
        # epochs that trained at least one step, each with its snapshot (a stop at an epoch's start adds none)
        result = FitResult(reason=reason, epochs=len(self.history), steps=step, elapsed_s=elapsed,
                           best_score=best["score"] if best else None,
                           best_epoch=best["epoch"] if best else None,
                           history=pd.DataFrame(self.history))
        self._emit("on_fit_end", result)
        self._emit("on_status", StatusChange("failed" if reason == "diverged" else "finished"))
        return result

    # -- internals ------------------------------------------------------------------------------
    def _snapshot(self, validate: Validation, epoch: int, step: int, elapsed: float) -> dict | None:
        score, metrics, details, size = validate(self.module)
        snapshot = Snapshot(epoch=epoch, step=step, elapsed_s=elapsed, score=score,
                            metrics=metrics, sample_size=size, details=details)
        self.history.append({"epoch": epoch, "step": step, "elapsed_s": elapsed, "score": score, **metrics})
        self._emit("on_snapshot", snapshot)
        return self._full_state() if math.isfinite(score) else None

    def _optimise(self, optimizer, terms: dict[str, torch.Tensor], total: str) -> dict[str, float] | None:
        """One update on ``terms[total]``; None (and a message, no update) if any term is not finite."""
        values = {k: float(v.detach()) for k, v in terms.items()}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            where = f"epoch {self.history[-1]['epoch']}" if self.history else "the start"
            self._emit("on_message", Message(
                f"non-finite loss ({', '.join(bad)}): rolled back to the last good checkpoint ({where})",
                "warning"))
            return None
        optimizer.zero_grad(set_to_none=True)
        terms[total].backward()
        optimizer.step()
        return values

    def _full_state(self) -> dict:
        return {"module": self.module_state(), "optimizers": [copy.deepcopy(o.state_dict()) for o in self.optimizers]}

    def _restore(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        for opt, opt_state in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(copy.deepcopy(opt_state))

    def _emit(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)
