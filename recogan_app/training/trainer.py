"""The training loop: steps, snapshots, control and recovery; nothing model-specific.

The loop owns the device (it moves the module and the training tensors there), the batches, the
optimisers, the clock and the pause/stop switches. The module owns the networks and their losses:
an adversarial one (e.g. :class:`~recogan_app.models.tabular.TabularGAN`) returns the generator's
and the discriminator's optimisers from ``configure_optimizers`` and provides
``discriminator_loss(*batch)`` and ``generator_loss(*batch)``; a likelihood one returns a single
optimiser and provides ``loss(*batch)``; each returns named terms with the total under ``d_loss``,
``g_loss`` or ``loss`` (conditional models take their conditions from the batch).
A validation function turns the module into a :class:`Snapshot` at the end of every epoch.
The loop never prints or plots: it emits events to its callbacks.

After every snapshot the loop writes ``last.pt`` in its checkpoint folder: the module, the
optimisers, epoch, step, elapsed time, every random state (torch, CUDA, numpy, python and the
batch order's generator), the history and each callback's state. ``fit(..., resume=True)`` starts
from it as if never interrupted: a kill loses at most the epoch in progress, and the history
continues without gap or duplicate. Tensors and plain values only, loaded with
``weights_only=True``.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recogan_app.files import write_atomic
from recogan_app.training.callbacks import KEEP, Callback, replaces
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


def plain(value):
    """``value`` with numpy scalars made Python numbers, so that ``weights_only`` loading accepts it."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


Validation = Callable[[torch.nn.Module], tuple[float, dict, dict, int]]
"""``validate(module) -> (score, metrics, details, sample_size)``; lower score is better."""


