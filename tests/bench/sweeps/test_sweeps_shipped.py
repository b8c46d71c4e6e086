"""The shipped sweep files (configs/sweeps): the paper's rows, shared runs, and the quick preset."""
from pathlib import Path

import pytest

from bench.sweeps.files import load_sweep

SWEEPS = Path(__file__).parents[3] / "configs" / "sweeps"


@pytest.fixture(scope="module")
def paper():
    """Each table's sweep as shipped (expanding builds every full-size lifter on the meta device: seconds)."""
    return {name: load_sweep(SWEEPS / f"{name}.yaml") for name in ("table1", "table2", "table3")}


def test_table1_has_every_spatio_temporal_row_of_the_paper(paper):
    rows = [(r.config["model"], r.config["part_based"], r.config["frames"]) for r in paper["table1"].runs]
    assert sorted(rows) == sorted([(m, p, n) for m in ("videopose", "poseformer", "mixste") for p in (False, True)
                                   for n in (27, 81)] + [("d3dp", False, 27), ("pafuse", True, 27)])
    pairs = {r.config["model"]: r.config["eval"]["hypotheses_steps"] for r in paper["table1"].runs}
    assert pairs["d3dp"] == pairs["pafuse"] == [[1, 1], [20, 10], [300, 5]] and pairs["mixste"] == [[1, 1]]


def test_ablation_rows_change_one_thing_each(paper):
    assert [(r.config["model"], r.changes) for r in paper["table2"].runs] == [
        ("d3dp", ""), ("pafuse", "parts.split=false"), ("pafuse", "parts.shift=false"), ("pafuse", "")]
    table3 = paper["table3"].runs
    assert [r.changes for r in table3] == ["", "parts.loss=wb", "parts.widths=uniform", "", "parts.error=mse"]
    assert [r.config["frames"] for r in table3] == [27, 27, 27, 81, 27]


def test_tables_share_the_runs_they_have_in_common(paper):
    ids = {name: [run.run_id for run in sweep.runs] for name, sweep in paper.items()}
    d3dp, pafuse = ids["table2"][0], ids["table2"][3]
    assert {d3dp, pafuse} <= set(ids["table1"]) and ids["table3"][0] == pafuse
    assert all(len(set(run_ids)) == len(run_ids) for run_ids in ids.values())


def test_paper_sweeps_ask_for_a_gpu_per_run(paper):
    for sweep in paper.values():
        assert sweep.executor["gpus_per_node"] == 1 and sweep.executor["timeout_min"] >= 60
        assert all(run.config["device"] == "cuda" for run in sweep.runs)


def test_quick_preset_applies_to_every_run_and_runs_on_cpus(paper):
    quick = load_sweep(SWEEPS / "table1.yaml", preset="quick")
    assert len(quick.runs) == len(paper["table1"].runs)
    assert all(run.config["train"]["epochs"] == 8 and run.config["device"] == "cpu" for run in quick.runs)
    assert not {run.run_id for run in quick.runs} & {run.run_id for run in paper["table1"].runs}
    assert quick.executor["gpus_per_node"] == 0 and quick.executor["cpus_per_task"] == 1
    pafuse = next(run for run in quick.runs if run.config["model"] == "pafuse")
    assert pafuse.config["eval"]["hypotheses_steps"] == [[1, 1], [4, 2]]  # the preset's short evaluation


def test_medium_table1_crosses_two_seeds_and_submits_the_diffusion_pair_then_short_windows_first():
    medium = load_sweep(SWEEPS / "table1.yaml", preset="medium", seeds=[0, 1])
    assert len(medium.runs) == 28 and medium.executor["cpus_per_task"] == 1 and medium.executor["gpus_per_node"] == 0
    order = [(run.config["model"], run.config["frames"], run.config["seed"]) for run in medium.runs]
    assert order[:4] == [("d3dp", 27, 0), ("d3dp", 27, 1), ("pafuse", 27, 0), ("pafuse", 27, 1)]
    assert [frames for _, frames, _ in order[4:16]] == [27] * 12 and [f for _, f, _ in order[16:]] == [81] * 12
    assert all(run.config["train"]["epochs"] == 16 for run in medium.runs)
    quick = load_sweep(SWEEPS / "table1.yaml", preset="quick")
    assert not {run.run_id for run in quick.runs} & {run.run_id for run in medium.runs}
