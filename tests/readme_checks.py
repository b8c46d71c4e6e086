"""Running README commands at tiny sizes in a working folder, and the exceptions that are only checked (for
``test_readme.py``, whose docstring states the rules)."""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from readme_commands import REPO, Command, readme_commands

CACHE_ENV = "PAFUSE_BENCH_CACHE"
PLACEHOLDER = re.compile(r"<[^<>/]+>")
"""A placeholder inside a path, ``<run-id>``: a run folder's name or part of it."""
TIMEOUT_S = 600
"""Per command; a tiny command takes seconds to a minute on 2 busy cores."""
CAP_H, CAP_K = 2, 2
"""The largest hypotheses H and DDIM steps K that ``eval`` and ``lift`` are run with."""




# --- the working folder, placeholders and input files ---------------------------------------------------------------

@dataclass
class Workspace:
    """The temporary working folder the README's commands run in."""

    root: Path
    tiny_args: dict
    seconds: list[tuple[float, float, str]] = field(default_factory=list)   # wall and CPU s per command

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def env(self, extra: tuple[tuple[str, str], ...] = ()) -> dict:
        env = {**os.environ, **dict(extra)}
        env.update({CACHE_ENV: str(self.cache), "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                                               env.get("PYTHONPATH")])),
                    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
                    "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"})
        return env

    def tiny_data(self) -> Path:
        """The tiny synthetic set, where ``bench`` keeps it (``$PAFUSE_BENCH_CACHE/synthetic-tiny-seed0``)."""
        from bench.data.synthetic import write_synthetic

        folder = self.cache / "synthetic-tiny-seed0"
        if not (folder / "task1_test_3d.npz").exists():
            write_synthetic(folder, size="tiny", seed=0)
        return folder

    def pafuse_run(self) -> Path:
        """The first finished PAFUSE run under ``results/runs`` (made with the README's first command's tiny flags
        when there is none)."""
        runs = sorted(self.root.glob("results/runs/pafuse-*/record.json"), key=lambda p: p.stat().st_mtime)
        if not runs:
            argv = ("python", "-m", "bench", "run", "--model", "pafuse", "--preset", "quick")
            result = execute(self, [*argv, *tiny_flags(self, argv)])
            assert result.returncode == 0, f"could not make the PAFUSE run the placeholders name:\n{result.stdout}"
            runs = sorted(self.root.glob("results/runs/pafuse-*/record.json"))
        return runs[0].parent

    def run_named(self, part: str) -> str:
        """The run folder name for a path component with placeholders: the PAFUSE run for a bare placeholder
        (``<run-id>``), else the first finished run whose name matches (``mixste-parts-27f-seed0-<hash>``)."""
        pafuse = self.pafuse_run().name
        if PLACEHOLDER.fullmatch(part):
            return pafuse
        pattern = ".*".join(re.escape(piece) for piece in PLACEHOLDER.split(part))
        runs = [p.parent.name for p in sorted(self.root.glob("results/runs/*/record.json"),
                                              key=lambda p: p.stat().st_mtime)]
        matching = [name for name in runs if re.fullmatch(pattern, name)]
        if not matching:
            raise ValueError(f"{part!r} names no run folder that bench run made (those are: {', '.join(runs)})")
        return matching[0]

    def clip(self, frames: int = 4) -> tuple[np.ndarray, tuple[int, int]]:
        """``frames`` frames of the tiny S8 clip of one camera, in pixels (T, 133, 2), and that camera's image size."""
        from bench.data.cameras import RESOLUTIONS

        entry = np.load(self.tiny_data() / "task1_test_3d.npz", allow_pickle=True)["data"].item()["S8"]
        take = entry[sorted(entry)[0]]
        camera = sorted(key for key in take if key in RESOLUTIONS)[0]
        order = np.argsort(take["frame_id"])
        return np.asarray(take[camera]["pose_2d"], dtype=float)[order][:frames], RESOLUTIONS[camera]


def make_reference_checkpoint(ws: Workspace, path: Path) -> None:
    """A tiny PAFUSE with the reference code's design, random weights, saved in its layout (the released file's)."""
    import torch

    from bench.runs.lifters import build
    from bench.runs.reference_weights import export_state_dict

    torch.manual_seed(0)
    lifter = build("pafuse", frames=27, parts={"widths": {"body": 32, "face": 16, "hands": 16}, "hands": "joint",
                                               "attach": "reference"},
                   model_args={"depth": 1, "heads": 8, "weights": "uniform"})
    torch.save(export_state_dict(lifter, epoch=1, lr=1e-4), path)


