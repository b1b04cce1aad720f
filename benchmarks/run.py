"""metak benchmarks: one command, every benchmark several times, results in benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/run.py              # full suite, 5 repeats (about 15-25 minutes)
    .venv/bin/python benchmarks/run.py --quick      # tiny sizes, 1 repeat
    .venv/bin/python benchmarks/run.py --quick --no-r   # the CI smoke run: never R

Benchmarks (issue "Speed"):
  1. bcg random effects / meta-regression as a whole `python -m metak fit` process, exact and MCMC;
  2. the exact path alone (in process, compute only) for k = 10, 100, 1,000, 10,000;
  3. MCMC meta-regression for k = 100 and 10,000 (in process, model build + sampling);
  4. the default full `python -m metak fit` on the bundled evidence, cold (empty Numba/PyTensor
     caches) and warm (second run with the same caches);
  5. peak memory (max RSS) of (4);
  6. `python -m metak report` on the results of (4).
  7. what the robustness checks add to an exact analysis, bcg (k = 13) and k = 1,000;
  8. `python -m metak effects` on 10,000 and 100,000 arm-level rows (validated and converted).
Where `Rscript` with metafor/brms is installed, the same bcg models run there too (ratio column);
otherwise (or with --no-r) those rows say so and are skipped.
No timing is asserted anywhere: the numbers are measured and written down, targets beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.bcg_records import CONFIG_TEMPLATE, write_contrast_records  # noqa: E402
from tests.synthetic import write_arm_records, write_records  # noqa: E402

REFERENCE = REPO / "tests" / "data" / "reference"
BCG_TAU = "halfnormal(1.0)"


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------


# Runs one command and measures it from outside: wall time, and the peak of the summed resident
# memory of the command and all its descendants (metak fits MCMC analyses in worker processes, so
# the largest single process would understate the memory a run needs), sampled every 20 ms.
_MEASURE = r"""
import json, os, subprocess, sys, time

def tree_rss_kib(root):
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    todo.extend(int(c) for c in handle.read().split())
        except OSError:
            pass
    return total

start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
peak = 0
import threading
err = []
reader = threading.Thread(target=lambda: err.append(child.stderr.read()))
reader.start()
while child.poll() is None:
    peak = max(peak, tree_rss_kib(child.pid))
    time.sleep(0.02)
seconds = time.perf_counter() - start
reader.join()
print(json.dumps({"seconds": seconds, "rss_mib": peak / 1024, "rc": child.returncode,
                  "stderr": (err[0] if err else "")[-2000:]}))
"""


def _process(args, env=None, cwd=REPO):
    """Run a command; return {seconds, rss_mib (peak over its process tree), rc, stderr}."""
    full_env = dict(os.environ, **(env or {}))
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cold_cache_env(caches: Path) -> dict:
    """Environment with empty compilation caches: PyTensor's (C modules and its numba cache both
    live under base_compiledir) and numba's own."""
    return {
        "NUMBA_CACHE_DIR": str(caches / "numba"),
        "PYTENSOR_FLAGS": f"base_compiledir={caches / 'pytensor'}",
    }


def _failed_row(name: str, info: dict) -> dict:
    reason = (
        info["stderr"].strip().splitlines()[-1][:160] if info["stderr"].strip() else "no message"
    )
    return {
        "name": name,
        "median": "—",
        "spread": "—",
        "target": "—",
        "met": "failed",
        "note": f"exit code {info['rc']}: {reason}",
    }


def _stats(values):
    values = sorted(values)
    median = statistics.median(values)
    return {"median": median, "min": values[0], "max": values[-1], "n": len(values)}


def _fmt_seconds(value):
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


# ---------------------------------------------------------------------------------------------
# the benchmarks
# ---------------------------------------------------------------------------------------------


