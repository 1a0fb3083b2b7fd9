"""Best-effort line numbers for formats whose parsers give none (JSON, TOML).

Walks the field path through the text: a key is searched after the previous match, a list
item is found by its `id` value when it has one. Good enough to point a person at the place.
"""

from __future__ import annotations

import re
from typing import Any

from gitdags.formats import FieldPath


def find_line(text: str, data: Any, path: FieldPath, key_pattern: str) -> int | None:
    pos = 0
    found = False
    node = data
    for part in path:
        if isinstance(part, str):
            pattern = key_pattern.format(key=re.escape(part))
            match = re.compile(pattern, re.MULTILINE).search(text, pos)
            node = node.get(part) if isinstance(node, dict) else None
        else:
            item = node[part] if isinstance(node, list) and part < len(node) else None
            node = item
            ident = item.get("id") if isinstance(item, dict) else None
            if not isinstance(ident, str):
                break
            match = re.compile(r"[\"']" + re.escape(ident) + r"[\"']").search(text, pos)
        if not match:
            break
        pos, found = match.start(), True
        while pos < len(text) - 1 and text[pos] in " \t\r\n{,.[":
            pos += 1
    if not found:
        return None
    return text.count("\n", 0, pos) + 1
