"""`bench lift`: stitching, aggregation, and the synthetic test clip lifted from every input format exactly as
`bench eval` predicts it, with outputs, pictures and bad inputs."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from baselines import create_lifter
from baselines.base import Lifter
from bench.cli import main
from bench.data.cameras import RESOLUTIONS
from bench.data.h3wb import TEST_FILE, load_h3wb
from bench.data.windows import TestWindows, WindowSpec
from bench.lift.aggregation import aggregate, fit_weak_perspective
from bench.lift.pipeline import drop_pelvis, lift_file, model_input, predict_clip
from bench.runs import config as cfg
from bench.runs.checkpoints import check_weights, read_checkpoint
from bench.runs.evaluation import predict_frames
from bench.runs.lifters import build_from_config
from bench.runs.training import Run
from bench.skeleton import C133_GROUPS, KEYPOINT_NAMES, NUM_JOINTS, NUM_KEYPOINTS, OPENPOSE_TO_C133, PELVIS

ACTION, CAMERA = "Directions 1", "54138969"
TOLERANCE_M = 1e-4
"""Lifting a clip must match `bench eval`'s prediction of it to 0.1 mm (float32 round-off is ~1e-7 m)."""
pytestmark = pytest.mark.usefixtures("single_thread")


class Echo(Lifter):
    """A lifter that returns its 2D input as 3D (z = 0) for the frames it predicts: shows which frame went where."""

    def __init__(self, seq2seq: bool, frames: int, receptive_field: int):
        super().__init__(NUM_JOINTS, frames, receptive_field)
        self.seq2seq = seq2seq

    def forward(self, x2d):
        self.check_input(x2d)
        start = 0 if self.seq2seq else (self.receptive_field - 1) // 2
        out = x2d[:, start:start + self.output_frames(x2d.shape[1])]
        return torch.cat([out, torch.zeros_like(out[..., :1])], dim=-1)


@pytest.mark.parametrize("lifter", [Echo(True, 4, 4), Echo(False, 5, 3)], ids=["seq2seq", "receptive-field"])
@pytest.mark.parametrize("frames", [1, 3, 4, 5, 9, 10])
def test_every_frame_is_predicted_once_from_its_own_input(lifter, frames):
    pose_2d = np.random.default_rng(frames).normal(size=(frames, NUM_JOINTS, 2)).astype(np.float32)
    lifted = predict_clip(lifter, pose_2d, batch_size=2)
    assert lifted.shape == (frames, 1, NUM_JOINTS, 3)
    np.testing.assert_allclose(lifted[:, 0, :, :2], pose_2d - pose_2d[:, PELVIS:PELVIS + 1], atol=1e-6)


def test_weak_perspective_fit_recovers_scale_and_offset_and_ignores_zero_weights():
    rng = np.random.default_rng(0)
    points_3d = rng.normal(size=(4, 10, 3))
    scale, offset = np.array([0.5, 1.0, 2.0, 3.0]), rng.normal(size=(4, 2))
    points_2d = scale[:, None, None] * points_3d[..., :2] + offset[:, None]
    weights = np.ones((4, 10))
    points_2d[:, 3] += 5.0  # an outlier, weighted out
    weights[:, 3] = 0.0
    fitted_scale, fitted_offset = fit_weak_perspective(points_3d, points_2d, weights)
    np.testing.assert_allclose(fitted_scale, scale)
    np.testing.assert_allclose(fitted_offset, offset)


def test_best_2d_keeps_per_joint_the_hypothesis_that_reprojects_onto_the_input():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(2, 6, 3))
    pose_2d = 2.0 * truth[..., :2] + np.array([0.1, -0.2])
    good = rng.integers(0, 3, size=(2, 6))  # per frame and joint, the hypothesis that is right
    shift = np.zeros((2, 3, 6, 3))
    for h in range(3):
        # the two wrong hypotheses of a joint are off by +0.3 and -0.3 in x, so the mean is the truth
        shift[:, h, :, 0] = np.where(good == h, 0.0, np.where(good == (h + 1) % 3, 0.3, -0.3))
    hypotheses = truth[:, None] + shift
    np.testing.assert_allclose(aggregate(hypotheses, pose_2d, np.ones((2, 6)), "best-2d"), truth)
    np.testing.assert_allclose(aggregate(hypotheses, pose_2d, np.ones((2, 6)), "mean"), truth)
    with pytest.raises(ValueError, match="aggregate must be one of mean, best-2d, got 'median'"):
        aggregate(hypotheses, pose_2d, np.ones((2, 6)), "median")