def bcg_processes(
    work: Path,
    repeats: int,
    rows: list,
    analyses: tuple = ("bcg_re", "bcg_mr"),
    methods: tuple = ("exact", "mcmc"),
) -> dict:
    """Whole-process bcg fits; returns {(model, method): median seconds} for the R ratios."""
    medians = {}
    records = write_contrast_records(
        REFERENCE, "bcg_logRR", work / "bcg", "logRR", "logRR", "ablat"
    )
    config = work / "bcg.toml"
    config.write_text(
        CONFIG_TEMPLATE.format(name="bcg", outcome="logRR", moderator="ablat", tau=BCG_TAU)
    )
    for analysis in analyses:
        for method in methods:
            times, ess = [], []
            for repeat in range(repeats):
                out = work / f"out_{analysis}_{method}_{repeat}"
                info = _process(
                    [
                        sys.executable,
                        "-m",
                        "metak",
                        "fit",
                        "--studies",
                        records,
                        "--config",
                        config,
                        "--analysis",
                        analysis,
                        "--method",
                        method,
                        "--out",
                        out,
                        "--quiet",
                    ]
                )
                if info["rc"] != 0:
                    break
                times.append(info["seconds"])
                if method == "mcmc":
                    ess.append(_tau_ess(out / "summary.csv", analysis))
            if not times:
                rows.append(
                    _failed_row(f"bcg {analysis[4:].upper()} `metak fit` process, {method}", info)
                )
                continue
            target = {
                "exact": ("whole process ≤ 1.5 s", 1.5),
                "mcmc": ("whole process ≤ 8 s", 8.0),
            }[method]
            if analysis == "bcg_mr":
                target = ("—", None)
            note = (
                f"bulk ESS(tau) median {statistics.median(ess):.0f} (target ≥ 1,000)" if ess else ""
            )
            rows.append(
                _row(
                    f"bcg {analysis[4:].upper()} `metak fit` process, {method}", times, target, note
                )
            )
            medians[(analysis[4:], method)] = statistics.median(times)
    return medians


def _tau_ess(summary_csv: Path, analysis: str) -> float:
    import pandas as pd

    table = pd.read_csv(summary_csv)
    # The analysis' own rows (summary.csv also holds its robustness checks' analyses).
    table = table[table["analysis"] == analysis].set_index("parameter")
    return float(table.loc["tau", "ess_bulk"])


def _synthetic(k: int, seed: int = 1):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=k)
    v = rng.uniform(0.01, 0.2, size=k)
    theta = -0.5 + 0.3 * x + rng.normal(0, 0.3, size=k)
    return theta + rng.normal(0, np.sqrt(v)), v, x


def exact_alone(sizes, repeats: int, rows: list):
    import numpy as np

    from metak.exact import fit_exact

    for k in sizes:
        y, v, x = _synthetic(k)
        X = np.column_stack([np.ones(k), x - x.mean()])
        for label, design in (("random effects", None), ("meta-regression", X)):
            fit_exact(y, v, design, coef_priors="normal(0, 10)", tau_prior=BCG_TAU)  # warm imports
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fit_exact(y, v, design, coef_priors="normal(0, 10)", tau_prior=BCG_TAU)
                times.append(time.perf_counter() - start)
            if k <= 100:
                target = ("≤ 20 ms", 0.020)
            elif k == 10_000:
                target = ("≤ 1 s", 1.0)
            else:
                target = ("—", None)
            rows.append(_row(f"exact {label}, k = {k:,} (compute only)", times, target))


def exact_analysis(repeats: int, rows: list, work: Path):
    """One whole exact analysis in process: the posterior, its summaries, the shrunken study
    effects, 16,000 independent draws and the posterior DataTree (bcg, random effects and
    meta-regression) — everything `metak fit` computes for it before writing files."""
    import metak
    from metak.derive import compute_effects
    from metak.fitting.orchestrator import run_analyses
    from metak.priors import parse_prior
    from metak.spec import AnalysisSpec, Settings

    records = metak.load_studies(
        write_contrast_records(
            REFERENCE, "bcg_logRR", work / "bcg_inproc", "logRR", "logRR", "ablat"
        ),
        provenance="off",
    )
    effects = compute_effects(records)
    priors = {
        "mu": parse_prior("normal(0, 10)"),
        "intercept": parse_prior("normal(0, 10)"),
        "slope": parse_prior("normal(0, 10)"),
        "tau": parse_prior(BCG_TAU),
    }
    specs = {
        "random effects": AnalysisSpec(
            name="re",
            outcome="logRR",
            model="random_effects",
            priors={k: priors[k] for k in ("mu", "tau")},
        ),
        "meta-regression": AnalysisSpec(
            name="mr",
            outcome="logRR",
            model="meta_regression",
            moderators=("ablat",),
            priors={k: priors[k] for k in ("intercept", "slope", "tau")},
        ),
    }
    for label, spec in specs.items():
        run_analyses(records, [spec], Settings(), effects=effects)  # warm imports
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run_analyses(records, [spec], Settings(), effects=effects)
            times.append(time.perf_counter() - start)
        rows.append(
            _row(
                f"exact {label}, bcg k = 13, whole analysis "
                "(posterior, summaries, 16,000 draws, DataTree)",
                times,
                ("≤ 20 ms", 0.020),
            )
        )


