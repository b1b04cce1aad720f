"""Building blocks shared by the PyMC models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from numpy.typing import ArrayLike

from metak.fitting.design import PREPOST_VARIANCE_FLOOR, prepost_r_terms

if TYPE_CHECKING:
    from metak.fitting.data import AnalysisData
    from metak.priors import Prior

__all__ = [
    "DataPack",
    "DATA_PACK",
    "ModelParts",
    "prior_variable",
    "prior_data",
    "within_sd",
    "pointwise_loglik",
]


@dataclass(frozen=True)
class ModelParts:
    """What a built model holds, by role."""

    observed: str = "y"  # the likelihood of the effect sizes (log_likelihood group)
    # Deterministic holding the pointwise log-likelihood of ``observed``: computed with every draw
    # by the sampler's own compiled function, so no second function has to be compiled for it.
    loglik: str = "log_likelihood_y"
    report_vars: tuple[str, ...] = ()  # posterior variables stored and gated
    notes: tuple[str, ...] = ()
    imputed: dict = field(default_factory=dict)  # study id -> index into "log_baseline_imputed"
    theta_new: bool = False  # theta_new is drawn after sampling (metak.fitting.mcmc.generated)
    # theta is drawn after sampling from the Deterministics theta_mean and theta_sd
    theta_conditional: bool = False
    # posterior_predictive holds y = theta + within-study noise; False for models whose
    # published effect sizes are not that (the selection model: only some of them are published)
    replicates: bool = True
    attrs: dict = field(default_factory=dict)  # extra DataTree attributes (metak_*)
    extra_priors: dict = field(default_factory=dict)  # prior texts beyond the spec's, by key
    # A shared model's data containers, all in one pm.Data (None: data are constants)
    data_pack: DataPack | None = None


# The one ``pm.Data`` of a model compiled once for many analyses (:class:`DataPack`).
DATA_PACK = "data_pack"


class DataPack:
    """Every data container of a shared model as slices of one ``pm.Data`` vector.

    nutpie compiles code to hand each shared variable to the model's function (numba, per
    variable, in the log-density and in the expand function): with the dozen containers of a
    robust model (effect sizes, variances, weights, pre-post terms and the priors' parameters)
    that was ~5 s of every compilation, with or without a warm cache. One vector holding them all
    (:data:`DATA_PACK`), each read back by position and shape, computes the same numbers.
    ``values`` fixes the layout: names in order, each value's shape.
    """

    def __init__(self, values: dict[str, np.ndarray]) -> None:
        self.layout: dict[str, tuple[int, tuple[int, ...]]] = {}
        start = 0
        for name, value in values.items():
            shape = np.shape(value)
            self.layout[name] = (start, shape)
            start += int(np.prod(shape, dtype=int))
        self.size = start
        self.variable = pm.Data(DATA_PACK, self.pack(values))

    def pack(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """``values`` (by name, as laid out by this pack) as the one vector."""
        if set(values) != set(self.layout):
            raise ValueError(f"data {sorted(values)} do not match the pack {sorted(self.layout)}")
        flat = np.empty(self.size, dtype=float)
        for name, (start, shape) in self.layout.items():
            value = np.asarray(values[name], dtype=float)
            if value.shape != shape:
                raise ValueError(f"data {name!r} has shape {value.shape}, the pack {shape}")
            flat[start : start + value.size] = value.ravel()
        return flat

    def __contains__(self, name: str) -> bool:
        return name in self.layout

    def __getitem__(self, name: str) -> pt.TensorVariable:
        start, shape = self.layout[name]
        if not shape:
            return self.variable[start]
        piece = self.variable[start : start + int(np.prod(shape, dtype=int))]
        return piece if len(shape) == 1 else piece.reshape(shape)


def _prior_data_name(name: str, parameter: str) -> str:
    return f"prior_{name}_{parameter}"


def prior_data(name: str, prior: Prior) -> dict[str, np.ndarray]:
    """The values of the ``pm.Data`` holding the parameters of ``name``'s prior, by data name.

    See :func:`prior_variable` with ``shared=True``.
    """
    return {
        _prior_data_name(name, key): np.asarray(value, dtype=float)
        for key, value in prior.kwargs.items()
    }


def prior_variable(
    name: str,
    prior: Prior,
    dims: str | tuple[str, ...] | None = None,
    shape: int | tuple[int, ...] | None = None,
    shared: DataPack | None = None,
) -> pt.TensorVariable:
    """A PyMC random variable with the distribution of a :class:`metak.priors.Prior`.

    With ``shared``, the prior's parameters are read from that model's :class:`DataPack` (by the
    names of :func:`prior_data`) rather than constants, so a compiled model can be given another
    analysis' priors (default priors scale with each analysis' data).
    """
    distribution = getattr(pm, prior.pymc_name)
    kwargs = dict(prior.kwargs)
    if shared is not None:
        kwargs = {
            key: shared[data_name]
            for key, data_name in zip(kwargs, prior_data(name, prior), strict=True)
        }
    if dims is not None:
        kwargs["dims"] = dims
    if shape is not None:
        kwargs["shape"] = shape
    return distribution(name, **kwargs)


def pointwise_loglik(
    observed_rv: pt.TensorVariable, values: ArrayLike, name: str = "log_likelihood_y"
) -> pt.TensorVariable:
    """``log p(y_i | parameters)`` of every effect size, as a Deterministic over ``study``.

    Pointwise (not summed) so leave-one-study-out comparisons (PSIS-LOO) can use it; for the
    marginalised models it is the likelihood given the hyperparameters, as the model's.
    """
    return pm.Deterministic(name, pm.logp(observed_rv, values), dims="study")


def within_sd(
    data: AnalysisData,
    priors: dict,
    base: ArrayLike | None = None,
    slope: ArrayLike | None = None,
    r0: ArrayLike | None = None,
    shared: DataPack | None = None,
) -> pt.TensorVariable:
    """Within-study SD of every row: sampling + conversion variance, and the pre-post r.

    The pre-post correlation is a parameter where a change score was derived with an assumed one.

    For a mean difference of change scores the variance is exactly linear in the correlation
    (var = (sd_b^2 + sd_f^2 - 2 r sd_b sd_f) / n per arm), so ``vi(r) = vi(r0) + (r - r0) dvi/dr``
    is exact there and a first-order approximation for SMDs.

    ``base`` (the variance at the assumed correlation), ``slope`` (dvi/dr) and ``r0`` replace
    the data's own arrays when given (the :class:`DataPack` ``shared`` of a model compiled once
    for many analyses, which then holds the correlation's prior parameters too).
    """
    if base is None:
        base = np.asarray(data.v + data.v_conversion, dtype=float)
    if not data.has_uncertain_r:
        return pt.sqrt(base) if shared is not None else np.sqrt(base)
    if slope is None:
        slope, r0 = prepost_r_terms(data)
    r = prior_variable("r_prepost", priors["r"], shared=shared)
    variance = base + (r - r0) * slope
    return pt.sqrt(pt.maximum(variance, PREPOST_VARIANCE_FLOOR * base))
