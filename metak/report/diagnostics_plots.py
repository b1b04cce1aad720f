"""Posterior figures, drawn with matplotlib: prior vs posterior densities (every fit) and, for
MCMC fits, trace, rank and predictive-check plots.

Drawn here rather than by arviz-plots: importing arviz-plots costs about 3 s and its trace and
rank plots 0.5-2 s each on the 2-core reference machine, which made the report a third of a
whole bundled fit; these take a few tenths of a second. Each function returns ``(svg, note)``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from metak.report.figures import OBSERVED, SHRUNKEN
from metak.report.inputs import flat_draws
from metak.report.kde import density
from metak.report.render import figure_to_svg, styled

__all__ = ["SCALAR_VARS", "sampler_vars", "prior_posterior_svg", "trace_svg", "rank_svg", "ppc_svg"]

# Parameters worth a density/trace panel, in display order (study-level theta would swamp the page).
SCALAR_VARS = ("intercept", "mu", "beta", "tau", "nu", "r_prepost", "gamma_link", "corr")
_MAX_PANELS = 8
_ZOOM = 0.35  # widen the posterior's 0.5-99.5% range by this fraction on each side
_CHAIN_COLORS = ("#1f3b73", "#d9730d", "#3b7d3b", "#8c2d2d", "#6a4c93", "#4d4d4d")
_RANK_BINS = 20
_PPC_REPLICATES = 60


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
    if not dims:
        return [""]
    grids = np.meshgrid(*[array[d].values for d in dims], indexing="ij")
    return [",".join(str(g.flat[j]) for g in grids) for j in range(grids[0].size)]


def _by_chain(tree, names) -> list[tuple[str, np.ndarray]]:
    """(panel title, draws with shape (chain, draw)) per scalar component of ``names``."""
    out = []
    for name in names:
        array = tree["posterior"].dataset[name]
        other = [d for d in array.dims if d not in ("chain", "draw")]
        values = array.transpose("chain", "draw", *other).values
        values = values.reshape(values.shape[0], values.shape[1], -1)
        labels = _component_labels(tree, name)
        for j in range(values.shape[2]):
            title = name if values.shape[2] == 1 else f"{name}[{labels[j]}]"
            out.append((title, values[:, :, j]))
    return out


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
            ax.plot(
                grid,
                density(post, grid, reflect_at_zero=positive),
                color=SHRUNKEN,
                lw=1.6,
                label="posterior",
            )
            if prior is not None:
                ax.plot(
                    grid,
                    density(prior, grid, reflect_at_zero=positive),
                    color=OBSERVED,
                    lw=1.2,
                    label="prior",
                )
            ax.set_title(title)
            ax.set_yticks([])
            ax.set_ylim(bottom=0)
            ax.set_xlim(grid[0], grid[-1])
            ax.xaxis.set_major_locator(MaxNLocator(4))
        if columns:
            fig.axes[0].legend(fontsize=8, loc="upper left")
        # Fixed margins (no y tick labels; a title above, x tick labels below): tight_layout
        # would draw the figure once more only to measure it.
        width = fig.get_figwidth()
        fig.subplots_adjust(
            left=0.2 / width, right=1 - 0.2 / width, bottom=0.12, top=0.88, wspace=0.15
        )
        svg = figure_to_svg(fig, key)
    note = "" if has_prior else "No prior draws stored for these parameters: posterior only."
    return svg, note


def _envelope(values: np.ndarray, points: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """A long trace as (x, y) for drawing: each block of draws as its minimum and maximum, in
    draw order, so a spike stays visible while the SVG stays small (a few hundred points)."""
    n = values.size
    if n <= points:
        return np.arange(n), values
    size = int(np.ceil(n / (points // 2)))
    blocks = values[: n - n % size].reshape(-1, size)
    starts = np.arange(blocks.shape[0]) * size
    low, high = blocks.argmin(axis=1), blocks.argmax(axis=1)
    first, second = np.minimum(low, high), np.maximum(low, high)
    x = np.column_stack([starts + first, starts + second]).reshape(-1)
    y = np.column_stack(
        [blocks[np.arange(len(blocks)), first], blocks[np.arange(len(blocks)), second]]
    ).reshape(-1)
    return x, y


def trace_svg(key: str, tree, names: list[str]) -> tuple[str, str]:
    """Trace by chain, one panel per parameter, divergent transitions marked in red below.

    (Per-chain densities are left to the rank plot and the prior/posterior figure: each extra
    matplotlib axes costs ~40 ms, and a joint model has eight parameters.)
    """
    rows = _by_chain(tree, names)
    diverging = None
    if "sample_stats" in tree.children and "diverging" in tree["sample_stats"].dataset:
        diverging = np.asarray(tree["sample_stats"].dataset["diverging"].values, dtype=bool)
    with styled(key):
        columns = 2 if len(rows) > 1 else 1
        lines = int(np.ceil(len(rows) / columns)) or 1
        fig = Figure(figsize=(10.0, 0.4 + 1.7 * lines))
        for index, (title, draws) in enumerate(rows):
            ax = fig.add_subplot(lines, columns, index + 1)
            for chain, values in enumerate(draws):
                color = _CHAIN_COLORS[chain % len(_CHAIN_COLORS)]
                ax.plot(*_envelope(values), color=color, lw=0.5, alpha=0.8)
            if diverging is not None and diverging.shape == draws.shape and diverging.any():
                low = float(np.nanmin(draws))
                for flags in diverging:
                    where = np.flatnonzero(flags)
                    ax.plot(where, np.full(where.size, low), "|", color="#c00000", markersize=7)
            ax.set_title(title, loc="left", fontsize=9)
            ax.set_xlim(0, draws.shape[1])
            ax.yaxis.set_major_locator(MaxNLocator(3))
            ax.tick_params(labelsize=8)
            if index < len(rows) - columns:
                ax.tick_params(labelbottom=False)  # draw numbers once, under the bottom row
        # Fixed margins instead of tight_layout: its extra draws measure every tick label again.
        fig.subplots_adjust(
            left=0.07,
            right=0.97,
            bottom=0.12 / lines + 0.02,
            top=0.97 - 0.1 / lines,
            hspace=0.45,
            wspace=0.18,
        )
        return figure_to_svg(fig, key), ""


def rank_svg(key: str, tree, names: list[str]) -> tuple[str, str]:
    """Rank histograms by chain (Vehtari et al. 2021): every draw ranked among all chains'
    draws; if the chains agree each chain's ranks are uniform, so its histogram stays inside the
    band (pointwise 95% under uniformity, normal approximation to the binomial bin counts)."""
    rows = _by_chain(tree, names)
    with styled(key):
        columns = min(len(rows), 4) or 1
        lines = int(np.ceil(len(rows) / columns)) or 1
        fig = Figure(figsize=(10.0, 0.4 + 2.0 * lines))
        for index, (title, draws) in enumerate(rows):
            ax = fig.add_subplot(lines, columns, index + 1)
            n_chain, n_draw = draws.shape
            ranks = np.argsort(np.argsort(draws.reshape(-1), kind="stable"), kind="stable")
            ranks = ranks.reshape(n_chain, n_draw)
            edges = np.linspace(0, n_chain * n_draw, _RANK_BINS + 1)
            expected = n_draw / _RANK_BINS
            half_width = 1.96 * np.sqrt(n_draw * (1 / _RANK_BINS) * (1 - 1 / _RANK_BINS))
            ax.axhspan(expected - half_width, expected + half_width, color="#dddddd", lw=0)
            ax.axhline(expected, color="#999999", lw=0.8)
            for chain in range(n_chain):
                counts, _ = np.histogram(ranks[chain], bins=edges)
                ax.stairs(
                    counts,
                    edges,
                    baseline=None,
                    lw=1.1,
                    color=_CHAIN_COLORS[chain % len(_CHAIN_COLORS)],
                )
            ax.set_ylim(0, 1.6 * (expected + half_width))
            ax.set_title(title, fontsize=9)
            ax.set_yticks([])
            ax.set_xticks([])
            ax.set_xlabel("rank", fontsize=8)
        fig.tight_layout()
        return figure_to_svg(fig, key), ""


def ppc_svg(key: str, tree) -> tuple[str, str] | None:
    """Posterior predictive check of the observed effects, or None without the groups."""
    if "posterior_predictive" not in tree.children or "observed_data" not in tree.children:
        return None
    names = [
        n
        for n in tree["posterior_predictive"].dataset.data_vars
        if n in tree["observed_data"].dataset
    ]
    if not names:
        return None
    predicted = flat_draws(tree, "posterior_predictive", names[0])
    observed = np.sort(np.asarray(tree["observed_data"].dataset[names[0]].values).reshape(-1))
    with styled(key):
        fig = Figure(figsize=(6.0, 3.0))
        ax = fig.add_subplot()
        step = max(1, len(predicted) // _PPC_REPLICATES)
        for replicate in predicted[::step][:_PPC_REPLICATES]:
            ax.ecdf(replicate.reshape(-1), color=SHRUNKEN, alpha=0.25, lw=0.7)
        ax.ecdf(observed, color=OBSERVED, lw=2, label="observed")
        ax.set_ylabel("ECDF")
        ax.set_xlabel("effect size")
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        return figure_to_svg(fig, key), ""