def _coco_fields(points: np.ndarray) -> dict:
    from bench.skeleton import C133_GROUPS

    flat = np.concatenate([points, np.full((len(points), 1), 2.0)], axis=1)
    fields = {"keypoints": ["body"], "foot_kpts": ["left_foot", "right_foot"], "face_kpts": ["face"],
              "lefthand_kpts": ["left_hand"], "righthand_kpts": ["right_hand"]}
    return {name: flat[[i for g in groups for i in C133_GROUPS[g]]].reshape(-1).round(2).tolist()
            for name, groups in fields.items()}


def make_coco_photos(ws: Workspace, path: Path) -> None:
    """COCO-WholeBody annotations of two unrelated photos, one person each."""
    pixels, (width, height) = ws.clip(2)
    images = [{"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": width, "height": height}
              for image_id in (785, 872)]
    annotations = [{"id": k + 1, "image_id": image["id"], "category_id": 1, "iscrowd": 0, **_coco_fields(pixels[k])}
                   for k, image in enumerate(images)]
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "person"}]}))


def make_openpifpaf_video(ws: Workspace, path: Path) -> None:
    """``openpifpaf.video --json-output`` lines: one person through four frames."""
    pixels, _ = ws.clip()
    lines = []
    for t, points in enumerate(pixels):
        flat = np.concatenate([points, np.full((len(points), 1), 0.9)], axis=1).round(2)
        low, high = points.min(axis=0), points.max(axis=0)
        lines.append(json.dumps({"frame": t, "predictions": [{
            "keypoints": flat.reshape(-1).tolist(), "bbox": [*low.round(1).tolist(), *(high - low).round(1).tolist()],
            "score": 0.9, "category_id": 1}]}))
    path.write_text("\n".join(lines) + "\n")


def make_openpose_folder(ws: Workspace, path: Path) -> None:
    """A folder of OpenPose ``--write_json`` files (BODY_25, face, hands): one person through four frames."""
    from bench.skeleton import OPENPOSE_TO_C133

    sizes = {"pose_keypoints_2d": 25, "face_keypoints_2d": 70, "hand_left_keypoints_2d": 21,
             "hand_right_keypoints_2d": 21}
    pixels, _ = ws.clip()
    path.mkdir(parents=True)
    for t, points in enumerate(pixels):
        person = {"person_id": [-1]}
        for name, pairs in OPENPOSE_TO_C133.items():
            values = np.zeros((sizes[name], 3))
            for index, c133 in pairs:
                values[index] = [*points[c133], 0.9]
            person[name] = values.round(2).reshape(-1).tolist()
        (path / f"dance_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": [person]}))


def make_keypoints_npy(ws: Workspace, path: Path) -> None:
    """One person through four frames: (T, 133, 3) pixels and score."""
    pixels, _ = ws.clip()
    np.save(path, np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 0.9)], axis=-1).astype(np.float32))


INPUT_FILES: dict[str, Callable[[Workspace, Path], None]] = {
    "pafuse_model.bin": make_reference_checkpoint,
    "person_keypoints_val2017.json": make_coco_photos,
    "dance.mp4.openpifpaf.json": make_openpifpaf_video,
    "openpose_json": make_openpose_folder,
    "keypoints.npy": make_keypoints_npy,
}
"""Files the README's examples assume the user has, written into the working folder under the README's names."""


def resolve_word(ws: Workspace, word: str) -> str:
    """A README word with its placeholder mapped to a real path (and its input file made); others unchanged."""
    if word == "/path/to/h3wb":
        return str(ws.tiny_data())
    if word.startswith("/path/to/"):
        raise ValueError(f"{word}: a placeholder path with no mapping in tests/test_readme.py (resolve_word)")
    name = word.rstrip("/")
    if name in INPUT_FILES and not (ws.root / name).exists():
        INPUT_FILES[name](ws, ws.root / name)
    if not PLACEHOLDER.search(word):
        return word
    return "/".join(ws.run_named(part) if PLACEHOLDER.search(part) else part for part in word.split("/"))


# --- tiny sizes -----------------------------------------------------------------------------------------------------

def parse(argv) -> tuple[object | None, str]:
    """``python -m bench``'s parse of ``argv`` (the words after ``bench``): (namespace, "") or (None, its error)."""
    from bench.cli import build_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return build_parser().parse_args(list(argv)), ""
        except SystemExit:
            return None, err.getvalue().strip()


