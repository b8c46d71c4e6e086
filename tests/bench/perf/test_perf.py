"""`bench perf`: every fast path computes what its plain counterpart computes, and the report has every field.

Tiny models on CPU; no assertion is about speed (timings on shared machines are noise), only about values, shapes
and the report's structure.
"""
import copy
import json
import math
import mmap
import os
from unittest import mock

import pytest
import torch

import baselines
from baselines.diffusion import DEFAULT_SAMPLERS, REFERENCE_SAMPLER, SAMPLER_PATHS, default_sampler
from baselines.layers import Attention, fused_by_default
from bench.cli import build_parser, main
from bench.cli.perf import settings_from_args
from bench.perf import measure as perf
from bench.perf.compare import FAST_PATHS, attention_modules, attention_path, sampler_path
from bench.perf.measure import PerfSettings, make_lifter, measure_lifter, predictor, time_calls
from bench.runs import config as cfg
from bench.runs.lifters import compile_networks
from bench.skeleton import NUM_JOINTS

FRAMES = 5
BF16_TOLERANCE = 0.05
"""bf16 keeps 8 significant bits (relative rounding 2^-9 per operation); through a few layers of a tiny random
network the outputs stay within 5% of the output scale, while any real bug (wrong layer, wrong dtype cast back)
shows up at the scale of the outputs themselves."""
ROW_FIELDS = {"model", "part_based", "generative", "parameters", "train_windows_per_s", "infer_latency_ms",
              "infer_windows_per_s", "sample_ms", "peak_memory_mb", "note"}
COMPARE_FIELDS = {"model", "fast_path", "operation", "fast", "plain", "fast_ms", "plain_ms", "speedup",
                  "max_abs_diff", "fast_peak_mb", "plain_peak_mb", "note"}
MACHINE_FIELDS = {"cpu", "cores", "torch_threads", "load_average", "torch", "cuda", "python", "platform", "device",
                  "device_name", "dtype", "compile", "memory"}


def tiny(tiny_args, **changes) -> PerfSettings:
    return PerfSettings(frames=FRAMES, hypotheses=2, steps=2, batch=2, repeats=1, warmup=0, per_lifter=tiny_args,
                        **changes)


def tiny_flags(*models: str) -> list[str]:
    return ["perf", "--models", *models, "--frames", str(FRAMES), "--hypotheses", "2", "--steps", "2", "--batch",
            "2", "--repeats", "1", "--warmup", "0", "--device", "cpu", "--set", "mixste.width=16", "mixste.depth=1",
            "mixste.heads=1", "d3dp.width=16", "d3dp.depth=1", "d3dp.heads=1", "pafuse.width=16", "pafuse.depth=1"]


@pytest.mark.parametrize("name", ["d3dp", "pafuse"])
def test_every_sampler_path_gives_the_same_samples(name, tiny_args, single_thread):
    lifter = make_lifter(name, tiny(tiny_args))
    sample = predictor(lifter, 2, False, hypotheses=3, steps=2, flip=True)
    samples = {}
    for path in SAMPLER_PATHS:
        with sampler_path(lifter, path) as count:
            samples[path] = sample()
    default = sample()
    assert count == 1 and samples["together"].shape == (2, 3, FRAMES, 134, 3)
    for path in SAMPLER_PATHS:
        torch.testing.assert_close(samples[path], samples[REFERENCE_SAMPLER], atol=1e-5, rtol=0)
    torch.testing.assert_close(default, samples[REFERENCE_SAMPLER], atol=1e-5, rtol=0)
    assert (default[:, 0] - default[:, 1]).abs().max() > 1e-3   # the hypotheses are distinct draws
    assert all(d.sampler is None for d in lifter.modules() if hasattr(d, "sampler"))   # restored


