"""Posterior figures: prior vs posterior densities (matplotlib), and for MCMC fits the trace,
rank and predictive-check plots drawn by arviz-plots.

Each function returns ``(svg, note)``. When an arviz-plots call fails on a file (a group or
variable shaped in a way it does not expect), a plain matplotlib fallback is drawn instead and
``note`` says so, so the report never loses a figure silently.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from metak.report.figures import OBSERVED, SHRUNKEN
from metak.report.inputs import flat_draws
from metak.report.kde import density
from metak.report.render import figure_to_svg, pyplot, styled

__all__ = ["SCALAR_VARS", "sampler_vars", "prior_posterior_svg", "trace_svg", "rank_svg", "ppc_svg"]

# Parameters worth a density/trace panel, in display order (study-level theta would swamp the page).
SCALAR_VARS = ("intercept", "mu", "beta", "tau", "nu", "r_prepost", "gamma_link", "corr")
_MAX_PANELS = 8
_ZOOM = 0.35  # widen the posterior's 0.5-99.5% range by this fraction on each side


def _panels(tree, names) -> int:
    posterior = tree["posterior"].dataset
    return sum(
        int(np.prod([posterior.sizes[d] for d in posterior[n].dims if d not in ("chain", "draw")]))
        for n in names
    )


def sampler_vars(tree) -> list[str]:
    """Scalar-ish posterior variables to show, skipping ``mu`` when ``intercept`` exists."""
    posterior = tree["posterior"].dataset
    names = [name for name in SCALAR_VARS if name in posterior.data_vars]
    if "intercept" in names and "mu" in names:
        names.remove("mu")
    shown, panels = [], 0
    for name in names:
        size = int(
            np.prod(
                [posterior.sizes[d] for d in posterior[name].dims if d not in ("chain", "draw")]
            )
        )
        if panels + size <= _MAX_PANELS:
            shown.append(name)
            panels += size
    return shown


def _arviz(call, key, fallback, what):
    """Run an arviz-plots call; on failure draw ``fallback()`` and explain."""
    plt = pyplot()
    before = set(plt.get_fignums())
    try:
        with styled(key):
            collection = call()
            fig = collection.get_viz("figure")
            tweak = getattr(call, "tweak", None)
            if tweak is not None:
                tweak(collection)
            return figure_to_svg(fig, key), ""
    except Exception as err:  # noqa: BLE001 - any arviz-plots failure falls back, with a note
        for number in set(plt.get_fignums()) - before:  # only the figures this call opened
            plt.close(number)
        note = (
            f"arviz-plots could not draw the {what} ({type(err).__name__}: {err}); "
            "drawn with plain matplotlib."
        )
        return fallback(), note


def _columns(tree, names, has_prior):
    """(panel title, posterior draws, prior draws or None) per scalar component of ``names``."""
    columns = []
    for name in names:
        post = flat_draws(tree, "posterior", name)
        prior = flat_draws(tree, "prior", name) if has_prior else None
        labels = _component_labels(tree, name)
        post = post.reshape(len(post), -1)
        prior = None if prior is None else prior.reshape(len(prior), -1)
        for j in range(post.shape[1]):
            title = name if post.shape[1] == 1 else f"{name}[{labels[j]}]"
            columns.append((title, post[:, j], None if prior is None else prior[:, j]))
    return columns


def _component_labels(tree, name) -> list[str]:
    """Coordinate labels of a vector parameter's components (e.g. the moderator of a slope)."""
    array = tree["posterior"].dataset[name]
    dims = [d for d in array.dims if d not in ("chain", "draw")]
    if len(dims) != 1:
        size = int(np.prod([array.sizes[d] for d in dims])) if dims else 1
        return [str(j) for j in range(size)]
    return [str(value) for value in array[dims[0]].values]


