"""README.md's examples are tests: every command of every fenced shell block runs here, so an example that breaks
fails CI.

**Which commands.** Every fenced block in ```bash, ```sh, ```shell, ```zsh or ```console; a block fenced in any
other language (```text, ```yaml ...) must not hold a line that looks like a command (it fails, naming the line:
fence it as ```bash), so no example can hide from this test. In a shell block:

- ``\\`` at the end of a line continues the command on the next line;
- ``# ...`` starting a word (outside quotes) is a comment, and a line of only a comment is skipped; in ```console
  only ``$ `` lines are commands (the rest is output);
- ``a && b`` and ``a; b`` are two commands, run in order (``&&``: each must succeed);
- one word of bare alternatives without spaces, ``start|status|stop`` (``bash slurm/local_cluster.sh
  start|status|stop``), stands for one command per alternative, each checked on its own;
- ``NAME=value`` words before a command set its environment (``PAFUSE_BENCH_CACHE`` stays the temporary cache);
- anything else a shell would interpret (a pipe `` | ``, ``||``, ``&``, redirections, parentheses, ``$VAR``, a
  leading ``~``) is rejected, naming the line, so that a new kind of example gets a rule here first.

**How each runs.** In README order, in one temporary working folder that holds copies of ``configs/`` and
``slurm/`` (so ``configs/sweeps/table1.yaml`` and ``results/runs`` are the README's relative paths, inside the
temporary folder: nothing is written into the repository), each as a subprocess of ``sys.executable`` with
``PYTHONPATH`` = this checkout, ``PAFUSE_BENCH_CACHE`` = a temporary cache and one torch thread. A command fails the
test when it exits non-zero; every failure is reported with its README line, the command and its output.

**Tiny sizes.** The command text stays the README's; flags are appended after it (argparse keeps the last value of
an option given twice, and a command's own ``--set`` items are repeated before the tiny ones, so theirs stay unless
a tiny one sets the same key). ``tiny_flags`` below is the one place that decides them:

- ``run``: ``--set synthetic.size=tiny train.epochs=1 train.batch_size=32`` and the lifter's ``model_args`` from
  ``TINY_MODEL_ARGS`` (tests/conftest.py);
- ``sweep`` and ``status``: the same ``--set`` (the ``model_args`` that every lifter of the sweep shares in
  ``TINY_MODEL_ARGS``) and ``--poll 1``;
- ``data synth``: ``--size tiny``; ``import-checkpoint`` without ``--data``: ``--data`` the tiny synthetic set;
- ``eval``: ``--hypotheses`` / ``--steps`` with every H and K capped at 2 (a later pair that would repeat one is
  raised to H + 1), the pairs being the command's or, where it gives none, the run's own (``RUN/config.yaml``);
  ``lift``: its ``--hypotheses`` / ``--steps`` capped at 2 (H = 300 would take minutes even at these sizes);
- ``perf``: ``--repeats 1 --warmup 0 --threads 1 --batch 2`` (VideoPose's BatchNorm needs 2 windows), H and K
  capped at 2 and 1, and every lifter's ``TINY_MODEL_ARGS`` as ``--set NAME.KEY=VALUE``.

**Placeholders** (``resolve_word``): a path component that is a bare placeholder (``results/runs/<run-id>``,
``results/runs/<run>/best.pt``) is the first finished PAFUSE run under ``results/runs`` (the README's own ``bench
run --model pafuse ...`` made it; if none did, that command is run here first); one with text around it
(``results/runs/pafuse-parts-27f-seed0-<hash>``) is the first finished run whose folder name matches it, and none
matching fails, naming the runs made, so an example that names a run folder otherwise than ``bench run`` does is
caught; ``/path/to/h3wb`` is the tiny synthetic set; the files a user is assumed to have (``INPUT_FILES``:
``pafuse_model.bin``, ``person_keypoints_val2017.json``, ``dance.mp4.openpifpaf.json``, ``openpose_json/``,
``keypoints.npy``) are written into the working folder under the README's names, from the tiny test clip, just
before the first command that names them.

**Exceptions** (``EXCEPTIONS``): the commands that cannot run in CI, each with its reason and a lighter check:

- any ``pip install ...``: it would install into the environment that runs the tests; pip parses the options
  (``--help`` appended), each requirement must parse, ``-e .[EXTRA]`` must be a project with that extra;
- ``python -m pytest ...``: it is this suite (``.ci/run`` runs README's test command as it is); pytest parses the
  options (``--help`` appended);
- ``bash slurm/local_cluster.sh start`` / ``stop``: root, apt-get and daemons / it would stop the SLURM that
  ``tests/slurm`` use; ``bash -n`` and the script has that action (``status`` is run);
- ``python -m bench sweep configs/sweeps/table1.yaml`` (and its ``--preset medium --seeds 0 1 --cluster slurm``
  form): submits to SLURM (CI has one); the same command, tiny, with ``--cluster slurm --dry-run`` must print the
  sbatch script;
- ``python -m bench run ... --device cuda``: needs a GPU; the parser accepts every flag and the configuration
  resolves.

A README command that is neither run nor an exception fails (``test_every_readme_command_has_a_rule``, which runs
nothing), and so does an exception that matches no README command; a ``bench sweep`` without ``--cluster local``,
``--cluster debug`` or ``--dry-run`` is never run (it would submit to SLURM) unless listed. Runtime: each command
starts a Python that imports torch and timm (~6 s of CPU), about 5 minutes of CPU in all.
"""
from __future__ import annotations

