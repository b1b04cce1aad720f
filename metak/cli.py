"""The command line: parse arguments, call the library, print one-line errors.

No statistics here. Heavy modules (pandas, PyMC) are imported inside the command functions so
``python -m metak --help`` and ``validate`` stay fast.
"""

from __future__ import annotations

import argparse
import gc
import re
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

from metak.errors import EXIT_BAD_INPUT, EXIT_FIT_FAILED, EXIT_OK, EXIT_OTHER, MetakError
from metak.schema import ARM_MEASURES
from metak.spec import METHODS, SETTINGS_LIMITS

__all__ = ["main", "run"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit code 2 (no usage block)."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        print(f"error: {self.prog}: {message}; fix: see `{self.prog} --help`", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _add_jobs(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The ``--jobs N`` option (range checked as the ``jobs`` setting), with its command's help."""
    parser.add_argument("--jobs", type=_setting("jobs"), default=None, metavar="N", help=help_text)


def _setting(name: str, limits: tuple[int, int] | None = None):
    """An argparse type for a whole-number setting: ASCII digits only, within its range."""
    low, high = limits or SETTINGS_LIMITS[name]

    def parse(text: str) -> int:
        # int() would accept other scripts' digits ('٥'), '1_000' and surrounding spaces.
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (digits 0-9)")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high:,}, got {value}")
        return value

    parse.__name__ = name  # argparse names the type in some messages
    return parse


# Reviews per chunk of a batch: 1 (a checkpoint per review) to 100,000.
CHUNK_SIZE_LIMITS = (1, 100_000)

_PROVENANCE_HELP = (
    "provenance check: 'auto' (default) checks files that have source/quote columns, "
    "'strict' requires them everywhere, 'off' skips the check; "
    "the bundled studies/ are always strict"
)


def _add_studies_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--studies",
        type=Path,
        default=None,
        metavar="DIR",
        help="study-records directory (default: the bundled studies/)",
    )
    parser.add_argument(
        "--provenance", choices=("auto", "strict", "off"), default="auto", help=_PROVENANCE_HELP
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m metak",
        description="Bayesian meta-analysis of continuous outcomes (vitamin K evidence bundled).",
        epilog="Exit codes: 0 ok, 1 other error, 2 bad input, 3 fit failed its diagnostics.",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    validate = commands.add_parser("validate", help="check study records; report every problem")
    _add_studies_args(validate)

    effects = commands.add_parser("effects", help="compute effect sizes from the study records")
    _add_studies_args(effects)
    effects.add_argument(
        "--measure",
        choices=ARM_MEASURES,
        default=None,
        help="override every outcome's measure",
    )
    effects.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="write CSV here (default: stdout)"
    )

    fit = commands.add_parser("fit", help="run the analyses and write results/")
    _add_studies_args(fit)
    fit.add_argument(
        "--config", type=Path, default=None, metavar="FILE", help="analysis file (TOML)"
    )
    fit.add_argument(
        "--out", type=Path, default=Path("results"), metavar="DIR", help="output directory"
    )
    fit.add_argument(
        "--seed", type=_setting("seed"), default=None, help="random seed (default 20261122)"
    )
    fit.add_argument(
        "--analysis",
        action="extend",
        nargs="+",
        default=None,
        metavar="NAME",
        help="run only these analyses (one or more names; repeatable)",
    )
    fit.add_argument(
        "--draws", type=_setting("draws"), default=None, help="posterior draws per chain"
    )
    fit.add_argument(
        "--tune", type=_setting("tune"), default=None, help="tuning steps per chain (MCMC)"
    )
    fit.add_argument("--chains", type=_setting("chains"), default=None, help="chains (MCMC)")
    fit.add_argument(
        "--method",
        choices=METHODS,
        default=None,
        help="force the exact path or MCMC for every analysis (default: per analysis, auto)",
    )
    _add_jobs(
        fit,
        "MCMC analyses fitted at once in worker processes (default: one per core; "
        "1 = one after the other); results are the same either way",
    )
    fit.add_argument("--quiet", action="store_true", help="no progress output")

    batch = commands.add_parser(
        "batch", help="many meta-analyses: every analysis on every review of a long table"
    )
    batch.add_argument(
        "table",
        type=Path,
        metavar="TABLE",
        help="long table (.csv or .parquet): review_id plus yi and vi/se, or study-record columns",
    )
    batch.add_argument(
        "--out", type=Path, default=Path("batch_results"), metavar="DIR", help="output directory"
    )
    batch.add_argument(
        "--config", type=Path, default=None, metavar="FILE", help="analysis file (TOML)"
    )
    batch.add_argument("--seed", type=_setting("seed"), default=None, help="batch seed")
    batch.add_argument("--draws", type=_setting("draws"), default=None, help="draws per chain")
    batch.add_argument("--tune", type=_setting("tune"), default=None, help="tuning steps (MCMC)")
    batch.add_argument("--chains", type=_setting("chains"), default=None, help="chains (MCMC)")
    batch.add_argument("--method", choices=METHODS, default=None, help="force exact or MCMC")
    _add_jobs(batch, "worker processes of the embedded cluster (default: one per core)")
    batch.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (default: embedded)",
    )
    batch.add_argument(
        "--chunk-size",
        type=_setting("chunk_size", CHUNK_SIZE_LIMITS),
        default=None,
        metavar="N",
        help="reviews per checkpointed chunk (default 200; 20 with robustness checks; 4 with MCMC)",
    )
    batch.add_argument(
        "--posterior",
        action="store_true",
        help="also write posterior/<review>/<analysis>.nc (large: one file per fit)",
    )
    batch.add_argument("--quiet", action="store_true", help="no progress output")

    report = commands.add_parser("report", help="rebuild report.html from saved results")
    report.add_argument(
        "--out", type=Path, default=Path("results"), metavar="DIR", help="results directory"
    )
    report.add_argument(
        "--allow-modified",
        action="store_true",
        help="build the report even from files changed since `fit` wrote them (it says which)",
    )
    _add_jobs(
        report,
        "processes to draw with (default: 2 on a machine with 2 or more cores; 1 = one); "
        "the report is the same either way",
    )
    return parser


