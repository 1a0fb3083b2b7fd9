"""Best-effort line numbers for formats whose parsers give none (JSON, TOML).

Walks the field path through the text: a key is searched after the previous match, a list
item is found by its `id` value when it has one. Good enough to point a person at the place.
One `Locator` per parsed file answers every lookup of that file in linear time overall: the
line of an offset comes from the newline offsets (found once), and the ids after the start of
a list from one scan of the quoted strings after it (so 14,000 issues in one file cost one
pass, not 14,000).
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from gitdags.formats.base import FieldPath

_QUOTED = re.compile(r"\"((?:[^\"\\\n]|\\.)*)\"|'([^'\n]*)'")
_SKIP = frozenset(" \t\r\n{,.[")


class Locator:
    def __init__(self, text: str, data: Any, key_pattern: str) -> None:
        self.text = text
        self.data = data
        self.key_pattern = key_pattern
        self._newlines: list[int] | None = None
        self._strings: dict[int, dict[str, int]] = {}  # offset -> first offset of each string

    def __call__(self, path: FieldPath) -> int | None:
        text = self.text
        pos = 0
        found = False
        node = self.data
        for part in path:
            if isinstance(part, str):
                pattern = self.key_pattern.format(key=re.escape(part))
                match = re.compile(pattern, re.MULTILINE).search(text, pos)
                node = node.get(part) if isinstance(node, dict) else None
                at = match.start() if match else None
            else:
                item = node[part] if isinstance(node, list) and part < len(node) else None
                node = item
                ident = item.get("id") if isinstance(item, dict) else None
                if not isinstance(ident, str):
                    break
                at = self._string_after(pos, ident)
            if at is None:
                break
            pos, found = at, True
            while pos < len(text) - 1 and text[pos] in _SKIP:
                pos += 1
        if not found:
            return None
        return self._line(pos)

    def _string_after(self, pos: int, value: str) -> int | None:
        """Where the quoted string `value` first stands after `pos`."""
        strings = self._strings.get(pos)
        if strings is None:
            strings = {}
            for match in _QUOTED.finditer(self.text, pos):
                raw = match.group(1) if match.group(1) is not None else match.group(2)
                strings.setdefault(raw, match.start())
            self._strings[pos] = strings
        return strings.get(value)

    def _line(self, pos: int) -> int:
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        return bisect.bisect_left(self._newlines, pos) + 1
