"""What a small exact ``fit`` process loads: no MCMC stack.

The exact path needs none of PyMC, PyTensor or nutpie (seconds of start-up for a process whose
work takes a fraction of a second). xarray itself still imports ``dask.array`` and
``distributed`` when it writes a netCDF file (about 0.35 s); avoiding that would take a patch of
xarray internals, which metak does not make.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.bcg_records import CONFIG_TEMPLATE, write_contrast_records
from tests.conftest import REFERENCE, REPO

NOT_ON_THE_EXACT_PATH = ("pymc", "pytensor", "nutpie")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_exact_fit_process_loads_no_mcmc_stack(tmp_path):
    records = write_contrast_records(
        REFERENCE, "bcg_logRR", tmp_path / "records", "logRR", "logRR", "ablat"
    )
    config = tmp_path / "analyses.toml"
    config.write_text(
        CONFIG_TEMPLATE.format(name="bcg", outcome="logRR", moderator="ablat", tau="halfnormal(1)"),
        encoding="utf-8",
    )
    out = tmp_path / "results"
    # The real entry point (`python -m metak`), with the loaded modules listed at exit.
    done = _python(
        f"""
        import atexit, runpy, sys
        watched = {NOT_ON_THE_EXACT_PATH!r}
        atexit.register(lambda: print("loaded:", sorted(m for m in watched if m in sys.modules)))
        sys.argv = ["metak", "fit", "--studies", {str(records)!r}, "--config", {str(config)!r},
                    "--analysis", "bcg_re", "--method", "exact", "--out", {str(out)!r}, "--quiet"]
        runpy.run_module("metak", run_name="__main__")
        """
    )
    assert done.returncode == 0, done.stderr
    assert (out / "posterior" / "bcg_re.nc").is_file() and (out / "report.html").is_file()
    assert done.stdout.strip().splitlines()[-1] == "loaded: []", done.stdout