@pytest.fixture(scope="module")
def clip(tiny_data):
    """The S8 test clip of one camera: pixels (T, 133, 2) in frame order, its frame ids and loader sequence."""
    entry = np.load(tiny_data / TEST_FILE, allow_pickle=True)["data"].item()["S8"][ACTION]
    order = np.argsort(entry["frame_id"])
    (sequence,) = [s for s in load_h3wb(tiny_data, subjects=["S8"]) if s.action == ACTION and s.camera == CAMERA]
    return entry[CAMERA]["pose_2d"][order], entry["frame_id"][order], sequence


@pytest.fixture(scope="module")
def mixste_run(tiny_data, tiny_args, tmp_path_factory):
    """A tiny MixSTE trained for one epoch (flip test on, as the recipe), on one thread like the tests."""
    config = cfg.resolve({"model": "mixste", "data": str(tiny_data), "model_args": tiny_args["mixste"],
                          "train": {"epochs": 1, "batch_size": 32}})
    out = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module-scoped, so it cannot use the function-scoped single_thread fixture
    try:
        return out / Run(config, out=out)()["run_id"]
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pafuse_run(tiny_data, tiny_args, tmp_path_factory):
    """An untrained tiny PAFUSE run folder evaluated with (H, K) = (2, 2) last: enough to test sampling paths."""
    config = cfg.resolve({"model": "pafuse", "data": str(tiny_data), "model_args": tiny_args["pafuse"],
                          "eval": {"hypotheses_steps": [[1, 1], [2, 2]]}})
    folder = tmp_path_factory.mktemp("pafuse-run")
    (folder / "config.yaml").write_text(cfg.dump(config))
    torch.manual_seed(0)
    torch.save({"model": build_from_config(config).state_dict(), "epoch": 0}, folder / "best.pt")
    return folder


def eval_path(run, sequence, flip_test: bool) -> np.ndarray:
    """What `bench eval` predicts for a sequence: (T, 133, 3) root-relative metres."""
    config = cfg.load_yaml(run / "config.yaml")
    lifter = build_from_config(config)
    lifter.load_state_dict(check_weights(lifter, read_checkpoint(run / "best.pt"), run / "best.pt"))
    lifter.eval()
    windows = TestWindows([sequence], WindowSpec.for_lifter(lifter))
    outputs = list(predict_frames(lifter, windows, hypotheses=1, steps=1, flip_test=flip_test, batch_size=8,
                                  device=torch.device("cpu")))
    per_frame = windows.scatter(torch.cat([p[:, 0] for p, *_ in outputs]), torch.cat([o[3] for o in outputs]),
                                torch.cat([o[2] for o in outputs])).numpy()
    return drop_pelvis(per_frame - per_frame[:, PELVIS:PELVIS + 1])


def export(folder, pixels, frame_ids, size):
    """The clip written in every input format; returns {name: (path, image size argument)}."""
    width, height = size
    flat = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 2.0)], axis=-1)
    fields = {"keypoints": ["body"], "foot_kpts": ["left_foot", "right_foot"], "face_kpts": ["face"],
              "lefthand_kpts": ["left_hand"], "righthand_kpts": ["right_hand"]}
    coco = {"images": [{"id": int(i), "file_name": f"{i:06d}.jpg", "width": width, "height": height}
                       for i in frame_ids],
            "annotations": [{"id": t, "image_id": int(i), "category_id": 1, "iscrowd": 0,
                             **{f: flat[t, [k for g in gs for k in C133_GROUPS[g]]].reshape(-1).tolist()
                                for f, gs in fields.items()}} for t, i in enumerate(frame_ids)]}
    (folder / "coco.json").write_text(json.dumps(coco))
    (folder / "mmpose.json").write_text(json.dumps([[{"keypoints": p.tolist(), "keypoint_scores":
                                                      [0.9] * NUM_KEYPOINTS}] for p in pixels]))
    np.save(folder / "clip.npy", pixels)
    np.savez(folder / "clip.npz", keypoints=pixels, image_size=np.array(size))
    return {"coco": (folder / "coco.json", None), "mmpose": (folder / "mmpose.json", size),
            "npy": (folder / "clip.npy", size), "npz": (folder / "clip.npz", None)}


def test_model_input_is_the_loaders_2d(clip):
    pixels, _, sequence = clip
    np.testing.assert_array_equal(model_input(pixels, RESOLUTIONS[CAMERA]), sequence.pose_2d)


