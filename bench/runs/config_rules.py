"""What each configuration key may hold: one rule per key of ``bench.runs.config.DEFAULTS``, checked before any work.

A rule is the words an error shows (``an integer >= 1``) and the test a value must pass. Nothing is coerced: ``1.5``
is not an integer, ``"yes"`` not a bool, ``"1e-4"`` (YAML reads a float without a dot as text) not a number. The
device's form is a rule like the others; whether this machine has it is :func:`check_device`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from bench.data.synthetic import SIZES
from bench.errors import ConfigError
from bench.metrics import PROTOCOLS
from bench.runs.lifters import is_lifter
from bench.runs.schedule import SCHEDULES
from parts import ATTACH_MODES, HANDS_MODES, LOSSES, PART_TYPES, WIDTH_MODES
from parts.losses import ERRORS

_DEVICE = re.compile(r"cpu|cuda(:\d+)?")
_EXPONENT_TEXT = re.compile(r"[-+]?\d+[eE][-+]?\d+")


@dataclass(frozen=True)
class Rule:
    """``expected``: the accepted values in words; ``accepts``: value -> whether it is one of them."""

    expected: str
    accepts: Callable[[object], bool]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value) -> bool:
    """An int or float (not a bool) that is neither NaN nor infinite."""
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _or_null(rule: Rule, null: bool) -> Rule:
    return Rule(f"null or {rule.expected}", lambda v: v is None or rule.accepts(v)) if null else rule


def integer(low: int, high: int | None = None, null: bool = False) -> Rule:
    words = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    return _or_null(Rule(words, lambda v: _is_int(v) and v >= low and (high is None or v <= high)), null)


def number(low: float, above: bool = False, high: float | None = None, null: bool = False) -> Rule:
    words = f"a number {'>' if above else '>='} {low:g}" + ("" if high is None else f" and <= {high:g}")
    return _or_null(Rule(words, lambda v: is_finite_number(v) and (v > low if above else v >= low)
                         and (high is None or v <= high)), null)


def choice(*values: str, null: bool = False) -> Rule:
    return _or_null(Rule("one of " + ", ".join(map(repr, values)), lambda v: isinstance(v, str) and v in values),
                    null)


def boolean(null: bool = False) -> Rule:
    return _or_null(Rule("true or false", lambda v: isinstance(v, bool)), null)


def _paths(value) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and bool(value)
                                      and all(isinstance(item, str) for item in value))


def _widths(value) -> bool:
    return isinstance(value, dict) or (isinstance(value, str) and value in WIDTH_MODES)  # the wrapper checks a dict


def _pairs(value) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(_is_int(n) and n >= 1 for n in p) for p in value)


def _compile(value) -> bool:
    if isinstance(value, bool):
        return True
    if not isinstance(value, str) or not value:
        return False
    import torch

    return value in torch.compiler.list_backends(exclude_tags=())


RULES: dict[str, Rule] = {
    "model": Rule("a registered lifter name", lambda v: isinstance(v, str) and is_lifter(v)),
    "part_based": boolean(),
    "parts.widths": _or_null(Rule(f"one of {', '.join(map(repr, WIDTH_MODES))} or a mapping "
                                  f"{'/'.join(PART_TYPES)} -> width", _widths), True),
    "parts.hands": choice(*HANDS_MODES, null=True),
    "parts.attach": choice(*ATTACH_MODES, null=True),
    "parts.shift": boolean(null=True),
    "parts.split": boolean(null=True),
    "parts.loss": choice(*LOSSES, null=True),
    "parts.error": choice(*ERRORS, null=True),
    "model_args": Rule("a mapping of the lifter's arguments", lambda v: isinstance(v, dict)),
    "frames": integer(1),
    "data": _or_null(Rule("a path or a non-empty list of paths", _paths), True),
    "synthetic.size": choice(*SIZES),
    "synthetic.seed": integer(0),
    "max_gap": integer(1, null=True),
    "selection": choice("val", "last"),
    "train.optimizer": choice("adam", "adamw"),
    "train.lr": number(0, above=True),
    "train.lr_decay": number(0, above=True),
    "train.weight_decay": number(0),
    "train.amsgrad": boolean(),
    "train.batch_size": integer(1),
    "train.epochs": integer(1),
    "train.flip_augment": boolean(),
    "train.bn_momentum_start": number(0, above=True, high=1, null=True),
    "train.bn_momentum_end": number(0, above=True, high=1, null=True),
    "train.stride": integer(1, null=True),
    "train.schedule": choice(*SCHEDULES),
    "train.warmup_steps": integer(0),
    "train.val_every": integer(1),
    "eval.protocol": choice(*PROTOCOLS),
    "eval.hypotheses_steps": Rule("a non-empty list of [hypotheses, steps] pairs of integers >= 1", _pairs),
    "eval.flip_test": boolean(),
    "eval.batch_size": integer(1),
    "seed": integer(0, 2**32 - 1),    # numpy's seeds
    "device": Rule("'cpu', 'cuda' or 'cuda:N'", lambda v: isinstance(v, str) and bool(_DEVICE.fullmatch(v))),
    "devices": integer(1),
    "bf16": boolean(),
    "compile": Rule("true, false or the name of a torch.compile backend (torch.compiler.list_backends())",
                    _compile),
}
"""Dotted key -> rule, for every key of ``DEFAULTS`` (``model_args``' own keys belong to the lifter)."""


def check_values(config: dict) -> None:
    """Check every key of ``config`` against ``RULES``; the first bad value is a ConfigError naming its dotted key."""
    for key, rule in RULES.items():
        value = _lookup(config, key)
        if not rule.accepts(value):
            raise ConfigError(f"{key}: expected {rule.expected}, found {_show(value)}")


def check_device(device: str, where: str = "device") -> None:
    """Check that ``device`` is well formed and exists on this machine (a GPU for ``cuda``), before any work."""
    if not RULES["device"].accepts(device):
        raise ConfigError(f"{where}: expected {RULES['device'].expected}, found {_show(device)}")
    if device == "cpu":
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"{where}: {device!r} asks for a GPU, but torch.cuda.is_available() is false on this "
                          "machine (use cpu)")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(f"{where}: {device!r}: this machine has {torch.cuda.device_count()} GPUs "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")


def check_devices(devices: int, device: str, runs_here: bool) -> None:
    """A run over several devices uses ``cuda`` (process r on ``cuda:LOCAL_RANK``) or ``cpu``; on CUDA, this
    machine (when the run runs here) has that many GPUs."""
    if devices == 1:
        return
    if device.startswith("cuda:"):
        raise ConfigError(f"devices: {devices} processes each take their own GPU (cuda:LOCAL_RANK), so device must be "
                          f"'cuda' or 'cpu', found {device!r}")
    if device == "cuda" and runs_here:
        import torch

        if devices > torch.cuda.device_count():
            raise ConfigError(f"devices: {devices} processes, one per GPU, but this machine has "
                              f"{torch.cuda.device_count()} GPUs")


def _lookup(config: dict, key: str):
    node = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _show(value) -> str:
    """A value as the message shows it; text that looks like a number says why it is not one."""
    if isinstance(value, str) and _EXPONENT_TEXT.fullmatch(value.strip()):
        return f"{value!r} (text: YAML reads a number like 1e-4, without a dot, as text; write 1.0e-4)"
    return repr(value)