def robustness_checks(sizes, repeats: int, rows: list, work: Path):
    """What the robustness checks add to one exact random-effects analysis (Bayes factors,
    PET/PEESE analyses, exact leave-one-out, the prior set, the 12-model ensemble, PSIS-LOO):
    `run_analyses` with the checks on minus the same with them off, runs alternating."""
    from dataclasses import replace

    import metak
    from metak.derive import compute_effects
    from metak.fitting.orchestrator import run_analyses
    from metak.priors import parse_prior
    from metak.spec import AnalysisSpec, RobustnessSpec, Settings

    for k in sizes:
        if k == 13:
            directory = write_contrast_records(
                REFERENCE, "bcg_logRR", work / "bcg_robust", "logRR", "logRR", "ablat"
            )
            outcome, label = "logRR", "bcg k = 13"
        else:
            directory = _write_synthetic_records(work / f"robust_{k}", k)
            outcome, label = "y", f"k = {k:,}"
        records = metak.load_studies(directory, provenance="off")
        effects = compute_effects(records)
        on = AnalysisSpec(
            name="re",
            outcome=outcome,
            priors={"mu": parse_prior("normal(0, 10)"), "tau": parse_prior(BCG_TAU)},
        )
        off = replace(on, robustness=RobustnessSpec.off())
        for spec in (on, off):  # warm imports
            run_analyses(records, [spec], Settings(), effects=effects)
        added, base = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            run_analyses(records, [on], Settings(), effects=effects)
            middle = time.perf_counter()
            run_analyses(records, [off], Settings(), effects=effects)
            end = time.perf_counter()
            added.append((middle - start) - (end - middle))
            base.append(end - middle)
        target = ("≤ 0.3 s", 0.3) if k == 13 else ("≤ 5 s", 5.0) if k == 1_000 else ("—", None)
        rows.append(
            _row(
                f"robustness checks, {label} (added to the exact fit)",
                added,
                target,
                f"the exact fit itself: median {_fmt_seconds(statistics.median(base))}",
            )
        )


