"""Linking detections into people through a video without track ids."""
import numpy as np

from bench.lift.tracking import assign, link
from bench.skeleton import NUM_KEYPOINTS


def walker(start: tuple[float, float], velocity: tuple[float, float], frames: int, seed: int) -> np.ndarray:
    """(frames, 133, 2) pixels: a person-sized cloud of keypoints (about 60 x 170 px) moving at ``velocity``."""
    shape = np.random.default_rng(seed).uniform((-30, -85), (30, 85), size=(NUM_KEYPOINTS, 2))
    steps = np.arange(frames)[:, None, None] * np.asarray(velocity)
    return np.asarray(start) + shape + steps


def frames_of(*people_per_frame):
    """Per frame, its detections as (points, usable) with every keypoint usable."""
    return [[(p, np.ones(NUM_KEYPOINTS, dtype=bool)) for p in people] for people in people_per_frame]


def test_two_people_whose_detection_order_is_shuffled_every_frame_keep_their_identities():
    a = walker((200, 300), (6, 0), 30, seed=0)  # walks right
    b = walker((500, 300), (-6, 0), 30, seed=1)  # walks left: they cross paths half way
    rng = np.random.default_rng(2)
    orders = [rng.permutation(2) for _ in range(30)]
    frames = frames_of(*[[(a[t], b[t])[i] for i in order] for t, order in enumerate(orders)])
    labels = link(frames)
    identity = {labels[0][list(orders[0]).index(0)]: "a", labels[0][list(orders[0]).index(1)]: "b"}
    for t, order in enumerate(orders):
        assert [identity[label] for label in labels[t]] == [("a", "b")[i] for i in order], t
    assert sorted(identity) == [0, 1]


def test_a_missed_detection_is_bridged_but_a_person_gone_longer_ends_their_track():
    a = walker((200, 300), (2, 0), 20, seed=0)
    b = walker((600, 300), (0, 1), 20, seed=1)
    people = [[a[t], b[t]] for t in range(20)]
    for t in (5, 6):  # a missed twice: still a
        people[t] = [b[t]]
    for t in range(10, 20):  # b leaves after frame 9 ...
        people[t] = [a[t]]
    people[17] = [a[17], walker((620, 300), (0, 1), 20, seed=3)[17]]  # ... and someone enters near where b was
    labels = link(frames_of(*people), max_missed=5)
    assert labels[0] == [0, 1] and labels[5] == [1] and labels[7] == [0, 1]
    assert all(frame[0] == 0 for frame in labels[10:])
    assert labels[17] == [0, 2]  # b was gone for 7 frames: a new track


def test_a_new_person_far_from_every_track_starts_a_new_track():
    a = walker((200, 300), (0, 0), 3, seed=0)
    b = walker((900, 300), (0, 0), 3, seed=1)
    labels = link(frames_of([a[0]], [b[1]], [a[2], b[2]]))
    assert labels == [[0], [1], [0, 1]]


def test_the_greedy_assignment_takes_the_cheapest_pairs_under_the_limit():
    costs = np.array([[0.1, 0.2, 5.0],
                      [0.15, 3.0, 5.0]])
    assert assign(costs, max_cost=1.0) == {0: 0}  # row 1's only cheap column is taken by row 0
    assert assign(costs, max_cost=4.0) == {0: 0, 1: 1}
    assert assign(np.zeros((0, 2)), 1.0) == {}