def test_sampler_default_is_chosen_per_device_and_the_attribute_overrides_it(tiny_args, single_thread):
    # measured: README "Performance"
    assert default_sampler("cuda:0") == default_sampler(torch.device("cuda")) == "together"
    assert default_sampler("cpu") == DEFAULT_SAMPLERS["cpu"] == "per-hypothesis"
    assert default_sampler("mps") == REFERENCE_SAMPLER == "per-flip"
    pafuse = make_lifter("pafuse", tiny(tiny_args))   # its part-split denoiser batches the hypotheses on CPU
    split = pafuse.inner.diffusion.denoiser
    assert default_sampler("cpu", split) == "per-flip" and default_sampler("cuda", split) == "together"
    lifter = baselines.create_lifter("d3dp", joints=NUM_JOINTS, frames=FRAMES, **tiny_args["d3dp"]).eval()
    calls = []
    lifter.diffusion.denoiser.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    x2d = torch.rand(2, FRAMES, 134, 2)
    permutation = perf.flip_permutation(lifter)
    expected = {"together": [2 * 3 * 2] * 2, "per-flip": [2 * 3] * (2 * 2), "per-hypothesis": [2] * (3 * 2 * 2)}
    for path, shapes in expected.items():
        calls.clear()
        with sampler_path(lifter, path):
            lifter.predict(x2d, hypotheses=3, steps=2, flip_permutation=permutation)
        assert calls == shapes   # (B * H * 2 flips) per step, B * H per flip and step, or B per everything
    calls.clear()
    lifter.predict(x2d, hypotheses=3, steps=2, flip_permutation=permutation)
    assert calls == expected[default_sampler("cpu")]
    with pytest.raises(ValueError, match="unknown sampler path 'batched'"):
        lifter.diffusion.sample(x2d, hypotheses=1, steps=1, sampler="batched")


def test_fused_attention_equals_explicit_softmax_attention(tiny_args, single_thread):
    lifter = make_lifter("mixste", tiny(tiny_args))
    forward = predictor(lifter, 2, False)
    assert len(attention_modules(lifter)) == 2 and all(a.fused_attn is None for a in attention_modules(lifter))
    with attention_path(lifter, False) as count:
        explicit = forward()
        assert count == 2 and all(a.fused_attn is False for a in attention_modules(lifter))
    with attention_path(lifter, True):
        fused = forward()
    assert all(a.fused_attn is None for a in attention_modules(lifter))   # restored: by device
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=0)
    torch.testing.assert_close(forward(), explicit, atol=1e-5, rtol=0)   # by default: fused over 134 joints only
    assert fused.abs().max() > 1e-2


def test_the_attention_kernel_follows_the_device_and_the_sequence_length():
    # measured: README "Performance" (on CPU the explicit softmax wins over short sequences, the fused kernel over 134)
    assert fused_by_default("cpu", 134) and fused_by_default("cpu", 128) and not fused_by_default("cpu", 68)
    assert fused_by_default("cuda:0", 2) and fused_by_default(torch.device("cuda"), 27)
    attention = Attention(8, 2, qkv_bias=True)
    fused = mock.Mock(wraps=torch.nn.functional.scaled_dot_product_attention)
    with mock.patch("torch.nn.functional.scaled_dot_product_attention", fused):
        for tokens in (27, 134):
            attention(torch.randn(3, tokens, 8))
        assert [call.args[0].shape[2] for call in fused.call_args_list] == [134]   # (B, heads, T, head_dim)
        attention.fused_attn = False   # pinned
        attention(torch.randn(3, 134, 8))
    assert fused.call_count == 1


@pytest.mark.parametrize("name", ["mixste", "pafuse"])
def test_bf16_autocast_stays_within_its_tolerance_of_fp32(name, tiny_args, single_thread):
    lifter = make_lifter(name, tiny(tiny_args))
    fp32, bf16 = predictor(lifter, 2, False)(), predictor(lifter, 2, True)().float()
    scale = fp32.abs().max()
    assert scale > 1e-2 and (bf16 - fp32).abs().max() <= BF16_TOLERANCE * scale
    assert not torch.equal(bf16, fp32)   # autocast did run in bf16


def test_compiled_networks_equal_eager_ones(tiny_args, single_thread):
    torch._dynamo.reset()
    lifter = make_lifter("d3dp", tiny(tiny_args))
    compiled = copy.deepcopy(lifter)
    compile_networks(compiled, backend="aot_eager")
    eager = predictor(lifter, 2, False, hypotheses=2, steps=2, flip=True)()
    torch.testing.assert_close(predictor(compiled, 2, False, hypotheses=2, steps=2, flip=True)(), eager,
                               atol=1e-5, rtol=0)


