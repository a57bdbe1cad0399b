"""Receptive-field growth plot: r_min and r_max against depth, with matplotlib (the ``plot`` extra).

The x axis counts only the layers that can grow the field (windows with a kernel above 1 and
upsampling): pointwise layers would add flat steps that say nothing, and the count of
field-growing layers is what "depth" means for a receptive field. The y axis is logarithmic,
since r_max grows geometrically with downsampling. Each input size is a horizontal line, and the
layers that are unproductive at it (their input already sees the whole input) are shaded.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from rflint.rf.status import is_critical, is_unproductive
from rflint.errors import UsageError
from rflint.ir import INF, Analysis, LayerRF

PALETTE = ("#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c2255c", "#5c940d")


@dataclass(frozen=True)
class Series:
    """One curve pair: a model analysed at one input size."""

    label: str
    analysis: Analysis


def require_matplotlib():
    """Import matplotlib with a headless backend, or explain how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "this needs matplotlib, which is not installed",
            hint="pip install 'rflint[plot]'",
        ) from None
    return plt


def growing_layers(analysis: Analysis) -> list[LayerRF]:
    """The layers that define depth on the x axis, in graph order, with a finite field."""
    return [
        lrf
        for lrf in analysis.layers
        if lrf.layer.grows_field and all(a.r_max != INF for a in lrf.axes)
    ]


