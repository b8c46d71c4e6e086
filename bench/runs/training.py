"""One run: train a lifter, select its checkpoint on a validation split, evaluate it on the test subject, record.

``Run`` is a callable whose state lives on ``self`` (in the spirit of submitit's Checkpointable jobs): calling it
resumes from the run folder's last complete epoch if there is one, so an interrupted run, restarted, ends with
exactly the metrics of an uninterrupted one. Every file is written atomically; ``record.json`` appears only when the
run is finished.

Run folder (``<out>/<run-id>/``): ``config.yaml`` (the resolved configuration), ``log.txt``, ``last.pt`` (state after
the last complete epoch), ``best.pt`` (weights of the selected epoch) and ``record.json``; ``run.lock`` while a
process writes it (one writer per folder, ``bench.runs.locks``).

A run never goes on from state it cannot trust: a non-finite training loss stops it (the previous epoch's ``last.pt``
stays), an epoch whose validation WB is not finite is never selected, and a damaged ``last.pt``, ``best.pt`` or
``record.json`` is named with what is wrong. ``restart=True`` (``bench run --restart``) moves damaged files aside and
starts over; a missing or stale ``best.pt`` is rebuilt from ``last.pt`` when ``last.pt`` holds the selected epoch.

A run over several processes (``config["devices"]``, see ``bench.runs.processes``) is the same run: every process
trains on its slice of each global batch of ``train.batch_size`` windows and evaluates every ``devices``-th test
batch; only the leader (rank 0) takes the lock and writes the folder (``bench.runs.folder``), and ``last.pt`` holds
every process's random states, so that a killed run resumes on the same number of processes exactly.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from baselines.base import count_parameters
from baselines.diffusion import shared_draws
from bench.data.h3wb import SPLITS, load_h3wb
from bench.data.windows import TestWindows, TrainWindows, WindowSpec, shard
from bench.errors import CheckpointError, ConfigError, RunStateError, TrainingError
from bench.runs import config as cfg
from bench.runs.baseline import mean_pose_baseline
from bench.runs.checkpoints import model_name
from bench.runs.config_rules import is_finite_number
from bench.runs.evaluation import autocast, evaluate, pair_name, to_device
from bench.runs.folder import RunFolder, run_logger
from bench.runs.lifters import build_from_config, compile_networks
from bench.runs.locks import RunLock
from bench.runs.processes import SINGLE, Processes, derived_seed, rank_seed
from bench.runs.records import data_source, run_splits, write_record
from bench.runs.schedule import learning_rate, set_bn_momentum, set_learning_rate
from bench.runs.state import RESTART_HINT, Damaged, fresh_state, load_last, plain_rng_state, read_best, read_record
from bench.runs.timing import EpochTimer

VALIDATION_PAIR = (1, 1)
"""Checkpoint selection uses one hypothesis and one step: cheap, and the same for every lifter."""
LOSS_DISPLAY_EVERY = 20
"""Training steps between progress-bar loss updates (each update waits for the device)."""
TRAINING_DRAWS = 1
"""The key that sets the diffusion's training draws (``derived_seed(seed, step, TRAINING_DRAWS)``) apart from the
other streams derived from the run's seed (per process, per evaluation batch)."""


