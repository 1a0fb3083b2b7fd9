"""The core never loads the console or the CLI libraries."""

from __future__ import annotations

import subprocess
import sys


def test_core_does_not_import_textual_or_typer() -> None:
    code = (
        "import sys, gitdags, gitdags.engine, gitdags.validate, gitdags.source;"
        "bad = [m for m in ('textual', 'typer', 'rich') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
