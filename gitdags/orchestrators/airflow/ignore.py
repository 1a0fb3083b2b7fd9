""".airflowignore, read as Airflow 3 reads it (`dag_ignore_file_syntax = glob`, the default).

Each `.airflowignore` holds gitignore-style patterns (pathspec's GitWildMatchPattern, as in
Airflow) for its folder and every folder below it. A pattern with a `/` at its start or middle
is relative to the file's folder; one without matches a file or folder name at any depth; a
trailing `/` matches folders only; `!` re-includes; a matched folder is skipped whole. A `.py`
file that Airflow would ignore is no DAG file to gitdags either: it stays a helper module,
versioned and served with the tree (DAGs often import from an ignored `common/`).

The regular expression pathspec makes of each pattern is matched here in time linear in the
path, whatever the pattern (`Linear`: the expression's automaton, run as a lazily built DFA,
as RE2 does): Python's `re` backtracks, and a pattern such as `*a*a*a*a*a*a*a*a*a*a*a*a*ax`
beside a long file name took it minutes, so one `.airflowignore` could hang its source.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

log = logging.getLogger(__name__)

NAME = ".airflowignore"


class AirflowIgnore:
    def __init__(self, files: Mapping[str, str]) -> None:
        """`files`: the text of each .airflowignore, by its folder relative to the DAGs
        folder ("" for the top)."""
        try:  # pathspec >= 1.0; GitWildMatchPattern (what Airflow uses) is deprecated there
            from pathspec.patterns.gitignore.spec import (
                GitIgnoreSpecPattern as GitWildMatchPattern,
            )
        except ImportError:
            from pathspec.patterns import GitWildMatchPattern  # type: ignore[no-redef]

        self.rules: dict[str, list[tuple[Linear, bool, bool, bool]]] = {}
        for folder, text in files.items():
            rules = []
            for raw in text.splitlines():
                line = raw.rstrip()
                if not line.strip() or line.lstrip().startswith("#") or line.strip() == "/":
                    continue
                anchored = line.startswith("/") or "/" in line.rstrip("/")
                dir_only = line.lstrip("!").rstrip() != line.lstrip("!").rstrip().rstrip("/")
                try:
                    regex, include = GitWildMatchPattern.pattern_to_regex(line)
                except Exception:  # an invalid pattern is skipped, as Airflow does (with a log)
                    continue
                if regex is None or include is None:
                    continue
                try:
                    matcher = Linear(regex)
                except ValueError as exc:  # a construct pathspec does not write today
                    log.warning("%s in %s/: pattern %r skipped (%s)", NAME, folder, line, exc)
                    continue
                rules.append((matcher, anchored, dir_only, include))
            self.rules[folder.strip("/")] = rules
        self.order = sorted(self.rules, key=lambda f: (f.count("/") + bool(f), f))

    def __bool__(self) -> bool:
        return any(self.rules.values())

    def ignored(self, rel: str) -> bool:
        """Whether Airflow skips `rel` (a file path relative to the DAGs folder)."""
        parts = PurePosixPath(rel).parts
        for depth in range(1, len(parts) + 1):
            entry = "/".join(parts[:depth])
            is_dir = depth < len(parts)
            if self._matches(entry, is_dir):
                return True
        return False

    def _matches(self, entry: str, is_dir: bool) -> bool:
        parent = str(PurePosixPath(entry).parent)
        parent = "" if parent == "." else parent
        base = PurePosixPath(entry).name
        matched = False
        for folder in self.order:  # the rules of every folder above the entry, parents first
            rules = self.rules[folder]
            if folder and not (parent == folder or parent.startswith(folder + "/")):
                continue
            for matcher, anchored, dir_only, include in rules:
                if dir_only and not is_dir:
                    continue
                rel = entry[len(folder) + 1 :] if folder else entry
                name = rel if anchored else base
                candidate = f"{name}/" if is_dir else name
                if matcher.search(candidate):
                    matched = include
        return matched


# -- linear-time matching --------------------------------------------------------------------
# An automaton state: ("char", test, next) | ("split", nexts) | ("bol", next) | ("eol", next)
# | ("match",)
_State = tuple
_CACHE_LIMIT = 2048  # DFA states kept per pattern before the DFA is built again


class Linear:
    """`re.compile(regex).search(text) is not None`, in time linear in `text`: the regular
    expression (the subset pathspec writes: literals, escapes, `.`, classes, groups, `|`,
    `?`, `*`, `+`, `^`, `$`) becomes a Thompson automaton, run with every state at once and
    cached as a DFA. Anything else is a ValueError."""

    def __init__(self, regex: str) -> None:
        self.regex = regex
        self.states: list[_State] = [("match",)]
        parser = _Parser(regex)
        tree = parser.alternation()
        if parser.at < len(regex):
            raise ValueError(f"unbalanced ')' at {parser.at} in {regex!r}")
        self.start = self._compile(tree, 0)
        self.sets: list[frozenset[int]] = []  # DFA state -> its automaton states
        self.numbers: dict[frozenset[int], int] = {}
        self.accepting: set[int] = set()
        self.moves: dict[tuple[int, str, bool], int] = {}
        self.initial: dict[bool, int] = {}

    def search(self, text: str) -> bool:
        n = len(text)
        eol = n < 2 and text in "\n"  # the end, or a final newline ($ matches before it)
        state = self.initial.get(eol)
        if state is None:
            state = self.initial[eol] = self._dfa(
                self._closure(frozenset((self.start,)), True, eol)
            )
        accepting, moves = self.accepting, self.moves
        for position, char in enumerate(text):
            if state in accepting:
                return True
            after = position + 1
            eol = after == n or (after == n - 1 and text[after] == "\n")
            key = (state, char, eol)
            found = moves.get(key)
            if found is None:
                found = self._step(state, char, eol)
            state = found
        return state in accepting

    def _dfa(self, states: frozenset[int]) -> int:
        """The number of a DFA state (a set of automaton states)."""
        number = self.numbers.get(states)
        if number is None:
            number = self.numbers[states] = len(self.sets)
            self.sets.append(states)
            if 0 in states:
                self.accepting.add(number)
        return number

    def _step(self, state: int, char: str, eol: bool) -> int:
        """The DFA state after `char`, with the search begun again at every position."""
        current = self.sets[state]
        if len(self.sets) > _CACHE_LIMIT:  # bounded memory: the DFA is built again as needed
            for cache in (self.sets, self.numbers, self.accepting, self.moves, self.initial):
                cache.clear()
            state = self._dfa(current)
        states = self.states
        moved = {states[s][2] for s in current if states[s][0] == "char" and states[s][1](char)}
        moved.add(self.start)
        found = self._dfa(self._closure(frozenset(moved), False, eol))
        self.moves[(state, char, eol)] = found
        return found

    def _closure(self, kernel: frozenset[int], bol: bool, eol: bool) -> frozenset[int]:
        """The automaton states `kernel` reaches without reading a character (the char and
        match states among them), at a position that is the start (`bol`) or the end (`eol`)."""
        seen: set[int] = set()
        out = set()
        todo = list(kernel)
        while todo:
            index = todo.pop()
            if index in seen:
                continue
            seen.add(index)
            state = self.states[index]
            kind = state[0]
            if kind in ("char", "match"):
                out.add(index)
            elif kind == "split":
                todo.extend(state[1])
            elif (kind == "bol" and bol) or (kind == "eol" and eol):
                todo.append(state[1])
        return frozenset(out)

    def _add(self, state: _State) -> int:
        self.states.append(state)
        return len(self.states) - 1

    def _compile(self, node: tuple, then: int) -> int:
        """The state that matches `node` and goes on to `then`."""
        kind = node[0]
        if kind == "test":
            return self._add(("char", node[1], then))
        if kind == "seq":
            for part in reversed(node[1]):
                then = self._compile(part, then)
            return then
        if kind == "alt":
            return self._add(("split", tuple(self._compile(b, then) for b in node[1])))
        if kind in ("bol", "eol"):
            return self._add((kind, then))
        if kind == "?":
            return self._add(("split", (self._compile(node[1], then), then)))
        if kind == "*":
            loop = self._add(("split", ()))
            body = self._compile(node[1], loop)
            self.states[loop] = ("split", (body, then))
            return loop
        if kind == "+":
            return self._compile(node[1], self._compile(("*", node[1]), then))
        raise ValueError(f"cannot compile {kind!r}")


class _Parser:
    """A regular expression of the subset `Linear` runs, as a tree of tuples."""

    def __init__(self, regex: str) -> None:
        self.regex = regex
        self.at = 0

    def _peek(self) -> str:
        return self.regex[self.at] if self.at < len(self.regex) else ""

    def alternation(self) -> tuple:
        branches = [self._sequence()]
        while self._peek() == "|":
            self.at += 1
            branches.append(self._sequence())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def _sequence(self) -> tuple:
        parts = []
        while self._peek() not in ("", "|", ")"):
            atom = self._atom()
            quantifier = self._peek()
            if quantifier in ("*", "+", "?"):
                self.at += 1
                if self._peek() in ("*", "+", "?", "{"):
                    raise ValueError(f"a lazy or possessive quantifier in {self.regex!r}")
                if atom[0] in ("bol", "eol"):
                    raise ValueError(f"a quantified anchor in {self.regex!r}")
                atom = (quantifier, atom)
            elif quantifier == "{":
                raise ValueError(f"a counted repetition in {self.regex!r}")
            parts.append(atom)
        return ("seq", parts)

    def _atom(self) -> tuple:
        regex, char = self.regex, self._peek()
        self.at += 1
        if char == "(":
            if regex.startswith("?:", self.at):
                self.at += 2
            elif regex.startswith("?P<", self.at):
                self.at = regex.index(">", self.at) + 1
            elif self._peek() == "?":
                raise ValueError(f"a group of another kind in {regex!r}")
            inner = self.alternation()
            if self._peek() != ")":
                raise ValueError(f"an unclosed group in {regex!r}")
            self.at += 1
            return inner
        if char == "[":
            return ("test", self._class())
        if char == ".":
            return ("test", _not_newline)
        if char == "^":
            return ("bol",)
        if char == "$":
            return ("eol",)
        if char == "\\":
            escaped = self._peek()
            self.at += 1
            if not escaped or escaped.isalnum():
                raise ValueError(f"the escape \\{escaped} in {regex!r}")
            return ("test", escaped.__eq__)
        if char in "*+?{":
            raise ValueError(f"a quantifier with nothing before it in {regex!r}")
        return ("test", char.__eq__)

    def _class(self) -> Callable[[str], bool]:
        """A bracket expression, ended where Python's parser ends it, tested by `re` itself on
        one character at a time (no backtracking is possible there)."""
        regex, start = self.regex, self.at - 1
        if self._peek() == "^":
            self.at += 1
        if self._peek() == "]":
            self.at += 1
        while self._peek() not in ("]", ""):
            self.at += 2 if self._peek() == "\\" else 1
        if self._peek() != "]":
            raise ValueError(f"an unclosed bracket expression in {regex!r}")
        self.at += 1
        try:
            with warnings.catch_warnings():  # "possible nested set": a literal '[' today
                warnings.simplefilter("ignore", FutureWarning)
                compiled = re.compile(regex[start : self.at])
        except re.error as exc:
            raise ValueError(f"{exc} in {regex!r}") from None
        return lambda char: compiled.fullmatch(char) is not None


def _not_newline(char: str) -> bool:
    return char != "\n"