import pytest
from readme_checks import (
    CACHE_ENV,
    Workspace,
    check_readme,
    is_bench,
    resolve_word,
    stale_exceptions,
    tiny_pairs,
    unruled,
)
from readme_commands import README, readme_commands

# --- the tests ------------------------------------------------------------------------------------------------------

def test_every_readme_command_has_a_rule():
    """Fast, without running anything: README.md parses, and each command is run or is a listed exception."""
    commands, problems = readme_commands(README.read_text())
    problems += unruled(commands) + stale_exceptions(commands)
    assert not problems, "\n".join(problems)
    assert sum(is_bench(c) for c in commands) >= 20   # the parser found the examples


def test_every_readme_example_runs(tmp_path, tiny_args, monkeypatch):
    """Every README command, in order, at tiny sizes (minutes on 2 CPU cores)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    ws = Workspace(tmp_path, tiny_args)
    problems = check_readme(README.read_text(), ws)
    print("\n".join(f"{wall:6.1f} s wall {cpu:6.1f} s CPU  {where}" for wall, cpu, where in ws.seconds))
    assert not problems, f"{len(problems)} README example(s) broken:\n\n" + "\n\n".join(problems)


PLANTED = """# a README with broken examples

```bash
python -m bench models --filter 'mix*'          # fine
python -m bench models --no-such-flag           # a flag that does not exist
python -m bench no-such-command --out x
```

```text
python -m bench models
```

```bash
curl https://example.com/install.sh
```
"""


def test_the_checker_names_broken_examples(tmp_path, tiny_args, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    problems = check_readme(PLANTED, Workspace(tmp_path, tiny_args))
    report = "\n".join(problems)
    assert len(problems) == 4, report
    assert "README.md:10: python -m bench models: a command in a ```text block" in report
    assert "README.md:14: curl https://example.com/install.sh: neither run" in report
    (flag,) = [p for p in problems if "--no-such-flag" in p]
    assert flag.startswith("README.md:5: python -m bench models --no-such-flag\n") and "exit 2" in flag
    assert "unrecognized arguments: --no-such-flag" in flag
    (command,) = [p for p in problems if "no-such-command" in p]
    assert command.startswith("README.md:6: python -m bench no-such-command --out x\n")
    assert "invalid choice: 'no-such-command'" in command


def test_the_parser_follows_shell_rules():
    text = """```console
$ python -m bench data synth \\
    --out "data/a b" --seed 1   # a comment; not a command && not this
output line
$ bash slurm/local_cluster.sh start|status && pip install "torch>=2" --index-url https://example.com/#frag
```
```bash
python -m bench report | tee out.txt
PAFUSE_BENCH_CACHE=c python -m bench models ; python -m bench models --filter a#b
```
"""
    commands, problems = readme_commands(text)
    assert [(c.line, c.argv) for c in commands] == [
        (2, ("python", "-m", "bench", "data", "synth", "--out", "data/a b", "--seed", "1")),
        (5, ("bash", "slurm/local_cluster.sh", "start")),
        (5, ("pip", "install", "torch>=2", "--index-url", "https://example.com/#frag")),
        (5, ("bash", "slurm/local_cluster.sh", "status")),
        (5, ("pip", "install", "torch>=2", "--index-url", "https://example.com/#frag")),
        (9, ("python", "-m", "bench", "models")),
        (9, ("python", "-m", "bench", "models", "--filter", "a#b"))]
    assert commands[5].env == (("PAFUSE_BENCH_CACHE", "c"),)
    assert problems == ["README.md:8: python -m bench report | tee out.txt: shell syntax this test has no rule for "
                        "(|); give it one in tests/test_readme.py"]
    assert tiny_pairs([(1, 1), (20, 10), (300, 5)]) == [(1, 1), (2, 2), (3, 2)]
    assert tiny_pairs([(20, 10), (300, 5)]) == [(2, 2), (3, 2)]


def test_placeholders_name_the_runs_that_bench_run_made(tmp_path, tiny_args):
    ws = Workspace(tmp_path, tiny_args)
    for name in ("pafuse-parts-27f-seed0-0123456789", "mixste-parts-27f-seed0-abcdef0123"):
        (tmp_path / "results" / "runs" / name).mkdir(parents=True)
        (tmp_path / "results" / "runs" / name / "record.json").write_text("{}")
    assert resolve_word(ws, "results/runs/<run>/best.pt") == "results/runs/pafuse-parts-27f-seed0-0123456789/best.pt"
    assert resolve_word(ws, "results/runs/mixste-parts-27f-seed0-<hash>") == \
        "results/runs/mixste-parts-27f-seed0-abcdef0123"
    with pytest.raises(ValueError, match=r"'pafuse-27f-seed0-<hash>' names no run folder that bench run made"):
        resolve_word(ws, "results/runs/pafuse-27f-seed0-<hash>")
    with pytest.raises(ValueError, match="/path/to/elsewhere: a placeholder path with no mapping"):
        resolve_word(ws, "/path/to/elsewhere")