class Run:
    """Train and evaluate one configuration in ``out/<run-id>``.

    Args:
        config: a resolved configuration (``bench.runs.config.resolve``).
        out: the folder holding run folders (``results/runs`` by default).
        progress: show tqdm progress bars.
        restart: move damaged run files aside (``NAME.damaged-<time>``) and go on from what is intact, or from
            scratch, instead of stopping with an error naming them.
        trust_checkpoint: load the run's checkpoints even when they need more than tensors, numbers and plain
            containers (``weights_only=False``: such a file can run code; only for files of a trusted origin).
        lock_wait_s: how long to wait for another process writing the run folder to finish (0: refuse at once).
        processes: this process's place among the processes of a run over several devices (``config["devices"]``
            of them, see :mod:`bench.runs.processes`); the leader alone writes the run folder.
    """

    def __init__(self, config: dict, out: str | Path = "results/runs", progress: bool = False, restart: bool = False,
                 trust_checkpoint: bool = False, lock_wait_s: float = 0.0, log_level: str = "info",
                 processes: Processes = SINGLE):
        if processes.world != config["devices"]:
            raise ConfigError(f"devices is {config['devices']}, but the run was given {processes.world} processes")
        self.config = config
        self.run_id = cfg.run_id(config)
        self.folder = Path(out) / self.run_id
        self.processes = processes
        self.progress = progress and processes.leader
        self.device = processes.device(config["device"])
        self.restart, self.trust_checkpoint, self.lock_wait_s = restart, trust_checkpoint, lock_wait_s
        self.log_level = log_level
        self.model_name = model_name(config)
        self.writer = RunFolder(self.folder, self.run_id, self.model_name, restart, trust_checkpoint) \
            if processes.leader else None

    @property
    def record_path(self) -> Path:
        return self.folder / "record.json"

    @property
    def pairs(self) -> list[str]:
        """The (H, K) pairs a finished record holds metrics for."""
        return [pair_name(h, k) for h, k in self.config["eval"]["hypotheses_steps"]]

    def __call__(self) -> dict:
        """Run to completion (resuming if a checkpoint exists) and return the record."""
        record, _ = read_record(self.record_path, self.pairs)
        if record is not None:
            return record
        self.processes.start(self.device)
        if not self.processes.leader:
            return self._follow()
        self.writer.create()
        with RunLock(self.folder, wait_s=self.lock_wait_s):
            record = self.writer.complete_record(self.pairs)
            if record is not None:   # finished by another process while this one waited for the lock
                return self.processes.share(record)
            self.writer.prepare(self.config)
            with run_logger(self.folder, self.log_level) as log:
                for note in self.writer.notes:
                    log.warning(note)
                try:
                    return self._run(log)
                except (CheckpointError, RunStateError, TrainingError) as error:
                    log.error("stopped: %s", error)
                    raise

    def _follow(self) -> dict:
        """Train as one of the leader's followers: write nothing, start once the leader has taken the run folder
        (and, with ``restart``, moved damaged files aside), return the leader's record."""
        finished = self.processes.share()
        if finished is not None:
            return finished
        with run_logger(None, self.log_level, self.processes.rank) as log:
            return self._run(log)

    def _run(self, log: logging.Logger) -> dict:
        source = data_source(self.config)
        splits = run_splits(self.config["selection"])
        loaded = load_h3wb(source, subjects=[s for subjects in splits.values() for s in subjects],
                           max_gap=self.config["max_gap"])   # the files are read once, for every split
        sequences = {name: [seq for seq in loaded if seq.subject in subjects] for name, subjects in splits.items()}
        lifter, optimizer, state = self._start(log)
        spec = WindowSpec.for_lifter(lifter)
        train = TrainWindows(sequences["train"], spec, stride=self.config["train"]["stride"],
                             flip=self.config["train"]["flip_augment"], seed=self.config["seed"])
        validation = TestWindows(sequences["validation"], spec) if sequences.get("validation") else None
        if self.config["compile"]:
            compile_networks(lifter, **({"backend": self.config["compile"]}
                                        if isinstance(self.config["compile"], str) else {}))
        log.info("run %s: %s, %d parameters, %d training windows%s", self.run_id, self.config["model"],
                 count_parameters(lifter), len(train),
                 f", {self.processes.world} processes" if self.processes.world > 1 else "")
        for epoch in range(state["epoch"], self.config["train"]["epochs"]):
            state = self._epoch(lifter, optimizer, train, validation, state, epoch, log)
        return self._finish(lifter, sequences, spec, source, state, log)

    def _start(self, log) -> tuple:
        """The lifter, its optimizer and the training state: resumed from ``last.pt`` when there is one, else new
        (with ``restart``, also when the checkpoints cannot be used: they are moved aside first). A follower starts
        from the files as the leader left them."""
        if not self.processes.leader:
            return self._build(log, resume=True)
        try:
            started = self._build(log, resume=True)
        except Damaged as damaged:
            if not self.restart:
                raise damaged.kind(f"{damaged}; {RESTART_HINT}") from None
            self.writer.move_damaged(damaged, log)
            started = self._build(log, resume=False)
        self.processes.share(None)   # the followers may read the run folder now
        return started

    def _build(self, log, resume: bool) -> tuple:
        """The lifter (the same weights in every process), its optimizer and the training state; the random
        generators as saved in ``last.pt`` for this process, or else seeded for it (``rank_seed``)."""
        _seed_everything(self.config["seed"])
        lifter = build_from_config(self.config).to(self.device)
        optimizer = _optimizer(lifter, self.config["train"])
        state, saved = self._resume(lifter, optimizer, log) if resume else (fresh_state(), 0)
        if not self.processes.leader and self.processes.rank >= saved:
            _seed_everything(rank_seed(self.config["seed"], self.processes.rank))
        return lifter, optimizer, state

    def _resume(self, lifter, optimizer, log) -> tuple[dict, int]:
        """The training state in ``last.pt`` (fresh without one) and how many processes' random states it holds."""
        last = self.folder / "last.pt"
        if not last.exists():
            return fresh_state(), 0
        try:
            state, saved = load_last(last, lifter, optimizer, self.run_id, self.model_name, self.trust_checkpoint,
                                     self.processes.rank)
        except CheckpointError as error:
            raise Damaged(CheckpointError, str(error), [last]) from error
        log.info("resuming from epoch %d (%s)", state["epoch"], last)
        if self.processes.leader:
            if saved < self.processes.world:
                log.warning("%s holds the random states of %d processes, this run has %d: the others start from "
                            "fresh ones, so the run goes on as it would have only for lifters that draw no random "
                            "numbers in training", last, saved, self.processes.world)
            self.writer.check_best(lifter, state, log)
        return state, saved

    def _epoch(self, lifter, optimizer, train, validation, state, epoch, log) -> dict:
        train_cfg = self.config["train"]
        set_bn_momentum(lifter, train_cfg, epoch)
        start = time.perf_counter()
        timer = EpochTimer(self.device, enabled=log.isEnabledFor(logging.DEBUG))
        loss = self._train_epoch(lifter, optimizer, train, epoch, timer)
        with timer.phase("validation"):
            validates = validation is not None and _validates(train_cfg, epoch)
            val = self._validate(lifter, validation) if validates else None
        log.debug("epoch %d time: %s", epoch + 1, timer.summary())
        seconds = state["seconds"] + time.perf_counter() - start
        steps = (state["history"][-1].get("steps", 0) if state["history"] else 0) + train.batch_count(
            train_cfg["batch_size"])
        # The time-to-accuracy curve: validation WB against wall seconds and optimizer steps (bench report
        # --plot-curves).
        entry = {"epoch": epoch + 1, "loss": loss, "validation_wb": val, "seconds": round(seconds, 3), "steps": steps}
        state = dict(state, epoch=epoch + 1, seconds=seconds, history=state["history"] + [entry])
        if val is not None and not is_finite_number(val):
            log.warning("epoch %d: validation WB is %s, not finite: this epoch is never selected", epoch + 1, val)
        improved = val is not None and is_finite_number(val) and (state["best"] is None or val < state["best"])
        if improved or validation is None:
            state.update(best=val, best_epoch=epoch + 1)
        rng = self.processes.gather(plain_rng_state())
        if self.writer is not None:
            self.writer.save(lifter, optimizer, rng, state)
        self.processes.wait()   # the others read best.pt once the last epoch is done
        log.info("epoch %d/%d: loss %.5f%s, lr %.3g", epoch + 1, train_cfg["epochs"], loss,
                 f", validation WB {val:.1f} mm" if val is not None else "", optimizer.param_groups[0]["lr"])
        return state

    def _train_epoch(self, lifter, optimizer, train, epoch, timer: EpochTimer) -> float:
        lifter.train()
        batch_size = self.config["train"]["batch_size"]
        # The running loss stays on the device: reading it every step would make the host wait for the
        # accelerator, so the next batch could not be gathered and copied while the current step runs. The first
        # non-finite step is tracked on the device too, and read only when the epoch's loss is not finite.
        total, count = torch.zeros((), dtype=torch.float64, device=self.device), 0
        bad_step = torch.full((), -1, dtype=torch.int64, device=self.device)
        bad_loss = torch.zeros((), dtype=torch.float32, device=self.device)
        steps, processes = train.batch_count(batch_size), self.processes
        bar = tqdm(train.batches(batch_size, epoch=epoch, rank=processes.rank, ranks=processes.world), total=steps,
                   leave=False, desc=f"epoch {epoch + 1}", unit="batch", disable=not self.progress)
        batches = iter(bar)
        for step in range(steps):
            set_learning_rate(optimizer, learning_rate(self.config["train"], epoch * steps + step, steps))
            with timer.phase("data"):
                x2d, y3d = next(batches)
                x2d, y3d = to_device(x2d, self.device), to_device(y3d, self.device)
            loss = train_step(lifter, optimizer, x2d, y3d, bf16=self.config["bf16"], timer=timer, processes=processes,
                              rows=min(batch_size, len(train) - step * batch_size),
                              draws=self._draws(epoch * steps + step) if lifter.generative else None)
            total += loss.double() * len(x2d)
            count += len(x2d)
            first = (bad_step < 0) & ~torch.isfinite(loss)
            bad_step = torch.where(first, step, bad_step)
            bad_loss = torch.where(first, loss.float(), bad_loss)
            if self.progress and step % LOSS_DISPLAY_EVERY == 0:
                bar.set_postfix(loss=f"{total.item() / count:.4f}")
        bar.close()
        total, count = processes.sum([total.item(), count], self.device)
        mean = total / count
        if not math.isfinite(mean):
            bad = [(step, value) for step, value in processes.gather((int(bad_step), float(bad_loss))) if step >= 0]
            raise TrainingError(self._non_finite(epoch, *min(bad, default=(-1, mean)), steps))
        return mean

    def _draws(self, step: int) -> torch.Generator:
        """Where a diffusion lifter draws training step ``step``'s noise: seeded by (seed, step) alike in every
        process, so the processes of a run draw one process's numbers, and a resumed run draws them again."""
        seed = derived_seed(self.config["seed"], step, TRAINING_DRAWS)
        return torch.Generator(device=self.device).manual_seed(seed)

    def _non_finite(self, epoch: int, step: int, value: float, steps: int) -> str:
        kept = (f"{self.folder / 'last.pt'} keeps epoch {epoch}" if epoch else
                "no epoch had finished, so there is no last.pt")
        return (f"epoch {epoch + 1}, step {step + 1} of {steps}: the training loss is {value} (not finite); "
                f"training stopped and no record was written; {kept}. Lower the learning rate (train.lr is "
                f"{self.config['train']['lr']:g}) or check the data")

    def _validate(self, lifter, validation) -> float:
        results = evaluate(lifter, validation, [VALIDATION_PAIR], protocol="h3wb",
                           flip_test=self.config["eval"]["flip_test"], batch_size=self.config["eval"]["batch_size"],
                           device=self.device, seed=self.config["seed"], bf16=self.config["bf16"],
                           processes=self.processes)
        return results[pair_name(*VALIDATION_PAIR)]["overall"]["P-Best"]["WB"]

    def _finish(self, lifter, sequences, spec, source, state, log) -> dict:
        if state["best_epoch"] is None:
            values = ", ".join(str(h["validation_wb"]) for h in state["history"])
            raise TrainingError(f"{self.folder}: no epoch had a finite validation WB ({values}), so none can be "
                                f"selected and no record was written; last.pt keeps epoch {state['epoch']}")
        try:
            weights = read_best(self.folder / "best.pt", lifter, state["best_epoch"], self.model_name,
                                self.trust_checkpoint)
        except CheckpointError as error:   # changed under a running run: only a restart mends it
            raise RunStateError(f"{error}; {RESTART_HINT}") from error
        lifter.load_state_dict(weights)
        log.info("evaluating epoch %d on %s", state["best_epoch"], ", ".join(SPLITS["test"]))
        eval_cfg = self.config["eval"]
        metrics = evaluate(lifter, TestWindows(sequences["test"], spec), eval_cfg["hypotheses_steps"],
                           protocol=eval_cfg["protocol"], flip_test=eval_cfg["flip_test"],
                           batch_size=eval_cfg["batch_size"], device=self.device, seed=self.config["seed"],
                           bf16=self.config["bf16"], progress=self.progress, processes=self.processes)
        if not self.processes.leader:
            return self.processes.share()
        baseline = mean_pose_baseline(sequences["train"], sequences["test"], eval_cfg["protocol"])
        record = write_record(self.folder, self.config, self.run_id, lifter, source,
                              run_splits(self.config["selection"]), metrics, state, baseline)
        log.info("record written to %s", self.record_path)
        return self.processes.share(record)


