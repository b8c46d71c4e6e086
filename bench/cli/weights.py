"""``bench import-checkpoint`` and ``bench export-checkpoint``: the PAFUSE reference code's saved weights."""
from __future__ import annotations

from pathlib import Path


def add_weights_commands(commands) -> None:
    imported = commands.add_parser(
        "import-checkpoint", help="make a run folder from the PAFUSE reference code's saved weights",
        description="Read a checkpoint saved by the PAFUSE reference code (e.g. its released pafuse_model.bin: a "
                    "dict whose model_pos is a DataParallel state dict, or a bare state dict), map every weight "
                    "strictly onto our model with the reference's design (attach: reference, hands: joint; sizes "
                    "read off the file) and write a run folder that bench eval and bench lift take like a trained "
                    "run. The file is read with weights_only=True: loading it runs no code.")
    imported.add_argument("file", type=Path, help="the reference's checkpoint file")
    imported.add_argument("--model", required=True, choices=("pafuse", "d3dp"),
                          help="which reference model the file holds")
    imported.add_argument("--out", type=Path,
                          help="run folder to write (default results/runs/<run id>-imported)")
    imported.add_argument("--data", type=Path, nargs="+",
                          help="the data the run evaluates on: a folder of H3WB's files or the files themselves "
                               "(default: the synthetic set)")
    imported.set_defaults(func=_import)

    exported = commands.add_parser(
        "export-checkpoint", help="write a run's D3DP or PAFUSE weights in the reference code's layout",
        description="Write a run's weights as the PAFUSE reference code saves them (model_pos with module. keys, "
                    "epoch, lr), so that its scripts run them. Only D3DP, and PAFUSE with attach: reference and "
                    "hands: joint, have the reference's design.")
    exported.add_argument("run", type=Path, help="the run folder (config.yaml + best.pt)")
    exported.add_argument("--out", type=Path, required=True, help="the file to write")
    exported.add_argument("--checkpoint", type=Path, help="checkpoint file (default RUN/best.pt)")
    exported.set_defaults(func=_export)


def _import(args) -> int:
    from bench.runs.reference_runs import import_checkpoint

    folder = import_checkpoint(args.file, args.model, out=args.out, data=args.data)
    print(f"imported {args.file} as {args.model}: {folder}")
    print(f"evaluate with: python -m bench eval --run {folder}")
    return 0


def _export(args) -> int:
    from bench.runs.reference_runs import export_checkpoint

    print(f"wrote {export_checkpoint(args.run, args.out, args.checkpoint)}")
    return 0
