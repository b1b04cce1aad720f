"""``metak.effects`` is a numpy-only core: importing it must not pull in PyMC or pandas."""

from __future__ import annotations

import subprocess
import sys


def test_import_effects_loads_neither_pymc_nor_pandas():
    code = (
        "import sys, metak.effects, metak.effects.basic, metak.effects.conversions, "
        "metak.effects.medians, metak.effects.change; "
        "print(','.join(sorted(m for m in ('pymc', 'pytensor', 'pandas') if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "", f"metak.effects imported: {result.stdout.strip()}"
