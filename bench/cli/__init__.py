"""The command line: ``python -m bench <command> ...``. One module per command parses its flags, calls one
function of a feature package and prints; nothing else imports this package."""
from __future__ import annotations

import argparse
import sys

from bench.cli.data import add_data_commands
from bench.cli.lift import add_lift_command
from bench.cli.models import add_models_command
from bench.cli.perf import add_perf_command
from bench.cli.report import add_report_command
from bench.cli.run import add_eval_command, add_run_command
from bench.cli.sweep import add_sweep_commands
from bench.cli.weights import add_weights_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description="pafuse-bench: train, compare and report 2D-to-3D whole-body "
                                                 "pose lifters on H3WB.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    add_data_commands(commands)
    add_models_command(commands)
    add_run_command(commands)
    add_eval_command(commands)
    add_report_command(commands)
    add_lift_command(commands)
    add_sweep_commands(commands)
    add_perf_command(commands)
    add_weights_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)   # to start the same command again (bench run --devices)
    try:
        return args.func(args)
    except (KeyError, ValueError) as error:   # bench.errors' classes are ValueErrors
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    except OSError as error:   # a file that failed while it was read or written (outputs are checked before work)
        print(f"error: {error}", file=sys.stderr)
        return 2
