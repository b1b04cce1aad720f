"""The fit layer: from study records and analysis specs to typed results.

=====================  ==========================================================================
module                 job
=====================  ==========================================================================
``orchestrator``       the one entry point (:func:`run_analyses`): check, fit, judge claims
``data``               select and shape one analysis' rows (:class:`AnalysisData`)
``deficiency``         the deficiency moderator: data, twin, reported quantities
``design``             coefficient names, design matrix, within-study variances
``prior_choice``       the priors in force (user's or scale-aware defaults)
``method``             exact path or MCMC
``memory``             refuse draws that cannot fit in memory
``exact_engine``       fit on the exact path (:mod:`metak.exact`)
``mcmc``               fit by MCMC: ``engine``, ``sampling``, ``diagnostics``, ``generated``
``parallel``           MCMC analyses on the worker processes of a Dask cluster (``--jobs``)
``cluster``            the Dask cluster: embedded (local worker processes) or ``--scheduler``
``dask_worker``        one worker process of the embedded cluster
``summaries``          the rows of summary.csv
``parameters``         named posterior quantities from a DataTree
``package``            study table and DataTree layout shared by both engines
``result``             :class:`AnalysisResult`, :class:`FitResult`
``phases``             wall time per phase of an MCMC fit
=====================  ==========================================================================
"""

from metak.fitting.result import AnalysisResult, ExactInfo, FitResult, McmcInfo

__all__ = ["AnalysisResult", "ExactInfo", "FitResult", "McmcInfo"]
