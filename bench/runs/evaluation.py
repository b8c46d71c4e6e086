"""Evaluate any lifter on test windows: every annotated frame counted once, several (hypotheses, steps) pairs.

Models never compute metrics: this module asks a lifter for ``predict`` outputs (B, H, N, J, 3), scores them with
``bench.metrics.hypothesis_errors`` and averages **per annotated frame** (padded and duplicated window outputs never
count), then breaks the results down per action. Under the ``pafuse`` protocol a batch never mixes sequences,
because that protocol's P-Best picks one hypothesis per batch, as the reference does per test sequence.

The processes of a run over several devices evaluate it together: each predicts every ``world``-th batch, and the
per-frame errors are gathered, so every process gets exactly the metrics a single process gets for the same weights
(each batch is the same batch, sampled from the same seed, whichever process predicts it).
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.data.h3wb import SPLITS, load_h3wb
from bench.data.h3wb_json_write import export_h3wb_predictions
from bench.data.windows import TestWindows, WindowSpec
from bench.errors import DataError, RunStateError
from bench.io import check_writable, save_text
from bench.metrics import hypothesis_errors
from bench.runs import config as cfg
from bench.runs.baseline import mean_pose_baseline
from bench.runs.checkpoints import load_model
from bench.runs.processes import SINGLE, Processes, derived_seed
from bench.runs.records import build_record, data_source, fingerprint, run_splits
from bench.runs.state import RESTART_HINT, read_record
from bench.skeleton import FLIP_PERMUTATION


def pair_name(hypotheses: int, steps: int) -> str:
    """The key of one (H, K) evaluation in records, e.g. 'H20-K10'."""
    return f"H{hypotheses}-K{steps}"


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on ``device`` when asked (CPU and CUDA), else a no-op context."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host batch on ``device``. On CUDA it goes through pinned (page-locked) memory with a non-blocking copy,
    which lets the transfer overlap the kernels still queued; elsewhere a plain ``.to`` (a no-op on CPU)."""
    if device.type != "cuda":
        return batch.to(device)
    return batch.pin_memory().to(device, non_blocking=True)


def batch_seed(seed: int, batch: int) -> int:
    """The seed of the generator that samples test batch ``batch`` of an evaluation seeded by ``seed``."""
    return derived_seed(seed, batch)


@torch.no_grad()
def predict_frames(lifter, windows: TestWindows, *, hypotheses: int, steps: int, flip_test: bool,
                   batch_size: int, device: torch.device, seed: int = 0, by_sequence: bool = False,
                   bf16: bool = False, progress: bool | str = False, processes: Processes = SINGLE):
    """Yield ``(pred (B, H, N, J, 3), gt (B, N, J, 3), mask (B, N), frame_index (B, N))`` on ``device`` for every
    batch this process predicts: batch ``k`` of ``windows.batch_windows`` goes to process ``k % world``.

    A generative lifter samples batch ``k`` with a generator of its own seeded by :func:`batch_seed`, so its
    hypotheses depend neither on the batches before it nor on the process that draws them, and evaluating never
    disturbs training's random state. ``progress``: show a bar over the batches, labelled ``eval H<h>-K<k>`` or by
    the given string (e.g. with an overall count, ``eval H4-K2 (2/3)``).
    """
    permutation = torch.as_tensor(FLIP_PERMUTATION, device=device) if flip_test else None
    batches = windows.batch_windows(batch_size, by_sequence)
    mine = range(processes.rank, len(batches), processes.world)
    label = progress if isinstance(progress, str) else f"eval {pair_name(hypotheses, steps)}"
    for index in tqdm(mine, disable=not progress, leave=False, desc=label, unit="batch"):
        x2d, y3d, mask, frame_index = windows.batch(batches[index])
        options = ({"generator": torch.Generator(device).manual_seed(batch_seed(seed, index))}
                   if lifter.generative else {})
        x2d, y3d = to_device(x2d, device), to_device(y3d, device)
        with autocast(device, bf16):
            pred = lifter.predict(x2d, hypotheses=hypotheses, steps=steps, flip_permutation=permutation, **options)
        yield pred.float(), lifter.target_frames(y3d), mask.to(device), frame_index


