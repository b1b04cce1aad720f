"""A realistic ``results/`` directory for report tests, made without fitting any model.

Draws come from known normals, so the files have the documented shape (README.md, "What results/
holds") and plausible numbers, but nothing here is a statistical reference. Like ``fit``, the
fixture marks each posterior file with its analysis and seals the folder with a manifest holding
every file's SHA-256 (:func:`seal`), so the report's integrity check passes. Three analyses:

- ``cac_re``: random effects, exact (chain 1), lower is better, one study named
  ``<script>alert(1)</script>`` to prove the report escapes data;
- ``bmd_re``: random effects, exact, higher is better, SMD;
- ``pwv_dose``: meta-regression on ``dose_ug_day`` by MCMC (2 chains × 200 draws) with two imputed
  moderator values, divergences and a posterior predictive group; not converged unless asked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["SCRIPT_STUDY", "make_results", "seal"]

SCRIPT_STUDY = "<script>alert(1)</script>"
_Z = 1.959963984540054


def _posterior_draws(rng, chains, draws, mean, sd):
    return rng.normal(mean, sd, size=(chains, draws))


def _weights(v, tau):
    w = 1.0 / (v + tau**2)
    return 100.0 * w / w.sum()


def _analysis(
    rng,
    name,
    studies,
    yi,
    vi,
    *,
    method,
    mu,
    tau,
    beta=None,
    moderator=None,
    x=None,
    imputed=None,
    center=0.0,
    converged=True,
    n_divergent=0,
):
    """Build (summary rows, study rows, DataTree) for one analysis."""
    chains, draws = (2, 200) if method == "mcmc" else (1, 1000)
    k = len(studies)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "study": list(studies)}
    mu_d = _posterior_draws(rng, chains, draws, *mu)
    tau_d = np.abs(_posterior_draws(rng, chains, draws, *tau))
    xc = np.zeros(k) if x is None else np.asarray(x, float) - center
    post = {"mu": (("chain", "draw"), mu_d), "tau": (("chain", "draw"), tau_d)}
    mean_line = mu_d[..., None] * np.ones(k)
    if beta is not None:
        beta_d = _posterior_draws(rng, chains, draws, *beta)
        post["beta"] = (("chain", "draw", "moderator"), beta_d[..., None])
        coords["moderator"] = [moderator]
        mean_line = mean_line + beta_d[..., None] * xc
    # Shrinkage: theta_i between y_i and the regression line, by the usual precision weights.
    shrink = tau_d[..., None] ** 2 / (tau_d[..., None] ** 2 + vi)
    theta = (
        shrink * yi + (1 - shrink) * mean_line + rng.normal(0, 0.3, mean_line.shape) * np.sqrt(vi)
    )
    post["theta"] = (("chain", "draw", "study"), theta)
    post["theta_new"] = (("chain", "draw"), mu_d + tau_d * rng.normal(size=mu_d.shape))
    s2 = 1.0 / np.mean(1.0 / vi)
    post["I2"] = (("chain", "draw"), 100 * tau_d**2 / (tau_d**2 + s2))
    posterior = xr.Dataset(post, coords={key: coords[key] for key in coords})
    prior_coords = {"chain": [0], "draw": np.arange(500)}
    prior_vars = {
        "mu": (("chain", "draw"), rng.normal(0, 10, (1, 500))),
        "tau": (("chain", "draw"), np.abs(rng.normal(0, 5, (1, 500)))),
    }
    if beta is not None:
        prior_vars["beta"] = (("chain", "draw", "moderator"), rng.normal(0, 1, (1, 500, 1)))
        prior_coords["moderator"] = [moderator]
    groups = {
        "posterior": posterior,
        "prior": xr.Dataset(prior_vars, coords=prior_coords),
        "log_likelihood": xr.Dataset(
            {"y": (("chain", "draw", "study"), -0.5 * (yi - theta) ** 2 / vi)},
            coords=posterior.coords,
        ).drop_vars("moderator", errors="ignore"),
        "observed_data": xr.Dataset({"y": (("study",), yi)}, coords={"study": list(studies)}),
    }
    const = {"v": (("study",), vi)}
    const_coords = {"study": list(studies)}
    if beta is not None:
        x_used = np.where(imputed, np.nan, xc)
        const["X"] = (("study", "moderator"), x_used[:, None])
        const_coords["moderator"] = [moderator]
    groups["constant_data"] = xr.Dataset(const, coords=const_coords)
    if method == "mcmc":
        ppc = theta + rng.normal(size=theta.shape) * np.sqrt(vi)
        groups["posterior_predictive"] = xr.Dataset(
            {"y": (("chain", "draw", "study"), ppc)},
            coords={"chain": coords["chain"], "draw": coords["draw"], "study": list(studies)},
        )
        diverging = np.zeros((chains, draws), dtype=bool)
        diverging.flat[rng.choice(chains * draws, n_divergent, replace=False)] = True
        groups["sample_stats"] = xr.Dataset(
            {
                "diverging": (("chain", "draw"), diverging),
                "tree_depth": (("chain", "draw"), rng.integers(2, 5, (chains, draws))),
            },
            coords={"chain": coords["chain"], "draw": coords["draw"]},
        )
    tree = xr.DataTree.from_dict(groups)

    def row(parameter, values):
        flat = np.asarray(values).reshape(-1)
        mcmc = method == "mcmc"
        return {
            "analysis": name,
            "parameter": parameter,
            "mean": flat.mean(),
            "sd": flat.std(ddof=1),
            "q2.5": np.quantile(flat, 0.025),
            "q50": np.quantile(flat, 0.5),
            "q97.5": np.quantile(flat, 0.975),
            "r_hat": (1.08 if not converged and parameter == "tau" else 1.003) if mcmc else np.nan,
            "ess_bulk": (85.0 if not converged and parameter == "tau" else 450.0)
            if mcmc
            else np.nan,
            "ess_tail": 620.0 if mcmc else np.nan,
            "method": method,
            "converged": converged,
        }

    rows = [row("intercept" if beta is not None else "mu", mu_d)]
    if beta is not None:
        rows.append(row(moderator, beta_d))
    rows += [
        row("tau", tau_d),
        row("tau2", tau_d**2),
        row("I2", post["I2"][1]),
        row("theta_new", post["theta_new"][1]),
    ]
    summary = pd.DataFrame(rows)

    se = np.sqrt(vi)
    flat_theta = theta.reshape(-1, k)
    study_rows = pd.DataFrame(
        {
            "analysis": name,
            "study_id": list(studies),
            "outcome": "",
            "comparison": "vitamin K vs placebo",
            "yi": yi,
            "vi": vi,
            "ci_low": yi - _Z * se,
            "ci_high": yi + _Z * se,
            "derivation": "change_from_arms",
            "converted": False,
            "theta_mean": flat_theta.mean(0),
            "theta_q2.5": np.quantile(flat_theta, 0.025, axis=0),
            "theta_q97.5": np.quantile(flat_theta, 0.975, axis=0),
            "weight_pct": _weights(vi, float(tau_d.mean())),
        }
    )
    if beta is not None:
        study_rows[moderator] = x
        study_rows[f"{moderator}_imputed"] = imputed
    return summary, study_rows, tree


def make_results(directory: Path, *, converged: bool = True, seed: int = 7) -> Path:
    """Write a results directory under ``directory`` and return its path.

    ``converged=False`` marks the MCMC meta-regression as not converged (R-hat 1.08 for tau,
    divergences), so the report must show a red banner for it.
    """
    rng = np.random.default_rng(seed)
    results = Path(directory) / "results"
    (results / "posterior").mkdir(parents=True, exist_ok=True)

    cac_studies = [
        "Brandenburg 2017",
        "Shea 2009",
        SCRIPT_STUDY,
        "Zwakenberg 2019",
        "Oikonomaki 2019",
        "De Vriese 2020",
        "Kurnatowska 2016 & co",
    ]
    cac_y = np.array([-12.0, -25.0, 8.0, -40.0, 5.0, -18.0, -9.0])
    cac_v = np.array([90.0, 160.0, 400.0, 250.0, 120.0, 300.0, 60.0])
    bmd_studies = ["Knapen 2013", "Emaus 2010", "Rønn 2016", "Booth 2008"]
    bmd_y = np.array([0.25, 0.05, 0.12, -0.02])
    bmd_v = np.array([0.02, 0.015, 0.03, 0.04])
    pwv_studies = [
        "Knapen 2015",
        "Fulton 2016",
        "Mansour 2017",
        "Vossen 2020",
        "Bartstra 2020",
        "Lees 2021",
        "Diederichsen 2022",
        "Haroon 2023",
    ]
    pwv_x = np.array([180.0, 100.0, 360.0, 360.0, 360.0, 180.0, 720.0, 270.0])
    pwv_imputed = np.array([False, False, False, True, False, False, False, True])
    pwv_y = -0.1 - 0.0012 * (pwv_x - 300) + rng.normal(0, 0.15, pwv_x.size)
    pwv_v = rng.uniform(0.02, 0.09, pwv_x.size)

    built = {
        "cac_re": _analysis(
            rng,
            "cac_re",
            cac_studies,
            cac_y,
            cac_v,
            method="exact",
            mu=(-12.0, 5.0),
            tau=(6.0, 3.0),
        ),
        "bmd_re": _analysis(
            rng,
            "bmd_re",
            bmd_studies,
            bmd_y,
            bmd_v,
            method="exact",
            mu=(0.09, 0.07),
            tau=(0.08, 0.05),
        ),
        "pwv_dose": _analysis(
            rng,
            "pwv_dose",
            pwv_studies,
            pwv_y,
            pwv_v,
            method="mcmc",
            mu=(-0.1, 0.08),
            tau=(0.1, 0.05),
            beta=(-0.0012, 0.0005),
            moderator="dose_ug_day",
            x=pwv_x,
            imputed=pwv_imputed,
            center=300.0,
            converged=converged,
            n_divergent=0 if converged else 7,
        ),
    }
    for name, (_, _, tree) in built.items():
        tree.attrs["metak_analysis"] = name  # as `fit` writes it
        tree.to_netcdf(results / "posterior" / f"{name}.nc", engine="h5netcdf")
    pd.concat([b[0] for b in built.values()]).to_csv(results / "summary.csv", index=False)
    effects = pd.concat([b[1] for b in built.values()], ignore_index=True)
    effects["outcome"] = effects["analysis"].map(
        {"cac_re": "cac", "bmd_re": "bmd", "pwv_dose": "pwv"}
    )
    effects.to_csv(results / "study_effects.csv", index=False)

    pwv_messages = (
        []
        if converged
        else [
            "pwv_dose: R-hat 1.08 for tau (> 1.01) and 7 divergent transitions; fix: raise "
            "target_accept to 0.99 or draws/tune, or use a non-centred parameterisation, "
            "then re-run "
            "`python -m metak fit`"
        ]
    )
    analyses = {
        "cac_re": {
            "name": "cac_re",
            "description": "cac_re: random_effects — cac",
            "spec": {
                "model": "random_effects",
                "outcome": "cac",
                "measure": "MD",
                "priors": {"mu": "normal(0, 10)", "tau": "half_normal(5)"},
                "moderators": [],
                "reference_levels": {},
            },
            "outcome_description": "Coronary artery calcification score, change over follow-up",
            "unit": "Agatston units",
            "direction": "lower_is_better",
            "k": len(cac_studies),
            "counts": {"measured": {}, "imputed": {}},
            "method": "exact",
            "converged": True,
            "diagnostics": [],
            "warnings": ["Kurnatowska 2016 & co: SD imputed from the median of the other studies"],
        },
        "bmd_re": {
            "name": "bmd_re",
            "description": "bmd_re: random_effects — bmd",
            "spec": {
                "model": "random_effects",
                "outcome": "bmd",
                "measure": "SMD",
                "priors": {"mu": "normal(0, 1)", "tau": "half_normal(0.5)"},
                "moderators": [],
                "reference_levels": {},
            },
            "outcome_description": "Bone mineral density of the lumbar spine",
            "direction": "higher_is_better",
            "k": len(bmd_studies),
            "counts": {"measured": {}, "imputed": {}},
            "method": "exact",
            "converged": True,
            "diagnostics": [],
            "warnings": [],
        },
        "pwv_dose": {
            "name": "pwv_dose",
            "description": "pwv_dose: meta_regression on dose_ug_day — pwv",
            "spec": {
                "model": "meta_regression",
                "outcome": "pwv",
                "measure": "MD",
                "priors": {
                    "intercept": "normal(0, 2)",
                    "beta": "normal(0, 1)",
                    "tau": "half_normal(1)",
                },
                "moderators": ["dose_ug_day"],
                "reference_levels": {"dose_ug_day": 300.0},
            },
            "outcome_description": "Carotid-femoral pulse wave velocity",
            "unit": "m/s",
            "direction": "lower_is_better",
            "k": len(pwv_studies),
            "counts": {
                "measured": {"dose_ug_day": int((~pwv_imputed).sum())},
                "imputed": {"dose_ug_day": int(pwv_imputed.sum())},
            },
            "method": "mcmc",
            "converged": converged,
            "diagnostics": pwv_messages,
            "warnings": [],
        },
    }
    (results / "analyses.json").write_text(json.dumps(analyses, indent=2), encoding="utf-8")

    claims = pd.DataFrame(
        [
            {
                "claim_id": "C1",
                "claim": "Vitamin K slows coronary calcification",
                "claimant": "Supplement maker <b>Acme</b>",
                "source": "press release 2021",
                "analysis": "cac_re",
                "parameter": "mu",
                "statement": "mu < 0",
                "probability": 0.987,
                "verdict": "supported",
                "explanation": "the pooled change in CAC score is below 0 with probability 0.99",
            },
            {
                "claim_id": "C2",
                "claim": "Higher doses lower arterial stiffness more",
                "claimant": "Review author",
                "source": "doi:10.1000/xyz",
                "analysis": "pwv_dose",
                "parameter": "dose_ug_day",
                "statement": "dose_ug_day < 0",
                "probability": 0.62,
                "verdict": "uncertain",
                "explanation": "the dose slope is negative with probability 0.62",
            },
            {
                "claim_id": "C3",
                "claim": "Vitamin K reduces bone density",
                "claimant": "Blog",
                "source": "https://example.org/post",
                "analysis": "bmd_re",
                "parameter": "mu",
                "statement": "mu < 0",
                "probability": 0.03,
                "verdict": "contradicted",
                "explanation": "the pooled effect on BMD is below 0 with probability 0.03",
            },
            {
                "claim_id": "C4",
                "claim": "Vitamin K prevents fractures",
                "claimant": "Forum",
                "source": "",
                "analysis": "",
                "parameter": "",
                "statement": "",
                "probability": np.nan,
                "verdict": "not assessable",
                "explanation": "no analysis covers fractures",
            },
        ]
    )
    claims.to_csv(results / "claims.csv", index=False)
    return seal(results, {"seed": seed})


def seal(results: Path, manifest: dict | None = None) -> Path:
    """Write ``manifest.json`` as ``fit`` does: the marker and the SHA-256 of every file.

    Call it again after editing the fixture's files on purpose (the report refuses files that
    differ from the manifest); without ``manifest`` the existing one's other keys are kept.
    """
    from metak.output.integrity import MANIFEST, REPORT, seal_manifest

    path = Path(results) / MANIFEST
    if manifest is None:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    names = [
        p.relative_to(results).as_posix()
        for p in sorted(Path(results).rglob("*"))
        if p.is_file() and p.name not in (MANIFEST, REPORT)
    ]
    sealed = seal_manifest(manifest, results, names)
    path.write_text(json.dumps(sealed, indent=2), encoding="utf-8")
    return Path(results)
