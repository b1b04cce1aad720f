"""Models compiled once per structure: padding to a bucket of rows changes no log density, the
buckets stay few and never double the rows, and the structure key is what decides reuse.

The log densities are compared without sampling: the padded model (data in ``pm.Data``) against
the model of the same analysis without padding (data as constants), at random points. The
robust model's padded rows carry latent precisions with a fixed Gamma(1, 1) prior; their log
density (on the sampler's log scale, Jacobian included: ``u - exp(u)``) is the only difference,
computed here in closed form.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from metak.derive import compute_effects
from metak.fitting.data import build_analysis_data
from metak.fitting.prior_choice import priors_in_force
from metak.models import shared_model
from metak.models.univariate import build_univariate_model, padded_rows
from metak.records import load_records
from metak.spec import AnalysisSpec
from tests.bcg_records import write_contrast_records

# Summing a few dozen terms in another order (the padded vector) moves the last bits only.
LOGP_RTOL = 1e-12


def test_row_buckets_are_few_and_never_double_the_rows():
    sizes = [padded_rows(k) for k in range(1, 20_001)]
    assert all(size >= k for k, size in enumerate(sizes, start=1))
    assert all(a <= b for a, b in zip(sizes, sizes[1:], strict=False))  # monotone
    assert len({padded_rows(k) for k in range(5, 51)}) == 3  # 16, 32, 64
    assert max(padded_rows(k) / k for k in range(17, 20_001)) < 2
    assert max(padded_rows(k) / k for k in range(65, 20_001)) < 1.2  # quarter octaves


def _data(tmp_path, reference_dir, model, moderators=()):
    records = load_records(
        write_contrast_records(
            reference_dir, "bcg_logRR", tmp_path / "r", "logRR", "logRR", "ablat"
        ),
        provenance="off",
    )
    spec = AnalysisSpec(name="a", outcome="logRR", model=model, moderators=moderators)
    data = build_analysis_data(compute_effects(records).effects, records, spec)
    return data, priors_in_force(spec, data)[0]


@pytest.mark.parametrize(
    ("model", "moderators"),
    [("random_effects", ()), ("meta_regression", ("ablat",)), ("robust", ())],
)
def test_padding_adds_nothing_to_the_log_density(tmp_path, reference_dir, model, moderators):
    data, priors = _data(tmp_path, reference_dir, model, moderators)
    plain, _ = build_univariate_model(data, priors)
    padded, _ = build_univariate_model(data, priors, padded=padded_rows(data.k))
    assert padded_rows(data.k) == 16 and data.k == 13
    logp_plain, logp_padded = plain.compile_logp(), padded.compile_logp()
    loglik_plain, loglik_padded = _pointwise(plain), _pointwise(padded)
    rng = np.random.default_rng(2)
    for _ in range(5):
        point = {
            name: value + rng.normal(0, 0.3, size=np.shape(value))
            for name, value in padded.initial_point().items()
        }
        mine = dict(point)
        pad_term = 0.0
        if model == "robust":
            u = point["study_precision_log__"]
            mine["study_precision_log__"] = u[: data.k]
            pad_term = float(np.sum(u[data.k :] - np.exp(u[data.k :])))  # Gamma(1, 1), Jacobian
        np.testing.assert_allclose(logp_padded(point), logp_plain(mine) + pad_term, rtol=LOGP_RTOL)
        np.testing.assert_allclose(
            loglik_padded(point)[: data.k], loglik_plain(mine), rtol=LOGP_RTOL
        )


def _pointwise(model):
    """The pointwise log-likelihood as a function of a point in the sampler's space."""
    (values,) = model.replace_rvs_by_values([model["log_likelihood_y"]])
    return model.compile_fn(values, inputs=model.value_vars, on_unused_input="ignore")


def test_structure_decides_reuse_and_data_do_not(tmp_path, reference_dir):
    data, priors = _data(tmp_path, reference_dir, "robust")
    first = shared_model(data, priors)
    fewer = shared_model(_subset(data, 10), priors_in_force(data.spec, _subset(data, 10))[0])
    assert first.key == fewer.key  # 13 and 10 rows both pad to 16
    assert not np.array_equal(first.values["y_obs"], fewer.values["y_obs"])
    assert first.values["row_weight"].sum() == 13 and fewer.values["row_weight"].sum() == 10
    # default priors scale with the data: their parameters are data too, not structure
    assert not np.array_equal(first.values["prior_tau_sigma"], fewer.values["prior_tau_sigma"])
    meta, meta_priors = _data(tmp_path / "m", reference_dir, "meta_regression", ("ablat",))
    assert shared_model(meta, meta_priors).key != first.key


def _subset(data, k: int):
    return replace(
        data,
        effects=data.effects.iloc[:k].reset_index(drop=True),
        y=data.y[:k],
        v=data.v[:k],
        v_conversion=data.v_conversion[:k],
        dvi_dr=data.dvi_dr[:k],
        r_assumed=data.r_assumed[:k],
        row_label=data.row_label[:k],
        study_id=data.study_id[:k],
        outcome=data.outcome[:k],
    )
