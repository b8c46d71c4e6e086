"""Parsing README.md's fenced shell blocks into commands (for ``test_readme.py``, whose docstring states the
rules)."""
from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHELL_LANGUAGES = {"bash", "sh", "shell", "zsh", "console", "shell-session"}
LOOKS_LIKE_A_COMMAND = re.compile(r"^\s*(\$ |(sudo |env )?(python3?|pip3?|bash|sh|pytest|ruff|git|cd|export|make|"
                                  r"conda|\./|\.ci/)(\s|$))")
"""A line of a non-shell fenced block that starts like this is a command that this test would miss."""
ALTERNATIVES = re.compile(r"(?<!\S)([A-Za-z0-9_.-]+(?:\|[A-Za-z0-9_.-]+)+)(?!\S)")
"""One bare word of alternatives, ``start|status|stop``: one command per alternative."""
SEPARATORS = {"&&", ";"}
ENV_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")

# --- parsing README.md into commands --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    """One command of a fenced shell block."""

    line: int                                   # README line where the command starts
    argv: tuple[str, ...]                       # its words, quotes removed, without the environment words
    env: tuple[tuple[str, str], ...] = ()       # NAME=value words before it

    @property
    def text(self) -> str:
        """The command as one line, words joined by single spaces (what ``EXCEPTIONS`` match)."""
        return " ".join([f"{name}={value}" for name, value in self.env] + list(self.argv))

    def where(self) -> str:
        return f"README.md:{self.line}: {self.text}"


def fenced_blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(language, line number of the first line inside, lines) of every fenced block."""
    blocks, current = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        fence = re.match(r"^\s*(```+|~~~+)\s*([^\s`]*)", line)
        if current is None and fence:
            current = (fence.group(1), fence.group(2).lower(), number + 1, [])
        elif current is not None and fence and line.strip().startswith(current[0]) and not fence.group(2):
            blocks.append(current[1:])
            current = None
        elif current is not None:
            current[3].append(line)
    if current is not None:
        blocks.append(current[1:])
    return blocks


def strip_comment(line: str) -> str:
    """``line`` without a shell comment: ``#`` at the start of a word, outside quotes and not escaped."""
    quote, escaped = None, False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def split_commands(logical: str, line: int) -> tuple[list[Command], list[str]]:
    """The commands of one logical line (continuations joined, comment removed), and its problems."""
    problems: list[str] = []
    variants = [logical]
    found = ALTERNATIVES.findall(logical)
    if found:
        choices = [word.split("|") for word in found]
        variants = []
        for picked in itertools.product(*choices):
            variant = logical
            for word, choice in zip(found, picked):
                variant = re.sub(rf"(?<!\S){re.escape(word)}(?!\S)", choice, variant, count=1)
            variants.append(variant)
    commands = []
    for variant in variants:
        lexer = shlex.shlex(variant, posix=True, punctuation_chars="&;|()")
        lexer.whitespace_split, lexer.commenters = True, ""
        try:
            words = list(lexer)
        except ValueError as error:
            problems.append(f"README.md:{line}: cannot split {variant.strip()!r} into words ({error})")
            continue
        for is_separator, group in itertools.groupby(words, key=lambda word: word in SEPARATORS):
            if is_separator:
                continue
            group = list(group)
            unsupported = [w for w in group if set(w) <= set("&;|()") or re.match(r"^\d*[<>]", w) or "$" in w
                           or w.startswith("~")]
            if unsupported:
                problems.append(f"README.md:{line}: {' '.join(group)}: shell syntax this test has no rule for "
                                f"({', '.join(unsupported)}); give it one in tests/test_readme.py")
                continue
            env = []
            while group and ENV_WORD.match(group[0]):
                name, _, value = group.pop(0).partition("=")
                env.append((name, value))
            if group:
                commands.append(Command(line, tuple(group), tuple(env)))
    return commands, problems


def readme_commands(text: str) -> tuple[list[Command], list[str]]:
    """Every command of ``text``'s fenced shell blocks, in order, and the problems found (each naming its line)."""
    commands: list[Command] = []
    problems: list[str] = []
    for language, first, lines in fenced_blocks(text):
        if language not in SHELL_LANGUAGES:
            problems += [f"README.md:{first + i}: {line.strip()}: a command in a ```{language or '(no language)'} "
                         f"block; fence it as ```bash so that tests/test_readme.py runs it"
                         for i, line in enumerate(lines) if LOOKS_LIKE_A_COMMAND.match(line)]
            continue
        pending, start = "", None
        for i, raw in enumerate(lines):
            if language in ("console", "shell-session") and not pending:
                if not raw.lstrip().startswith("$ "):
                    continue   # output
                raw = raw.lstrip()[2:]
            elif not pending and raw.lstrip().startswith("$ "):
                raw = raw.lstrip()[2:]
            code = strip_comment(raw).rstrip()
            start = first + i if start is None else start
            if code.endswith("\\") and not code.endswith("\\\\"):
                pending += code[:-1] + " "
                continue
            logical, pending = pending + code, ""
            if logical.strip():
                found, trouble = split_commands(logical, start)
                commands += found
                problems += trouble
            start = None
        if pending.strip():
            problems.append(f"README.md:{start}: {pending.strip()}: the block ends inside a continued line")
    return commands, problems
