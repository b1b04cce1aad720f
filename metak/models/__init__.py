"""PyMC models built from an analysis specification: the only place that builds ``pm.Model``.

:func:`build_model` returns the model and a :class:`ModelParts` record saying which variables
it holds, so sampling, diagnostics and packaging never guess at names. Every model uses the
stable posterior names of :mod:`metak.fitting.parameters` (``mu``, ``beta``, ``tau``, ``theta``,
``theta_new``, ``nu``, ``r_prepost``; joint models ``mu``/``tau`` over ``outcome``, ``corr``,
``gamma_link``).
"""

from __future__ import annotations

from metak.models.common import ModelParts
from metak.models.joint import build_joint_model
from metak.models.univariate import build_univariate_model

__all__ = ["build_model", "ModelParts"]


def build_model(data, priors: dict):
    """``(pm.Model, ModelParts)`` for ``data.spec.model`` with the priors in force."""
    if data.spec.model == "joint":
        return build_joint_model(data, priors)
    return build_univariate_model(data, priors)
