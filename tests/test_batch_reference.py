"""A batch of reviews built from the reference data sets gives, for every review, exactly what
``fit`` gives on that review alone (with the review's seed): exact analyses from effect-size
tables and from study-record rows (arm-level data converted by the records layer), and MCMC
analyses, whose compiled model the batch reuses across reviews of one structure."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import metak
from metak.batch.seeds import review_seed
from metak.priors import parse_prior
from metak.spec import AnalysisSpec
from tests.batch_tables import (
    CONTRAST_SETS,
    effect_size_rows,
    record_rows,
    write_review_records,
    write_table,
)
from tests.bcg_records import write_contrast_records
from tests.conftest import run_metak

pytestmark = pytest.mark.slow

SEED = 11
PRIORS = {
    "mu": "normal(0, 10)",
    "intercept": "normal(0, 10)",
    "slope": "normal(0, 10)",
    "tau": "halfnormal(1.0)",
}
# (analysis, outcome, model, moderator) for each reference review
ANALYSES = {
    "bcg_logRR": [
        ("re_logRR", "logRR", "random_effects", None),
        ("mr_logRR", "logRR", "meta_regression", "ablat"),
    ],
    "raudenbush1985_SMD": [
        ("re_SMD", "SMD", "random_effects", None),
        ("mr_SMD", "SMD", "meta_regression", "weeks"),
    ],
    "escalc_normand1999": [("re_los", "los", "random_effects", None)],
}


def _spec(name, outcome, model, moderator, method="auto") -> AnalysisSpec:
    keys = ("intercept", "slope", "tau") if moderator else ("mu", "tau")
    return AnalysisSpec(
        name=name,
        outcome=outcome,
        model=model,
        moderators=(moderator,) if moderator else (),
        method=method,
        priors={key: parse_prior(PRIORS[key]) for key in keys},
    )


def _toml(specs) -> str:
    blocks = []
    for spec in specs:
        lines = [
            "[[analysis]]",
            f'name = "{spec.name}"',
            f'outcome = "{spec.outcome}"',
            f'model = "{spec.model}"',
            f'method = "{spec.method}"',
        ]
        if spec.moderators:
            lines.append(f"moderators = {json.dumps(list(spec.moderators))}")
        lines.append("[analysis.priors]")
        lines += [f'{key} = "{value}"' for key, value in spec.priors.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _batch(tmp_path, rows, specs, name, *extra) -> pd.DataFrame:
    table = write_table(rows, tmp_path / f"{name}.csv")
    config = tmp_path / f"{name}.toml"
    config.write_text(_toml(specs), encoding="utf-8")
    out = tmp_path / f"{name}_out"
    done = run_metak(
        "batch", table, "--config", config, "--out", out, "--seed", SEED, "--quiet", *extra
    )
    assert done.returncode in (0, 3), done.stderr
    return out


def _alone(reference_dir, tmp_path, review, specs, offset: int = 0):
    records = write_review_records(reference_dir, review, tmp_path / f"alone_{review}")
    return metak.fit(records, config=specs, seed=review_seed(SEED, review) + offset, jobs=1)


@pytest.mark.parametrize("kind", ["effect sizes", "study records"])
def test_exact_batch_equals_fit_on_each_review_alone(tmp_path, reference_dir, kind):
    rows = effect_size_rows(reference_dir) if kind == "effect sizes" else record_rows(reference_dir)
    reviews = list(dict.fromkeys(row["review_id"] for row in rows))
    specs = [_spec(*a) for review in reviews for a in ANALYSES[review]]
    out = _batch(tmp_path, rows, specs, "exact", "--jobs", "2", "--chunk-size", "1")
    summary = pd.read_parquet(out / "summary.parquet")
    status = pd.read_csv(out / "status.csv")
    assert list(status["review_id"]) == reviews
    assert set(status["status"]) == {"ok"}
    for review in reviews:
        own = [_spec(*a) for a in ANALYSES[review]]
        # The batch seeds the analysis at position i of its file seed + i (the checks' PSIS draws
        # depend on it): fit gets the seed that gives the review's analyses the same ones.
        offset = [spec.name for spec in specs].index(own[0].name)
        alone = _alone(reference_dir, tmp_path, review, own, offset)
        got = summary[summary["review_id"] == review].drop(columns="review_id")
        pd.testing.assert_frame_equal(got.reset_index(drop=True), alone.summary, check_dtype=False)
        # The robustness checks' tables too: the batch fits these analyses without drawing
        # posterior files, fit with them, and the checks (PSIS draws included) are the same.
        for name, expected in alone.robustness.files().items():
            if expected.empty:
                continue
            table = pd.read_parquet(out / name.replace(".csv", ".parquet"))
            got = table[table["review_id"] == review].drop(columns="review_id")
            pd.testing.assert_frame_equal(
                got.reset_index(drop=True), expected, check_dtype=False, obj=name
            )
        # the other reviews' analyses are noted, not errors
        others = [a[0] for r in reviews if r != review for a in ANALYSES[r]]
        message = status.set_index("review_id").loc[review, "message"]
        assert all(f"analysis '{name}' not fitted" in message for name in others)


def test_mcmc_batch_equals_fit_on_each_review_alone_and_compiles_once(tmp_path, reference_dir):
    """Robust analyses (MCMC) of two reviews in one worker: bcg and its first ten trials share a
    compiled model (both pad to 16 rows), so the worker compiles once and fits twice. Each fit
    alone compiles its own model (the cache emptied first): the reused compilation gives
    exactly what a fresh one gives."""
    from metak.fitting.mcmc.compiled import PROCESS_MODELS

    rows = [dict(row, outcome="y") for row in effect_size_rows(reference_dir)][:13]
    rows += [dict(row, review_id="bcg_first_ten") for row in rows if int(row["study_id"]) <= 10]
    spec = _spec("robust", "y", "robust", None)
    out = _batch(tmp_path, rows, [spec], "mcmc", "--jobs", "1", "--draws", "300", "--tune", "300")
    summary = pd.read_parquet(out / "summary.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["timings"]["mcmc_fits"] == 2
    assert manifest["timings"]["compilations"] == 1  # one structure, one worker
    name, _, measure, moderator = CONTRAST_SETS[0]
    for review in ("bcg_logRR", "bcg_first_ten"):
        directory = tmp_path / f"alone_{review}"
        records = write_contrast_records(reference_dir, name, directory, "y", measure, moderator)
        if review == "bcg_first_ten":
            _keep_first(records, 10)
        PROCESS_MODELS.clear()
        result = metak.fit(
            records,
            config=[spec],
            seed=review_seed(SEED, review),
            draws=300,
            tune=300,
            jobs=1,
        )
        got = summary[summary["review_id"] == review].drop(columns="review_id")
        pd.testing.assert_frame_equal(got.reset_index(drop=True), result.summary, check_dtype=False)


def _keep_first(directory, k: int) -> None:
    for name in ("studies.csv", "contrasts.csv"):
        path = directory / name
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(lines[: k + 1]) + "\n", encoding="utf-8")