def inputs_processes(sizes, repeats: int, rows: list, work: Path):
    """`python -m metak effects` as a whole process on arm-level records (tests.synthetic's
    write_arm_records: four arms rows per trial, every number quoted): read, validate every
    cell, rule and provenance quote, compute the effect sizes, write effects.csv."""
    for size in sizes:
        records = write_arm_records(work / f"arms_{size}", size // 4, seed=size)
        times = []
        for repeat in range(repeats):
            out = work / f"arms_{size}_effects_{repeat}.csv"
            info = _process(
                [sys.executable, "-m", "metak", "effects", "--studies", records, "--out", out]
            )
            if info["rc"] != 0:
                rows.append(_failed_row(f"{size:,} arms rows, `metak effects` process", info))
                break
            times.append(info["seconds"])
        else:
            target = ("≤ 10 s", 10.0) if size == 100_000 else ("—", None)
            rows.append(
                _row(
                    f"{size:,} arms rows validated and converted (`metak effects` process)",
                    times,
                    target,
                    f"{size // 4:,} trials; includes start-up and writing effects.csv",
                )
            )


def _write_synthetic_records(directory: Path, k: int):
    y, v, x = _synthetic(k, seed=k)
    studies = [{"study_id": f"s{i}", "x": repr(float(x[i]))} for i in range(k)]
    contrasts = [(f"s{i}", "y", y[i], v[i] ** 0.5) for i in range(k)]
    return write_records(directory, studies, contrasts, ["x"])


def mcmc_regression(sizes, repeats: int, draws: int, rows: list, work: Path):
    """MCMC meta-regression in process: data, model build, compile, sampling with the gate,
    summaries and the posterior DataTree. The effect sizes are computed once beforehand (their
    own row: validating and converting 10,000 study records is not the model's cost)."""
    import metak
    from metak.derive import compute_effects
    from metak.fitting.orchestrator import run_analyses
    from metak.priors import parse_prior
    from metak.spec import AnalysisSpec, Settings

    for k in sizes:
        records = metak.load_studies(
            _write_synthetic_records(work / f"synth_{k}", k), provenance="off"
        )
        start = time.perf_counter()
        effects = compute_effects(records)
        effects_seconds = time.perf_counter() - start
        priors = {
            "intercept": parse_prior("normal(0, 10)"),
            "slope": parse_prior("normal(0, 10)"),
            "tau": parse_prior(BCG_TAU),
        }
        spec = AnalysisSpec(
            name="mr",
            outcome="y",
            model="meta_regression",
            moderators=("x",),
            priors=priors,
            method="mcmc",
        )
        times, converged, phases = [], [], []
        for repeat in range(repeats):
            start = time.perf_counter()
            result = run_analyses(
                records, [spec], Settings(draws=draws, seed=repeat + 1), effects=effects
            )
            times.append(time.perf_counter() - start)
            converged.append(result.analyses["mr"].converged)
            phases.append(result.analyses["mr"].mcmc.phase_seconds)
        target = ("≤ 60 s", 60.0) if k == 10_000 else ("—", None)
        typical = {key: statistics.median(p.get(key, 0.0) for p in phases) for key in phases[0]}
        detail = ", ".join(f"{key} {value:.1f} s" for key, value in typical.items())
        rows.append(
            _row(
                f"MCMC meta-regression, k = {k:,} "
                "(in process: build, compile, sample, gate, summaries)",
                times,
                target,
                f"converged {sum(converged)}/{len(converged)}; median {detail}; "
                f"effect sizes beforehand {effects_seconds:.1f} s",
            )
        )


def bundled_fit(repeats: int, rows: list, work: Path, extra_args=()):
    """The default `metak fit` on the bundled evidence: cold (empty caches), then warm (same
    caches, second run). A run that fails becomes a row, so the rows measured before survive."""
    cold, warm, memory = [], [], []
    for repeat in range(repeats):
        caches = Path(tempfile.mkdtemp(prefix="metak-bench-cache-", dir=work))
        env = _cold_cache_env(caches)
        for label, bucket in (("cold", cold), ("warm", warm)):
            out = work / f"bundled_{repeat}_{label}"
            info = _process(
                [sys.executable, "-m", "metak", "fit", "--out", out, "--quiet", *extra_args],
                env=env,
            )
            if info["rc"] not in (0, 3):
                rows.append(_failed_row(f"bundled `metak fit`, {label} caches", info))
                shutil.rmtree(caches, ignore_errors=True)
                return
            bucket.append(info["seconds"])
            memory.append(info["rss_mib"])
            if info["rc"] == 3:
                rows.append(
                    {
                        "name": f"bundled `metak fit`, {label} run {repeat + 1}",
                        "median": "—",
                        "spread": "—",
                        "target": "—",
                        "met": "note",
                        "note": "an analysis failed the diagnostics gate (exit code 3)",
                    }
                )
        shutil.rmtree(caches, ignore_errors=True)
    rows.append(_row("bundled `metak fit`, cold caches", cold, ("≤ 60 s", 60.0)))
    ratio = statistics.median(warm) / statistics.median(cold)
    rows.append(
        _row(
            "bundled `metak fit`, warm caches",
            warm,
            ("≤ 60% of cold", 0.6 * statistics.median(cold)),
            f"warm/cold = {ratio:.2f}",
        )
    )
    rows.append(
        {
            "name": "bundled `metak fit`, peak memory (all processes)",
            "median": f"{statistics.median(memory):.0f} MiB",
            "spread": f"{min(memory):.0f}–{max(memory):.0f} MiB (n = {len(memory)})",
            "target": "≤ 1.5 GB",
            "met": "yes" if max(memory) <= 1536 else "no",
            "note": "summed resident memory of the command and its worker processes",
        }
    )


def bundled_report(repeats: int, rows: list, work: Path):
    """`python -m metak report` on the results of the bundled fit above (whole process: start-up,
    integrity check, reading the posterior files, the arviz-plots and matplotlib figures)."""
    results = sorted(work.glob("bundled_*_warm"))
    if not results:
        rows.append(
            {
                "name": "report for the bundled results",
                "median": "—",
                "spread": "—",
                "target": "—",
                "met": "skipped",
                "note": "no bundled results (the bundled fit failed)",
            }
        )
        return
    times = []
    for _ in range(repeats):
        info = _process([sys.executable, "-m", "metak", "report", "--out", results[-1]])
        if info["rc"] != 0:
            rows.append(_failed_row("report for the bundled results", info))
            return
        times.append(info["seconds"])
    size = (results[-1] / "report.html").stat().st_size / 2**20
    rows.append(
        _row(
            "report for the bundled results (`metak report` process)",
            times,
            ("—", None),
            f"report.html {size:.1f} MiB; diagnostics figures by arviz-plots",
        )
    )


# ---------------------------------------------------------------------------------------------
# batches of reviews (`metak batch`)
# ---------------------------------------------------------------------------------------------

# The MCMC rows measure fitting: the robustness checks are off (their cost is the exact rows').
BATCH_ROBUST_CONFIG = """
[[analysis]]
name = "robust"
outcome = "effect"
model = "robust"
robustness = false
"""
# Reviews of the projected MCMC re-analysis of a whole database (Bartos et al. fitted RoBMA to
# tens of thousands of Cochrane meta-analyses).
PROJECTED_REVIEWS = 50_000
PROJECTED_WORKERS = (8, 32, 128)


def _batch_table(path: Path, n_reviews: int, seed: int) -> Path:
    from tests.batch_tables import synthetic_reviews

    synthetic_reviews(n_reviews, seed=seed, k_range=(5, 50)).to_csv(path, index=False)
    return path


def _batch_process(table: Path, out: Path, *extra) -> dict:
    command = [sys.executable, "-m", "metak", "batch", table, "--out", out, "--quiet", *extra]
    info = _process(command)
    if info["rc"] in (0, 3):
        info["manifest"] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return info


BATCH_UNCHECKED_CONFIG = """
[[analysis]]
name = "re_effect"
outcome = "effect"
model = "random_effects"
robustness = false
"""


def batch_exact(n_reviews: int, repeats: int, rows: list, work: Path, checks: bool = True):
    """`metak batch` as a whole process: synthetic reviews (k 5-50), exact random effects, on the
    embedded cluster (one worker per core): wall time and peak memory of all its processes.
    ``checks``: with the robustness checks (the default analyses), else ``robustness = false``."""
    table = work / f"batch_exact_{n_reviews}.csv"
    if not table.exists():
        _batch_table(table, n_reviews, seed=7)
    extra = ()
    if not checks:
        config = work / "batch_unchecked.toml"
        config.write_text(BATCH_UNCHECKED_CONFIG, encoding="utf-8")
        extra = ("--config", config)
    what = "with the robustness checks" if checks else "robustness checks off"
    name = f"`metak batch` process, {n_reviews:,} reviews (k 5–50), exact random effects, {what}"
    times, memory, timings = [], [], {}
    for repeat in range(repeats):
        info = _batch_process(table, work / f"batch_exact_{n_reviews}_{checks}_{repeat}", *extra)
        if info["rc"] != 0:
            rows.append(_failed_row(name, info))
            return
        times.append(info["seconds"])
        memory.append(info["rss_mib"])
        timings = info["manifest"]["timings"]
    rate = n_reviews / statistics.median(times)
    per_review = 1000 * timings["chunk_seconds"] / n_reviews
    checked = 1000 * timings.get("robustness", 0.0) / n_reviews
    note = f"{rate:,.0f} reviews/s on 2 workers; {per_review:.1f} ms of worker time per review"
    if checks:
        note += f" ({checked:.0f} ms of it robustness checks)"
    target = ("≤ 60 s", 60.0) if n_reviews == 10_000 else ("—", None)
    rows.append(_row(name, times, target, note))
    if checks and n_reviews < 10_000:
        # The checked batch of 10,000 reviews would take ~20 minutes here: measured on fewer,
        # and scaled (the time per review does not depend on the batch's size once started).
        projected = statistics.median(times) * 10_000 / n_reviews
        rows.append(
            {
                "name": "`metak batch`, 10,000 exact reviews with the robustness checks, "
                f"projected from {n_reviews:,}",
                "median": f"≈ {projected:,.0f} s",
                "spread": "—",
                "target": "≤ 60 s",
                "met": "yes" if projected <= 60 else "no",
                "note": f"{n_reviews:,}-review wall time x {10_000 // n_reviews}",
            }
        )
    rows.append(
        {
            "name": f"`metak batch`, {n_reviews:,} exact reviews ({what}), peak memory",
            "median": f"{statistics.median(memory):.0f} MiB",
            "spread": f"{min(memory):.0f}–{max(memory):.0f} MiB (n = {len(memory)})",
            "target": "≤ 2 GB" if n_reviews == 10_000 else "—",
            "met": ("yes" if max(memory) <= 2048 else "no") if n_reviews == 10_000 else "—",
            "note": "summed resident memory of the command, scheduler and workers",
        }
    )


def batch_mcmc(n_reviews: int, repeats: int, draws: int, rows: list, work: Path):
    """`metak batch` of robust-model reviews by MCMC with 1 and 2 worker processes: throughput,
    scaling efficiency, the share of compiling, and from the measured per-review costs the
    projected time of a 50,000-review MCMC re-analysis on an N-worker cluster."""
    table = _batch_table(work / f"batch_mcmc_{n_reviews}.csv", n_reviews, seed=8)
    config = work / "batch_robust.toml"
    config.write_text(BATCH_ROBUST_CONFIG, encoding="utf-8")
    runs = {}
    for workers in (1, 2):
        name = f"`metak batch` process, {n_reviews} robust-model reviews by MCMC, {workers} worker"
        name += "s" if workers > 1 else ""
        times, manifests = [], []
        for repeat in range(repeats):
            out = work / f"batch_mcmc_{workers}_{repeat}"
            info = _batch_process(
                table, out, "--config", config, "--jobs", workers, "--draws", draws, "--tune", draws
            )
            if info["rc"] not in (0, 3):
                rows.append(_failed_row(name, info))
                return
            times.append(info["seconds"])
            manifests.append(info["manifest"])
        runs[workers] = (times, manifests)
        timings = manifests[-1]["timings"]
        share = timings.get("compile", 0.0) / timings["chunk_seconds"]
        note = (
            f"{n_reviews / statistics.median(times):.2f} reviews/s; compiling "
            f"{100 * share:.0f}% of the workers' time ({timings['compilations']:.0f} "
            f"compilations for {timings['mcmc_fits']:.0f} fits); "
            f"{manifests[-1]['reviews']['diagnostics_failed']} failed the gate"
        )
        if workers == 2:
            one = statistics.median(runs[1][0])
            efficiency = one / (2 * statistics.median(times))
            note += f"; scaling efficiency 1 -> 2 workers {100 * efficiency:.0f}% (target ≥ 80%)"
        rows.append(_row(name, times, ("—", None), note))
    _projection(runs[2], n_reviews, rows)


def _projection(run, n_reviews: int, rows: list) -> None:
    """Time of a 50,000-review MCMC batch on N workers, from the measured per-review costs.

    Each worker compiles each model structure once (the 2-worker run's compile seconds per
    compilation, times the structures seen), then fits its share of the reviews at the measured
    seconds per review (the workers' time less compiling, per fit); start-up is the measured
    wall time not spent in chunks. Assumes workers as fast as these cores and the reviews'
    sizes spread as here (k 5-50).
    """
    times, manifests = run
    timings = manifests[-1]["timings"]
    compile_each = timings["compile"] / max(timings["compilations"], 1)
    structures = max(1.0, timings["compilations"] / 2)  # 2 workers compiled each structure
    per_review = (timings["chunk_seconds"] - timings["compile"]) / timings["mcmc_fits"]
    overhead = max(0.0, statistics.median(times) - timings["chunk_seconds"] / 2)
    estimates = []
    for workers in PROJECTED_WORKERS:
        seconds = PROJECTED_REVIEWS * per_review / workers + structures * compile_each + overhead
        estimates.append(f"{workers} workers ≈ {seconds / 3600:.1f} h")
    rows.append(
        {
            "name": f"projection: {PROJECTED_REVIEWS:,}-review MCMC re-analysis (robust model)",
            "median": "—",
            "spread": "—",
            "target": "—",
            "met": "—",
            "note": (
                f"from {n_reviews} reviews on 2 workers: {per_review:.2f} s per review, "
                f"{compile_each:.1f} s per compilation x {structures:.0f} structures per worker; "
                + "; ".join(estimates)
            ),
        }
    )


R_SCRIPTS = {
    # The same bcg models as the metak rows, priors as in exact_bayes.csv (tau ~ half-normal(1),
    # coefficients ~ normal(0, 10)); brms with metak's default 2 chains x (1000 warm-up + 1000).
    "metafor": """
suppressMessages(library(metafor))
d <- read.csv(commandArgs(TRUE)[1])
fit <- if (commandArgs(TRUE)[2] == "mr") {
  rma(yi, vi, mods = ~ ablat, data = d, method = "REML")
} else {
  rma(yi, vi, data = d, method = "REML")
}
cat(coef(fit), "\\n")
""",
    "brms": """
suppressMessages(library(brms))
d <- read.csv(commandArgs(TRUE)[1]); d$sei <- sqrt(d$vi)
mr <- commandArgs(TRUE)[2] == "mr"
f <- if (mr) bf(yi | se(sei) ~ 1 + ablat + (1 | study)) else bf(yi | se(sei) ~ 1 + (1 | study))
p <- c(prior(normal(0, 10), class = Intercept), prior(normal(0, 1), class = sd))
if (mr) p <- c(p, prior(normal(0, 10), class = b))
fit <- brm(f, data = d, prior = p, chains = 2, cores = 2, iter = 2000, warmup = 1000,
           seed = 1, refresh = 0, silent = 2)
cat(fixef(fit)[, 1], "\\n")
""",
}


def _r_skipped(rows: list, why: str) -> None:
    rows.append(
        {
            "name": "R metafor / brms (same bcg models)",
            "median": "—",
            "spread": "—",
            "target": "ratio",
            "met": "skipped",
            "note": why,
        }
    )


def r_rows(rows: list, work: Path, repeats: int, metak_medians: dict, use_r: bool = True):
    """The same bcg models in R (metafor REML, brms NUTS) as whole Rscript processes."""
    if not use_r:
        _r_skipped(rows, "not run (--no-r)")
        return
    rscript = shutil.which("Rscript")
    if rscript is None:
        why = "R not installed on this machine (apt-get install r-cran-metafor r-cran-brms)"
        _r_skipped(rows, why)
        return
    data = REFERENCE / "bcg_logRR.csv"
    for package, script in R_SCRIPTS.items():
        check = subprocess.run(
            [rscript, "-e", f"library({package})"], capture_output=True, text=True
        )
        if check.returncode != 0:
            rows.append(
                {
                    "name": f"R {package} (bcg)",
                    "median": "—",
                    "spread": "—",
                    "target": "ratio",
                    "met": "skipped",
                    "note": f"R package {package} not installed",
                }
            )
            continue
        path = work / f"bench_{package}.R"
        path.write_text(script, encoding="utf-8")
        for model in ("re", "mr"):
            times = []
            for _ in range(repeats):
                info = _process([rscript, path, data, model])
                if info["rc"] != 0:
                    break
                times.append(info["seconds"])
            if not times:
                # An R failure must not lose the metak rows measured before it.
                reason = (
                    info["stderr"].strip().splitlines()[-1][:120]
                    if info["stderr"].strip()
                    else "no message"
                )
                rows.append(
                    {
                        "name": f"R {package} bcg {model.upper()}",
                        "median": "—",
                        "spread": "—",
                        "target": "ratio",
                        "met": "failed",
                        "note": f"Rscript exited {info['rc']}: {reason}",
                    }
                )
                continue
            compare = "exact" if package == "metafor" else "mcmc"
            ours = metak_medians.get((model, compare))
            note = ""
            if ours:
                note = f"R / metak {compare} = {statistics.median(times) / ours:.1f}×"
            rows.append(
                _row(f"R {package} bcg {model.upper()} (Rscript process)", times, ("—", None), note)
            )


def _row(name, times, target, note=""):
    stats = _stats(times)
    label, limit = target
    met = "—" if limit is None else ("yes" if stats["median"] <= limit else "no")
    return {
        "name": name,
        "median": _fmt_seconds(stats["median"]),
        "spread": f"{_fmt_seconds(stats['min'])}–{_fmt_seconds(stats['max'])} (n = {stats['n']})",
        "target": label,
        "met": met,
        "note": note,
    }


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def _machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for name in (
        "metak",
        "pymc",
        "nutpie",
        "pytensor",
        "arviz-base",
        "arviz-stats",
        "numpy",
        "scipy",
    ):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; " + ", ".join(versions)
    )


