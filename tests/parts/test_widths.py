"""Part widths: the paper's balanced and uniform widths, explicit widths, and the parameter match."""
import pytest
import torch

import baselines
from baselines.base import count_parameters
from bench.skeleton import NUM_JOINTS
from parts.widths import MATCH_TOLERANCE, part_sizes, width_spec

# Joints of each part network with attach="roots" (body + 3 anchor tokens) and with the reference layout.
ROOTS_JOINTS = {"body": 27, "face": 68, "hands": 42}
REFERENCE_JOINTS = {"body": 24, "face": 68, "hands": 42}


def total(name, sizes, part_joints, frames=27):
    with torch.device("meta"):
        return sum(count_parameters(baselines.create_lifter(name, joints=part_joints[p], frames=frames, **o))
                   for p, o in sizes.items())


def vanilla(name, frames=27):
    with torch.device("meta"):
        return count_parameters(baselines.create_lifter(name, joints=NUM_JOINTS, frames=frames))


@pytest.mark.parametrize("name", ["mixste", "d3dp"])
def test_balanced_and_uniform_are_the_papers_widths_at_512(name):
    assert part_sizes(name, "balanced", ROOTS_JOINTS, 27, {}) == {
        "body": {"width": 384}, "face": {"width": 224}, "hands": {"width": 256}}
    assert part_sizes(name, "uniform", ROOTS_JOINTS, 27, {}) == {p: {"width": 288} for p in ROOTS_JOINTS}


def test_balanced_ratios_apply_to_the_vanilla_width_of_any_lifter():
    assert part_sizes("videopose", "balanced", ROOTS_JOINTS, 27, {}) == {
        "body": {"channels": 768}, "face": {"channels": 448}, "hands": {"channels": 512}}
    # Width 96 scales to 72 / 42 / 48, rounded to multiples of 8 (8 heads, even).
    assert part_sizes("mixste", "balanced", ROOTS_JOINTS, 27, {"width": 96}) == {
        "body": {"width": 72}, "face": {"width": 40}, "hands": {"width": 48}}


def test_width_spec_reads_the_class_rule_and_the_head_count():
    spec = width_spec("mixste", 27, {"heads": 4})
    assert (spec.argument, spec.vanilla, spec.multiple, spec.heads) == ("width", 512, 4, 4)
    spec = width_spec("videopose", 27, {})
    assert (spec.argument, spec.vanilla, spec.multiple, spec.heads) == ("channels", 1024, 1, None)
    assert width_spec("poseformer", 27, {}).round(13) == 16


@pytest.mark.parametrize("name", ["mixste", "videopose", "poseformer", "d3dp"])
def test_match_is_within_one_percent_of_vanilla(name):
    sizes = part_sizes(name, "match", ROOTS_JOINTS, 27, {})
    assert abs(total(name, sizes, ROOTS_JOINTS) / vanilla(name) - 1) <= MATCH_TOLERANCE
    widths = [sizes[p][width_spec(name, 27, {}).argument] for p in ("body", "hands", "face")]
    assert widths == sorted(widths, reverse=True), "body >= hands >= face, as in the balanced widths"


def test_match_keeps_exact_balanced_proportions_when_they_fit():
    assert part_sizes("d3dp", "match", ROOTS_JOINTS, 27, {}) == part_sizes("d3dp", "balanced", ROOTS_JOINTS, 27, {})
    channels = part_sizes("videopose", "match", ROOTS_JOINTS, 27, {})
    assert (channels["body"]["channels"] * 7, channels["hands"]["channels"] * 7) == (
        channels["face"]["channels"] * 12, channels["face"]["channels"] * 8)


def test_poseformer_match_halves_the_heads_only_when_8_heads_cannot_fit():
    sizes = part_sizes("poseformer", "match", REFERENCE_JOINTS, 27, {})
    assert abs(total("poseformer", sizes, REFERENCE_JOINTS) / vanilla("poseformer") - 1) <= MATCH_TOLERANCE
    for override in sizes.values():
        assert override["joint_width"] % override.get("heads", 8) == 0 and override.get("heads", 8) in (4, 8)
    assert any(override.get("heads") == 4 for override in sizes.values())
    roots = part_sizes("poseformer", "match", ROOTS_JOINTS, 27, {})
    assert all("heads" not in override for override in roots.values())


def test_explicit_widths_are_checked():
    assert part_sizes("mixste", {"body": 64, "face": 32, "hands": 48}, ROOTS_JOINTS, 27, {})["hands"] == {
        "width": 48}
    with pytest.raises(ValueError, match=r"widths: expected keys \['body', 'face', 'hands'\], got \['body'\]"):
        part_sizes("mixste", {"body": 64}, ROOTS_JOINTS, 27, {})
    with pytest.raises(ValueError, match=r"widths\['face'\]: expected a positive multiple of 8 for 'width', got 30"):
        part_sizes("mixste", {"body": 64, "face": 30, "hands": 48}, ROOTS_JOINTS, 27, {})
    with pytest.raises(ValueError, match="widths: expected one of"):
        part_sizes("mixste", "wide", ROOTS_JOINTS, 27, {})