def test_time_calls_reports_the_median_of_interleaved_calls(monkeypatch):
    clock = iter([0.0, 3.0, 10.0, 10.5, 20.0, 21.0, 30.0, 30.25, 40.0, 42.0, 50.0, 51.0])
    monkeypatch.setattr(perf.time, "perf_counter", lambda: next(clock))
    order = []
    timings = time_calls([lambda: order.append("a"), lambda: order.append("b")], torch.device("cpu"), repeats=3,
                         warmup=1)
    assert order == ["a", "b", "a", "b", "a", "b", "a", "b"]   # warm-up of each, then a/b in turn
    assert [t.seconds for t in timings] == [2.0, 0.5]          # medians of (3, 1, 2) and (0.5, 0.25, 1)
    assert all(t.peak_bytes > 2 ** 20 for t in timings)        # a process's peak RSS, in bytes


@pytest.mark.skipif(not perf.resettable_rss(), reason="needs Linux /proc/self/clear_refs")
def test_cpu_peak_memory_is_reset_before_each_measurement():
    cpu = torch.device("cpu")
    perf.reset_peak_memory(cpu)
    before = perf.peak_memory_bytes(cpu)
    # Fresh anonymous pages, written so they are resident: unlike a tensor, they cannot reuse memory that earlier
    # tests freed but the allocator kept, so the process's resident size must grow by 64 MiB.
    block = mmap.mmap(-1, 64 * 2 ** 20)
    block.write(b"\1" * len(block))
    grown = perf.peak_memory_bytes(cpu) - before
    assert grown >= 60 * 2 ** 20
    block.close()
    perf.reset_peak_memory(cpu)
    assert perf.peak_memory_bytes(cpu) < before + grown   # the 64 MiB peak is forgotten once freed and reset


def test_measure_lifter_fills_every_field(tiny_args, single_thread):
    settings = tiny(tiny_args)
    mixste, d3dp = measure_lifter("mixste", settings), measure_lifter("d3dp", settings)
    for row, name in ((mixste, "mixste"), (d3dp, "d3dp")):
        assert set(row) == ROW_FIELDS and row["note"] == ""
        expected = baselines.create_lifter(name, joints=NUM_JOINTS, frames=FRAMES, **tiny_args[name])
        assert row["parameters"] == sum(p.numel() for p in expected.parameters())
        for key in ("train_windows_per_s", "infer_latency_ms", "infer_windows_per_s"):
            assert math.isfinite(row[key]) and row[key] > 0
    assert mixste["sample_ms"] is None and set(mixste["peak_memory_mb"]) == {"train", "infer"}
    assert d3dp["sample_ms"] > 0 and set(d3dp["peak_memory_mb"]) == {"train", "infer", "sample"}
    assert (mixste["generative"], d3dp["generative"]) == (False, True)


def test_a_lifter_that_cannot_be_built_gives_a_row_saying_why(tiny_args):
    row = measure_lifter("pafuse", tiny(tiny_args, joints=17))
    assert row["parameters"] is None and row["note"].startswith("cannot build: ") and "134" in row["note"]


