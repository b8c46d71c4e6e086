"""One run: train a lifter, select its checkpoint on a validation split, evaluate it on the test subject, record.

``Run`` is a callable whose state lives on ``self`` (in the spirit of submitit's Checkpointable jobs): calling it
resumes from the run folder's last complete epoch if there is one, so an interrupted run, restarted, ends with
exactly the metrics of an uninterrupted one. Every file is written atomically; ``record.json`` appears only when the
run is finished.

Run folder (``<out>/<run-id>/``): ``config.yaml`` (the resolved configuration), ``log.txt``, ``last.pt`` (state after
the last complete epoch), ``best.pt`` (weights of the selected epoch) and ``record.json``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from baselines.base import count_parameters
from bench.data.h3wb import SPLITS, load_h3wb
from bench.data.windows import TestWindows, TrainWindows, WindowSpec
from bench.errors import ConfigError
from bench.io import save_text
from bench.runs import config as cfg
from bench.runs.checkpoints import save_checkpoint
from bench.runs.evaluation import autocast, evaluate, pair_name, to_device
from bench.runs.lifters import build_from_config, compile_networks
from bench.runs.records import data_source, write_record

VALIDATION_PAIR = (1, 1)
"""Checkpoint selection uses one hypothesis and one step: cheap, and the same for every lifter."""
LOSS_DISPLAY_EVERY = 20
"""Training steps between progress-bar loss updates (each update waits for the device)."""


class Run:
    """Train and evaluate one configuration in ``out/<run-id>``.

    Args:
        config: a resolved configuration (``bench.runs.config.resolve``).
        out: the folder holding run folders (``results/runs`` by default).
        progress: show tqdm progress bars.
    """

    def __init__(self, config: dict, out: str | Path = "results/runs", progress: bool = False):
        self.config = config
        self.run_id = cfg.run_id(config)
        self.folder = Path(out) / self.run_id
        self.progress = progress
        self.device = torch.device(config["device"])

    @property
    def record_path(self) -> Path:
        return self.folder / "record.json"

    def __call__(self) -> dict:
        """Run to completion (resuming if a checkpoint exists) and return the record."""
        if self.record_path.exists():
            return json.loads(self.record_path.read_text())
        self._prepare_folder()
        with _logger(self.folder) as log:
            return self._run(log)

    def _run(self, log: logging.Logger) -> dict:
        source = data_source(self.config)
        splits = _splits(self.config["selection"])
        loaded = load_h3wb(source, subjects=[s for subjects in splits.values() for s in subjects],
                           max_gap=self.config["max_gap"])   # the files are read once, for every split
        sequences = {name: [seq for seq in loaded if seq.subject in subjects] for name, subjects in splits.items()}
        _seed_everything(self.config["seed"])
        lifter = build_from_config(self.config).to(self.device)
        optimizer = _optimizer(lifter, self.config["train"])
        state = self._resume(lifter, optimizer, log)
        spec = WindowSpec.for_lifter(lifter)
        train = TrainWindows(sequences["train"], spec, stride=self.config["train"]["stride"],
                             flip=self.config["train"]["flip_augment"], seed=self.config["seed"])
        validation = TestWindows(sequences["validation"], spec) if sequences.get("validation") else None
        if self.config["compile"]:
            compile_networks(lifter, **({"backend": self.config["compile"]}
                                        if isinstance(self.config["compile"], str) else {}))
        log.info("run %s: %s, %d parameters, %d training windows", self.run_id, self.config["model"],
                 count_parameters(lifter), len(train))
        for epoch in range(state["epoch"], self.config["train"]["epochs"]):
            state = self._epoch(lifter, optimizer, train, validation, state, epoch, log)
        return self._finish(lifter, sequences["test"], spec, source, state, log)

    def _prepare_folder(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            save_text(self.folder / "config.yaml", cfg.dump(self.config))
        except OSError as error:
            raise ConfigError(f"{self.folder}: cannot write the run folder ({error})") from error

    def _resume(self, lifter, optimizer, log) -> dict:
        last = self.folder / "last.pt"
        if not last.exists():
            return {"epoch": 0, "best": None, "best_epoch": None, "history": [], "seconds": 0.0}
        checkpoint = torch.load(last, map_location=self.device, weights_only=False)
        lifter.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        _set_rng_state(checkpoint["rng"])
        log.info("resuming from epoch %d (%s)", checkpoint["state"]["epoch"], last)
        return checkpoint["state"]

    def _epoch(self, lifter, optimizer, train, validation, state, epoch, log) -> dict:
        train_cfg = self.config["train"]
        _schedule(lifter, optimizer, train_cfg, epoch)
        start = time.perf_counter()
        loss = self._train_epoch(lifter, optimizer, train, epoch)
        val = self._validate(lifter, validation) if validation is not None else None
        state = dict(state, epoch=epoch + 1, seconds=state["seconds"] + time.perf_counter() - start,
                     history=state["history"] + [{"epoch": epoch + 1, "loss": loss, "validation_wb": val}])
        improved = val is not None and (state["best"] is None or val < state["best"])
        if improved or validation is None:
            state.update(best=val, best_epoch=epoch + 1)
            save_checkpoint(self.folder / "best.pt", {"model": lifter.state_dict(), "epoch": epoch + 1})
        save_checkpoint(self.folder / "last.pt", {"model": lifter.state_dict(), "optimizer": optimizer.state_dict(),
                                        "rng": _rng_state(), "state": state})
        log.info("epoch %d/%d: loss %.5f%s, lr %.3g", epoch + 1, train_cfg["epochs"], loss,
                 f", validation WB {val:.1f} mm" if val is not None else "", optimizer.param_groups[0]["lr"])
        return state

    def _train_epoch(self, lifter, optimizer, train, epoch) -> float:
        lifter.train()
        batch_size = self.config["train"]["batch_size"]
        # The running loss stays on the device: reading it every step would make the host wait for the
        # accelerator, so the next batch could not be gathered and copied while the current step runs.
        total, count = torch.zeros((), dtype=torch.float64, device=self.device), 0
        bar = tqdm(train.batches(batch_size, epoch=epoch), total=-(-len(train) // batch_size), leave=False,
                   desc=f"epoch {epoch + 1}", unit="batch", disable=not self.progress)
        for step, (x2d, y3d) in enumerate(bar):
            x2d, y3d = to_device(x2d, self.device), to_device(y3d, self.device)
            loss = train_step(lifter, optimizer, x2d, y3d, bf16=self.config["bf16"])
            total += loss.double() * len(x2d)
            count += len(x2d)
            if self.progress and step % LOSS_DISPLAY_EVERY == 0:
                bar.set_postfix(loss=f"{total.item() / count:.4f}")
        return total.item() / count

    def _validate(self, lifter, validation) -> float:
        results = evaluate(lifter, validation, [VALIDATION_PAIR], protocol="h3wb",
                           flip_test=self.config["eval"]["flip_test"], batch_size=self.config["eval"]["batch_size"],
                           device=self.device, seed=self.config["seed"], bf16=self.config["bf16"])
        return results[pair_name(*VALIDATION_PAIR)]["overall"]["P-Best"]["WB"]

    def _finish(self, lifter, test_sequences, spec, source, state, log) -> dict:
        best = torch.load(self.folder / "best.pt", map_location=self.device, weights_only=False)
        lifter.load_state_dict(best["model"])
        log.info("evaluating epoch %d on %s", best["epoch"], ", ".join(SPLITS["test"]))
        eval_cfg = self.config["eval"]
        metrics = evaluate(lifter, TestWindows(test_sequences, spec), eval_cfg["hypotheses_steps"],
                           protocol=eval_cfg["protocol"], flip_test=eval_cfg["flip_test"],
                           batch_size=eval_cfg["batch_size"], device=self.device, seed=self.config["seed"],
                           bf16=self.config["bf16"], progress=self.progress)
        record = write_record(self.folder, self.config, self.run_id, lifter, source, _splits(self.config["selection"]),
                              metrics, state)
        log.info("record written to %s", self.record_path)
        return record


def train_step(lifter, optimizer: torch.optim.Optimizer, x2d: torch.Tensor, y3d: torch.Tensor,
               bf16: bool = False) -> torch.Tensor:
    """One optimizer step on a batch (B, N, J, 2) -> (B, N, J, 3): forward and loss (bf16 autocast when asked),
    backward, step. The one training step of the project (``Run`` and ``bench perf``); returns the detached loss,
    left on the device so that the host does not wait for it."""
    with autocast(x2d.device, bf16):
        loss = lifter.loss(x2d, y3d)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _splits(selection: str) -> dict[str, tuple[str, ...]]:
    """Train / validation / test subjects: the test subject is never used to select a checkpoint."""
    if selection == "val":
        return {"train": SPLITS["val-train"], "validation": SPLITS["val"], "test": SPLITS["test"]}
    return {"train": SPLITS["train"], "test": SPLITS["test"]}


def _optimizer(lifter, train_cfg: dict) -> torch.optim.Optimizer:
    name = train_cfg["optimizer"].lower()
    if name == "adam":
        return torch.optim.Adam(lifter.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"],
                                amsgrad=bool(train_cfg["amsgrad"]))
    if name == "adamw":
        return torch.optim.AdamW(lifter.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"],
                                 amsgrad=bool(train_cfg["amsgrad"]))
    raise ConfigError(f"train.optimizer must be 'adam' or 'adamw', got {train_cfg['optimizer']!r}")


def _schedule(lifter, optimizer, train_cfg: dict, epoch: int) -> None:
    """Per-epoch learning-rate decay, and VideoPose's BatchNorm momentum decay when the recipe has one."""
    for group in optimizer.param_groups:
        group["lr"] = train_cfg["lr"] * train_cfg["lr_decay"] ** epoch
    start, end = train_cfg["bn_momentum_start"], train_cfg["bn_momentum_end"]
    if start and end:
        momentum = start * (end / start) ** (epoch / train_cfg["epochs"])
        for module in lifter.modules():
            if hasattr(module, "set_bn_momentum"):
                module.set_bn_momentum(momentum)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def _logger(folder: Path):
    """A logger writing to ``folder/log.txt`` (appending, so a resumed run keeps its history) and to stderr."""
    log = logging.getLogger(f"bench.run.{folder.resolve()}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handlers = [logging.FileHandler(folder / "log.txt"), logging.StreamHandler()]
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    try:
        yield log
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
