"""examples/plots.py, the examples' one plotting module: labels stay inside the frame, the legend
goes under the panels (off the data), and a figure is written whole."""

from tests.util import load_example


def test_labels_inside_the_frame_and_legend_below_the_panels(tmp_path):
    plots = load_example("plots")
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs, ys = [0.75, 1.3, 2.0, 3.0, 4.9], [80, 96.6, 98.8, 99.3, 99.3]  # the pruning figure's shape
    ax.plot(xs, ys, "o-", label="a line")
    ax.margins(x=0.08, y=0.12)
    plots.label_points(ax, xs, ys, ["a label\nof two lines"] * len(xs))
    legend = plots.legend_below(fig, ax)
    plots.finish(fig, tmp_path / "figure.png")
    fig.canvas.draw()
    frame = ax.get_window_extent()
    for text in ax.texts:
        box = text.get_window_extent()
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text
    assert legend.get_window_extent().y1 <= ax.get_tightbbox().y0 + 1  # under the panel and its x-axis label
    assert (tmp_path / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp*"))