def write_markdown(rows, path: Path, mode: str, seconds: float):
    lines = [
        "# metak benchmarks",
        "",
        f"Produced by `python benchmarks/run.py{' --quick' if mode == 'quick' else ''}` on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in {seconds:.0f} s.",
        "",
        f"Machine: {_machine()}.",
        "",
        "Median and spread (min–max) over n repeats. "
        "Whole-process times include Python start-up and imports.",
        "",
        "| benchmark | median | spread | target | met | note |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = ("name", "median", "spread", "target", "met", "note")
        lines.append("| " + " | ".join(str(row[cell]) for cell in cells) + " |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke run)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="repeats per benchmark (default 5; quick: 1)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    parser.add_argument(
        "--no-r", action="store_true", help="skip the R rows even where R is installed"
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    started = time.perf_counter()
    rows: list = []
    with tempfile.TemporaryDirectory(prefix="metak-bench-") as tmp:
        work = Path(tmp)
        if args.quick:
            exact_alone([10, 100], repeats, rows)
            exact_analysis(repeats, rows, work)
            robustness_checks([13], repeats, rows, work)
            mcmc_regression([20], repeats, 200, rows, work)
            inputs_processes([1_000], repeats, rows, work)
            # The smallest run of each benchmark that still exercises it (the test suite runs
            # this): one exact bcg process, the bundled fit of one exact analysis, two MCMC
            # reviews (MCMC processes are exercised by the batch and regression rows).
            medians = bcg_processes(work, repeats, rows, analyses=("bcg_re",), methods=("exact",))
            bundled_fit(repeats, rows, work, extra_args=("--analysis", "dpucmgp"))
            bundled_report(repeats, rows, work)
            batch_exact(20, repeats, rows, work, checks=True)
            batch_exact(20, repeats, rows, work, checks=False)
            batch_mcmc(2, repeats, 200, rows, work)
        else:
            medians = bcg_processes(work, repeats, rows)
            exact_alone([10, 100, 1_000, 10_000], max(repeats, 20), rows)
            exact_analysis(max(repeats, 20), rows, work)
            robustness_checks([13], max(repeats, 20), rows, work)
            robustness_checks([1_000], repeats, rows, work)
            mcmc_regression([100, 10_000], min(repeats, 3), 1000, rows, work)
            inputs_processes([10_000, 100_000], min(repeats, 3), rows, work)
            bundled_fit(min(repeats, 3), rows, work)
            bundled_report(min(repeats, 3), rows, work)
            batch_exact(1_000, 1, rows, work, checks=True)  # ~0.2 s per review: projected
            batch_exact(10_000, min(repeats, 3), rows, work, checks=False)
            batch_mcmc(200, 1, 1000, rows, work)
        r_rows(rows, work, 1 if args.quick else min(repeats, 3), medians, use_r=not args.no_r)
    write_markdown(rows, args.out, "quick" if args.quick else "full", time.perf_counter() - started)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