def train_step(lifter, optimizer: torch.optim.Optimizer, x2d: torch.Tensor, y3d: torch.Tensor,
               bf16: bool = False, timer: EpochTimer | None = None, processes: Processes = SINGLE,
               rows: int | None = None, draws: torch.Generator | None = None) -> torch.Tensor:
    """One optimizer step on a batch (B, N, J, 2) -> (B, N, J, 3): forward and loss (bf16 autocast when asked),
    backward, step. The one training step of the project (``Run`` and ``bench perf``); returns the detached loss,
    left on the device so that the host does not wait for it.

    With several processes, ``x2d`` and ``y3d`` are this process's slice of a global batch of ``rows`` windows (it
    may be empty): its loss is weighed by its share of the batch and the gradients are summed over the processes
    (:meth:`bench.runs.processes.Processes.reduce_gradients`), so that every process steps with the gradient of the
    whole batch. ``draws``, seeded alike in every process, is where diffusion lifters draw their steps and noise,
    for the whole batch (:func:`baselines.diffusion.shared_draws`); without it they draw from torch's generator."""
    phase = timer.phase if timer is not None else _untimed
    rows = rows or len(x2d)
    shared = (shared_draws(lifter, draws, shard(rows, processes.rank, processes.world), rows) if draws is not None
              else contextlib.nullcontext())
    with phase("forward"), autocast(x2d.device, bf16), shared:
        loss = lifter.loss(x2d, y3d) if len(x2d) else None
    with phase("backward"):
        optimizer.zero_grad(set_to_none=True)
        if loss is not None:
            (loss * (len(x2d) / rows) if processes.world > 1 else loss).backward()
        processes.reduce_gradients(lifter.parameters(), rows)
    with phase("optimizer"):
        optimizer.step()
    return loss.detach() if loss is not None else torch.zeros((), device=x2d.device)


def _untimed(name: str):
    return contextlib.nullcontext()


def _optimizer(lifter, train_cfg: dict) -> torch.optim.Optimizer:
    name = train_cfg["optimizer"].lower()
    if name == "adam":
        return torch.optim.Adam(lifter.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"],
                                amsgrad=bool(train_cfg["amsgrad"]))
    if name == "adamw":
        return torch.optim.AdamW(lifter.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"],
                                 amsgrad=bool(train_cfg["amsgrad"]))
    raise ConfigError(f"train.optimizer must be 'adam' or 'adamw', got {train_cfg['optimizer']!r}")


def _validates(train_cfg: dict, epoch: int) -> bool:
    """Whether epoch ``epoch`` (from 0) is validated: every ``val_every``-th, and always the last."""
    return (epoch + 1) % train_cfg["val_every"] == 0 or epoch + 1 == train_cfg["epochs"]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