def frame_errors(lifter, windows: TestWindows, *, hypotheses: int, steps: int, protocol: str = "h3wb",
                 flip_test: bool = True, batch_size: int = 64, device: torch.device | str = "cpu", seed: int = 0,
                 bf16: bool = False, progress: bool | str = False,
                 processes: Processes = SINGLE) -> dict[str, dict[str, np.ndarray]]:
    """Per-frame errors in mm: {estimator: {metric: (total_frames,) array}}, on every process (each predicts its
    batches, see :func:`predict_frames`, and the errors are gathered). Sampling is seeded by ``seed``: the same call
    gives the same numbers."""
    device = torch.device(device)
    outputs: dict[str, dict[str, list]] = {}
    indices, masks = [], []
    for pred, gt, mask, frame_index in predict_frames(
            lifter, windows, hypotheses=hypotheses, steps=steps, flip_test=flip_test, batch_size=batch_size,
            device=device, seed=seed, by_sequence=protocol == "pafuse", bf16=bf16, progress=progress,
            processes=processes):
        errors = hypothesis_errors(pred, gt, mask, protocol=protocol)
        for estimator, values in errors.items():
            for key, value in values.items():
                outputs.setdefault(estimator, {}).setdefault(key, []).append(value)   # copied once, at the end
        indices.append(frame_index)
        masks.append(mask)
    mine = ({estimator: {key: torch.cat(parts).cpu().double() for key, parts in values.items()}
             for estimator, values in outputs.items()}, torch.cat(indices), torch.cat(masks).cpu()) if indices else None
    every = [part for part in processes.gather(mine) if part is not None]   # a process may have had no batch
    frame_index, mask = torch.cat([part[1] for part in every]), torch.cat([part[2] for part in every])
    return {estimator: {key: windows.scatter(torch.cat([part[0][estimator][key] for part in every]), frame_index,
                                             mask).numpy() for key in values}
            for estimator, values in every[0][0].items()}


def mean_predictions(lifter, windows: TestWindows, *, hypotheses: int, steps: int, protocol: str = "h3wb",
                     flip_test: bool = True, batch_size: int = 64, device: torch.device | str = "cpu", seed: int = 0,
                     bf16: bool = False) -> np.ndarray:
    """The pose of every annotated frame, (total_frames, J, 3) in metres, root-relative: the mean over the
    hypotheses (what P-Agg scores), drawn exactly as :func:`frame_errors` draws them for the same arguments."""
    device = torch.device(device)
    poses, indices, masks = [], [], []
    for pred, _, mask, frame_index in predict_frames(
            lifter, windows, hypotheses=hypotheses, steps=steps, flip_test=flip_test, batch_size=batch_size,
            device=device, seed=seed, by_sequence=protocol == "pafuse", bf16=bf16):
        poses.append(pred.mean(dim=1))
        indices.append(frame_index)
        masks.append(mask)
    return windows.scatter(torch.cat(poses).cpu().double(), torch.cat(indices), torch.cat(masks).cpu()).numpy()


def export_test_predictions(lifter, windows: TestWindows, path: str | Path, **options) -> Path:
    """Write ``lifter``'s test predictions (:func:`mean_predictions`) for the H3WB leaderboard, in the layout of
    ``2Dto3D_test_3d.json`` (:func:`bench.data.h3wb_json_write.export_h3wb_predictions`)."""
    sequences = windows.table.sequences
    missing = [f"{s.subject}/{s.action}/{s.camera}" for s in sequences if s.sample_ids is None]
    if missing:
        raise DataError("the test data", missing[0], "H3WB sample ids for every annotated frame (npz sample_id "
                        "arrays, or the JSON release)", f"none in {len(missing)} of {len(sequences)} sequences")
    poses = mean_predictions(lifter, windows, **options)
    per_sequence = np.split(poses, np.cumsum(windows.table.lengths)[:-1])
    return export_h3wb_predictions(list(zip(sequences, per_sequence)), path)