def test_the_test_clip_lifted_from_every_format_matches_the_eval_prediction(clip, mixste_run, tmp_path):
    pixels, frame_ids, sequence = clip
    expected = eval_path(mixste_run, sequence, flip_test=True)
    for name, (path, size) in export(tmp_path, pixels, frame_ids, RESOLUTIONS[CAMERA]).items():
        (summary,) = lift_file(path, tmp_path / name, run=mixste_run, image_size=size, render_formats=())
        with np.load(summary["folder"] / "poses_3d.npz") as saved:
            assert saved["poses_3d"].shape == (len(pixels), NUM_KEYPOINTS, 3), name
            np.testing.assert_allclose(saved["poses_3d"], expected, atol=TOLERANCE_M, err_msg=name)
            assert not saved["filled"].any() and saved["filled"].shape == (len(pixels), NUM_KEYPOINTS)
            np.testing.assert_allclose(saved["keypoints_2d"], pixels, atol=1e-3)
            if name == "coco":
                np.testing.assert_array_equal(saved["frame_ids"], frame_ids)


def test_flip_off_matches_the_eval_prediction_without_flip(clip, mixste_run, tmp_path):
    pixels, frame_ids, sequence = clip
    path, size = export(tmp_path, pixels, frame_ids, RESOLUTIONS[CAMERA])["npz"]
    (summary,) = lift_file(path, tmp_path / "out", run=mixste_run, flip_test=False, render_formats=())
    lifted = np.load(summary["folder"] / "poses_3d.npz")["poses_3d"]
    np.testing.assert_allclose(lifted, eval_path(mixste_run, sequence, flip_test=False), atol=TOLERANCE_M)
    assert np.abs(lifted - eval_path(mixste_run, sequence, flip_test=True)).max() > 10 * TOLERANCE_M


def test_progress_names_each_clip_with_the_overall_count(clip, mixste_run, tmp_path, capsys):
    pixels, frame_ids, _ = clip
    path, size = export(tmp_path, pixels, frame_ids, RESOLUTIONS[CAMERA])["npz"]
    (summary,) = lift_file(path, tmp_path / "out", run=mixste_run, render_formats=(), progress=True)
    assert f"lift person {summary['person']} (1/1)" in capsys.readouterr().err
    lift_file(path, tmp_path / "quiet", run=mixste_run, render_formats=())
    assert "lift person" not in capsys.readouterr().err


def test_a_single_image_is_a_padded_one_frame_clip(clip, mixste_run, tmp_path):
    pixels = clip[0]
    np.save(tmp_path / "image.npy", pixels[0])
    np.save(tmp_path / "still.npy", np.repeat(pixels[:1], 27, axis=0))  # what the padding feeds the model
    size = RESOLUTIONS[CAMERA]
    (image,) = lift_file(tmp_path / "image.npy", tmp_path / "a", run=mixste_run, image_size=size, render_formats=())
    (still,) = lift_file(tmp_path / "still.npy", tmp_path / "b", run=mixste_run, image_size=size, render_formats=())
    one = np.load(image["folder"] / "poses_3d.npz")["poses_3d"]
    assert one.shape == (1, NUM_KEYPOINTS, 3)
    np.testing.assert_allclose(one[0], np.load(still["folder"] / "poses_3d.npz")["poses_3d"][0], atol=1e-6)


def test_diffusion_hypotheses_are_saved_and_aggregated(clip, pafuse_run, tmp_path):
    pixels = clip[0][:5]
    np.save(tmp_path / "clip.npy", pixels)
    size = RESOLUTIONS[CAMERA]
    options = dict(run=pafuse_run, image_size=size, render_formats=(), save_hypotheses=True)
    (mean,) = lift_file(tmp_path / "clip.npy", tmp_path / "mean", **options)
    (best,) = lift_file(tmp_path / "clip.npy", tmp_path / "best", aggregate_by="best-2d", **options)
    mean, best = np.load(mean["folder"] / "poses_3d.npz"), np.load(best["folder"] / "poses_3d.npz")
    hypotheses = mean["hypotheses"]
    assert hypotheses.shape == (5, 2, NUM_KEYPOINTS, 3)  # the run's last (H, K) = (2, 2)
    assert np.abs(hypotheses[:, 0] - hypotheses[:, 1]).max() > 1e-4  # samples differ
    np.testing.assert_allclose(mean["poses_3d"], hypotheses.mean(axis=1), atol=1e-6)
    np.testing.assert_array_equal(best["hypotheses"], hypotheses)  # seeded: the same samples again
    chosen = np.abs(best["hypotheses"] - best["poses_3d"][:, None]).max(axis=-1) < 1e-7  # (T, H, 133)
    assert chosen.any(axis=1).all()  # every joint is one of the hypotheses
    description = json.loads((tmp_path / "best" / "keypoints.json").read_text())
    assert description["hypotheses"] == 2 and description["steps"] == 2 and description["aggregate"] == "best-2d"