def prior_posterior_svg(key: str, tree, names: list[str]) -> tuple[str, str]:
    """Posterior density with the prior density overlaid, zoomed on the posterior.

    Drawn with matplotlib directly (kernel densities from :mod:`metak.report.kde`): the same
    figure for exact and MCMC fits, and a fit that needs no MCMC never imports arviz-plots.
    """
    has_prior = "prior" in tree.children and all(n in tree["prior"].dataset for n in names)
    columns = _columns(tree, names, has_prior)
    with styled(key):
        fig = Figure(figsize=(min(10.0, 2.6 * max(len(columns), 1) + 0.4), 2.6))
        for index, (title, post, prior) in enumerate(columns):
            ax = fig.add_subplot(1, len(columns), index + 1)
            low, high = np.nanquantile(post, [0.005, 0.995])
            pad = _ZOOM * (high - low) if high > low else max(abs(low), 1.0) * 0.1
            grid = np.linspace(low - pad, high + pad, 300)
            # Reflect at zero only for parameters that cannot be negative (tau, nu).
            positive = bool(np.nanmin(post) >= 0) and (prior is None or np.nanmin(prior) >= 0)
            if positive:
                grid = grid[grid >= 0] if np.any(grid >= 0) else grid
            ax.plot(grid, density(post, grid, reflect_at_zero=positive), color=SHRUNKEN, lw=1.6,
                    label="posterior")
            if prior is not None:
                ax.plot(grid, density(prior, grid, reflect_at_zero=positive), color=OBSERVED,
                        lw=1.2, label="prior")
            ax.set_title(title)
            ax.set_yticks([])
            ax.set_ylim(bottom=0)
            ax.set_xlim(grid[0], grid[-1])
            ax.xaxis.set_major_locator(MaxNLocator(4))
        if columns:
            fig.axes[0].legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        svg = figure_to_svg(fig, key)
    note = "" if has_prior else "No prior draws stored for these parameters: posterior only."
    return svg, note


def trace_svg(key: str, tree, names: list[str]) -> tuple[str, str]:
    """Trace (by chain, divergences marked) beside each marginal density."""
    import arviz_plots as azp

    def fallback():
        with styled(key):
            fig = Figure(figsize=(9, 1.8 * len(names)))
            for index, name in enumerate(names):
                ax = fig.add_subplot(len(names), 1, index + 1)
                values = tree["posterior"].dataset[name]
                values = (
                    values.stack(flat=[d for d in values.dims if d not in ("chain", "draw")])
                    if values.ndim > 2
                    else values.expand_dims("flat", axis=-1)
                )
                for chain in range(values.sizes["chain"]):
                    ax.plot(values.isel(chain=chain).values, lw=0.6)
                ax.set_ylabel(name)
            return figure_to_svg(fig, key)

    return _arviz(
        lambda: azp.plot_trace_dist(
            tree,
            var_names=names,
            backend="matplotlib",
            figure_kwargs={"figsize": (10.0, 0.6 + 1.9 * _panels(tree, names))},
        ),
        key,
        fallback,
        "trace plot",
    )


def rank_svg(key: str, tree, names: list[str]) -> tuple[str, str]:
    """Fractional rank ECDF plots per chain (uniform when chains agree)."""
    import arviz_plots as azp

    def fallback():
        with styled(key):
            fig = Figure(figsize=(3 * len(names), 2.6))
            for index, name in enumerate(names):
                ax = fig.add_subplot(1, len(names), index + 1)
                values = tree["posterior"].dataset[name].values
                chains = values.reshape(values.shape[0], values.shape[1], -1)[..., 0]
                ranks = chains.reshape(-1).argsort().argsort().reshape(chains.shape)
                for chain in ranks:
                    ax.hist(chain, bins=20, histtype="step")
                ax.set_title(name)
            return figure_to_svg(fig, key)

    return _arviz(
        lambda: azp.plot_rank(
            tree, var_names=names, backend="matplotlib", figure_kwargs={"figsize": (10.0, 2.7)}
        ),
        key,
        fallback,
        "rank plot",
    )


def ppc_svg(key: str, tree) -> tuple[str, str] | None:
    """Posterior predictive check of the observed effects, or None without the groups."""
    import arviz_plots as azp

    if "posterior_predictive" not in tree.children or "observed_data" not in tree.children:
        return None
    names = [
        n
        for n in tree["posterior_predictive"].dataset.data_vars
        if n in tree["observed_data"].dataset
    ]
    if not names:
        return None

    def fallback():
        with styled(key):
            fig = Figure(figsize=(6, 3.2))
            ax = fig.add_subplot()
            predicted = flat_draws(tree, "posterior_predictive", names[0])
            observed = np.sort(tree["observed_data"].dataset[names[0]].values.reshape(-1))
            for draw in predicted[:: max(1, len(predicted) // 50)]:
                ax.ecdf(draw.reshape(-1), color=SHRUNKEN, alpha=0.2, lw=0.6)
            ax.ecdf(observed, color=OBSERVED, lw=2)
            return figure_to_svg(fig, key)

    return _arviz(
        lambda: azp.plot_ppc_dist(
            tree,
            var_names=names,
            kind="ecdf",
            backend="matplotlib",
            figure_kwargs={"figsize": (6.5, 3.2)},
        ),
        key,
        fallback,
        "posterior predictive check",
    )
