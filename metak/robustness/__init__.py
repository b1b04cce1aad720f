"""How far an analysis' answer can be trusted.

Bayes factors, small-study bias, model averaging, leave-one-out, prior sensitivity, and the
robustness verdict built from them.

The checks run after fitting (:func:`metak.robustness.assess.assess_robustness`, called once by
the orchestrator) and write their own files (``bayes_factors.csv``, ``leave_one_out.csv``, ...;
:mod:`metak.robustness.tables`). Modules, one job each:

- :mod:`~metak.robustness.problem` — an analysis as the exact machinery sees it, exact fits of
  its variants (no effect, no heterogeneity, PET/PEESE), the pre-post correlation integrated;
- :mod:`~metak.robustness.bayes_factors`, :mod:`~metak.robustness.bias`,
  :mod:`~metak.robustness.averaging`, :mod:`~metak.robustness.leave_one_out`,
  :mod:`~metak.robustness.psis`, :mod:`~metak.robustness.sensitivity` — the checks;
- :mod:`~metak.robustness.verdicts` — robust or not, and which check flips the verdict.

This package file imports nothing, so :mod:`metak.fitting.result` can import the table types
(:mod:`metak.robustness.tables`) without pulling in the checks.
"""