def test_cli_lifts_each_person_with_pictures_and_names(clip, mixste_run, tmp_path, capsys):
    pixels = clip[0][:5]
    people = [{"keypoints": p.tolist(), "keypoint_scores": [1.0] * NUM_KEYPOINTS, "track_id": 4} for p in pixels]
    others = [{"keypoints": (p + 200).tolist(), "keypoint_scores": [0.1] * 20 + [1.0] * (NUM_KEYPOINTS - 20),
               "track_id": 7} for p in pixels]
    (tmp_path / "two.json").write_text(json.dumps([[a, b] for a, b in zip(people, others)]))
    argv = ["lift", str(tmp_path / "two.json"), "--run", str(mixste_run), "--image-size", "1000", "1002",
            "--out", str(tmp_path / "out"), "--render", "png", "gif"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "person 4: 5 frames lifted" in out and "person 7: 5 frames lifted" in out and "100 keypoints filled" in out
    for person in ("4", "7"):
        folder = tmp_path / "out" / f"person-{person}"
        pngs = sorted((folder / "frames").iterdir())
        assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(5)]
        with Image.open(pngs[0]) as png, Image.open(folder / "lift.gif") as gif:
            assert png.size == gif.size == (800, 400) and gif.n_frames == 5
        description = json.loads((folder / "keypoints.json").read_text())
        assert description["keypoints"] == list(KEYPOINT_NAMES) and description["units"]["poses_3d"] == "metres"
        assert description["person"] == person and description["image_size"] == [1000, 1002]
    assert np.load(tmp_path / "out" / "person-7" / "poses_3d.npz")["filled"].sum() == 100
    assert main([*argv[:-3], "--person", "7", "--out", str(tmp_path / "one"), "--render", "none"]) == 0
    assert {p.name for p in (tmp_path / "one").iterdir()} == {"poses_3d.npz", "keypoints.json"}


def test_bad_models_and_options_give_clear_errors(clip, mixste_run, tiny_args, tmp_path, capsys):
    np.save(tmp_path / "clip.npy", clip[0][:3])
    other = tmp_path / "body17.pt"  # the same lifter trained on a 17-joint body layout
    torch.save({"model": create_lifter("mixste", joints=17, frames=27, **tiny_args["mixste"]).state_dict(),
                "epoch": 1}, other)
    (tmp_path / "lonely").mkdir()  # a checkpoint copied away from its run folder's config.yaml
    (tmp_path / "lonely" / "best.pt").write_bytes((mixste_run / "best.pt").read_bytes())
    base = ["lift", str(tmp_path / "clip.npy"), "--out", str(tmp_path / "out"), "--render", "none"]
    size = ["--image-size", "1000", "1002"]
    cases = [
        (["--run", str(mixste_run), "--checkpoint", str(other), *size],
         [str(other), "expected weights of the run's mixste model over the 134-joint whole-body layout"]),
        (["--checkpoint", str(tmp_path / "lonely" / "best.pt"), *size],
         [str(tmp_path / "lonely" / "config.yaml"), "no run configuration"]),
        (size, ["needs a trained model: pass --run DIR or --checkpoint FILE"]),
        (["--run", str(mixste_run)], ["clip.npy: image_size: expected the image size", "found no size"]),
        (["--run", str(mixste_run), "--hypotheses", "3", *size], ["MixSTE is deterministic"]),
        (["--run", str(mixste_run), "--person", "9", *size], ["people: expected person 9, found people 0"]),
    ]
    for extra, messages in cases:
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert all(m in err for m in messages), (extra, err)
    assert not (tmp_path / "out").exists()


