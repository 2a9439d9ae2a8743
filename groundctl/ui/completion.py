"""Completion of a command line as it is typed: node, command, argument and state names.

    NODE COMMAND [ARGUMENT=VALUE ...]

The word under completion is the last one of the line (the line is typed left to right):
the first word is a node the console knows, the second a command of that node's mission
database, the others `name=` (arguments not given yet) or, after `name=`, one of the
argument's states. Matching ignores case; a completed word takes the database's spelling
and what follows it (a space, or `=` after an argument name).

`candidates` says what may replace the last word; `complete` gives the whole lines;
`tab_complete` is the shell's Tab: the one candidate, else the candidates' common prefix,
and the candidates to show when there are several. Pure: no Textual, no I/O, fast enough
for every keystroke.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from groundctl.mdb.model import Argument, Command, Mission

MissionOf = Callable[[str], Mission | None]


@dataclass(frozen=True)
class Candidates:
    """What may replace the last word of `text`.

    `start` is where that word begins and `word` the word as typed so far; `options` are
    whole replacement words, each with what follows it (`ODC-01 `, `mode=`, `mode=ECO `);
    `kind` says what they are (node, command, argument, value, or "" for nothing to
    complete); `help` describes the argument whose value is being typed.
    """

    text: str
    start: int
    word: str
    options: tuple[str, ...] = ()
    kind: str = ""
    help: str = ""

    @property
    def lines(self) -> list[str]:
        """The whole line with each option in place of the last word."""
        head = self.text[: self.start]
        return [head + option for option in self.options]

    @property
    def labels(self) -> list[str]:
        """The options as a list shows them: `ODC-01`, `SET_POWER_MODE`, `mode=`, `ECO`."""
        shown = [option.rstrip() for option in self.options]
        if self.kind == "value":
            shown = [option.partition("=")[2] for option in shown]
        return shown


def split_words(text: str) -> tuple[list[str], int, bool]:
    """The complete words of `text` before the last one, where the last one starts, and
    whether the line ends inside an open quote. Words are separated by unquoted blanks."""
    words: list[str] = []
    start = 0
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char.isspace():
            if index > start:
                words.append(text[start:index])
            start = index + 1
    return words, start, bool(quote)


def _matching(options: Iterable[str], word: str) -> tuple[str, ...]:
    folded = word.casefold()
    return tuple(o for o in options if o.casefold().startswith(folded))


def candidates(text: str, nodes: Sequence[str], mission_of: MissionOf) -> Candidates:
    """What may replace the last word of `text` (see the module's docstring)."""
    words, start, open_quote = split_words(text)
    word = text[start:]
    if open_quote:
        return Candidates(text, start, word)
    if not words:
        options = [f"{node} " for node in sorted(set(nodes))]
        return Candidates(text, start, word, _matching(options, word), "node")
    mission = mission_of(words[0])
    if mission is None:
        return Candidates(text, start, word)
    if len(words) == 1:
        options = [f"{name} " for name in sorted(mission.commands)]
        return Candidates(text, start, word, _matching(options, word), "command")
    command = _command(mission, words[1])
    if command is None:
        return Candidates(text, start, word)
    name, equals, value = word.partition("=")
    if not equals:
        given = {w.partition("=")[0].casefold() for w in words[2:]}
        options = [f"{a.name}=" for a in command.arguments if a.name.casefold() not in given]
        return Candidates(text, start, word, _matching(options, word), "argument")
    argument = next((a for a in command.arguments if a.name.casefold() == name.casefold()), None)
    if argument is None:
        return Candidates(text, start, word)
    help_text = describe(argument)
    if not argument.states:
        return Candidates(text, start, word, (), "", help_text)
    states = _matching(argument.states, value)
    values = tuple(f"{argument.name}={state} " for state in states)
    return Candidates(text, start, word, values, "value", help_text)


def complete(text: str, nodes: Sequence[str], mission_of: MissionOf) -> list[str]:
    """Every whole line `text` may complete to (empty: nothing to complete)."""
    return candidates(text, nodes, mission_of).lines


def common_prefix(words: Sequence[str]) -> str:
    """The longest prefix every word shares ("" for none or no words)."""
    if not words:
        return ""
    first, last = min(words), max(words)
    length = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        length += 1
    return first[:length]


def tab_complete(text: str, nodes: Sequence[str], mission_of: MissionOf) -> tuple[str, list[str]]:
    """The shell's Tab: `(new text, choices)`.

    One candidate: the line completed with it (and its space or `=`). Several: the line
    with the last word extended to the candidates' common prefix, and the candidates (as
    `Candidates.labels`) to show. None: the line unchanged and no choices.
    """
    found = candidates(text, nodes, mission_of)
    if len(found.options) == 1:
        return found.lines[0], []
    if not found.options:
        return text, []
    prefix = common_prefix(found.options)
    if len(prefix) >= len(found.word):
        text = text[: found.start] + prefix
    return text, found.labels


def suggestion(text: str, nodes: Sequence[str], mission_of: MissionOf) -> str | None:
    """What an input shows ahead of the cursor: the line Tab would make, when it is longer
    than `text` (None otherwise); never a guess between several candidates."""
    completed, _choices = tab_complete(text, nodes, mission_of)
    return completed if len(completed) > len(text) else None


def describe(argument: Argument) -> str:
    """One line on what an argument takes: `mode: one of SAFE, ECO, ... - the new mode`."""
    if argument.states:
        takes = "one of " + ", ".join(argument.states)
    elif argument.kind in ("str", "bytes"):
        takes = f"text of up to {argument.bits // 8} bytes"
    else:
        takes = f"{argument.kind}{argument.bits}"
        if argument.minimum is not None or argument.maximum is not None:
            low = "" if argument.minimum is None else f"{argument.minimum:g}"
            high = "" if argument.maximum is None else f"{argument.maximum:g}"
            takes += f" {low}..{high}"
        if argument.unit:
            takes += f" {argument.unit}"
    if argument.default is not None:
        takes += f", default {argument.default}"
    shown = f"{argument.name}: {takes}"
    return f"{shown} - {argument.description}" if argument.description else shown


def _command(mission: Mission, name: str) -> Command | None:
    command = mission.commands.get(name)
    if command is not None:
        return command
    return next((c for n, c in mission.commands.items() if n.casefold() == name.casefold()), None)
