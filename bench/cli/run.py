"""``bench run`` and ``bench eval``: the flags, and how they map onto a run configuration."""
from __future__ import annotations

from pathlib import Path

from bench.cli.constants import PROTOCOL_NAMES


def add_run_command(commands) -> None:
    run = commands.add_parser(
        "run", help="train and evaluate a lifter (vanilla or part-based)",
        description="Train a lifter on the train subjects, keep the epoch best on the validation subject (S7), and "
                    "evaluate it on the test subject (S8). Settings come from the lifter's reference recipe "
                    "(configs/models/NAME.yaml) < --preset < --config < flags. The run folder is derived from the "
                    "resolved configuration: the same command resumes an interrupted run and skips a finished one.")
    run.add_argument("--model", help="registered lifter name (see `python -m bench models`)")
    run.add_argument("--part-based", action="store_true", default=None,
                     help="wrap the lifter with the part-based wrapper (body, face and hands in local frames)")
    run.add_argument("--frames", type=int, help="frames per window N (default 27)")
    run.add_argument("--data", type=Path, nargs="+",
                     help="H3WB's files: a folder holding them (npz or the JSON release, see README \"Real H3WB\") or "
                          "the files themselves (default: the synthetic set)")
    run.add_argument("--epochs", type=int, help="training epochs (default: the lifter's reference recipe)")
    run.add_argument("--batch-size", type=int, help="training windows per batch (default: the reference recipe)")
    run.add_argument("--lr", type=float, help="initial learning rate (default: the reference recipe)")
    run.add_argument("--hypotheses", type=int, nargs="+",
                     help="hypotheses H to evaluate with, one per --steps value (generative lifters), e.g. 1 20 300")
    run.add_argument("--steps", type=int, nargs="+", help="DDIM steps K, paired with --hypotheses, e.g. 1 10 5")
    run.add_argument("--protocol", choices=PROTOCOL_NAMES,
                     help="metric protocol: h3wb (official leaderboard, default) or pafuse (the reference code's)")
    run.add_argument("--selection", choices=("val", "last"),
                     help="val (default): train on S1 S5 S6 and keep the epoch best on S7; last: train on S1 S5 S6 "
                          "S7 and keep the last epoch. The test subject S8 is never used to select")
    run.add_argument("--seed", type=int, help="random seed (default 0); the same seed gives the same metrics")
    run.add_argument("--device", help="cpu, cuda or cuda:N (default cpu)")
    run.add_argument("--devices", type=int,
                     help="train with this many processes, one per device (default 1): locally they are started "
                          "with torchrun, GPUs with device cuda (one each), else CPU processes; train.batch_size "
                          "stays the global batch, split over them (README \"Several devices: --devices\")")
    run.add_argument("--bf16", action="store_true", default=None, help="bf16 autocast for training and evaluation")
    run.add_argument("--compile", action="store_true", default=None,
                     help="torch.compile the networks (worth it on GPUs; slow to start on CPU)")
    run.add_argument("--preset", help="a preset in configs/presets: quick (ours, tuned for time-to-accuracy on 2 CPU "
                                      "cores: minutes), medium (quick trained twice as long, for a converged CPU "
                                      "comparison) or paper (the reference recipes)")
    run.add_argument("--config", type=Path, help="a YAML file of configuration overrides")
    run.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                     help="override any configuration key, dotted for nested keys, value parsed as YAML "
                          "(e.g. train.lr_decay=0.99 model_args.depth=4)")
    run.add_argument("--out", type=Path, default=Path("results/runs"), help="folder of run folders")
    run.add_argument("--log-level", choices=("info", "debug"), default="info",
                     help="debug: also log where each epoch's time goes (data, forward, backward, optimizer, "
                          "validation; on a GPU each phase waits for the device, which costs a little speed)")
    run.add_argument("--resume", action="store_true",
                     help="require an interrupted run to resume (error if none); an identical command resumes anyway")
    run.add_argument("--restart", action="store_true",
                     help="recover a run whose files are damaged (a truncated last.pt, best.pt or record.json, "
                          "another model's checkpoint): move them aside as NAME.damaged-<time> and go on from the "
                          "intact ones, or start over from epoch 0; a complete record is left alone")
    run.add_argument("--trust-checkpoint", action="store_true",
                     help="resume from a last.pt that needs more than tensors, numbers and plain containers (e.g. "
                          "written by an older version); such a file can run code when loaded: only if you trust it")
    parts = run.add_argument_group("part-based options (with --part-based, or for pafuse)")
    parts.add_argument("--widths", help="balanced (paper), uniform, match (same parameter count as vanilla)")
    parts.add_argument("--hands", choices=("joint", "shared"),
                       help="joint: one network over both hands (reference); shared: one hand network, left mirrored")
    parts.add_argument("--attach", choices=("reference", "roots"),
                       help="reassembly: reference (parts hang from the body nose and wrists) or roots (the body "
                            "network also predicts each part's root)")
    parts.add_argument("--part-loss", choices=("part", "wb"), help="part: loss in local frames (paper Eq. 2); wb: "
                                                                    "whole-body loss after reassembly (Eq. 3)")
    parts.add_argument("--error", choices=("mpjpe", "mse"), help="loss on joint errors: MPJPE or squared error")
    parts.add_argument("--no-shift", action="store_true", default=None,
                       help="ablation: no part-frame shift (every part rooted at the pelvis)")
    parts.add_argument("--no-split", action="store_true", default=None,
                       help="ablation: one network for all parts (part-frame shift only, weighted loss)")
    run.set_defaults(func=_run)


