"""The training loop's fast paths: no host-device synchronisation per step, copies that stay plain on CPU."""
import copy

import torch

from bench.data.h3wb import SPLITS, load_h3wb
from bench.data.windows import TrainWindows, WindowSpec
from bench.runs import config as cfg
from bench.runs.evaluation import to_device
from bench.runs.lifters import build_from_config
from bench.runs.timing import EpochTimer
from bench.runs.training import Run


def test_an_epoch_reads_the_loss_once_and_averages_it_as_before(tiny_data, tiny_args, tmp_path, monkeypatch,
                                                                 single_thread):
    config = cfg.resolve({"model": "mixste", "data": str(tiny_data), "model_args": tiny_args["mixste"],
                          "train": {"batch_size": 16}})
    sequences = load_h3wb(tiny_data, subjects=list(SPLITS["val-train"]))
    torch.manual_seed(0)
    lifter = build_from_config(config)
    reference = copy.deepcopy(lifter)
    windows = TrainWindows(sequences, WindowSpec(lifter.frames), flip=True)

    # Loss reads: of a step's loss (it has a graph) or of the float64 running sum. AdamW's step counters are
    # read too, but they live on the host by design, so reading them never waits for a device.
    reads = []
    item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda tensor: reads.append(
        tensor.grad_fn is not None or tensor.dtype == torch.float64) or item(tensor))
    torch.manual_seed(1)
    timer = EpochTimer(torch.device("cpu"), enabled=False)
    lr = config["train"]["lr"]   # the loop sets every step's rate from the schedule; constant here
    loss = Run(config, out=tmp_path)._train_epoch(lifter, torch.optim.AdamW(lifter.parameters(), lr), windows, 0, timer)
    assert sum(reads) == 1   # one read, after the last step

    # The same steps, reading every loss on the host as the loop used to: the same average, to the last bit.
    torch.manual_seed(1)
    reference.train()
    optimizer, total, count = torch.optim.AdamW(reference.parameters(), lr), 0.0, 0
    for x2d, y3d in windows.batches(16, epoch=0):
        step_loss = reference.loss(x2d, y3d)
        optimizer.zero_grad(set_to_none=True)
        step_loss.backward()
        optimizer.step()
        total, count = total + item(step_loss) * len(x2d), count + len(x2d)
    assert count == len(windows) and loss == total / count


def test_batches_are_moved_without_a_copy_on_cpu():
    batch = torch.rand(2, 3, 4)
    assert to_device(batch, torch.device("cpu")) is batch
