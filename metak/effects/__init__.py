"""Effect sizes and summary-statistic conversions as pure numpy functions.

Every function takes numbers or numpy arrays (broadcast together), returns numpy floats or
arrays, and cites the source of its formula. Nothing here reads files or imports pandas or
PyMC: :mod:`metak.derive` turns study records into calls to these functions.

Modules
-------
basic
    Arm-level effect sizes returning ``(yi, vi)``: mean difference, Hedges' g, log ratio of means.
conversions
    SDs and standard errors from SEs, confidence intervals and p-values; ratio -> log scale.
medians
    Mean and SD from a median with quartiles and/or range (Luo 2018, Wan 2014), with an extra
    variance for the conversion error.
change
    Change-from-baseline summaries with a pre–post correlation, and d(vi)/dr of the MD.
within_arm
    Within-arm measures returning ``(yi, vi)``: raw mean change (MC) and raw mean (MN).
"""

from metak.effects.basic import hedges_correction, hedges_g, log_ratio_of_means, mean_difference
from metak.effects.change import arm_change_dvar_dr, change_from_baseline, md_change_dvi_dr
from metak.effects.conversions import (
    log_ratio_with_ci,
    sd_from_ci_mean,
    sd_from_se,
    se_from_ci,
    se_from_ci_ratio,
    se_from_p,
)
from metak.effects.medians import (
    MedianConversion,
    expected_normal_iqr,
    expected_normal_range,
    from_five_numbers,
    from_median_iqr,
    from_median_range,
    mean_sd_from_median,
)
from metak.effects.within_arm import mean_change, mean_change_reported, raw_mean

__all__ = [
    "MedianConversion",
    "arm_change_dvar_dr",
    "change_from_baseline",
    "expected_normal_iqr",
    "expected_normal_range",
    "from_five_numbers",
    "from_median_iqr",
    "from_median_range",
    "hedges_correction",
    "hedges_g",
    "log_ratio_of_means",
    "log_ratio_with_ci",
    "md_change_dvi_dr",
    "mean_change",
    "mean_change_reported",
    "mean_difference",
    "mean_sd_from_median",
    "raw_mean",
    "sd_from_ci_mean",
    "sd_from_se",
    "se_from_ci",
    "se_from_ci_ratio",
    "se_from_p",
]