def add_eval_command(commands) -> None:
    evaluate = commands.add_parser(
        "eval", help="re-evaluate a finished or interrupted run",
        description="Evaluate a run's selected checkpoint (or another checkpoint) on the test subject, with other "
                    "hypotheses/steps or another protocol, and save the result in the run folder.")
    evaluate.add_argument("--run", type=Path, required=True, help="the run folder (holds config.yaml)")
    evaluate.add_argument("--checkpoint", type=Path, help="checkpoint file (default: RUN/best.pt)")
    evaluate.add_argument("--hypotheses", type=int, nargs="+", help="hypotheses H, one per --steps value")
    evaluate.add_argument("--steps", type=int, nargs="+", help="DDIM steps K, paired with --hypotheses")
    evaluate.add_argument("--protocol", choices=PROTOCOL_NAMES, help="metric protocol (default: the run's)")
    evaluate.add_argument("--device", help="cpu, cuda or cuda:N (default: the run's)")
    evaluate.add_argument("--trust-checkpoint", action="store_true",
                          help="load a checkpoint that needs more than tensors, numbers and plain containers; such a "
                               "file can run code when loaded: only if you trust where it came from")
    evaluate.add_argument("--export-h3wb", type=Path, metavar="FILE.json",
                          help="also write the test predictions for the H3WB leaderboard, in the layout of "
                               "2Dto3D_test_3d.json (sample id -> keypoints_3d, mm; the mean over the hypotheses of "
                               "the first --hypotheses/--steps pair); the test data must carry H3WB sample ids")
    evaluate.set_defaults(func=_eval)


def _pairs(args, hint: str = "") -> list[list[int]] | None:
    """The (H, K) pairs of --hypotheses and --steps, None when neither is given; ``hint`` ends the error message."""
    if args.hypotheses is None and args.steps is None:
        return None
    hypotheses, steps = args.hypotheses or [], args.steps or []
    if len(hypotheses) != len(steps):
        raise ValueError(f"--hypotheses and --steps are given as pairs of the same length, one DDIM step count K "
                         f"per hypothesis count H (e.g. --hypotheses 1 20 --steps 1 10); found "
                         f"{_given('--hypotheses', hypotheses)} and {_given('--steps', steps)}{hint}")
    return [[h, k] for h, k in zip(hypotheses, steps)]


def _given(flag: str, values: list[int]) -> str:
    return f"{flag} {' '.join(map(str, values))}" if values else f"no {flag}"


def _eval_hint(out: Path) -> str:
    return (f". Evaluating a finished run at new (H, K) pairs is bench eval's job, e.g. python -m bench eval --run "
            f"{out / '<run id>'} --hypotheses 20 --steps 10")


