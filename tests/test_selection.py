"""The step-function selection model (metak.models.selection) against R metafor and planted truth.

- Its log-likelihood at metafor's MLE is metafor's maximised log-likelihood, and under flat
  priors its posterior mode (found by optimisation of the compiled log density, not from draws)
  is metafor's MLE, on five data set / cut-point / side combinations
  (``tests/reference_selmodel.R`` -> ``tests/data/reference/selmodel_stepfun.csv``).
- With every weight 1 it is the ordinary random-effects likelihood (the normal density, and
  metafor's ML log-likelihood at rma's estimates).
- The cumulative-Dirichlet weight prior is flat on monotone weights: its mode is the MLE when
  the MLE is monotone.
- By MCMC on simulated published studies (a null effect, non-significant results published at a
  fifth of the rate of significant ones) it recovers the planted effect that the ordinary
  random-effects model misses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
from scipy.stats import norm

import metak
from metak.claims import parse_statement
from metak.errors import ConfigError
from metak.fitting.data import AnalysisData
from metak.fitting.mcmc.selection import fit_selection_analysis
from metak.models.selection import (
    build_selection_model,
    interval_index,
    interval_labels,
    one_sided_p_values,
    resolve_side,
)
from metak.priors import parse_prior
from metak.spec import AnalysisSpec, CumulativeDirichlet, SelectionSpec, Settings
from tests.conftest import REFERENCE
from tests.synthetic import selected_records

# Our log-likelihood at metafor's MLE vs metafor's maximised log-likelihood: the same formula in
# double precision (pnorm/qnorm vs erfc/ndtri), summed over at most 81 studies. Measured
# differences are below 1e-13; 1e-9 leaves room for rounding and is far below any difference a
# wrong interval, side or normaliser would make (those change the log-likelihood by > 1e-3).
LOGLIK_ATOL = 1e-9
# The posterior mode vs metafor's MLE, in units of metafor's standard error of each estimate.
# Both optimisers stop where the log-likelihood is flat to ~1e-10 (metafor was run with
# reltol 1e-12), which moves an estimate by ~1e-5 of its SE (measured: at most ~1e-5); 1e-3 of
# an SE leaves room for that and is a thousand times finer than anything statistically visible.
MODE_TOL_SE = 1e-3
# The maximised log-likelihood found here may not fall below metafor's by more than this.
MODE_LOGLIK_ATOL = 1e-7
# Optimiser's stopping rule on the gradient of the log density in the unconstrained space.
MODE_GTOL = 1e-7
# Flat priors: the posterior mode is the MLE. A normal(0, 1000) prior on mu pulls the mode by
# mu * se^2 / 1000^2 < 1e-8; uniform priors on tau and the weights are flat over their range.
FLAT_PRIORS = {"mu": parse_prior("normal(0, 1000)"), "tau": parse_prior("uniform(0, 100)")}
FLAT_WEIGHTS = parse_prior("uniform(0, 100)")


def _reference() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "selmodel_stepfun.csv")


def _case(name: str) -> dict:
    rows = _reference()
    rows = rows[rows["case"] == name]
    first = rows.iloc[0]
    data = pd.read_csv(REFERENCE / "selmodel_data.csv")
    data = data[data["dataset"] == first["dataset"]]
    return {
        "y": data["yi"].to_numpy(dtype=float),
        "v": data["vi"].to_numpy(dtype=float),
        "side": first["alternative"],
        "cutpoints": tuple(float(c) for c in first["steps"].split(";")),
        "estimate": dict(zip(rows["parameter"], rows["estimate"], strict=True)),
        "se": dict(zip(rows["parameter"], rows["se"], strict=True)),
    }


CASES = list(dict.fromkeys(_reference()["case"]))
# metafor's MLE weights are monotone (1 >= omega_2 >= omega_3 ...) in these cases only.
MONOTONE_CASES = ["lehmann2018_default", "hackshaw1998_three_steps"]


def _analysis_data(y, v, direction="unspecified", name="ref") -> AnalysisData:
    k = len(y)
    spec = AnalysisSpec(name=name, outcome="y", method="mcmc")
    labels = tuple(f"s{i}" for i in range(k))
    return AnalysisData(
        spec=spec,
        effects=pd.DataFrame({"measure": ["MD"] * k}),
        y=np.asarray(y, dtype=float),
        v=np.asarray(v, dtype=float),
        v_conversion=np.zeros(k),
        dvi_dr=np.full(k, np.nan),
        r_assumed=np.full(k, np.nan),
        row_label=labels,
        study_id=labels,
        outcome=("y",) * k,
        directions={"y": direction},
    )


def _model(case: dict, weight_prior=FLAT_WEIGHTS):
    selection = SelectionSpec(case["cutpoints"], side=case["side"], weight_prior=weight_prior)
    return build_selection_model(_analysis_data(case["y"], case["v"]), FLAT_PRIORS, selection)


@dataclass(frozen=True)
class _Compiled:
    """A reference case's model and one compiled function of a value point returning the log
    density without Jacobians, its gradient and each study's log-likelihood (compiled once per
    module: a compilation costs about a second)."""

    model: object
    function: Callable

    def logp(self, point: dict) -> float:
        return float(self.function(point)[0])

    def dlogp(self, point: dict) -> np.ndarray:
        return np.asarray(self.function(point)[1])

    def pointwise(self, point: dict) -> np.ndarray:
        return np.asarray(self.function(point)[2])

    def loglik(self, point: dict) -> float:
        return float(np.sum(self.pointwise(point)))


@functools.cache
def _compiled(name: str, weight_prior=FLAT_WEIGHTS, mirrored: bool = False) -> _Compiled:
    case = _case(name)
    if mirrored:
        case = dict(case, y=-case["y"], side={"greater": "less", "less": "greater"}[case["side"]])
    model, _ = _model(case, weight_prior)
    outputs = [
        model.logp(jacobian=False),
        model.dlogp(jacobian=False),
        model.logp(vars=model.observed_RVs, jacobian=False, sum=False)[0],
    ]
    return _Compiled(model=model, function=model.compile_fn(outputs, point_fn=True))


def _value_point(model, mu: float, tau: float, omega: np.ndarray) -> dict:
    """The model's value variables (unconstrained space) at constrained ``mu``, ``tau``,
    ``omega``."""
    omega = np.asarray(omega, dtype=float)
    constrained = {
        "mu": mu,
        "tau": tau,
        "omega_free": omega[1:],
        # omega_j = eta_j + ... + eta_J, so eta_j = omega_j - omega_{j+1}
        "omega_increments": -np.diff(np.append(omega, 0.0)),
    }
    point = {}
    for rv in model.free_RVs:
        value = np.asarray(constrained[rv.name], dtype=float)
        transform = model.rvs_to_transforms.get(rv)
        if transform is not None:
            value = transform.forward(value, *rv.owner.inputs).eval()
        point[model.rvs_to_values[rv].name] = np.asarray(value, dtype=float)
    return point


def _posterior_mode(compiled: _Compiled, start: dict) -> dict:
    """Maximise the log density *without* the transforms' Jacobians (so the maximum is the mode
    in the constrained space: mu, tau, omega) by BFGS in the unconstrained space, with the
    compiled gradient. Returns the constrained values at the mode."""
    from pymc.blocking import DictToArrayBijection, RaveledVars

    model, logp, dlogp = compiled.model, compiled.logp, compiled.dlogp
    x0 = DictToArrayBijection.map(start)

    def point(x):
        return DictToArrayBijection.rmap(RaveledVars(x, x0.point_map_info))

    found = scipy.optimize.minimize(
        lambda x: -logp(point(x)),
        x0.data,
        jac=lambda x: -dlogp(point(x)),
        method="BFGS",
        options={"gtol": MODE_GTOL, "maxiter": 10_000},
    )
    gradient = np.max(np.abs(dlogp(point(found.x))))
    assert gradient < 1e3 * MODE_GTOL, (found.message, gradient)
    values = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars)(point(found.x))
    named = {
        var.name: value for var, value in zip(model.unobserved_value_vars, values, strict=True)
    }
    return {"point": point(found.x), "mu": float(named["mu"]), "tau": float(named["tau"])} | {
        "omega": np.asarray(named["omega"], dtype=float)
    }


def _mle(case: dict) -> tuple[float, float, np.ndarray]:
    est = case["estimate"]
    n = len(case["cutpoints"]) + 1
    omega = np.array([est[f"omega_{j}"] for j in range(1, n + 1)])
    return est["mu"], float(np.sqrt(est["tau2"])), omega


def _start(case: dict) -> dict:
    """Away from the MLE: the ordinary ML random-effects fit and weights falling from 1 to 0.5."""
    est = case["estimate"]
    n = len(case["cutpoints"]) + 1
    return {"mu": est["rma_mu"], "tau": np.sqrt(est["rma_tau2"]), "omega": np.linspace(1, 0.5, n)}


@pytest.mark.parametrize("name", CASES)
def test_loglik_at_metafor_mle_is_metafor_loglik(name):
    case, compiled = _case(name), _compiled(name)
    mu, tau, omega = _mle(case)
    ours = compiled.loglik(_value_point(compiled.model, mu, tau, omega))
    assert abs(ours - case["estimate"]["ll"]) <= LOGLIK_ATOL, (ours, case["estimate"]["ll"])


def _assert_mode_is_mle(compiled: _Compiled, case: dict) -> None:
    start = _value_point(compiled.model, **_start(case))
    mode = _posterior_mode(compiled, start)
    est, se = case["estimate"], case["se"]
    checks = [("mu", mode["mu"]), ("tau2", mode["tau"] ** 2)]
    checks += [(f"omega_{j + 1}", mode["omega"][j]) for j in range(1, len(mode["omega"]))]
    for parameter, ours in checks:
        assert abs(ours - est[parameter]) <= MODE_TOL_SE * se[parameter], (
            parameter,
            ours,
            est[parameter],
        )
    assert mode["omega"][0] == 1.0
    assert compiled.loglik(mode["point"]) >= est["ll"] - MODE_LOGLIK_ATOL


@pytest.mark.parametrize("name", CASES)
def test_posterior_mode_under_flat_priors_is_metafor_mle(name):
    _assert_mode_is_mle(_compiled(name), _case(name))


@pytest.mark.parametrize("name", MONOTONE_CASES)
def test_cumulative_dirichlet_mode_is_the_mle_when_the_mle_is_monotone(name):
    # Dirichlet(1, ..., 1) is uniform on the simplex and omega is a linear map of it with unit
    # Jacobian, so the prior is flat on {1 >= omega_2 >= ... >= omega_J >= 0}.
    case = _case(name)
    _, _, omega = _mle(case)
    assert np.all(np.diff(omega) <= 0) and omega[-1] > 0
    _assert_mode_is_mle(_compiled(name, CumulativeDirichlet(1.0)), case)


@pytest.mark.parametrize("name", ["lehmann2018_default", "bcg_less"])
def test_weights_all_one_is_the_random_effects_likelihood(name):
    case, compiled = _case(name), _compiled(name)
    model, pointwise = compiled.model, compiled.pointwise
    n = len(case["cutpoints"]) + 1
    # At rma's ML estimates: metafor's own ML log-likelihood.
    est = case["estimate"]
    at_rma = _value_point(model, est["rma_mu"], np.sqrt(est["rma_tau2"]), np.ones(n))
    assert abs(float(np.sum(pointwise(at_rma))) - est["rma_ll"]) <= LOGLIK_ATOL
    # Anywhere: the normal density of y_i with variance v_i + tau^2, study by study.
    for mu, tau in [(-0.3, 0.05), (0.4, 0.6), (0.0, 1.5)]:
        ours = pointwise(_value_point(model, mu, tau, np.ones(n)))
        expected = norm.logpdf(case["y"], mu, np.sqrt(case["v"] + tau**2))
        np.testing.assert_allclose(ours, expected, rtol=0, atol=LOGLIK_ATOL)


def test_less_is_greater_on_the_mirrored_data():
    plain = _compiled("lehmann2018_default")
    mirrored = _compiled("lehmann2018_default", mirrored=True)
    omega = np.array([1.0, 0.6, 0.3])
    ours = plain.loglik(_value_point(plain.model, 0.2, 0.3, omega))
    theirs = mirrored.loglik(_value_point(mirrored.model, -0.2, 0.3, omega))
    assert abs(ours - theirs) <= LOGLIK_ATOL


def test_p_value_intervals_as_metafor():
    # A p-value equal to a cut-point belongs to the interval it closes: which(p <= steps)[1].
    p = np.array([0.0, 0.01, 0.025, 0.03, 0.05, 0.5, 1.0])
    assert interval_index(p, (0.025, 0.05)).tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert interval_labels((0.025, 0.05)) == ["0-0.025", "0.025-0.05", "0.05-1"]
    # Summary parameters omega[<label>] can be named in a claim statement.
    for label in interval_labels((0.025, 0.1, 0.5)):
        assert parse_statement(f"omega[{label}] < 0.5").parameter == f"omega[{label}]"
    y, sd = np.array([1.96, -1.96]), np.ones(2)
    np.testing.assert_allclose(one_sided_p_values(y, sd, "greater"), [0.025, 0.975], atol=1e-4)
    np.testing.assert_allclose(one_sided_p_values(y, sd, "less"), [0.975, 0.025], atol=1e-4)


def test_side_follows_the_direction_of_benefit():
    auto = SelectionSpec()
    assert resolve_side(auto, "lower_is_better") == ("less", "")
    assert resolve_side(auto, "higher_is_better") == ("greater", "")
    side, note = resolve_side(auto, "unspecified")
    assert side == "greater" and "direction" in note and "\n" not in note
    assert resolve_side(SelectionSpec(side="greater"), "lower_is_better") == ("greater", "")


def test_model_structure():
    case = _case("hackshaw1998_three_steps")
    data = _analysis_data(case["y"], case["v"], direction="higher_is_better")
    selection = SelectionSpec((0.025, 0.1, 0.5))
    model, parts = build_selection_model(data, FLAT_PRIORS, selection)
    assert {rv.name for rv in model.free_RVs} == {"mu", "tau", "omega_increments"}
    assert list(model.coords["p_interval"]) == interval_labels((0.025, 0.1, 0.5))
    assert parts.report_vars == ("mu", "tau", "omega", "theta", "theta_new")
    assert parts.extra_priors == {"omega": "cumulative_dirichlet(1)"}
    assert parts.attrs["metak_selection_side"] == "greater"
    # Counted here from scipy's normal survival function, independently of the model's code.
    p = norm.sf(case["y"] / np.sqrt(case["v"]))
    edges = [0.0, 0.025, 0.1, 0.5, 1.0]
    counts = [
        int(np.sum((p > low) & (p <= high)))
        for low, high in zip(edges[:-1], edges[1:], strict=True)
    ]
    assert parts.attrs["metak_selection_interval_counts"] == ";".join(map(str, counts))
    assert not parts.replicates and not parts.notes


def test_an_empty_interval_is_noted():
    y, v = np.array([3.0, 2.5, 0.1, -0.2, 0.3]), np.full(5, 1.0)
    _, parts = build_selection_model(_analysis_data(y, v), FLAT_PRIORS, SelectionSpec(side="less"))
    assert any("0-0.025, 0.025-0.05" in note for note in parts.notes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cutpoints": ()}, "cutpoints must be a list of 1 to"),
        ({"cutpoints": (0.05, 0.025)}, "increasing p-values"),
        ({"cutpoints": (0.025, 0.025)}, "increasing p-values"),
        ({"cutpoints": (0.0, 0.05)}, "strictly between 0 and 1"),
        ({"cutpoints": (0.05, 1.0)}, "strictly between 0 and 1"),
        ({"cutpoints": tuple(np.linspace(0.01, 0.9, 11))}, "1 to 10"),
        ({"side": "two.sided"}, "side 'two.sided' is not known"),
        ({"weight_prior": "normal(0, 1)"}, "allows negative weights"),
        ({"weight_prior": "beta(0, 1)"}, "alpha must be > 0"),
        ({"weight_prior": 1.0}, "weight_prior must be"),
    ],
)
def test_selection_spec_refuses_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        SelectionSpec(**kwargs)
    assert "\n" not in str(info.value)


def test_selection_spec_accepts_prior_text_and_dirichlet_alpha():
    assert SelectionSpec(weight_prior="beta(1, 1)").weight_prior == parse_prior("beta(1, 1)")
    assert str(SelectionSpec(weight_prior=CumulativeDirichlet(2)).weight_prior) == (
        "cumulative_dirichlet(2)"
    )
    with pytest.raises(ConfigError, match="alpha must be a positive number"):
        CumulativeDirichlet(0.0)


def test_fit_refuses_what_it_cannot_fit():
    data = _analysis_data([0.1, 0.2, 0.3], [0.01] * 3)
    settings = Settings()
    with pytest.raises(ConfigError, match="too few for a selection model"):
        fit_selection_analysis(data.spec, data, settings, seed=1)
    robust = AnalysisSpec(name="rob", outcome="y", model="robust")
    with pytest.raises(ConfigError, match="adjusts a random-effects analysis"):
        fit_selection_analysis(robust, data, settings, seed=1)
    long = AnalysisSpec(name="a" * 60, outcome="y")
    with pytest.raises(ConfigError, match="longer than 64 characters"):
        fit_selection_analysis(long, data, settings, seed=1)


@pytest.mark.slow
def test_mcmc_recovers_a_planted_null_effect_under_selection(tmp_path):
    # 60 published studies of a null effect, non-significant ones published at 1/5 the rate.
    directory, truth = selected_records(tmp_path / "r", seed=3, k=60, mu=0.0, tau=0.1)
    spec = AnalysisSpec(
        name="re",
        outcome="y",
        priors={"mu": "normal(0, 1)", "tau": "halfnormal(0.5)"},
        method="exact",
    )
    fitted = metak.fit(metak.load_studies(directory), config=[spec], seed=1)
    naive = fitted.analyses["re"]
    result = fit_selection_analysis(
        naive.spec, naive.data, Settings(draws=1000, tune=1000, chains=2), seed=5
    )
    assert result.spec.name == "re_selection" and not result.spec.claims
    assert result.method == "mcmc" and result.converged, result.messages
    rows = result.summary.set_index("parameter")
    assert list(rows.index) == [
        "mu",
        "tau",
        "tau2",
        "I2",
        "theta_new",
        "omega[0.025-0.05]",
        "omega[0.05-1]",
    ]
    assert set(result.summary["analysis"]) == {"re_selection"}
    # The planted effect and weight lie in the selection model's 95% intervals...
    for parameter, planted in [("mu", truth["mu"]), ("omega[0.05-1]", truth["weights"][2])]:
        assert rows.loc[parameter, "q2.5"] < planted < rows.loc[parameter, "q97.5"], parameter
    # ...while the ordinary random-effects model, blind to selection, excludes the effect: the
    # data are selected enough for this test to fail if the adjustment did nothing.
    plain = naive.summary.set_index("parameter")
    assert plain.loc["mu", "q2.5"] > truth["mu"]
    assert abs(rows.loc["mu", "mean"] - truth["mu"]) < abs(plain.loc["mu", "mean"] - truth["mu"])
    # Cumulative Dirichlet: every draw's weights fall from 1 with the p-value.
    omega = result.datatree["posterior"]["omega"].to_numpy()
    assert np.all(omega[..., 0] == 1.0) and np.all(np.diff(omega, axis=-1) <= 0)
    tree = result.datatree
    assert "posterior_predictive" not in tree.children
    assert tree["log_likelihood"]["y"].sizes["study"] == 60
    assert tree.attrs["metak_analysis"] == "re_selection"
    assert tree.attrs["metak_selection_side"] == "greater"
    assert result.priors["omega"] == "cumulative_dirichlet(1)"
    assert result.study_table["analysis"].unique().tolist() == ["re_selection"]
