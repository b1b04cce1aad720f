"""MCMC models (PyMC 6 + nutpie) against independent truth.

- The same normal-normal models as the exact reference (exact_bayes.csv: quadrature, no Monte
  Carlo error) agree within 4 Monte Carlo standard errors plus 1e-3 (issue 4's tolerance).
- Planted parameters are recovered by the robust model, the deficiency meta-regression with
  missing baselines imputed in the model, and the joint model with the biomarker link.
- The diagnostics gate fails a starved fit, retries it, flags it and exits with code 3.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import metak
from metak.fitting.deficiency import moderator_counts
from metak.fitting.parameters import summary_parameters
from metak.priors import parse_prior
from metak.spec import AnalysisSpec, DeficiencySpec
from tests.bcg_records import write_contrast_records
from tests.conftest import run_metak
from tests.synthetic import deficiency_records, joint_records, outlier_records

pytestmark = pytest.mark.slow

N_MCSE = 4.0
ABS_SLACK = 1e-3


def _mcse(draws: np.ndarray, kind: str, prob: float | None = None) -> float:
    from arviz_stats import mcse

    array = xr.DataArray(draws, dims=("chain", "draw"))
    if kind == "quantile":
        return float(mcse(array, method="quantile", prob=prob))
    return float(mcse(array, method=kind))


def _spec(name, outcome, model, moderators=(), tau="halfnormal(1.0)"):
    priors = {"tau": parse_prior(tau)}
    if model == "meta_regression":
        priors |= {"intercept": parse_prior("normal(0, 10)"), "slope": parse_prior("normal(0, 10)")}
    else:
        priors |= {"mu": parse_prior("normal(0, 10)")}
    return AnalysisSpec(
        name=name,
        outcome=outcome,
        model=model,
        moderators=tuple(moderators),
        priors=priors,
        method="mcmc",
    )


CASES = [
    ("bcg_logRR", "logRR", "ablat", "halfnormal(1.0)"),
    ("bcg_logRR", "logRR", "ablat", "halfcauchy(0.5)"),
    ("raudenbush1985_SMD", "SMD", "weeks", "halfnormal(0.5)"),
]


@pytest.mark.parametrize(("dataset", "outcome", "moderator", "tau_prior"), CASES)
def test_mcmc_matches_exact_reference_within_monte_carlo_error(
    tmp_path, reference_dir, dataset, outcome, moderator, tau_prior
):
    records = write_contrast_records(
        reference_dir, dataset, tmp_path / "r", outcome, outcome, moderator
    )
    specs = [
        _spec("re", outcome, "random_effects", tau=tau_prior),
        _spec("mr", outcome, "meta_regression", [moderator], tau=tau_prior),
    ]
    result = metak.fit(records, config=specs, seed=2024)
    reference = pd.read_csv(reference_dir / "exact_bayes.csv")
    reference = reference[(reference["dataset"] == dataset) & (reference["prior_tau"] == tau_prior)]
    checked, expected = 0, 0
    for _, ref in reference.iterrows():
        has_moderator = isinstance(ref["moderator"], str) and bool(ref["moderator"])
        if has_moderator and not bool(ref["moderator_centered"]):
            continue
        expected += 1
        analysis = result.analyses["mr" if has_moderator else "re"]
        assert analysis.method == "mcmc" and analysis.converged, analysis.messages
        params = summary_parameters(analysis.datatree["posterior"].to_dataset(), analysis.data)
        draws = np.asarray(params[ref["term"]])
        flat = draws.reshape(-1)
        checks = [
            ("mean", flat.mean(), ref["mean"], _mcse(draws, "mean")),
            ("sd", flat.std(ddof=1), ref["sd"], _mcse(draws, "sd")),
        ]
        for column, prob in (("q025", 0.025), ("q50", 0.5), ("q975", 0.975)):
            checks.append(
                (column, np.quantile(flat, prob), ref[column], _mcse(draws, "quantile", prob))
            )
        if np.isfinite(ref["p_gt0"]):
            p = float((flat > 0).mean())
            ess = float(analysis.summary.set_index("parameter").loc[ref["term"], "ess_bulk"])
            checks.append(("p_gt0", p, ref["p_gt0"], np.sqrt(max(p * (1 - p), 1e-4) / ess)))
        for column, ours, theirs, se in checks:
            assert abs(ours - theirs) <= N_MCSE * se + ABS_SLACK, (
                dataset,
                ref["term"],
                column,
                ours,
                theirs,
                se,
            )
        checked += 1
    assert checked == expected >= 2  # every applicable reference row (mu, tau; + slope, intercept)


# The robust model's latent study precisions mix slowly in tau and nu: on this data set bulk ESS is
# about 10 % of the draws (measured: 170-250 of 2,000 for seeds 1-7), so the default 1,000 draws
# per chain always failed the gate at the first attempt and relied on the retry. Sampling it is
# cheap (~1 s for 8,000 draws), so the test asks for 4,000 per chain: over seeds 1-8 the minimum
# bulk ESS was 673-896 (1.7-2.2x the gate's 400) and R-hat at most 1.003, first attempt each time.
ROBUST_DRAWS = 4000


def test_robust_model_resists_outliers_and_recovers_planted_effect(tmp_path):
    records = outlier_records(tmp_path / "r", mu=0.3)
    specs = [
        AnalysisSpec(name="normal", outcome="y", model="random_effects", method="mcmc"),
        AnalysisSpec(name="robust", outcome="y", model="robust", method="mcmc"),
    ]
    result = metak.fit(records, config=specs, seed=7, draws=ROBUST_DRAWS, tune=1000)
    normal = result.analyses["normal"].summary.set_index("parameter")
    robust = result.analyses["robust"].summary.set_index("parameter")
    assert result.analyses["robust"].converged
    assert result.analyses["robust"].mcmc.attempts == 1, result.analyses["robust"].messages
    # Two studies at +3 drag the normal model's pooled effect; the t model discounts them.
    assert robust.loc["mu", "q2.5"] < 0.3 < robust.loc["mu", "q97.5"]
    assert abs(robust.loc["mu", "mean"] - 0.3) < 0.5 * abs(normal.loc["mu", "mean"] - 0.3)
    assert robust.loc["nu", "q50"] < 10  # heavy tails were learnt from the data
    assert robust.loc["tau", "mean"] < normal.loc["tau", "mean"]


def test_deficiency_regression_imputes_missing_baselines_and_recovers_slope(tmp_path):
    records, truth = deficiency_records(tmp_path / "r")
    spec = AnalysisSpec(
        name="def", outcome="cac", model="meta_regression", deficiency=DeficiencySpec()
    )
    result = metak.fit(records, config=[spec], seed=11)
    main = result.analyses["def"]
    assert main.method == "mcmc" and main.converged, main.messages
    counts = moderator_counts(main.data)
    assert counts["measured"]["log_baseline_dpucmgp"] == 20
    assert counts["imputed"]["log_baseline_dpucmgp"] == 10
    twin = result.analyses["def_complete_case"]
    assert twin.data.k == 20
    s = main.summary.set_index("parameter")
    slope = s.loc["log_baseline_dpucmgp"]
    assert slope["q2.5"] < truth["slope"] < slope["q97.5"]
    assert slope["q97.5"] < 0
    assert s.loc["p_more_deficient_more_benefit", "mean"] > 0.99
    # Imputed baselines land near the planted ones (class spread 0.25 on the log scale).
    imputed = main.datatree["posterior"]["log_baseline_imputed"].mean(("chain", "draw"))
    errors = [
        float(imputed.sel(imputed_study=sid)) - truth["log_baseline"][sid]
        for sid in imputed["imputed_study"].values
    ]
    assert len(errors) == 10
    assert np.sqrt(np.mean(np.square(errors))) < 0.45
    # Imputation propagates uncertainty. Independent check: the exact meta-regression with the
    # missing baselines plugged in at their posterior means (single imputation, which treats them
    # as known) gives a narrower slope. Measured for seeds 11 and 12: imputed-model SD
    # 0.045-0.046 against plug-in 0.025 (ratio 1.8); a model that did not carry the imputed
    # values' uncertainty would give a ratio near 1. The slope SD's Monte Carlo error is ~2 %
    # (bulk ESS > 1,000), so PROPAGATION_RATIO leaves a wide margin on both sides.
    assert slope["sd"] > PROPAGATION_RATIO * _plug_in_slope_sd(main)
    # ...and the 10 extra studies are not worth less than none: no wider than complete cases
    # by more than half (measured: equal to within 3 %).
    twin_slope = twin.summary.set_index("parameter").loc["log_baseline_dpucmgp"]
    assert slope["sd"] < 1.5 * twin_slope["sd"]


PROPAGATION_RATIO = 1.3


def _plug_in_slope_sd(analysis) -> float:
    """Posterior SD of the deficiency slope from the exact path, with every imputed baseline
    fixed at its posterior mean."""
    from metak.exact import fit_exact
    from metak.fitting.deficiency import imputed_moderator_means
    from metak.fitting.design import coefficient_names, within_variance
    from metak.fitting.prior_choice import priors_in_force

    data = analysis.data
    posterior = analysis.datatree["posterior"].to_dataset()
    positions = {sid: i for i, sid in enumerate(posterior["imputed_study"].values)}
    filled = np.where(np.isnan(data.X), imputed_moderator_means(data, posterior, positions), data.X)
    priors, _ = priors_in_force(analysis.spec, data)
    names = coefficient_names(data)
    plug_in = fit_exact(
        data.y,
        within_variance(data),
        np.column_stack([np.ones(data.k), filled]),
        coef_names=names,
        coef_priors=[priors[name] for name in names],
        tau_prior=priors["tau"],
    )
    return plug_in.summary("log_baseline_dpucmgp").sd


def test_joint_model_recovers_correlation_and_biomarker_link(tmp_path):
    records, truth = joint_records(tmp_path / "r")
    spec = AnalysisSpec(name="joint", model="joint", outcomes=("bio", "clin"), link_biomarker="bio")
    result = metak.fit(records, config=[spec], seed=5)
    joint = result.analyses["joint"]
    assert joint.converged, joint.messages
    s = joint.summary.set_index("parameter")
    corr = s.loc["corr[bio,clin]"]
    assert corr["q2.5"] < truth["corr"] < corr["q97.5"]
    assert corr["q2.5"] > 0.3
    link = s.loc["gamma_link[clin]"]
    assert link["q2.5"] < truth["gamma"] < link["q97.5"]
    for j, outcome in enumerate(("bio", "clin")):
        mu = s.loc[f"mu[{outcome}]"]
        assert mu["q2.5"] < truth["mu"][j] < mu["q97.5"]


def test_uncertain_prepost_correlation_is_a_parameter(tmp_path):
    """Change scores derived with an assumed r enter with r as a parameter (beta(6, 4) prior)."""
    directory = tmp_path / "r"
    directory.mkdir()
    (directory / "studies.csv").write_text(
        "study_id\n" + "\n".join(f"a{i}" for i in range(4)) + "\n"
    )
    lines = ["study_id,outcome,arm,timepoint,n,mean,sd,unit"]
    rng = np.random.default_rng(1)
    for i in range(4):
        for arm, shift in (("treatment", -0.5), ("control", 0.0)):
            base = 10 + rng.normal()
            lines.append(f"a{i},pwv,{arm},baseline,40,{base:.3f},1.5,m/s")
            lines.append(
                f"a{i},pwv,{arm},followup,40,{base + shift + 0.1 * rng.normal():.3f},1.6,m/s"
            )
    (directory / "arms.csv").write_text("\n".join(lines) + "\n")
    # r = 0.6 is the correlation the change scores are derived with (the Beta(6, 4) prior's mean).
    (directory / "outcomes.csv").write_text(
        "outcome,direction,prepost_r\npwv,lower_is_better,0.6\n"
    )
    spec = AnalysisSpec(name="pwv", outcome="pwv", model="random_effects", method="mcmc")
    fixed = AnalysisSpec(
        name="pwv_fixed", outcome="pwv", model="random_effects", prepost_r_uncertain=False
    )
    auto = AnalysisSpec(name="pwv_exact", outcome="pwv", model="random_effects")
    result = metak.fit(directory, config=[spec, fixed, auto], seed=3)
    uncertain = result.analyses["pwv"]
    assert uncertain.method == "mcmc" and "r_prepost" in uncertain.datatree["posterior"]
    assert result.analyses["pwv_fixed"].method == "exact"
    summary = uncertain.summary.set_index("parameter")
    reference = _posterior_over_r_by_quadrature(directory, spec)
    # The default (auto) fits it on the exact path, r integrated by 12-node quadrature with
    # r's posterior from the polynomial through the nodes: it must equal the 200-node
    # reference (and a 2,000-point grid for r's quantiles) up to quadrature error.
    exact = result.analyses["pwv_exact"]
    assert exact.method == "exact" and exact.mcmc is None
    rows = exact.summary.set_index("parameter")
    assert rows.loc["r_prepost", "mean"] == pytest.approx(reference["r_mean"], abs=1e-5)
    assert rows.loc["r_prepost", "sd"] == pytest.approx(reference["r_sd"], abs=1e-5)
    for column in ("q2.5", "q50", "q97.5"):
        assert rows.loc["r_prepost", column] == pytest.approx(reference[f"r_{column}"], abs=1e-3)
    for column, key in (("mean", "mean"), ("sd", "mu_sd"), ("q2.5", "q2.5"), ("q97.5", "q97.5")):
        assert rows.loc["mu", column] == pytest.approx(
            reference[key], abs=1e-4 * reference["mu_sd"]
        )
    # Independent truth: the exact posterior at each r on a Gauss-Legendre grid, weighted by
    # prior(r) p(y | r). The data do move r (a better fit with smaller variances), so the
    # interval may be narrower than at r fixed at the prior mean; it must match the quadrature.
    assert abs(summary.loc["r_prepost", "mean"] - reference["r_mean"]) < 0.02
    assert abs(summary.loc["r_prepost", "sd"] - reference["r_sd"]) < 0.02
    # Four Monte Carlo standard errors: sd / sqrt(ESS) for the mean; for a 2.5% quantile
    # sqrt(p (1 - p) / ESS) / density there (normal approximation: density = phi(1.96) / sd).
    mu = summary.loc["mu"]
    mu_sd = reference["mu_sd"]
    assert abs(mu["mean"] - reference["mean"]) < 4 * mu_sd / np.sqrt(mu["ess_bulk"])
    quantile_se = np.sqrt(0.025 * 0.975 / mu["ess_tail"]) / (
        np.exp(-0.5 * 1.96**2) / np.sqrt(2 * np.pi)
    )
    for column in ("q2.5", "q97.5"):
        assert abs(mu[column] - reference[column]) < 4 * quantile_se * mu_sd, column


def _posterior_over_r_by_quadrature(directory, spec) -> dict:
    """Posterior of r and mu when r is a parameter, by integrating the exact path over r."""
    from metak.exact import NormalMixture, fit_exact
    from metak.fitting.data import build_analysis_data
    from metak.fitting.design import prepost_r_terms, within_variance
    from metak.fitting.prior_choice import priors_in_force

    records = metak.load_studies(directory)
    data = build_analysis_data(metak.compute_effects(records).effects, records, spec)
    priors, _ = priors_in_force(spec, data)
    base = within_variance(data)
    slope, r0 = prepost_r_terms(data)
    assert np.all(slope < 0)  # the test needs change scores whose variance depends on r
    nodes, node_weights = np.polynomial.legendre.leggauss(200)
    r_grid, node_weights = 0.5 * (nodes + 1.0), 0.5 * node_weights
    log_weights, mixtures = [], []
    for r in r_grid:
        post = fit_exact(
            data.y, base + (r - r0) * slope, coef_priors=[priors["mu"]], tau_prior=priors["tau"]
        )
        mixtures.append(post.coef_mixture("mu"))
        log_weights.append(float(priors["r"].logpdf(r)) + post.log_marginal_likelihood)
    weights = node_weights * np.exp(np.array(log_weights) - max(log_weights))
    weights /= weights.sum()
    mu = NormalMixture(
        np.concatenate([w * m.weights for w, m in zip(weights, mixtures, strict=True)]),
        np.concatenate([m.means for m in mixtures]),
        np.concatenate([m.sds for m in mixtures]),
    )
    q025, q975 = mu.quantile(np.array([0.025, 0.975]))
    r_mean = float(weights @ r_grid)
    # r's quantiles: its posterior density on a uniform grid (trapezoid CDF).
    fine = np.linspace(0.0, 1.0, 2001)[1:-1]
    log_density = np.array(
        [
            float(priors["r"].logpdf(r))
            + fit_exact(
                data.y, base + (r - r0) * slope, coef_priors=[priors["mu"]], tau_prior=priors["tau"]
            ).log_marginal_likelihood
            for r in fine
        ]
    )
    density = np.exp(log_density - log_density.max())
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(fine))])
    r_q = np.interp([0.025, 0.5, 0.975], cdf / cdf[-1], fine)
    return {
        "r_q2.5": r_q[0],
        "r_q50": r_q[1],
        "r_q97.5": r_q[2],
        "r_mean": r_mean,
        "r_sd": float(np.sqrt(weights @ r_grid**2 - r_mean**2)),
        "mean": mu.mean,
        "mu_sd": mu.sd,
        "q2.5": q025,
        "q97.5": q975,
    }


def test_gate_flags_starved_fit_and_exit_code_3(tmp_path, reference_dir):
    records = write_contrast_records(
        reference_dir, "bcg_logRR", tmp_path / "r", "logRR", "logRR", "ablat"
    )
    out = tmp_path / "out"
    done = run_metak(
        "fit",
        "--studies",
        records,
        "--out",
        out,
        "--method",
        "mcmc",
        "--draws",
        "20",
        "--tune",
        "15",
        "--quiet",
    )
    assert done.returncode == 3, done.stderr
    assert "diagnostics" in done.stderr.lower()
    summary = pd.read_csv(out / "summary.csv")
    # Every MCMC fit is flagged (the robustness checks' exact PET/PEESE analyses need no sampler).
    sampled = summary[summary["method"] == "mcmc"]
    assert len(sampled) and not sampled["converged"].any()
    analyses = json.loads((out / "analyses.json").read_text())["analyses"]
    entries = analyses.values() if isinstance(analyses, dict) else analyses
    messages = " ".join(" ".join(entry["diagnostics"]) for entry in entries)
    assert "retrying with target_accept" in messages and "diagnostics gate failed" in messages