def _runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of consecutive True entries (inclusive indices)."""
    out, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i - 1))
            start = None
    return out


def growth_figure(series: Sequence[Series], axis: int = 0, title: str | None = None):
    """A matplotlib Figure with one r_min/r_max pair per series.

    Args:
        series: (label, analysis) pairs; each analysis carries its own input size.
        axis: which spatial axis to plot (0 = height for images).
        title: the figure title; a default names the models.
    """
    plt = require_matplotlib()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(10, 5.6), dpi=110)
    multi = len(series) > 1  # colours stand for models, dotted lines for input sizes
    sizes_drawn: set[int] = set()
    curves_drawn: set[tuple] = set()  # identical curves (one model, several sizes) drawn once
    top, bottom, right = 1.0, float("inf"), 1
    models = list(dict.fromkeys(s.analysis.graph.name for s in series))
    for s in series:
        colour = PALETTE[models.index(s.analysis.graph.name) % len(PALETTE)]
        layers = growing_layers(s.analysis)
        size = s.analysis.graph.input_size
        n = size[axis] if axis < len(size) else size[0]
        if not layers:
            continue
        rmin = [float(lrf.axes[axis].r_min) for lrf in layers]
        rmax = [float(lrf.axes[axis].r_max) for lrf in layers]
        top, right, bottom = max(top, max(rmax), n), max(right, len(layers)), min(bottom, min(rmin), n)
        key = (s.analysis.graph.name, tuple(rmin), tuple(rmax))
        if key not in curves_drawn:
            curves_drawn.add(key)
            _draw_curves(ax, rmin, rmax, colour, (drawable(s.analysis.graph.name) if len(models) > 1 else "") + " ")
        _shade_layers(ax, layers, size, rmax, colour, multi)
        if n not in sizes_drawn:
            sizes_drawn.add(n)
            ax.axhline(n, color="#495057", lw=1.2, ls=":")
            ax.text(1.0, n, f"input {n} ", transform=ax.get_yaxis_transform(), ha="right", va="bottom", fontsize=9, color="#495057")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, right + 0.5)
    ax.set_yscale("log")
    ax.set_ylim(min(bottom, top) / 1.4, top * 2.2)
    ax.set_xlabel("depth (field-growing layers: convolutions and poolings with kernel > 1)")
    ax.set_ylabel("receptive field (pixels, log scale)")
    ax.grid(True, which="both", axis="y", alpha=0.25)
    _legend(ax, multi, len({s.analysis.graph.input_size for s in series}) > 1)
    ax.set_title(title if title is not None else _default_title(series, axis), fontsize=11)
    fig.tight_layout()
    return fig


def _draw_curves(ax, rmin: list[float], rmax: list[float], colour: str, name: str) -> None:
    x = list(range(1, len(rmax) + 1))
    ax.plot(x, rmax, color=colour, lw=2, marker="o", ms=3, label=f"{name}r_max".strip())
    ax.plot(x, rmin, color=colour, lw=1.5, ls="--", marker="o", ms=2.5, label=f"{name}r_min".strip())


def _shade_layers(ax, layers: list, size: tuple[int, ...], rmax: list[float], colour: str, multi: bool) -> None:
    """Unproductive layers shaded (in the model's colour when several are overlaid); for one
    model, critical layers too and an arrow at the first unproductive one."""
    unprod = [is_unproductive(lrf, size) for lrf in layers]
    for a, b in _runs(unprod):
        ax.axvspan(a + 0.5, b + 1.5, color=colour if multi else "#c92a2a", alpha=0.13 if multi else 0.16, lw=0)
    if multi:
        return
    for a, b in _runs([is_critical(lrf, size) for lrf in layers]):
        ax.axvspan(a + 0.5, b + 1.5, color="#f59f00", alpha=0.18, lw=0)
    if True in unprod:
        i = unprod.index(True)
        ax.annotate(
            f"first unproductive:\n{drawable(layers[i].layer.qualname)}", xy=(i + 1, rmax[i]), xytext=(-30, 22), textcoords="offset points",
            ha="right", fontsize=8.5, color="#c92a2a", arrowprops={"arrowstyle": "->", "color": "#c92a2a", "lw": 0.8},
        )


def _legend(ax, multi: bool, several_sizes: bool) -> None:
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    if multi:
        handles.append(Patch(color="#868e96", alpha=0.3))
        labels.append("unproductive (shaded in the model's colour" + ("; darker = at more input sizes)" if several_sizes else ")"))
    else:
        handles += [Patch(color="#c92a2a", alpha=0.3), Patch(color="#f59f00", alpha=0.35)]
        labels += ["unproductive", "critical"]
    ax.legend(handles, labels, loc="upper left", fontsize=8.5, framealpha=0.9)


def _default_title(series: Sequence[Series], axis: int) -> str:
    title = ", ".join(dict.fromkeys(drawable(s.analysis.graph.name) for s in series)) + " — receptive-field growth"
    return title + (f" (axis {axis})" if len(set(series[0].analysis.graph.input_size)) > 1 else "")


def drawable(name: str) -> str:
    """A layer name as a picture shows it: characters no font draws (control characters, an
    ``nn.ModuleDict`` key's escape sequence) written as escapes, so matplotlib neither drops
    them nor warns about them with the raw character on stderr."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in name)


def growth_png(series: Sequence[Series], axis: int = 0, title: str | None = None) -> bytes:
    """The growth figure as PNG bytes."""
    plt = require_matplotlib()
    fig = growth_figure(series, axis, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def save_figure(fig, path: str) -> None:
    """Write a figure; the format follows the file extension (png, svg, pdf)."""
    plt = require_matplotlib()
    fig.savefig(path)
    plt.close(fig)


def figure_bytes(fig, fmt: str) -> bytes:
    """A figure as the bytes of one image format (png, svg, pdf); the figure stays open."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()


def erf_figure(result):
    """Heatmap of an :class:`rflint.engine.erf.ErfResult` (2-d inputs) plus the marginal profiles with
    their Gaussian fits. The dashed square holds 95 % of the gradient; the solid one is the
    theoretical field r_max around the same centre (clipped by the picture)."""
    plt = require_matplotlib()
    from matplotlib.patches import Rectangle

    grad = result.grad_map
    if grad.dim() != 2:
        raise UsageError("the heatmap is drawn for 2-d inputs only; use --format json for the numbers")
    data = grad.float().numpy()
    h, w = data.shape
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 5.4), dpi=110, gridspec_kw={"width_ratios": [1.05, 1]})
    from matplotlib.colors import LogNorm

    # log colours: residual networks put a sharp spike at the centre (the shortcut-only path)
    # that would hide the wide Gaussian part on a linear scale
    top = float(data.max()) or 1.0
    clipped = data.clip(min=top * 1e-4)
    im = ax.imshow(clipped, cmap="inferno", interpolation="nearest", norm=LogNorm(vmin=top * 1e-4, vmax=top))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of |gradient| per pixel (log scale)")
    cy, cx = result.centroid
    half = result.side / 2
    ax.add_patch(
        Rectangle((cx - half, cy - half), result.side, result.side, fill=False, ec="#4dabf7", lw=1.6, ls="--")
    )
    rh, rw = (r if r is not None else max(h, w) * 4 for r in result.r_max)
    ax.add_patch(Rectangle((cx - rw / 2, cy - rh / 2), rw, rh, fill=False, ec="#63e6be", lw=1.6))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.plot([result.peak[1]], [result.peak[0]], marker="+", color="#4dabf7", ms=10)
    ax.set_title(
        f"{drawable(result.model)}: {drawable(result.layer)} (unit {tuple(result.centre)} of {'x'.join(map(str, result.output_size))})",
        fontsize=10,
    )
    outside = cx - rw / 2 <= -0.5 and cx + rw / 2 >= w - 0.5 and cy - rh / 2 <= -0.5 and cy + rh / 2 >= h - 0.5
    beyond = " (beyond the image)" if outside else ""
    ax.set_xlabel(
        f"dashed: 95 % of the gradient ({result.side} px)   solid: r_max "
        f"{'x'.join(str(r) for r in result.r_max)}{beyond}",
        fontsize=9,
    )
    _marginals(bx, grad, result)
    fig.suptitle(
        f"effective receptive field, {result.samples} samples ({result.inputs}), input {'x'.join(map(str, result.input_shape[2:]))}",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def _marginals(bx, grad, result) -> None:
    """The marginal gradient mass per row and per column, each with its Gaussian fit."""
    import math

    colours = ("#1c7ed6", "#e8590c")
    for a, (profile, sigma, mu, label) in enumerate(
        zip(_profiles(grad), result.sigma, result.centroid, ("rows (axis 0)", "columns (axis 1)"))
    ):
        xs = list(range(len(profile)))
        bx.plot(xs, profile, color=colours[a], lw=1.5, label=f"{label}: sigma {sigma:.1f}")
        if sigma > 0:
            fit = [math.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi)) for x in xs]
            bx.plot(xs, fit, color=colours[a], lw=1, ls=":")
    bx.set_title("marginal gradient mass per row / column, with Gaussian fits (dotted)", fontsize=10)
    bx.set_xlabel("input pixel")
    ratio = result.ratio[0]
    title = f"ERF {result.side} px / r_max {result.r_max[0]} = {ratio:.2f}" if ratio is not None else None
    bx.legend(fontsize=8.5, loc="upper right", title=title, title_fontsize=8.5)
    bx.grid(alpha=0.25)


def _profiles(grad) -> list[list[float]]:
    dims = range(grad.dim())
    return [grad.sum(dim=tuple(d for d in dims if d != a)).tolist() for a in dims]
