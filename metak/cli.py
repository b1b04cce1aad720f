"""The command line: parse arguments, call the library, print one-line errors.

No statistics here. Heavy modules (pandas, PyMC) are imported inside the command functions so
``python -m metak --help`` and ``validate`` stay fast.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from metak.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_OTHER, MetakError

__all__ = ["main"]

_PROVENANCE_HELP = (
    "provenance check: 'auto' (default) checks files that have source/quote columns, "
    "'strict' requires them everywhere, 'off' skips the check; the bundled studies/ are always strict"
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
    parser = argparse.ArgumentParser(
        prog="python -m metak",
        description="Bayesian meta-analysis of continuous outcomes (vitamin K evidence bundled).",
        epilog="Exit codes: 0 ok, 1 other error, 2 bad input, 3 fit failed its diagnostics.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser("validate", help="check study records; report every problem")
    _add_studies_args(validate)

    effects = commands.add_parser("effects", help="compute effect sizes from the study records")
    _add_studies_args(effects)
    effects.add_argument(
        "--measure",
        choices=("MD", "SMD", "ROM"),
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
    fit.add_argument("--seed", type=int, default=20261122, help="random seed (default 20261122)")
    fit.add_argument(
        "--analysis",
        action="extend",
        nargs="+",
        default=None,
        metavar="NAME",
        help="run only these analyses (one or more names; repeatable)",
    )
    fit.add_argument("--draws", type=int, default=None, help="posterior draws per chain")
    fit.add_argument("--tune", type=int, default=None, help="tuning steps per chain (MCMC)")
    fit.add_argument("--chains", type=int, default=None, help="chains (MCMC)")
    fit.add_argument(
        "--method",
        choices=("auto", "exact", "mcmc"),
        default=None,
        help="force the exact path or MCMC for every analysis (default: per analysis, auto)",
    )
    fit.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="MCMC analyses fitted at once in worker processes (default: one per core; "
        "1 = one after the other); results are the same either way",
    )
    fit.add_argument("--quiet", action="store_true", help="no progress output")

    report = commands.add_parser("report", help="rebuild report.html from saved results")
    report.add_argument(
        "--out", type=Path, default=Path("results"), metavar="DIR", help="results directory"
    )
    return parser


def _provenance_mode(args) -> str:
    from metak.records import bundled_studies_dir

    directory = args.studies if args.studies is not None else bundled_studies_dir()
    if directory.resolve() == bundled_studies_dir().resolve():
        return "strict"
    return args.provenance


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
    from metak.derive import compute_effects
    from metak.records import load_records

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
        from metak.output.files import write_csv_atomic

        write_csv_atomic(result.effects, args.out)
        print(f"wrote {len(result.effects)} effect sizes to {args.out}", file=sys.stderr)
    return EXIT_OK


def _cmd_fit(args) -> int:
    from metak.run import run_fit_command

    return run_fit_command(
        studies_dir=_studies_dir(args),
        provenance=_provenance_mode(args),
        config_path=args.config,
        out_dir=args.out,
        seed=args.seed,
        only=args.analysis,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        jobs=args.jobs,
        method=args.method,
        quiet=args.quiet,
        argv=sys.argv,
    )


def _cmd_report(args) -> int:
    from metak.report import build_report

    path = build_report(args.out)
    print(f"wrote {path}")
    return EXIT_OK


_COMMANDS = {
    "validate": _cmd_validate,
    "effects": _cmd_effects,
    "fit": _cmd_fit,
    "report": _cmd_report,
}


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C so a killed run cleans up its staging directory."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _build_parser().parse_args(argv)
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