class Trainer:
    """Alternating discriminator/generator optimisation with events, control and recovery.

    Parameters
    ----------
    device : torch.device or str
        Where the module and its training tensors live while it trains.
    max_epochs : int
        Passes over the training batches at most.
    batch_size : int
        Rows per batch (see :class:`ShuffledBatches`).
    time_limit : float, optional
        Seconds of active training at most (paused time does not count), the closing snapshot
        included: the last epoch is cut early enough to leave it the time the previous one took.
        A resumed fit counts the seconds trained before the interruption and keeps the
        interrupted fit's limit when that is sooner.
    discriminator_steps : int
        Discriminator updates per generator update.
    callbacks : sequence of Callback
        Called in order at each hook.
    control : TrainingControl, optional
        Pause/resume/stop switches shared with another thread.
    log_every : int
        Emit a :class:`StepEnd` every this many steps (losses are averaged over them).
    checkpoints : path, optional
        Folder of ``last.pt``, the state a resumed fit starts from (none written without it).
    snapshot_s : float
        Expected seconds of a snapshot until one is measured: room the time limit keeps for the
        first one (a ZDC snapshot generates thousands of images).
    keep : str
        The epoch the fit's result names (and a :class:`~recogan_app.training.callbacks.Checkpoint`
        restores): ``"best"`` snapshot score or ``"last"`` finite one
        (:func:`~recogan_app.training.callbacks.replaces`).
    """

    def __init__(self, *, device: torch.device | str = "cpu", max_epochs: int, batch_size: int,
                 time_limit: float | None = None, discriminator_steps: int = 1, callbacks: Sequence[Callback] = (),
                 control: TrainingControl | None = None, log_every: int = 10, checkpoints=None,
                 snapshot_s: float = 0.0, keep: str = "best"):
        if keep not in KEEP:  # fails here, not after the fit
            raise ValueError(f"keep must be one of {KEEP}, got {keep!r}")
        self.keep = keep
        self.device = torch.device(device)
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.time_limit = time_limit
        self.discriminator_steps = discriminator_steps
        self.callbacks = list(callbacks)
        self.control = control or TrainingControl()
        self.log_every = log_every
        self.checkpoints = None if checkpoints is None else Path(checkpoints)
        self.snapshot_s = snapshot_s
        self.module: torch.nn.Module | None = None
        self.optimizers: tuple = ()
        self._batches = None  # what fit iterates: its generator's state goes into the checkpoint
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

    @property
    def steps_per_epoch(self) -> int:
        """Batches of one epoch of the fit in progress."""
        return len(self._batches)

    # -- the loop -------------------------------------------------------------------------------
    def fit(self, module: torch.nn.Module, data: Sequence[torch.Tensor], validate: Validation, *,
            shuffle: torch.Generator | None = None, announce: str | None = None, resume: bool = False) -> FitResult:
        """Train ``module`` on batches of the rows of ``data`` (tensors of equal length, on any
        device), drawn in the order ``shuffle`` gives (a CPU generator; torch's default seed when
        None), until a limit, a stop or divergence.
        ``announce`` is a first message for the observers (what is trained on what). With
        ``resume``, start from the checkpoint folder's ``last.pt`` when there is one."""
        active, started = 0.0, time.perf_counter()  # the limit counts the setup and observers' start too
        module = module.to(self.device)
        batches = ShuffledBatches(*(t.to(self.device) for t in data), batch_size=self.batch_size,
                                 generator=shuffle or torch.Generator())
        self.module, self._batches, self.history, self._stop_reason = module, batches, [], None
        optimizers = module.configure_optimizers()
        self.optimizers = tuple(optimizers) if isinstance(optimizers, tuple | list) else (optimizers,)
        self._emit("on_fit_start")
        if announce:
            self._emit("on_message", Message(announce))
        progress = {"epoch": -1, "step": 0, "elapsed_s": 0.0, "time_limit_s": self.time_limit, "sums": {},
                    "counts": {}}
        if resume and self.checkpoints is not None and (self.checkpoints / "last.pt").is_file():
            progress = self._load_checkpoint(progress)
            self._emit("on_message", Message(f"resumed after epoch {progress['epoch'] + 1} (step {progress['step']:,}, "
                                             f"{progress['elapsed_s']:.0f} s trained before)"))
        self._emit("on_status", StatusChange("running"))
        last_good = self._full_state()
        before, limit = progress["elapsed_s"], progress["time_limit_s"]
        step, rollbacks, since_snapshot = progress["step"], 0, 0
        closing = self.snapshot_s  # seconds the last snapshot and checkpoint took: the limit keeps room for the next
        sums, counts = progress["sums"], progress["counts"]  # losses since the last StepEnd, and their counts
        for epoch in range(progress["epoch"] + 1, self.max_epochs):
            if self._stop_reason:  # a resumed fit that had already decided to stop
                break
            for batch in batches:
                if self.control.paused:
                    active += time.perf_counter() - started
                    self._emit("on_status", StatusChange("paused"))
                    self.control.wait_while_paused()
                    self._emit("on_status", StatusChange("running"))
                    started = time.perf_counter()
                if self.control.stop_requested:
                    self.request_stop("stopped")
                if limit is not None and before + active + time.perf_counter() - started + closing >= limit:
                    self.request_stop("time_limit")
                if self._stop_reason:
                    break
                values = self._update(module, batch, step)
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
                elapsed = before + active + time.perf_counter() - started
                last_good = self._snapshot(validate, epoch, step, elapsed) or last_good
                since_snapshot = 0
                self._save_checkpoint({"epoch": epoch, "step": step, "elapsed_s": elapsed, "time_limit_s": limit,
                                       "sums": sums, "counts": counts})
                closing = before + active + time.perf_counter() - started - elapsed
            if self._stop_reason:
                break
        elapsed = before + active + time.perf_counter() - started
        reason = self._stop_reason or "max_epochs"
        best = None
        for row in self.history:
            if replaces(row["score"], math.inf if best is None else best["score"], self.keep):
                best = row
        # epochs that trained at least one step, each with its snapshot (a stop at an epoch's start adds none)
        result = FitResult(reason=reason, epochs=len(self.history), steps=step, elapsed_s=elapsed,
                           best_score=best["score"] if best else None,
                           best_epoch=best["epoch"] if best else None,
                           history=pd.DataFrame(self.history))
        self._emit("on_fit_end", result)
        self._emit("on_status", StatusChange({"diverged": "failed", "stopped": "stopped"}.get(reason, "finished")))
        return result

    # -- internals ------------------------------------------------------------------------------
    def _snapshot(self, validate: Validation, epoch: int, step: int, elapsed: float) -> dict | None:
        score, metrics, details, size = validate(self.module)
        snapshot = Snapshot(epoch=epoch, step=step, elapsed_s=elapsed, score=score,
                            metrics=metrics, sample_size=size, details=details)
        self.history.append({"epoch": epoch, "step": step, "elapsed_s": elapsed, "score": score, **metrics})
        self._emit("on_snapshot", snapshot)
        return self._full_state() if math.isfinite(score) else None

    def _update(self, module, batch, step: int) -> dict[str, float] | None:
        """One training step: a discriminator update (and every ``discriminator_steps`` a generator
        update) for an adversarial module, one update of ``module.loss`` for a likelihood one."""
        if len(self.optimizers) == 1:
            return self._optimise(self.optimizers[0], module.loss(*batch), "loss")
        opt_g, opt_d = self.optimizers
        values = self._optimise(opt_d, module.discriminator_loss(*batch), "d_loss")
        if values is not None and (step + 1) % self.discriminator_steps == 0:
            g_values = self._optimise(opt_g, module.generator_loss(*batch), "g_loss")
            values = None if g_values is None else {**values, **g_values}
        return values

    def _optimise(self, optimizer, terms: dict[str, torch.Tensor], total: str) -> dict[str, float] | None:
        """One update on ``terms[total]``; None (and a message, no update) if any term is not finite."""
        values = {k: float(v.detach()) for k, v in terms.items()}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            where = f"epoch {self.history[-1]['epoch'] + 1}" if self.history else "the start"
            self._emit("on_message", Message(
                f"non-finite loss ({', '.join(bad)}): rolled back to the last good checkpoint ({where})",
                "warning"))
            return None
        optimizer.zero_grad(set_to_none=True)
        terms[total].backward()
        optimizer.step()
        return values

    def _full_state(self) -> dict:
        return {"model": self.module_state(), "optimizers": [copy.deepcopy(o.state_dict()) for o in self.optimizers]}

    def _save_checkpoint(self, progress: dict) -> None:
        """``last.pt``: everything :meth:`_load_checkpoint` needs to go on from here (fsynced, renamed)."""
        if self.checkpoints is None:
            return
        numpy_state = np.random.get_state()
        state = {
            "format": 2, **plain(progress), "stop_reason": self._stop_reason, "history": plain(self.history),
            "model": self.module_state(), "optimizers": [o.state_dict() for o in self.optimizers],
            "callbacks": {type(c).__name__: plain(c.state_dict()) for c in self.callbacks},
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
                    "batches": self._batches.generator.get_state(),
                    "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)),
                              *numpy_state[2:]],
                    "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]]},
        }
        write_atomic(self.checkpoints / "last.pt", lambda tmp: torch.save(state, tmp))

    def _load_checkpoint(self, progress: dict) -> dict:
        """Restore what :meth:`_save_checkpoint` wrote; returns the loop's progress."""
        state = torch.load(self.checkpoints / "last.pt", map_location="cpu", weights_only=True)
        self._restore(state)
        for callback in self.callbacks:
            callback.load_state_dict(state["callbacks"].get(type(callback).__name__, {}))
        self.history, self._stop_reason = list(state["history"]), state["stop_reason"]
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        if rng["batches"] is not None:
            self._batches.generator.set_state(rng["batches"])
        name, keys, *rest = rng["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
        version, internal, gauss = rng["python"]
        random.setstate((version, tuple(internal), gauss))
        saved_limit = state["time_limit_s"]
        if self.time_limit is not None:  # this fit's seconds on top of those trained, never beyond the saved limit
            mine = state["elapsed_s"] + self.time_limit
            saved_limit = mine if saved_limit is None else min(saved_limit, mine)
        return {key: state[key] for key in progress} | {"time_limit_s": saved_limit}

    def _restore(self, state: dict) -> None:
        """Weights and optimiser states back from :meth:`_full_state` or a checkpoint (copied: the
        optimisers would otherwise update the kept state in place)."""
        self.module.load_state_dict(state["model"])
        for opt, opt_state in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(copy.deepcopy(opt_state))

    def _emit(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)
