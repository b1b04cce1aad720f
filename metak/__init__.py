"""metak: Bayesian meta-analysis of continuous outcomes, with the vitamin K evidence bundled.

The public API mirrors the command line::

    import metak

    records = metak.load_studies("studies")            # validated study records
    effects = metak.compute_effects(records).effects   # one effect size per study comparison
    result = metak.fit(records, config="studies/analyses.toml", seed=1)
    result.summary                                     # pandas DataFrame (summary.csv)
    result.datatree("re_cac")                          # xarray.DataTree (posterior file)
    metak.write_results(result, "results")             # the same files as `python -m metak fit`

The functions live in :mod:`metak.api`, loaded on first use: ``import metak.effects`` and
``python -m metak --help`` must not pay for pandas and xarray. PyMC loads only when an analysis
needs MCMC.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "load_studies",
    "compute_effects",
    "load_analyses",
    "fit",
    "write_results",
    "AnalysisSpec",
    "QuestionSpec",
    "Settings",
]


def __getattr__(name: str):
    # PEP 562: the public functions are imported from metak.api when first asked for.
    if name in __all__ and name != "__version__":
        from metak import api

        return getattr(api, name)
    raise AttributeError(f"module 'metak' has no attribute {name!r}")
