"""Tests of bench.metrics: hand-computed values for MPJPE, both whole-body protocols and the hypothesis metrics."""
import math

import pytest
import torch

from bench.metrics import METRIC_KEYS, _procrustes_align, hypothesis_errors, mpjpe, summarize, whole_body_errors
from bench.skeleton import BODY_NOSE, NUM_JOINTS, PART_ROOTS, PARTS, PELVIS

# A displacement of 50 mm (3-4-5 triangle), in metres.
OFFSET = torch.tensor([0.03, 0.04, 0.0], dtype=torch.float64)
D = 50.0


def random_poses(*shape, seed=0):
    """Random (..., 134, 3) float64 poses in metres."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, NUM_JOINTS, 3, generator=generator, dtype=torch.float64)


def rotation_matrix(axis, angle):
    axis = torch.tensor(axis, dtype=torch.float64)
    axis = axis / axis.norm()
    k = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def assert_metrics(result, **expected):
    """Every key of METRIC_KEYS must equal ``expected`` (0 when not given) to 1e-9 mm."""
    for key in METRIC_KEYS:
        assert result[key].item() == pytest.approx(expected.get(key, 0.0), abs=1e-9), key


def moved(joints, offset=OFFSET, seed=0):
    """A random gt and a pred equal to it except that ``joints`` are displaced by ``offset``."""
    gt = random_poses(seed=seed)
    pred = gt.clone()
    pred[list(joints)] += offset
    return pred, gt


# ---------------------------------------------------------------------------------------------------------- mpjpe

def test_mpjpe_identical_poses_is_zero():
    gt = random_poses(2, 5)
    assert torch.equal(mpjpe(gt, gt), torch.zeros(2, 5, dtype=torch.float64))


def test_mpjpe_constant_offset_in_millimetres():
    gt = random_poses(4)
    pred = gt + torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    assert torch.allclose(mpjpe(pred, gt), torch.full((4,), 5000.0, dtype=torch.float64))


def test_procrustes_removes_rotation_scale_and_translation():
    gt = random_poses(3)
    pred = 1.7 * gt @ rotation_matrix([1.0, 2.0, -0.5], 0.9).T + torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    assert mpjpe(pred, gt).min() > 100.0
    assert torch.allclose(mpjpe(pred, gt, alignment="procrustes"), torch.zeros(3, dtype=torch.float64), atol=1e-9)


def test_procrustes_equals_mpjpe_when_already_aligned():
    gt = random_poses(3)
    aligned = _procrustes_align(gt + 0.1 * random_poses(3, seed=1), gt)
    assert torch.allclose(mpjpe(aligned, gt, alignment="procrustes"), mpjpe(aligned, gt), atol=1e-9)
    assert mpjpe(aligned, gt).min() > 10.0


def test_procrustes_never_reflects():
    # Mirroring a planar pose equals a 180-degree rotation (error 0); mirroring a chiral 3D pose cannot be undone.
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    planar = random_poses()
    planar[:, 2] = 0
    assert mpjpe(planar * mirror, planar, alignment="procrustes").item() == pytest.approx(0.0, abs=1e-9)
    chiral = random_poses()
    assert mpjpe(chiral * mirror, chiral, alignment="procrustes").item() > 100.0


def test_procrustes_keeps_float32_dtype():
    gt = random_poses(2).float()
    assert mpjpe(gt, gt, alignment="procrustes").dtype == torch.float32


def test_scale_alignment_recovers_pure_scaling():
    gt = random_poses(2)
    assert torch.allclose(mpjpe(0.8 * gt, gt, alignment="scale"), torch.zeros(2, dtype=torch.float64), atol=1e-9)
    expected = 200.0 * gt.norm(dim=-1).mean(dim=-1)
    assert torch.allclose(mpjpe(0.8 * gt, gt), expected)


def test_scale_alignment_hand_computed():
    # Best scale = <pred, gt> / |pred|^2 = 2 / 4; the scaled pred is (1, 0, 0), (0, 0, 0): errors 0 and 1 m.
    gt = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    pred = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    assert mpjpe(pred, gt, alignment="scale").item() == pytest.approx(500.0)


def test_mpjpe_rejects_bad_input():
    gt = random_poses(2)
    with pytest.raises(ValueError, match="unknown alignment 'rigid'"):
        mpjpe(gt, gt, alignment="rigid")
    with pytest.raises(ValueError, match="same shape"):
        mpjpe(gt, gt[:1])
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        mpjpe(gt[..., :2], gt[..., :2])


# ------------------------------------------------------------------------------------------ whole_body_errors

@pytest.mark.parametrize("protocol", ["h3wb", "pafuse"])
def test_global_translation_is_free(protocol):
    pred, gt = moved(range(NUM_JOINTS), offset=torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    assert_metrics(whole_body_errors(pred, gt, protocol))


def test_one_hand_translated():
    pred, gt = moved(PARTS["left_hand"])
    assert_metrics(whole_body_errors(pred, gt, "h3wb"), WB=21 * D / 133)
    assert_metrics(whole_body_errors(pred, gt, "pafuse"), WB=21 * D / 134)


def test_one_finger_joint_moved():
    pred, gt = moved([PARTS["left_hand"][1]])
    assert_metrics(whole_body_errors(pred, gt, "h3wb"),
                   WB=D / 133, LeftHand=D / 21, Hands=D / 42, PB=D / 42 / 3)
    assert_metrics(whole_body_errors(pred, gt, "pafuse"),
                   WB=D / 134, LeftHand=D / 21, Hands=D / 42, PB=D / 134)


def test_face_nose_tip_moved():
    # pafuse aligns the face at this joint, so the 67 other face joints see the error; h3wb sees one joint.
    pred, gt = moved([PART_ROOTS["face"]])
    assert_metrics(whole_body_errors(pred, gt, "h3wb"), WB=D / 133, Face=D / 68, PB=D / 68 / 3)
    assert_metrics(whole_body_errors(pred, gt, "pafuse"), WB=D / 134, Face=67 * D / 68, PB=67 * D / 134)


def test_body_nose_moved():
    # h3wb aligns the face at the body nose, so all 68 face joints see its error; pafuse's face ignores it.
    pred, gt = moved([BODY_NOSE])
    assert_metrics(whole_body_errors(pred, gt, "h3wb"),
                   WB=D / 133, Body=D / 23, Face=D, PB=(D / 23 + D) / 3)
    assert_metrics(whole_body_errors(pred, gt, "pafuse"), WB=D / 134, Body=D / 24, PB=D / 134)


def test_pelvis_only_moved():
    # h3wb drops the pelvis; pafuse aligns WB and body at it, which moves every other joint of WB and body.
    pred, gt = moved([PELVIS])
    assert_metrics(whole_body_errors(pred, gt, "h3wb"))
    assert_metrics(whole_body_errors(pred, gt, "pafuse"), WB=133 * D / 134, Body=23 * D / 24, PB=23 * D / 134)


def test_whole_body_errors_keeps_leading_dims():
    gt = random_poses(2, 3)
    errors = whole_body_errors(gt + OFFSET, gt)
    assert sorted(errors) == sorted(METRIC_KEYS)
    assert all(value.shape == (2, 3) for value in errors.values())


def test_whole_body_errors_rejects_bad_input():
    gt = random_poses(2)
    with pytest.raises(ValueError, match=r"unknown protocol 'mmpose'.*h3wb.*pafuse"):
        whole_body_errors(gt, gt, protocol="mmpose")
    with pytest.raises(ValueError, match="134 joints"):
        whole_body_errors(gt[:, 1:], gt[:, 1:])


# ------------------------------------------------------------------------------------------ hypothesis_errors

def random_hypotheses(windows=4, hypotheses=3, frames=5, seed=0):
    gt = random_poses(windows, frames, seed=seed)
    pred = gt.unsqueeze(1) + 0.05 * random_poses(windows, hypotheses, frames, seed=seed + 1)
    return pred, gt


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-9), key


def test_single_hypothesis_h3wb_all_equal_whole_body_errors():
    pred, gt = random_hypotheses(hypotheses=1)
    expected = whole_body_errors(pred[:, 0], gt)
    for values in hypothesis_errors(pred, gt).values():
        assert_same(values, expected)


def test_single_hypothesis_pafuse_leaves_wb_unaligned_outside_p_best():
    pred, gt = random_hypotheses(hypotheses=1)
    expected = whole_body_errors(pred[:, 0], gt, "pafuse")
    result = hypothesis_errors(pred, gt, protocol="pafuse")
    assert_same(result["P-Best"], expected)
    for name in ("P-Agg", "J-Best"):
        assert torch.allclose(result[name]["WB"], mpjpe(pred[:, 0], gt))
        assert_same({k: v for k, v in result[name].items() if k != "WB"},
                    {k: v for k, v in expected.items() if k != "WB"})


@pytest.mark.parametrize("protocol", ["h3wb", "pafuse"])
def test_p_agg_is_error_of_mean_pose(protocol):
    pred, gt = random_hypotheses()
    mean_pose = pred.mean(dim=1)
    expected = whole_body_errors(mean_pose, gt, protocol)
    if protocol == "pafuse":
        expected["WB"] = mpjpe(mean_pose, gt)
    assert_same(hypothesis_errors(pred, gt, protocol=protocol)["P-Agg"], expected)


@pytest.mark.parametrize("protocol", ["h3wb", "pafuse"])
def test_j_best_never_above_p_best(protocol):
    pred, gt = random_hypotheses(seed=3)
    result = hypothesis_errors(pred, gt, protocol=protocol)
    # pafuse's J-Best WB is unaligned while its P-Best WB is pelvis-aligned: only the parts are comparable there.
    keys = METRIC_KEYS if protocol == "h3wb" else [key for key in METRIC_KEYS if key != "WB"]
    for key in keys:
        assert result["J-Best"][key].shape == (4, 5)
        assert (result["J-Best"][key] <= result["P-Best"][key] + 1e-12).all(), key
        assert (result["J-Best"][key] < result["P-Best"][key]).any(), key


def test_h3wb_p_best_is_independent_of_batching():
    pred, gt = random_hypotheses(windows=10, hypotheses=4, seed=5)
    full = hypothesis_errors(pred, gt)["P-Best"]
    for size in (1, 2, 5):
        parts = [hypothesis_errors(p, g)["P-Best"] for p, g in zip(pred.split(size), gt.split(size))]
        assert_same({key: torch.cat([part[key] for part in parts]) for key in full}, full)


def two_windows_disagreeing():
    """Window 0: hypothesis 0 exact, 1 has one finger joint off by 10 mm; window 1: hypothesis 0 off by 100 mm."""
    gt = torch.zeros(2, 1, NUM_JOINTS, 3, dtype=torch.float64)
    pred = torch.zeros(2, 2, 1, NUM_JOINTS, 3, dtype=torch.float64)
    finger = PARTS["left_hand"][1]
    pred[0, 1, 0, finger, 0] = 0.010
    pred[1, 0, 0, finger, 0] = 0.100
    return pred, gt


def test_pafuse_p_best_depends_on_batching():
    pred, gt = two_windows_disagreeing()
    together = hypothesis_errors(pred, gt, protocol="pafuse")["P-Best"]
    alone = hypothesis_errors(pred[:1], gt[:1], protocol="pafuse")["P-Best"]
    # Batched, hypothesis 1 wins (10 mm < 100 mm in total), so window 0 is read at its worse hypothesis.
    assert together["WB"][0, 0].item() == pytest.approx(10 / 134)
    assert together["LeftHand"][0, 0].item() == pytest.approx(10 / 21)
    assert together["WB"][1, 0].item() == pytest.approx(0.0)
    assert alone["WB"][0, 0].item() == pytest.approx(0.0)
    assert alone["LeftHand"][0, 0].item() == pytest.approx(0.0)


def test_h3wb_p_best_picks_per_window():
    pred, gt = two_windows_disagreeing()
    p_best = hypothesis_errors(pred, gt)["P-Best"]
    assert all(torch.equal(values, torch.zeros(2, 1, dtype=torch.float64)) for values in p_best.values())


def test_pafuse_p_best_reads_parts_at_the_pb_choice():
    # Hypothesis 0 moves the pelvis by 10 mm (large pafuse WB, small PB); hypothesis 1 moves the face nose tip by
    # 100 mm (small WB, large PB). WB is read at hypothesis 1, every part at hypothesis 0.
    gt = torch.zeros(1, 1, NUM_JOINTS, 3, dtype=torch.float64)
    pred = torch.zeros(1, 2, 1, NUM_JOINTS, 3, dtype=torch.float64)
    pred[0, 0, 0, PELVIS, 0] = 0.010
    pred[0, 1, 0, PART_ROOTS["face"], 0] = 0.100
    p_best = hypothesis_errors(pred, gt, protocol="pafuse")["P-Best"]
    assert_metrics({k: v[0, 0] for k, v in p_best.items()}, WB=100 / 134, Body=23 * 10 / 24, PB=23 * 10 / 134)


@pytest.mark.parametrize("protocol", ["h3wb", "pafuse"])
def test_masked_frames_do_not_count(protocol):
    # Hypothesis h is gt + (H - h) * noise, so the last one is best on every valid frame. The garbage put in the
    # padded frames grows with h instead: counted, it would move every P-Best choice to hypothesis 0.
    windows, hypotheses, frames = 3, 4, 6
    gt = random_poses(windows, frames, seed=7)
    scale = torch.arange(hypotheses, 0, -1, dtype=torch.float64).view(1, -1, 1, 1, 1)
    pred = gt.unsqueeze(1) + 0.01 * scale * random_poses(windows, 1, frames, seed=8)
    mask = torch.ones(windows, frames, dtype=torch.bool)
    mask[0, 4:] = False
    mask[2, 0] = False
    padded = ~mask.unsqueeze(1).expand(-1, hypotheses, -1)
    reference = hypothesis_errors(pred, gt, mask, protocol)

    garbage_size = 1e2 * (hypotheses + 1 - scale)
    ranked_garbage = pred.clone()
    ranked_garbage[padded] = (garbage_size * random_poses(windows, hypotheses, frames, seed=9))[padded]
    nan_gt = gt.clone()
    nan_gt[~mask] = float("nan")
    for garbage in (hypothesis_errors(ranked_garbage, gt, mask, protocol),
                    hypothesis_errors(pred, nan_gt, mask, protocol)):
        for name in reference:
            assert summarize(garbage[name], mask) == pytest.approx(summarize(reference[name], mask), abs=1e-9)
            assert_same({k: v[mask] for k, v in garbage[name].items()},
                        {k: v[mask] for k, v in reference[name].items()})


def test_hypothesis_errors_rejects_bad_input():
    pred, gt = random_hypotheses()
    with pytest.raises(ValueError, match="expected pred"):
        hypothesis_errors(pred[:, 0], gt)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        hypothesis_errors(pred, gt, mask=torch.ones(4, 5))
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        hypothesis_errors(pred, gt, mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown protocol"):
        hypothesis_errors(pred, gt, protocol="d3dp")


# ------------------------------------------------------------------------------------------------- summarize

def test_summarize_ignores_masked_frames():
    values = {"WB": torch.tensor([[1.0, 2.0], [3.0, 100.0]]), "Face": torch.tensor([[4.0, 4.0], [4.0, float("nan")]])}
    mask = torch.tensor([[True, True], [True, False]])
    assert summarize(values, mask) == {"WB": pytest.approx(2.0), "Face": pytest.approx(4.0)}
    assert summarize({"WB": values["WB"]}) == {"WB": pytest.approx(26.5)}


def test_summarize_rejects_bad_mask():
    values = {"WB": torch.ones(2, 3)}
    with pytest.raises(ValueError, match=r"per_frame\['WB'\] has shape \(2, 3\)"):
        summarize(values, torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="selects no frame"):
        summarize(values, torch.zeros(2, 3, dtype=torch.bool))


def test_pafuse_summaries_match_batch_formulas():
    # The reference's batch numbers, written directly: P-Best = min over h of the mean over every (window, frame,
    # joint) error; P-Agg WB = mean error of the mean pose, without any alignment.
    pred, gt = random_hypotheses(windows=3, hypotheses=5, frames=4, seed=11)
    result = hypothesis_errors(pred, gt, protocol="pafuse")
    recentred = (pred - pred[..., PELVIS:PELVIS + 1, :]) - (gt - gt[..., PELVIS:PELVIS + 1, :]).unsqueeze(1)
    p_best_wb = (1000 * recentred.norm(dim=-1)).mean(dim=(0, 2, 3)).min()
    p_agg_wb = (1000 * (pred.mean(dim=1) - gt).norm(dim=-1)).mean()
    assert summarize(result["P-Best"])["WB"] == pytest.approx(p_best_wb.item(), rel=1e-12)
    assert summarize(result["P-Agg"])["WB"] == pytest.approx(p_agg_wb.item(), rel=1e-12)


def test_pafuse_single_hypothesis_p_best_and_p_agg_differ_only_by_the_predicted_pelvis():
    # At H = 1 both estimators read the one hypothesis; pafuse's P-Best aligns WB at the pelvis, P-Agg does not.
    pred, gt = moved([PELVIS])
    result = hypothesis_errors(pred[None, None, None], gt[None, None], protocol="pafuse")
    best, mean = result["P-Best"], result["P-Agg"]
    assert best["WB"].item() == pytest.approx(133 * D / 134) and mean["WB"].item() == pytest.approx(D / 134)
    assert all(torch.equal(best[key], mean[key]) for key in METRIC_KEYS if key != "WB")
    # a prediction whose pelvis sits where the ground truth's does: the two agree exactly
    pred, gt = moved(PARTS["face"])
    pred[PELVIS], gt[PELVIS] = 0.0, 0.0
    result = hypothesis_errors(pred[None, None, None], gt[None, None], protocol="pafuse")
    assert all(torch.equal(result["P-Best"][key], result["P-Agg"][key]) for key in METRIC_KEYS)
