"""PyMC models built from an analysis specification: the only place that builds ``pm.Model``.

:func:`build_model` returns the model and a :class:`ModelParts` record saying which variables
it holds, so sampling, diagnostics and packaging never guess at names; :func:`shared_model`
returns it as a structure plus data, for a model compiled once and given each analysis' data
(:mod:`metak.fitting.mcmc.compiled`). Every model uses the
stable posterior names of :mod:`metak.fitting.parameters` (``mu``, ``beta``, ``tau``, ``theta``,
``theta_new``, ``nu``, ``r_prepost``; joint models ``mu``/``tau`` over ``outcome``, ``corr``,
``gamma_link``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metak.models.common import ModelParts
from metak.models.joint import build_joint_model
from metak.models.univariate import SharedModel, build_univariate_model, shared_univariate_model

if TYPE_CHECKING:
    import pymc as pm

    from metak.fitting.data import AnalysisData

__all__ = ["build_model", "shared_model", "ModelParts", "SharedModel"]


def build_model(data: AnalysisData, priors: dict) -> tuple[pm.Model, ModelParts]:
    """``(pm.Model, ModelParts)`` for ``data.spec.model`` with the priors in force."""
    if data.spec.model == "joint":
        return build_joint_model(data, priors)
    return build_univariate_model(data, priors)


def shared_model(data: AnalysisData, priors: dict) -> SharedModel | None:
    """The analysis' model as a structure plus data (:class:`SharedModel`), or None.

    One compilation then serves every analysis of the same structure; None for models whose
    compiled form depends on the data itself (joint models, imputed moderators).
    """
    if data.spec.model == "joint":
        return None
    return shared_univariate_model(data, priors)
