"""The one small plotting module of the examples: a figure is made to be looked at and to teach.

The rules every picture of the examples follows, and the helpers that keep them:

- **the legend never covers data**: :func:`legend_below` puts one legend for the whole figure
  under the panels;
- **numbers are written, not guessed**: :func:`label_points` writes a value beside each point,
  on the side that keeps it inside the frame;
- **a quantity spanning decades gets a log axis** with readable ticks (:func:`log_axis`);
- **every reference line says what it refers to** (:func:`reference_line`);
- **titles say what is shown**, and a PNG is written whole or not at all (:func:`save_figure`,
  from :mod:`common`).

matplotlib is imported lazily (:func:`pyplot`) with the non-interactive Agg backend, so the
examples run on machines without a display.
"""

from __future__ import annotations

from pathlib import Path

from common import save_figure

__all__ = ["pyplot", "legend_below", "label_points", "log_axis", "reference_line", "integer_ticks", "finish",
           "save_figure", "RUN_COLORS", "RIGHT", "WRONG"]

# one colour per run of the hands-on, the same in every picture
RUN_COLORS = {"teacher": "tab:blue", "student": "tab:orange", "kd": "tab:green", "fkd": "tab:red"}
RIGHT, WRONG = "tab:green", "tab:red"  # a correct / a wrong prediction


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def legend_below(fig, axes, ncol: int | None = None, fontsize: float = 9, **kwargs):
    """One legend for the figure, centred under its panels, built from the labelled artists of
    ``axes`` (one Axes or several; a label seen twice is listed once). Call :func:`finish` after
    it: the layout then leaves room for the legend."""
    axes = list(axes) if isinstance(axes, (list, tuple)) or hasattr(axes, "ravel") else [axes]
    if hasattr(axes[0], "ravel"):
        axes = list(axes[0].ravel())
    handles = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if not handles:
        return None
    ncol = ncol or min(len(handles), 4)
    fig._minikd_legend = fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol,
                                    fontsize=fontsize, frameon=False, **kwargs)
    return fig._minikd_legend


def label_points(ax, xs, ys, texts, fontsize: float = 8, offset: float = 6, color=None):
    """Write ``texts[i]`` beside the point (xs[i], ys[i]), on the side that keeps it inside the frame:
    left of points in the right third of the axes, right of the others; level with points in the
    lower third (a line rising from them stays clear of the text), below the others. Call after the
    axes' limits are final, with margins that leave room for the text."""
    ax.get_xlim(), ax.get_ylim()  # the autoscaled limits, applied now
    to_axes = ax.transData + ax.transAxes.inverted()
    for x, y, text in zip(xs, ys, texts):
        u, v = to_axes.transform((x, y))
        right, low = u > 0.66, v < 0.33
        ax.annotate(text, (x, y), textcoords="offset points", fontsize=fontsize, color=color,
                    xytext=((-1 if right else 1) * (2 * offset if low else offset), 0 if low else -offset),
                    ha="right" if right else "left", va="center" if low else "top")


def log_axis(ax, axis: str = "y", ticks=None, fmt: str = "{:g}"):
    """A log scale on ``axis`` ('x' or 'y') with major ticks at ``ticks`` written with ``fmt``
    (plain numbers, not powers of ten) and no minor tick labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    if ticks is not None:
        target.set_major_locator(FixedLocator(list(ticks)))
        target.set_major_formatter(FuncFormatter(lambda v, _: fmt.format(v)))
    target.set_minor_formatter(NullFormatter())


def reference_line(ax, y: float, text: str, color="gray", ls=":", where: str = "right", fontsize: float = 8):
    """A horizontal reference line at ``y`` that says what it is: ``text`` written on it, inside
    the frame, at its ``where`` end ('left' or 'right')."""
    ax.axhline(y, color=color, ls=ls, lw=1)
    x = 0.99 if where == "right" else 0.01
    ax.text(x, y, text, transform=ax.get_yaxis_transform(), ha="right" if where == "right" else "left",
            va="bottom", fontsize=fontsize, color=color)


def integer_ticks(ax, values, axis: str = "x"):
    """Ticks exactly at ``values`` (epochs, bit widths): no 1.5th epoch."""
    values = list(values)
    (ax.set_xticks if axis == "x" else ax.set_yticks)(values, [f"{v:g}" for v in values])


def finish(fig, path: Path, title: str | None = None) -> None:
    """An overall ``title``, the layout (leaving room for a :func:`legend_below`), and the PNG
    written whole (:func:`common.save_figure`)."""
    if title:
        fig.suptitle(title, fontsize=12)
    legend = getattr(fig, "_minikd_legend", None)
    if legend is None:
        fig.tight_layout()
    else:
        fig.canvas.draw()
        height = legend.get_window_extent().height / fig.bbox.height  # the legend's share of the figure
        fig.tight_layout(rect=(0, height + 0.01, 1, 1))
    save_figure(fig, path)