def test_cli_lifts_every_person_of_every_image_of_a_photo_file_with_a_sheet_per_image(clip, mixste_run, tmp_path,
                                                                                     capsys):
    pixels = clip[0]
    sizes = {785: (640, 425), 872: (500, 333), 885: (480, 640)}
    people = {785: 2, 872: 1, 885: 2}
    fields = {"keypoints": ["body"], "foot_kpts": ["left_foot", "right_foot"], "face_kpts": ["face"],
              "lefthand_kpts": ["left_hand"], "righthand_kpts": ["right_hand"]}
    annotations = []
    for image_id, count in people.items():
        for k in range(count):
            points = pixels[len(annotations)] * 0.3 + 40 * k
            v = np.full((NUM_KEYPOINTS, 1), 2.0)
            v[list(C133_GROUPS["left_hand"])] = 0.0  # not labelled
            flat = np.concatenate([points, v], axis=-1)
            flat[5] = [1e30, 3.0, 2.0]  # a point far outside: missing, not data
            annotations.append({"id": len(annotations), "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                **{f: flat[[i for g in gs for i in C133_GROUPS[g]]].reshape(-1).tolist()
                                   for f, gs in fields.items()}})
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h} for i, (w, h) in sizes.items()]
    (tmp_path / "photos.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    assert main(["lift", str(tmp_path / "photos.json"), "--run", str(mixste_run), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "photos.json: COCO-WholeBody annotations, 3 images, 5 person clips: lifted image by image" in out
    assert "image 000000000872 person 0: 1 frame lifted" in out and "22 keypoints filled (1 far outside" in out
    assert "3 image sheets" in out
    for image_id, count in people.items():
        folder = tmp_path / "out" / f"{image_id:012d}"
        assert {p.name for p in folder.iterdir()} == {"sheet.png"} | {f"person-{k}" for k in range(count)}
        with Image.open(folder / "sheet.png") as sheet:
            assert sheet.size == (640, 300 * count + 24 + 22)   # heading and legend strips
        for k in range(count):
            saved = np.load(folder / f"person-{k}" / "poses_3d.npz")
            assert saved["poses_3d"].shape == (1, NUM_KEYPOINTS, 3) and np.isfinite(saved["poses_3d"]).all()
            assert saved["image_size"].tolist() == list(sizes[image_id]) and saved["frame_ids"].tolist() == [image_id]
            assert saved["filled"][0, list(C133_GROUPS["left_hand"])].all() and saved["filled"][0, 5]
            description = json.loads((folder / f"person-{k}" / "keypoints.json").read_text())
            assert description["mode"] == "images" and description["outside_image_keypoints"] == 1


@pytest.mark.parametrize("flag", ["--hypotheses", "--steps"])
def test_zero_hypotheses_or_steps_is_an_error(clip, tmp_path, capsys, flag):
    np.save(tmp_path / "clip.npy", clip[0][:3])
    with pytest.raises(SystemExit) as exit_code:
        main(["lift", str(tmp_path / "clip.npy"), "--image-size", "1000", "1002", flag, "0"])
    assert exit_code.value.code == 2
    assert f"argument {flag}: expected a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match=f"{flag} must be a positive integer, got 0"):
        lift_file(tmp_path / "clip.npy", tmp_path / "out", image_size=(1000, 1002), **{flag[2:]: 0})


def test_cli_lifts_an_openpose_video_folder_as_a_clip_per_person_linked_through_the_frames(clip, mixste_run, tmp_path,
                                                                                        capsys):
    pixels = clip[0][:6]
    folder = tmp_path / "json"
    folder.mkdir()
    body = [i for i, _ in OPENPOSE_TO_C133["pose_keypoints_2d"]], [c for _, c in OPENPOSE_TO_C133["pose_keypoints_2d"]]
    for t, frame in enumerate(pixels):
        people = []
        for shift in (0.0, 400.0):
            points = frame + shift
            pose25 = np.zeros((25, 3))
            pose25[body[0], :2], pose25[body[0], 2] = points[body[1]], 0.9
            face = np.concatenate([points[23:91], np.ones((68, 1))], axis=1).tolist() + [[0, 0, 0]] * 2
            people.append({"person_id": [-1], "pose_keypoints_2d": pose25.reshape(-1).tolist(),
                           "face_keypoints_2d": np.ravel(face).tolist(), "hand_left_keypoints_2d": [],
                           "hand_right_keypoints_2d": np.concatenate([points[112:], np.ones((21, 1))], 1).ravel()
                           .tolist()})
        (folder / f"walk_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3,
                                                                         "people": people[::(-1) ** t]}))
    argv = ["lift", str(folder), "--run", str(mixste_run), "--image-size", "1000", "1002", "--out",
            str(tmp_path / "out"), "--render", "none"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "json: a folder of 6 files: OpenPose keypoints (--write_json), 6 frames, 2 person clips: lifted as a " \
           "video" in out and "person 0: 6 frames lifted" in out and "person 1: 6 frames lifted" in out
    for person, shift in (("0", 0.0), ("1", 400.0)):
        saved = np.load(tmp_path / "out" / f"person-{person}" / "poses_3d.npz")
        np.testing.assert_array_equal(saved["frame_ids"], np.arange(6))
        seen = ~saved["filled"]
        np.testing.assert_allclose(saved["keypoints_2d"][seen], (pixels + shift)[seen], atol=1e-3)
        assert saved["filled"][:, list(C133_GROUPS["left_hand"])].all() and not saved["filled"][:, :91].any()
