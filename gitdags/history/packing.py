"""How a version's spec and text are kept small: zlib (stdlib) with a preset dictionary.

A DAG's spec is 1-2 KB of JSON whose keys and most values repeat across the DAGs of a
repository; compressed on its own it keeps a third of its size, compressed against a
dictionary of other specs of the same repository a fifteenth (the text of its file likewise).
A dictionary is trained once from the first versions a database records (`train`) and kept in
the `zdicts` table; each version names the dictionary its spec and text were packed with
(`versions.zdict`; NULL: plain text, as databases before schema 5 held them). A dictionary's id
is a digest of its bytes and it is never changed once written, so every version stays readable
(and two syncs that trained one at once each name their own).

Packing runs where the files are read (the pool's workers, on every core); unpacking where a
version is read.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field

LEVEL = 6
DICT_BYTES = 16_384  # per dictionary half: larger ones cost more per call than they save
SAMPLES = 48  # versions a dictionary is trained from


@dataclass(frozen=True)
class Dictionary:
    """One preset dictionary: a half for specs (JSON), a half for file texts."""

    id: int
    spec: bytes
    text: bytes
    _packers: dict[str, zlib._Compress] = field(default_factory=dict, compare=False, repr=False)
    _unpackers: dict[str, zlib._Decompress] = field(default_factory=dict, compare=False, repr=False)

    def __getstate__(self) -> tuple[int, bytes, bytes]:  # sent to workers without the zlib state
        return (self.id, self.spec, self.text)

    def __setstate__(self, state: tuple[int, bytes, bytes]) -> None:
        object.__setattr__(self, "id", state[0])
        object.__setattr__(self, "spec", state[1])
        object.__setattr__(self, "text", state[2])
        object.__setattr__(self, "_packers", {})
        object.__setattr__(self, "_unpackers", {})

    def _preset(self, half: str) -> bytes:
        return self.spec if half == "spec" else self.text

    def pack(self, value: str, half: str) -> bytes:
        """`value` compressed against the dictionary's `half` ("spec" or "text")."""
        base = self._packers.get(half)
        if base is None:  # priming with the dictionary costs more than the copy of a primed one
            base = self._packers[half] = zlib.compressobj(LEVEL, zdict=self._preset(half))
        packer = base.copy()
        return packer.compress(value.encode("utf-8", "surrogatepass")) + packer.flush()

    def unpack(self, value: bytes, half: str) -> str:
        base = self._unpackers.get(half)
        if base is None:
            base = self._unpackers[half] = zlib.decompressobj(zdict=self._preset(half))
        return base.copy().decompress(value).decode("utf-8", "surrogatepass")


def train(specs: list[str], texts: list[str]) -> Dictionary:
    """A dictionary from sample specs and texts: their concatenation, the last DICT_BYTES
    (zlib finds the strings nearest the end of a preset cheapest)."""
    spec, text = _preset(specs), _preset(texts)
    digest = hashlib.sha256(len(spec).to_bytes(4, "big") + spec + text).digest()
    return Dictionary(int.from_bytes(digest[:7], "big"), spec, text)


def _preset(samples: list[str]) -> bytes:
    joined = "".join(samples[:SAMPLES]).encode("utf-8", "surrogatepass")
    return joined[-DICT_BYTES:] or b" "


def unpacked(value: str | bytes | None, dictionary: Dictionary | None, half: str) -> str | None:
    """A stored spec or text as text: packed (bytes, with the row's dictionary) or plain."""
    if value is None or isinstance(value, str):
        return value
    if dictionary is None:
        return zlib.decompress(value).decode("utf-8", "surrogatepass")
    return dictionary.unpack(value, half)