def summarize_frames(per_frame: dict[str, dict[str, np.ndarray]], groups: np.ndarray | None = None) -> dict:
    """Means over frames: {estimator: {metric: mm}}, or per group label when ``groups`` (total_frames,) is given."""
    if groups is None:
        return {est: {key: float(values.mean()) for key, values in metrics.items()}
                for est, metrics in per_frame.items()}
    return {str(label): summarize_frames({est: {key: v[groups == label] for key, v in metrics.items()}
                                          for est, metrics in per_frame.items()})
            for label in np.unique(groups)}


def evaluate(lifter, windows: TestWindows, pairs, *, protocol: str = "h3wb", flip_test: bool = True,
             batch_size: int = 64, device: torch.device | str = "cpu", seed: int = 0, bf16: bool = False,
             progress: bool = False, processes: Processes = SINGLE) -> dict:
    """Evaluate ``lifter`` for every (hypotheses, steps) pair (together with the other ``processes``, if any).

    Returns:
        {"H1-K1": {"overall": {estimator: {metric: mm}}, "per_action": {action: {...}}}, ...}; deterministic
        lifters are evaluated once, with H = K = 1, whatever the pairs.
    """
    lifter.eval()
    if not lifter.generative:
        pairs = [(1, 1)]
    actions = np.array([action.split(" ")[0] for action in windows.frame_action])
    results = {}
    for number, (hypotheses, steps) in enumerate(pairs, start=1):
        label = progress and f"eval {pair_name(hypotheses, steps)} ({number}/{len(pairs)})"
        per_frame = frame_errors(lifter, windows, hypotheses=hypotheses, steps=steps, protocol=protocol,
                                 flip_test=flip_test, batch_size=batch_size, device=device, seed=seed, bf16=bf16,
                                 progress=label, processes=processes)
        results[pair_name(hypotheses, steps)] = {"overall": summarize_frames(per_frame),
                                                 "per_action": summarize_frames(per_frame, actions)}
    return results


def _training(run_dir: Path) -> dict:
    """What a re-evaluated run's record says of its training (or of where its weights came from)."""
    for name, key in (("record.json", "training"), ("imported.json", None)):
        if (run_dir / name).exists():
            try:
                content = json.loads((run_dir / name).read_text())
            except json.JSONDecodeError as error:
                raise RunStateError(f"{run_dir / name}: not valid JSON ({error}); {RESTART_HINT}") from error
            return content.get(key) or {} if key else {"imported": content}
    return {}