def flags_to_config(args) -> dict:
    """The nested configuration overrides that the command-line flags ask for (None where a flag is unset)."""
    from bench.runs.config import data_setting, merge, set_overrides

    flags = {
        "model": args.model, "part_based": args.part_based, "frames": args.frames, "data": data_setting(args.data),
        "selection": args.selection, "seed": args.seed, "device": args.device, "devices": args.devices,
        "bf16": args.bf16,
        "compile": args.compile,
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr},
        "eval": {"protocol": args.protocol, "hypotheses_steps": _pairs(args, _eval_hint(args.out))},
        "parts": {"widths": args.widths, "hands": args.hands, "attach": args.attach, "loss": args.part_loss,
                  "error": args.error, "shift": False if args.no_shift else None,
                  "split": False if args.no_split else None},
    }

    return merge(flags, set_overrides(args.set))


def _run(args) -> int:
    import os

    from bench.io import check_writable
    from bench.runs import config as cfg
    from bench.runs.processes import SINGLE, from_environment
    from bench.runs.summary import result_summary
    from bench.runs.training import Run

    config = cfg.resolve(flags_to_config(args), config_file=args.config, preset_name=args.preset)
    folder = args.out / cfg.run_id(config)
    launch = config["devices"] > 1 and "WORLD_SIZE" not in os.environ   # not yet one of the run's processes
    processes = SINGLE if launch else from_environment(config["devices"])
    if not (folder / "record.json").exists() and processes.leader:   # a finished run is only shown; any other
        check_writable(args.out, folder=True)                          # writes into --out
    if args.resume and not (folder / "last.pt").exists():
        raise ValueError(f"--resume: {folder} has no checkpoint to resume from")
    if launch:
        return _launch(args.argv, config["devices"])
    run = Run(config, out=args.out, progress=True, restart=args.restart, trust_checkpoint=args.trust_checkpoint,
              log_level=args.log_level, processes=processes)
    try:
        record = run()
    finally:
        processes.stop()
    if not processes.leader:
        return 0
    print(f"run {record['run_id']}: {record['model']}{' (part-based)' if record['part_based'] else ''}, "
          f"{record['parameters']:,} parameters, {record['training']['epochs_done']} epochs in "
          f"{record['training']['seconds']:.0f} s, epoch {record['training']['selected_epoch']} selected, "
          f"protocol {record['protocol']}")
    print(result_summary(record, quick=args.preset == "quick"))
    print(f"record: {run.record_path}")
    return 0


def _launch(argv: list[str], devices: int) -> int:
    """Run this same command as ``devices`` processes on this machine, under torchrun; its exit status."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(devices), "-m",
               "bench", *argv]
    print(f"starting {devices} processes: {' '.join(command)}", file=sys.stderr, flush=True)
    return subprocess.run(command).returncode


def _eval(args) -> int:
    from bench.runs.evaluation import evaluate_run
    from bench.runs.summary import result_summary

    result, path = evaluate_run(args.run, checkpoint=args.checkpoint, pairs=_pairs(args), protocol=args.protocol,
                                device=args.device, export_h3wb=args.export_h3wb,
                                trust_checkpoint=args.trust_checkpoint, announce=_announce)
    print(result_summary(result))
    print(f"saved: {path}")
    if "export_h3wb" in result:
        export = result["export_h3wb"]
        print(f"test predictions ({export['pair']}, mean over hypotheses as {export['estimator']}): {export['file']}")
    return 0


def _announce(plan: dict) -> None:
    """Say what ``bench eval`` evaluates, before the work starts."""
    known = plan["epoch"] is not None and plan["epoch"] >= 0   # -1: the checkpoint names no epoch
    epoch = f" (epoch {plan['epoch']})" if known else ""
    pairs = ", ".join(f"(H = {h}, K = {k})" for h, k in plan["pairs"])
    print(f"evaluating run {plan['run']}, checkpoint {plan['checkpoint']}{epoch}, protocol {plan['protocol']}, "
          f"(H, K) pairs {pairs}{'' if plan['generative'] else ' (a deterministic lifter: one hypothesis)'}",
          flush=True)
