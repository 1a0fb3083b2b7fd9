"""Helpers the flows import (a module of the repository, versioned with them)."""


def batches(rows: list[int], size: int) -> list[list[int]]:
    return [rows[i : i + size] for i in range(0, len(rows), max(size, 1))]