def evaluate_run(run_dir: str | Path, checkpoint: str | Path | None = None, pairs=None, protocol: str | None = None,
                 device: str | None = None, export_h3wb: str | Path | None = None,
                 trust_checkpoint: bool = False, announce=None) -> tuple[dict, Path]:
    """Evaluate a run's checkpoint on the test subject; save the result under ``run_dir/evaluations``.

    With ``export_h3wb``, also write the test predictions of the first (H, K) pair there, for the H3WB leaderboard
    (:func:`export_test_predictions`); the result then names the file under ``"export_h3wb"``. Before any work,
    ``run_dir/evaluations`` (and ``export_h3wb``) must be writable and the device must exist here. The checkpoint is
    read with ``weights_only=True`` unless ``trust_checkpoint`` (see ``bench.runs.checkpoints.read_checkpoint``).
    ``announce``, when given, is called with what is evaluated (run, checkpoint, epoch, protocol, (H, K) pairs,
    whether the lifter is generative) before the evaluation starts. The result holds the run's mean-pose
    ``baseline`` under the evaluated protocol (:func:`_baseline`).
    """
    run_dir = Path(run_dir)
    check_writable(run_dir / "evaluations", folder=True)
    if export_h3wb is not None:
        check_writable(export_h3wb)
    _check_device(run_dir, device)
    model = load_model(run_dir, checkpoint, device, trust_checkpoint=trust_checkpoint)
    config, lifter, path, epoch = model.config, model.lifter, model.checkpoint, model.epoch
    config = dict(config, eval=dict(config["eval"], **{k: v for k, v in (("hypotheses_steps", pairs),
                                                                          ("protocol", protocol)) if v is not None}))
    cfg.check(config)
    cfg.check_lifter(config)   # e.g. several hypotheses for a deterministic lifter: an error, as for bench run
    eval_cfg, device = config["eval"], next(lifter.parameters()).device
    if announce is not None:
        announce({"run": str(run_dir), "checkpoint": str(path), "epoch": epoch, "protocol": eval_cfg["protocol"],
                  "pairs": [tuple(p) for p in eval_cfg["hypotheses_steps"]] if lifter.generative else [(1, 1)],
                  "generative": lifter.generative})
    source = data_source(config)
    spec = WindowSpec.for_lifter(lifter)
    windows = TestWindows(load_h3wb(source, subjects=SPLITS["test"], max_gap=config["max_gap"]), spec)
    metrics = evaluate(lifter, windows, eval_cfg["hypotheses_steps"], protocol=eval_cfg["protocol"],
                       flip_test=eval_cfg["flip_test"], batch_size=eval_cfg["batch_size"], device=device,
                       seed=config["seed"], bf16=config["bf16"], progress=True)
    result = build_record(config, run_dir.name, lifter, source, {"test": SPLITS["test"]}, metrics,
                          _training(run_dir), _baseline(run_dir, config, source, windows.table.sequences))
    result.update(evaluated={"checkpoint": str(path), "epoch": epoch})
    if export_h3wb is not None:
        hypotheses, steps = eval_cfg["hypotheses_steps"][0] if lifter.generative else (1, 1)
        result["export_h3wb"] = {"file": str(export_test_predictions(
            lifter, windows, export_h3wb, hypotheses=hypotheses, steps=steps, protocol=eval_cfg["protocol"],
            flip_test=eval_cfg["flip_test"], batch_size=eval_cfg["batch_size"], device=device, seed=config["seed"],
            bf16=config["bf16"])), "pair": pair_name(hypotheses, steps), "estimator": "P-Agg"}
    name = f"{path.stem}-{eval_cfg['protocol']}-" + "_".join(pair_name(h, k) for h, k in eval_cfg["hypotheses_steps"])
    out = save_text(run_dir / "evaluations" / f"{name}.json", json.dumps(result, indent=2, allow_nan=False))
    return result, out


def _baseline(run_dir: Path, config: dict, source, test_sequences) -> dict:
    """The run's mean-pose baseline under the evaluated protocol: the one its ``record.json`` holds when it was
    measured under that protocol on the same data and subjects, else computed (reading the training subjects)."""
    protocol, train = config["eval"]["protocol"], run_splits(config["selection"])["train"]
    subjects = {"train": sorted(train), "test": sorted({s.subject for s in test_sequences})}
    record, _ = read_record(run_dir / "record.json")
    stored = (record or {}).get("baseline")
    if (isinstance(stored, dict) and stored.get("protocol") == protocol and stored.get("subjects") == subjects
            and (record.get("data") or {}).get("fingerprint") == fingerprint(source)):
        return stored
    training = load_h3wb(source, subjects=train, max_gap=config["max_gap"])
    return mean_pose_baseline(training, test_sequences, protocol)


def _check_device(run_dir: Path, device: str | None) -> None:
    """The device asked for, or else the run's configured one, must exist on this machine."""
    config_path = run_dir / "config.yaml"
    if device is not None:
        cfg.check_device(device)
    elif config_path.exists():
        cfg.check_device(cfg.load_yaml(config_path).get("device", "cpu"), f"{config_path}: device")