def tiny_pairs(pairs) -> list[tuple[int, int]]:
    """(H, K) pairs with H and K capped at CAP_H, CAP_K; a pair that would repeat an earlier one gets H + 1."""
    out: list[tuple[int, int]] = []
    for hypotheses, steps in pairs:
        pair = (min(hypotheses, CAP_H), min(steps, CAP_K))
        while pair in out:
            pair = (pair[0] + 1, pair[1])
        out.append(pair)
    return out


def pair_flags(pairs) -> list[str]:
    return ["--hypotheses", *(str(h) for h, _ in pairs), "--steps", *(str(k) for _, k in pairs)]


def _model_args(ws: Workspace, models) -> list[str]:
    """``model_args.KEY=VALUE`` for the TINY_MODEL_ARGS that every one of ``models`` shares."""
    sizes = [ws.tiny_args.get(model, {}) for model in models]
    shared = {key: value for key, value in (sizes[0] if sizes else {}).items()
              if all(size.get(key) == value for size in sizes)}
    return [f"model_args.{key}={value}" for key, value in shared.items()]


@functools.lru_cache
def _sweep_models(file: Path, preset: str | None, items: tuple[str, ...]) -> list[str]:
    """The lifters of a sweep file's runs (resolving a sweep takes seconds: once per file and flags)."""
    from bench.runs.config import set_overrides
    from bench.sweeps.files import load_sweep

    return sorted({run.config["model"] for run in load_sweep(file, preset=preset,
                                                             overrides=set_overrides(list(items))).runs})


def tiny_flags(ws: Workspace, argv) -> list[str]:
    """The flags appended to a README ``python -m bench`` command to make it tiny (see the module docstring)."""
    args, _ = parse(argv[3:])
    if args is None:
        return []   # the command does not parse: run it as it is, so that its own error is reported
    tiny_set = ["synthetic.size=tiny", "train.epochs=1", "train.batch_size=32"]
    command = args.command
    if command == "run":
        return ["--set", *args.set, *tiny_set, *_model_args(ws, [args.model])]
    if command in ("sweep", "status"):
        file = args.file if args.file.is_absolute() else ws.root / args.file
        models = _sweep_models(file, args.preset, tuple(args.set))
        return ["--set", *args.set, *tiny_set, *_model_args(ws, models)] + (["--poll", "1"] * (command == "sweep"))
    if command == "data" and args.data_command == "synth":
        return ["--size", "tiny"]
    if command == "import-checkpoint" and args.data is None:
        return ["--data", str(ws.tiny_data())]
    if command == "eval":
        pairs = list(zip(args.hypotheses or [], args.steps or []))
        if args.hypotheses is None and args.steps is None:
            from bench.runs.config import load_yaml

            run = args.run if args.run.is_absolute() else ws.root / args.run
            pairs = load_yaml(run / "config.yaml")["eval"]["hypotheses_steps"]
        tiny = tiny_pairs(pairs)
        return pair_flags(tiny) if tiny != [tuple(p) for p in pairs] else []
    if command == "lift":
        return ((["--hypotheses", str(min(args.hypotheses, CAP_H))] if args.hypotheses else [])
                + (["--steps", str(min(args.steps, CAP_K))] if args.steps else []))
    if command == "perf":
        sizes = [f"{model}.{key}={value}" for model, values in ws.tiny_args.items() for key, value in values.items()]
        return ["--repeats", "1", "--warmup", "0", "--threads", "1", "--batch", "2",
                "--hypotheses", str(min(args.hypotheses, CAP_H)), "--steps", str(min(args.steps, 1)),
                "--set", *args.set, *sizes]
    return []


# --- running commands, and the exceptions ---------------------------------------------------------------------------

