"""Robust or not: whether a verdict survives leave-one-out, bias adjustment and other priors.

Each check re-asks the question under one change — one study left out, the PET or PEESE
(or selection-model) adjusted effect, one alternative or power-scaled prior — and gives a verdict
(or none, when it cannot be run or trusted: a bias model the data cannot identify, an importance-
sampled leave-one-out with Pareto k above its threshold). The label:

- ``robust``: every family of checks ran and no check changes the verdict;
- ``not robust``: at least one check changes it (the detail names which, with its probability);
- ``partly assessed``: nothing changes it, but a family of checks could not run or be trusted
  (the detail says which and why);
- ``not assessable``: no verdict to test (the analysis failed its diagnostics gate, has
  ``robustness = false``, or the claim has no statement).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAMILIES", "LABELS", "Check", "label_for"]

FAMILIES = ("leave-one-out", "bias", "prior")
LABELS = ("robust", "not robust", "partly assessed", "not assessable")


@dataclass(frozen=True)
class Check:
    """One re-asking of the question: its family, what changed, the verdict (None: no verdict)."""

    family: str
    name: str
    verdict: str | None
    note: str = ""  # the probability behind the verdict, or why there is none

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")


def _join(items: list[str], limit: int = 6) -> str:
    if len(items) > limit:
        return "; ".join(items[:limit]) + f"; and {len(items) - limit} more"
    return "; ".join(items)


def label_for(verdict: str, checks: list[Check], missing: dict[str, str]) -> tuple[str, str]:
    """``(label, detail)`` for a verdict and its checks (see the module docstring).

    Parameters
    ----------
    verdict : str
        The verdict under the analysis as fitted.
    checks : list of Check
        Every check that was attempted.
    missing : dict
        ``{family: reason}`` for families that could not run at all.

    Returns
    -------
    tuple of (str, str)
    """
    if verdict == "not assessable":
        return "not assessable", "no verdict to test"
    flips = [c for c in checks if c.verdict is not None and c.verdict != verdict]
    untrusted = [c for c in checks if c.verdict is None]
    ran = {c.family for c in checks if c.verdict is not None}
    gaps = [f"{family}: {reason}" for family, reason in missing.items()]
    gaps += [
        f"{family}: no check ran"
        for family in FAMILIES
        if family not in ran
        and family not in missing
        and not any(c.family == family for c in untrusted)
    ]
    gaps += [f"{c.name} ({c.note})" for c in untrusted]
    if flips:
        detail = "changed by " + _join([f"{c.name} ({c.verdict}, {c.note})" for c in flips])
        if gaps:
            detail += "; not checked: " + _join(gaps)
        return "not robust", detail
    if gaps:
        return "partly assessed", f"survives the checks that ran; not checked: {_join(gaps)}"
    counts = {family: sum(c.family == family for c in checks) for family in FAMILIES}
    return "robust", (
        f"survives {counts['leave-one-out']} leave-one-out, {counts['bias']} bias-adjusted and "
        f"{counts['prior']} alternative-prior checks"
    )
