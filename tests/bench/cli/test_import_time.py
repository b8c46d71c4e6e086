"""The parser loads no heavy package: ``python -m bench --help`` and every command's help start without torch.

Asserted on the modules a fresh interpreter holds, not on seconds: timings belong in benchmarks, not tests.
"""
import json
import subprocess
import sys
from pathlib import Path

from bench.cli import constants

HEAVY = ("torch", "timm", "torchvision")
ROOT = Path(__file__).resolve().parents[3]

EVERY_HELP = """
import argparse, contextlib, io, json, sys
from bench.cli import build_parser

def helps(parser):
    yield parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from helps(sub)

parser = build_parser()
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    parser.parse_args(["--help"])
texts = list(helps(parser))
print(json.dumps({"helps": len(texts), "loaded": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def test_building_the_parser_and_printing_every_help_imports_no_torch():
    done = subprocess.run([sys.executable, "-c", EVERY_HELP], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["helps"] >= 14   # bench, its commands, and data's two subcommands
    assert [name for name in HEAVY if name in found["loaded"]] == []


def test_the_parsers_copies_equal_the_values_of_the_feature_packages():
    from bench.metrics import PROTOCOLS
    from bench.sweeps.status import CLUSTERS

    assert constants.PROTOCOL_NAMES == tuple(PROTOCOLS)
    assert constants.CLUSTERS == CLUSTERS
