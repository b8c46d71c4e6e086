"""The parser loads no heavy package: ``python -m bench --help`` and every command's help start without torch.

Asserted on the modules a fresh interpreter holds, not on seconds: timings belong in benchmarks, not tests.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cli import constants, models

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


MODELS_TWICE = """
import json, sys
from bench.cli import main
main(["models", "--filter", "video*"])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _models_in_fresh_process(cache):
    done = subprocess.run([sys.executable, "-c", MODELS_TWICE], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "PAFUSE_BENCH_CACHE": str(cache)})
    assert done.returncode == 0, done.stderr
    table, _, loaded = done.stdout.rpartition("\n[")
    return table, json.loads("[" + loaded)


def test_bench_models_counts_once_then_prints_its_cached_table_without_torch(tmp_path):
    first, loaded = _models_in_fresh_process(tmp_path)
    assert "torch" in loaded and "| videopose | 9,634,194" in first
    second, loaded = _models_in_fresh_process(tmp_path)
    assert second == first
    assert [name for name in HEAVY if name in loaded] == []
    assert len(list((tmp_path / "models").glob("*.txt"))) == 1


def test_the_models_cache_key_follows_flags_and_every_source_file(tmp_path, monkeypatch):
    for top in models.SOURCES:
        path = tmp_path / top
        (path if path.suffix == "" else path.parent).mkdir(parents=True, exist_ok=True)
        if path.suffix:
            path.write_text("")
    (tmp_path / "baselines" / "mine.py").write_text("x = 1\n")
    (tmp_path / "configs" / "models" / "mine.yaml").write_text("model_args: {width: 8}\n")
    monkeypatch.setattr(models, "ROOT", tmp_path)
    monkeypatch.setenv("PAFUSE_BENCH_CACHE", str(tmp_path / "cache"))
    flags = (134, 27, "*", False, False)
    before = models._cache_path(flags)
    assert models._cache_path(flags) == before and models._cache_path((134, 81, "*", False, False)) != before
    (tmp_path / "configs" / "models" / "mine.yaml").write_text("model_args: {width: 16}\n")
    after_config = models._cache_path(flags)
    (tmp_path / "parts" / "new_part.py").write_text("")
    after_new_file = models._cache_path(flags)
    assert len({before, after_config, after_new_file}) == 3
    assert after_new_file.parent == tmp_path / "cache" / "models"
