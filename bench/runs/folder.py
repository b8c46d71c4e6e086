"""A run folder as its one writer sees it: created, prepared, its checkpoints saved and checked, its log.

A run has one writer: the process of ``bench.runs.training.Run`` that holds the folder's lock, which is the leader
(rank 0) of a run over several processes; the others never write here. See ``bench.runs.training`` for the files.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from bench.errors import CheckpointError, ConfigError, RunStateError
from bench.io import save_text
from bench.runs import config as cfg
from bench.runs.checkpoints import save_checkpoint
from bench.runs.state import RESTART_HINT, Damaged, move_aside, read_best, read_record, remove_stale_temp_files


class RunFolder:
    """The writer's side of the run folder ``path`` of run ``run_id`` (a ``model_name`` model).

    Args:
        restart: move damaged files aside instead of stopping (``bench run --restart``).
        trust_checkpoint: read checkpoints with ``weights_only=False`` (see ``bench.runs.checkpoints``).

    Attributes:
        notes: what preparing the folder did, for the run's log once it is open.
    """

    def __init__(self, path: Path, run_id: str, model_name: str, restart: bool = False,
                 trust_checkpoint: bool = False):
        self.path, self.run_id, self.model_name = path, run_id, model_name
        self.restart, self.trust_checkpoint = restart, trust_checkpoint
        self.notes: list[str] = []

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"{self.path}: cannot write the run folder ({error})") from error

    def complete_record(self, pairs: list[str]) -> dict | None:
        """The record if it is complete; an incomplete one is an error naming it, or with ``restart`` moved aside."""
        path = self.path / "record.json"
        record, problem = read_record(path, pairs)
        if problem is not None:
            if not self.restart:
                raise RunStateError(f"{problem}; {RESTART_HINT}")
            self.notes.append(f"--restart: {problem}; moved aside to {move_aside(path)}")
        return record

    def prepare(self, config: dict) -> None:
        """Remove what a killed attempt left and write the resolved configuration."""
        for path, size in remove_stale_temp_files(self.path):
            self.notes.append(f"removed {path.name} ({size:,} bytes), a temporary file an earlier attempt left")
        try:
            save_text(self.path / "config.yaml", cfg.dump(config))
        except OSError as error:
            raise ConfigError(f"{self.path}: cannot write the run folder ({error})") from error

    def move_damaged(self, damaged: Damaged, log: logging.Logger) -> None:
        """``--restart``: move the checkpoints aside (the damaged ones as such, the others as old)."""
        log.warning("--restart: %s", damaged)
        for name in ("last.pt", "best.pt"):
            path = self.path / name
            if path.exists():
                label = "damaged" if path in damaged.files else "old"
                log.warning("--restart: moved %s aside to %s", name, move_aside(path, label).name)
        log.warning("--restart: starting the run over from epoch 0")

    def check_best(self, lifter, state: dict, log: logging.Logger) -> None:
        """Make sure ``best.pt`` holds the selected epoch of a resumed run: rebuild it from ``last.pt`` when that
        is the selected epoch; otherwise the selected weights are lost, which only a restart mends."""
        best_epoch, best = state["best_epoch"], self.path / "best.pt"
        if best_epoch is None:
            return
        try:
            read_best(best, lifter, best_epoch, self.model_name, self.trust_checkpoint)
            return
        except CheckpointError as error:
            problem = str(error)
        if best_epoch == state["epoch"]:
            if best.exists():
                log.warning("%s: moved aside to %s", problem, move_aside(best).name)
            else:
                log.warning("%s", problem)
            save_checkpoint(best, self._best_payload(lifter, best_epoch))
            log.warning("best.pt rebuilt from last.pt, which holds the selected epoch %d", best_epoch)
            return
        raise Damaged(RunStateError, f"{problem}; epoch {best_epoch} was selected and only best.pt held its "
                                      f"weights (last.pt holds epoch {state['epoch']})",
                       [best] if best.exists() else [])

    def save(self, lifter, optimizer, rng: list[dict], state: dict) -> None:
        """``last.pt`` after the epoch ``state`` has just finished, with the random states ``rng`` of every process
        (the leader's as ``rng``, the others' as ``rng_other_ranks``); and ``best.pt`` when it is the selected one."""
        epoch = state["epoch"]
        last = {"model": lifter.state_dict(), "optimizer": optimizer.state_dict(), "rng": rng[0], "state": state,
                "run_id": self.run_id, "model_name": self.model_name}
        if len(rng) > 1:
            last["rng_other_ranks"] = rng[1:]
        # last.pt first: killed between the two writes, last.pt names its own epoch as selected and best.pt is
        # rebuilt from it on resume.
        save_checkpoint(self.path / "last.pt", last)
        if state["best_epoch"] == epoch:
            save_checkpoint(self.path / "best.pt", self._best_payload(lifter, epoch))

    def _best_payload(self, lifter, epoch: int) -> dict:
        return {"model": lifter.state_dict(), "epoch": epoch, "run_id": self.run_id, "model_name": self.model_name}


@contextlib.contextmanager
def run_logger(folder: Path | None, level: str = "info", rank: int = 0):
    """A logger writing to ``folder/log.txt`` (appending, so a resumed run keeps its history) and to stderr, at
    ``level`` ("info", or "debug" for where each epoch's time goes); without ``folder`` (a process of a run over
    several that is not its writer), only its warnings and errors to stderr, marked with its rank."""
    log = logging.getLogger(f"bench.run.{folder.resolve()}" if folder is not None else f"bench.run.rank{rank}")
    log.setLevel(logging.DEBUG if level == "debug" else logging.INFO)
    log.propagate = False
    handlers = [logging.FileHandler(folder / "log.txt"), logging.StreamHandler()] if folder is not None else \
        [logging.StreamHandler()]
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s" if folder is not None else
                                               f"%(asctime)s rank {rank}: %(message)s"))
        handler.setLevel(logging.DEBUG if folder is not None else logging.WARNING)
        log.addHandler(handler)
    try:
        yield log
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