def _provenance_mode(args) -> str:
    from metak.records import is_bundled

    return "strict" if args.studies is None or is_bundled(args.studies) else args.provenance


def _studies_dir(args) -> Path:
    from metak.records import bundled_studies_dir

    return args.studies if args.studies is not None else bundled_studies_dir()


def _cmd_validate(args) -> int:
    from metak.derive import compute_effects
    from metak.records import load_records

    records = load_records(_studies_dir(args), provenance=_provenance_mode(args))
    # Numbers that pass every cell check can still break the effect-size arithmetic (SDs of
    # 1e-200 in both arms): validate computes the effects `fit` would, so it catches those too.
    compute_effects(records)
    for warning in records.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"ok: {records.directory}: {len(records.studies)} studies, {len(records.arms)} arms rows, "
        f"{len(records.contrasts)} contrasts rows, {len(records.outcomes)} outcomes"
    )
    return EXIT_OK


def _cmd_effects(args) -> int:
    from metak.derive import EFFECT_COLUMNS, compute_effects
    from metak.output.guard import check_effects_out
    from metak.records import load_records

    if args.out is not None:  # before any work: never overwrite an input or a user's file
        header = ",".join(EFFECT_COLUMNS)
        check_effects_out(args.out, inputs=[_studies_dir(args)], header=header)
    records = load_records(_studies_dir(args), provenance=_provenance_mode(args))
    for warning in records.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    result = compute_effects(records, measure_override=args.measure)
    for row in result.unusable.itertuples(index=False):
        print(
            f"note: {row.study_id} / {row.outcome}: no effect size: {row.reason}", file=sys.stderr
        )
    if args.out is None:
        result.effects.to_csv(sys.stdout, index=False)
    else:
        from metak.output.faults import output_errors
        from metak.output.files import write_csv_atomic

        kept = f"{args.out} untouched" if args.out.exists() else "nothing written"
        with output_errors(kept):
            write_csv_atomic(result.effects, args.out)
        print(f"wrote {len(result.effects)} effect sizes to {args.out}", file=sys.stderr)
    return EXIT_OK


def _cmd_fit(args) -> int:
    from dataclasses import replace

    from metak.output.guard import check_out_dir

    started = time.perf_counter()
    studies_dir, provenance = _studies_dir(args), _provenance_mode(args)
    inputs = (studies_dir, args.config)
    # Refuse a wrong --out first: before minutes of fitting, and before importing the report's
    # matplotlib, which creates its cache folders in the user's home.
    check_out_dir(args.out, inputs=inputs)

    from metak.config import resolve_analyses
    from metak.fitting.orchestrator import run_analyses
    from metak.output.manifest import build_manifest
    from metak.output.results_dir import write_results_directory
    from metak.records import load_records

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    records = load_records(studies_dir, provenance=provenance)
    for warning in records.warnings:
        say(f"warning: {warning}")
    outcomes = list(records.outcomes["outcome"])
    analysis_file = resolve_analyses(studies_dir, args.config, outcomes)
    specs, settings = analysis_file.analyses, analysis_file.settings
    config_path = analysis_file.path
    options = {"seed": args.seed, "draws": args.draws, "tune": args.tune}
    options |= {"chains": args.chains, "jobs": args.jobs}
    settings = replace(
        settings, **{key: value for key, value in options.items() if value is not None}
    )
    say(f"metak fit: {len(specs)} analyses on {records.directory}")
    loaded = time.perf_counter()
    result = run_analyses(
        records,
        specs,
        settings,
        only=args.analysis,
        method=args.method,
        progress=None if args.quiet else say,
        questions=analysis_file.questions,
    )
    fitted = time.perf_counter()
    manifest = build_manifest(
        result,
        argv=sys.argv,
        studies_dir=studies_dir,
        provenance=provenance,
        config_path=config_path,
        settings=settings,
        method=args.method,
        timings={"load_and_effects": loaded - started, "fit": fitted - loaded},
    )
    write_results_directory(result, args.out, manifest, inputs=inputs, jobs=settings.jobs)
    seconds = time.perf_counter() - started
    say(f"wrote {args.out} in {seconds:.1f} s; the report is {Path(args.out) / 'report.html'}")
    failed = [name for name, analysis in result.analyses.items() if not analysis.converged]
    if failed:
        print(
            f"error: {len(failed)} analysis(es) failed the MCMC diagnostics gate after a retry: "
            f"{', '.join(failed)}; they are flagged converged=False in summary.csv. "
            "Fix: rerun with more --draws/--tune, or simplify the model",
            file=sys.stderr,
        )
        return EXIT_FIT_FAILED
    return EXIT_OK