def test_cli_perf_writes_json_with_every_field(tmp_path, capsys, single_thread):
    out = tmp_path / "perf.json"
    assert main(tiny_flags("mixste,d3dp") + ["--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"machine", "settings", "models", "sweeps"} and report["sweeps"] == {}
    assert set(report["machine"]) == MACHINE_FIELDS and report["machine"]["device"] == "cpu"
    assert report["settings"]["per_lifter"]["d3dp"] == {"width": 16, "depth": 1, "heads": 1}
    assert [row["model"] for row in report["models"]] == ["mixste", "d3dp"]
    assert all(set(row) == ROW_FIELDS for row in report["models"])
    printed = capsys.readouterr().out
    assert "| mixste " in printed and "| d3dp " in printed and f"saved: {out}" in printed


@pytest.mark.parametrize("busy", [True, False])
def test_cli_perf_warns_before_measuring_when_the_load_exceeds_the_cores(busy, monkeypatch, capsys, single_thread):
    cores = os.cpu_count()
    load = cores + 1.5 if busy else 0.0
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert main(tiny_flags("mixste")) == 0
    lines = capsys.readouterr().err.splitlines()
    warnings = [line for line in lines if line.startswith("warning: load average")]
    if not busy:
        assert warnings == []
        return
    assert warnings == [f"warning: load average {load:.2f} over the last minute exceeds this machine's {cores} cores: "
                        "other processes compete for the CPU, so this run's figures will be unreliable (slower and "
                        "noisier than on an idle machine)"]
    assert lines.index(warnings[0]) < lines.index("measuring mixste ...")


def test_cli_compare_has_a_row_per_fast_path_and_equal_outputs_where_equal(tmp_path, single_thread):
    out = tmp_path / "compare.json"
    assert main(tiny_flags("pafuse") + ["--compare", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["compare"]
    assert all(set(row) == COMPARE_FIELDS for row in rows)
    assert [row["fast_path"] for row in rows] == ["sampler", "sampler", "part-based", "part-based", "bf16", "bf16",
                                                  "compile", "compile"] + ["fused-attention"] * 4
    assert [row["plain"] for row in rows[:2]] == ["1 forward per flip (all H)"] * 2   # the reference's way
    assert {row["fast_path"] for row in rows} == set(FAST_PATHS)
    by_path = {row["fast_path"]: row for row in rows}
    assert all(row["max_abs_diff"] <= 1e-5 for row in rows[:2] + rows[8:10])
    assert sum("default on cpu" in row["note"] for row in rows[:2]) >= 1
    assert [row["fast"] for row in rows[8:10]] == ["default: fused from 128 tokens", "fused SDPA everywhere"]
    assert all(row["speedup"] > 0 for row in rows if row["fast_path"] != "compile")
    assert all(row["note"].startswith("skipped: pass --compile") for row in rows if row["fast_path"] == "compile")
    part = by_path["part-based"]   # pafuse against d3dp, its vanilla counterpart, at the same budget
    counts = [int(label.split(", ")[1].split()[0].replace(",", "")) for label in (part["fast"], part["plain"])]
    assert abs(counts[0] / counts[1] - 1) <= 0.01


def test_cli_compare_can_name_the_fast_paths(tmp_path, single_thread):
    out = tmp_path / "compare.json"
    assert main(tiny_flags("mixste") + ["--compare", "fused-attention", "bf16", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["compare"]
    assert [(row["fast_path"], row["operation"]) for row in rows] == [
        ("bf16", "train step, B=2"), ("bf16", "forward, B=2"), ("fused-attention", "forward, B=2"),
        ("fused-attention", "forward, B=2"), ("fused-attention", "train step, B=2"),
        ("fused-attention", "train step, B=2")]
    assert rows[1]["max_abs_diff"] <= BF16_TOLERANCE and rows[2]["max_abs_diff"] <= 1e-5


def test_cli_sweep_prints_a_table_per_axis(tmp_path, capsys, single_thread):
    out = tmp_path / "sweep.json"
    argv = tiny_flags("mixste", "pafuse") + ["--sweep", "hypotheses=1,3", "joints=17,134", "--out", str(out)]
    assert main(argv) == 0
    sweeps = json.loads(out.read_text())["sweeps"]
    hypotheses, joints = sweeps["hypotheses"], sweeps["joints"]
    assert [(r["value"], r["model"]) for r in hypotheses] == [(1, "mixste"), (1, "pafuse"), (3, "mixste"),
                                                             (3, "pafuse")]
    assert [r["note"] for r in hypotheses if r["model"] == "mixste"] == ["deterministic: no sampling"] * 2
    assert all(r["sample_ms"] > 0 and set(r["peak_memory_mb"]) == {"sample"} for r in hypotheses
               if r["model"] == "pafuse")
    assert all(r["train_windows_per_s"] is None for r in hypotheses)   # only sampling depends on H
    pafuse_17 = next(r for r in joints if r["model"] == "pafuse" and r["value"] == 17)
    assert pafuse_17["note"].startswith("cannot build")
    mixste = {r["value"]: r["parameters"] for r in joints if r["model"] == "mixste"}
    assert mixste[134] - mixste[17] == (134 - 17) * 16   # one spatial position embedding row per joint
    printed = capsys.readouterr().out
    assert "sweep over hypotheses:" in printed and "sweep over joints:" in printed


@pytest.mark.parametrize("flags, message", [
    (["--models", "nonesuch"], "--models: unknown lifter(s) nonesuch"),
    (["--models", "mixste", "--set", "width=3"], "--set expects KEY=VALUE with KEY model_args.ARG"),
    (["--models", "mixste", "--set", "mixtse.width=3"], "'mixtse' is neither model_args nor parts nor a registered"),
    (["--models", "mixste", "--sweep", "depth=1,2"], "--sweep: expected AXIS=V1,V2,... with AXIS one of frames"),
    (["--models", "mixste", "--sweep", "frames=9,x"], "--sweep frames: expected comma-separated integers"),
    (["--models", "mixste", "--batch", "0"], "batch must be an integer >= 1, got 0"),
    (["--models", "mixste", "--compare", "sampler", "fused"], "--compare: unknown fast path(s) fused; known: "),
    (["--models", "mixste", "--threads", "0"], "--threads: expected an integer >= 1, got 0"),
    (["--models", "mixste", "--preset", "nonesuch"], "unknown preset 'nonesuch'"),
    (["--models", "mixste", "--devices", "1"], "--devices: expected an integer >= 2 (processes to compare with one)"),
])
def test_bad_perf_options_are_clear_errors(flags, message, capsys):
    assert main(["perf", "--device", "cpu", *flags]) == 2
    assert message in capsys.readouterr().err


def test_preset_gives_each_lifter_its_sizes_and_set_overrides_them():
    args = build_parser().parse_args(["perf", "--preset", "quick", "--set", "mixste.depth=3", "model_args.heads=2"])
    settings = settings_from_args(args, ["mixste", "pafuse"])
    quick = {name: cfg.preset("quick", name)["model_args"] for name in ("mixste", "pafuse")}
    assert quick["mixste"]["depth"] != 3 and quick["pafuse"]
    assert settings.per_lifter == {"mixste": {**quick["mixste"], "heads": 2, "depth": 3},
                                    "pafuse": {**quick["pafuse"], "heads": 2}}
    assert settings.model_args == {"heads": 2}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sampling_on_cuda_never_waits_for_the_device(tiny_args):
    lifter = make_lifter("pafuse", tiny(tiny_args, device="cuda"))
    sample = predictor(lifter, 2, False, hypotheses=3, steps=3, flip=True)
    sample()   # first call: lazy initialisation may synchronise
    torch.cuda.set_sync_debug_mode("error")
    try:
        sample()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_cli_devices_times_one_and_two_processes_on_the_same_global_batch(tmp_path, capsys, single_thread):
    out = tmp_path / "perf.json"
    assert main(tiny_flags("mixste") + ["--devices", "2", "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["scaling"]
    assert set(row) == {"model", "devices", "windows_per_s_1", "windows_per_s_n", "speedup", "note"}
    assert row["model"] == "mixste" and row["devices"] == 2 and row["windows_per_s_1"] > 0 < row["windows_per_s_n"]
    assert row["speedup"] == pytest.approx(row["windows_per_s_n"] / row["windows_per_s_1"])
    assert "| train win/s, 1 process " in capsys.readouterr().out


@pytest.mark.parametrize("one_s, many_s, note", [
    (1.0, 0.5, ""), (1.0, 0.95, "no gain on this hardware: 2 processes share "),
    (1.0, 2.0, "no gain on this hardware")])
def test_scaling_says_when_several_processes_gain_nothing(one_s, many_s, note, tiny_args, monkeypatch):
    from bench.perf import scaling

    monkeypatch.setattr(scaling, "step_seconds", lambda name, settings: one_s)
    monkeypatch.setattr(scaling, "_spawned_step_seconds", lambda name, settings, devices: many_s)
    row = scaling.measure_scaling("mixste", tiny(tiny_args), 2)
    assert row["speedup"] == pytest.approx(one_s / many_s) and row["windows_per_s_1"] == 2 / one_s
    assert note in row["note"] and bool(row["note"]) == bool(note)