def execute(ws: Workspace, argv, cwd: Path | None = None, env=()) -> subprocess.CompletedProcess:
    """Run ``argv`` (``python`` meaning this interpreter), stdout and stderr together."""
    argv = list(argv)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    try:
        return subprocess.run(argv, cwd=cwd or ws.root, env=ws.env(env), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        out = error.stdout.decode(errors="replace") if isinstance(error.stdout, bytes) else error.stdout or ""
        return subprocess.CompletedProcess(argv, -1, out + f"\n(timed out after {TIMEOUT_S} s)")


def _failed(result: subprocess.CompletedProcess, tail: int = 25) -> str:
    lines = (result.stdout or "").strip().splitlines()
    return f"exit {result.returncode}; output (last {tail} lines):\n    " + "\n    ".join(lines[-tail:])


def check_pip(ws: Workspace, command: Command) -> str | None:
    """pip parses the options itself (``--help`` last: pip stops at it after reading every option before it, and
    installs nothing); requirements must parse, a local project must exist and its extras be declared."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    start = command.argv.index("install") + 1
    words = command.argv[start:]
    result = execute(ws, [sys.executable, "-m", "pip", "install", *words, "--help"], cwd=REPO, env=command.env)
    if result.returncode != 0:
        return "pip does not accept its options: " + _failed(result, 5)
    takes_value = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f",
                   "--find-links", "-t", "--target", "--prefix", "--root", "--src", "--upgrade-strategy", "--python",
                   "--platform", "--implementation", "--abi", "--python-version", "--report", "--config-settings",
                   "-C", "--progress-bar", "--trusted-host", "--cache-dir", "--log", "--timeout", "--retries",
                   "--proxy", "--exists-action", "--cert", "--client-cert", "--only-binary", "--no-binary"}
    positional, after = [], None
    for word in words:
        if after in ("-e", "--editable") or (not word.startswith("-") and after not in takes_value):
            positional.append(word)
        after = word
    for word in positional:
        local = re.match(r"^(\.{1,2}(/[^\[]*)?|/[^\[]*)(\[(.*)\])?$", word)
        if local:
            project = (REPO / local.group(1)).resolve()
            if not ((project / "setup.py").exists() or (project / "pyproject.toml").exists()):
                return f"{word}: no Python project at {project}"
            declared = set()
            with contextlib.suppress(metadata.PackageNotFoundError):
                declared = set(metadata.metadata("pafuse-bench").get_all("Provides-Extra") or [])
            missing = {e.strip() for e in (local.group(4) or "").split(",") if e.strip()} - declared
            if declared and missing:
                return f"{word}: extras {sorted(missing)} are not declared (declared: {sorted(declared)})"
            continue
        try:
            Requirement(word)
        except InvalidRequirement as error:
            return f"{word}: not a requirement pip can read ({error})"
    return None


def check_pytest(ws: Workspace, command: Command) -> str | None:
    """pytest accepts the options (``--help`` last: parsed, nothing collected or run), from the repository root."""
    start = command.argv.index("pytest") + 1
    result = execute(ws, [sys.executable, "-m", "pytest", *command.argv[start:], "--help"], cwd=REPO,
                     env=command.env)
    return None if result.returncode == 0 else _failed(result)


def check_cluster_script(ws: Workspace, command: Command) -> str | None:
    """The script passes ``bash -n`` and has a branch for the action."""
    script, action = REPO / command.argv[1], command.argv[2]
    result = execute(ws, ["bash", "-n", str(script)])
    if result.returncode != 0:
        return f"bash -n {script}: " + _failed(result)
    if not re.search(rf"^\s*{re.escape(action)}\)", script.read_text(), flags=re.M):
        return f"{script.name} has no '{action})' branch"
    return None


def check_sweep_dry_run(ws: Workspace, command: Command) -> str | None:
    """The same command, tiny, with ``--cluster slurm --dry-run`` appended: the runs and the sbatch script."""
    argv = [*command.argv, *tiny_flags(ws, command.argv), "--cluster", "slurm", "--dry-run"]
    result = execute(ws, argv, env=command.env)
    if result.returncode != 0 or "#SBATCH" not in result.stdout:
        return f"{' '.join(argv)}: " + _failed(result)
    return None


def check_run_config(ws: Workspace, command: Command) -> str | None:
    """``bench run``'s parser accepts every flag and the configuration resolves (preset, model, values), as for a
    run submitted to another machine (the device's form is checked, not that it exists here)."""
    from bench.cli.run import flags_to_config
    from bench.runs import config as cfg

    args, error = parse([resolve_word(ws, word) for word in command.argv[3:]])
    if args is None:
        return error
    try:
        cfg.resolve(flags_to_config(args), config_file=args.config, preset_name=args.preset, runs_here=False)
    except ValueError as problem:
        return f"the configuration does not resolve: {problem}"
    return None


@dataclass(frozen=True)
class Exemption:
    pattern: str                                              # a regular expression over Command.text
    reason: str
    check: Callable[[Workspace, Command], str | None]         # None when the lighter check passes
    rule: bool = False                                        # a rule for any such command, not one README line


EXCEPTIONS = [
    Exemption(r"(python3? -m )?pip3? install( .*)?", "installs packages into the environment that runs the "
               "tests; checked for syntax only", check_pip, rule=True),
    Exemption(r"python3? -m pytest( .*)?", "it is this test suite (.ci/run runs README's test command as it is)",
               check_pytest, rule=True),
    Exemption(r"bash slurm/local_cluster\.sh start", "installs Debian packages and starts SLURM's daemons, as "
               "root", check_cluster_script),
    Exemption(r"bash slurm/local_cluster\.sh stop", "would stop the SLURM that tests/slurm and a live sweep use",
               check_cluster_script),
    Exemption(r"python -m bench sweep configs/sweeps/table1\.yaml", "submits a SLURM job array (sbatch is on PATH "
               "in CI, where a cluster runs); without SLURM it would run the 14 paper-recipe runs here",
               check_sweep_dry_run),
    Exemption(r"python -m bench sweep configs/sweeps/table1\.yaml --preset medium --seeds 0 1 --cluster slurm",
               "submits the 28 medium runs (hours on 2 cores) to SLURM", check_sweep_dry_run),
    Exemption(r"python -m bench run --model pafuse --data /path/to/h3wb --preset paper --device cuda",
               "needs a CUDA device (and H3WB); checked by parsing and resolving its configuration",
               check_run_config),
    Exemption(r"python -m bench run --model pafuse --preset paper --device cuda --devices 4",
               "needs 4 CUDA devices; checked by parsing and resolving its configuration", check_run_config),
]
"""README commands that are not run, each with the reason and its lighter check."""
RUN_AS_IS = {"bash slurm/local_cluster.sh status": "read-only: sinfo and squeue, or 'not running'"}
"""README commands other than ``python -m bench ...`` that are run."""


def exception_for(command: Command) -> Exemption | None:
    return next((e for e in EXCEPTIONS if re.fullmatch(e.pattern, command.text)), None)


def is_bench(command: Command) -> bool:
    return command.argv[:3] in (("python", "-m", "bench"), ("python3", "-m", "bench"))


def problem_of(command: Command) -> str | None:
    """Why ``command`` is neither run nor checked as an exception; None when it is one or the other."""
    if exception_for(command):
        return None
    submits = command.argv[3:4] == ("sweep",) and not {"--dry-run", "local", "debug"} & set(command.argv)
    if is_bench(command) and submits:
        return f"{command.where()}: would submit to SLURM; add --cluster local (or --dry-run), or list it in EXCEPTIONS"
    if is_bench(command) or command.text in RUN_AS_IS:
        return None
    return f"{command.where()}: neither run by tests/test_readme.py nor listed in its EXCEPTIONS"


def unruled(commands: list[Command]) -> list[str]:
    """Commands that are neither run nor an exception."""
    return [problem for problem in map(problem_of, commands) if problem]


def stale_exceptions(commands: list[Command]) -> list[str]:
    """Exceptions for one README command that no command matches any more."""
    return [f"EXCEPTIONS: {e.pattern!r} matches no README command any more; remove it"
            for e in EXCEPTIONS if not e.rule and not any(re.fullmatch(e.pattern, c.text) for c in commands)]


def check_command(ws: Workspace, command: Command) -> str | None:
    """Run (or, for an exception, check) one README command; None when it passes, else what went wrong."""
    exception = exception_for(command)
    argv = list(command.argv)
    try:
        if exception is not None:
            problem = exception.check(ws, command)
            return None if problem is None else f"{command.where()}\n  (exception: {exception.reason}) {problem}"
        argv = [resolve_word(ws, word) for word in command.argv]
        if is_bench(command):
            argv += tiny_flags(ws, argv)
        result = execute(ws, argv, env=command.env)
    except (ValueError, OSError, AssertionError) as error:
        return f"{command.where()}\n  {error}"
    if result.returncode != 0:
        return f"{command.where()}\n  ran: {shlex.join(argv)}\n  {_failed(result)}"
    return None


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def check_readme(text: str, ws: Workspace) -> list[str]:
    """Every problem of ``text``'s examples: parsing and rules, then each command that has a rule, run (or checked)
    in README order."""
    commands, problems = readme_commands(text)
    problems += unruled(commands)
    for name in ("configs", "slurm"):
        if not (ws.root / name).exists():
            shutil.copytree(REPO / name, ws.root / name)
    for command in commands:
        if problem_of(command) is None:
            start, cpu = time.perf_counter(), _cpu_seconds()
            problems.append(check_command(ws, command))
            ws.seconds.append((time.perf_counter() - start, _cpu_seconds() - cpu, command.where()))
    return [problem for problem in problems if problem]