def _cmd_batch(args) -> int:
    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        outcome = _run_batch(args, say)
    except KeyboardInterrupt:
        print(
            f"error: interrupted; the finished chunks are kept in {args.out}: run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return EXIT_OTHER
    return _batch_exit(args, outcome, say)


def _run_batch(args, say):
    from metak.batch.run import run_batch
    from metak.fitting.cluster import scheduler_address

    return run_batch(
        args.table,
        args.out,
        config=args.config,
        overrides={
            "seed": args.seed,
            "draws": args.draws,
            "tune": args.tune,
            "chains": args.chains,
        },
        method=args.method,
        scheduler=None if args.scheduler is None else scheduler_address(args.scheduler),
        workers=args.jobs,
        chunk_size=args.chunk_size,
        posterior=args.posterior,
        say=say,
        progress=not args.quiet,
        argv=sys.argv,
    )


def _batch_exit(args, outcome, say) -> int:
    counts = outcome.reviews
    say(
        f"wrote {args.out} in {outcome.seconds:.1f} s: {counts['ok']:,} reviews ok, "
        f"{counts['bad_input']:,} bad input, {counts['diagnostics_failed']:,} failed the MCMC "
        f"diagnostics, {counts['error']:,} errors (status.csv); {outcome.rows:,} summary rows"
    )
    if counts["error"]:
        print(
            f"error: {counts['error']} review(s) could not be fitted; see status.csv for why",
            file=sys.stderr,
        )
        return EXIT_OTHER
    if counts["diagnostics_failed"]:
        print(
            f"error: {counts['diagnostics_failed']} review(s) failed the MCMC diagnostics gate "
            "after a retry (converged = False in summary.parquet); fix: rerun with more "
            "--draws/--tune in a new --out",
            file=sys.stderr,
        )
        return EXIT_FIT_FAILED
    return EXIT_OK


def _cmd_report(args) -> int:
    from metak.output.faults import output_errors
    from metak.report import build_report

    with output_errors("previous report.html untouched"):
        path = build_report(args.out, allow_modified=args.allow_modified, jobs=args.jobs)
    print(f"wrote {path}")
    return EXIT_OK


_COMMANDS = {
    "validate": _cmd_validate,
    "effects": _cmd_effects,
    "fit": _cmd_fit,
    "batch": _cmd_batch,
    "report": _cmd_report,
}


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C so a killed run cleans up its staging directory."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a usage mistake (already printed, one line)
        return done.code if isinstance(done.code, int) else EXIT_BAD_INPUT
    _interrupt_on_sigterm()
    try:
        return _COMMANDS[args.command](args)
    except MetakError as err:
        # InputError holds one line per problem; every other MetakError is a single line.
        print(str(err), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; previous results left untouched", file=sys.stderr)
        return EXIT_OTHER
    except BrokenPipeError:
        return EXIT_OK
    except OSError as err:
        print(f"error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(err, FileNotFoundError) else EXIT_OTHER


def run() -> NoReturn:
    """Run the command line as a whole process: ``python -m metak`` and the ``metak`` script.

    Raises
    ------
    SystemExit
        Always, with the exit code of :func:`main`.
    """
    # Most of a command's heap is the modules it imports, alive until the process ends. Python's
    # default thresholds (700, 10, 10) make a small exact fit run 40 middle and 3 full collections
    # over them (0.2 s) that find next to nothing; young garbage is still collected, every 50,000
    # allocations instead of every 700 (0.08 s in all).
    gc.set_threshold(50_000, 20, 10)
    code = main()
    # The process ends now. Interpreter shutdown runs full garbage collections over everything a
    # fit imported (about 2,000 modules: pandas, xarray, scipy, matplotlib), 0.5 s that frees
    # nothing the OS would not. Frozen objects are skipped by them; modules are still torn down,
    # files closed and atexit handlers run. Not in main(): a caller's process goes on.
    gc.freeze()
    raise SystemExit(code)
