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


def test_a_smoke_runs_figures_are_watermarked_and_only_those(tmp_path):
    common, plots = load_example("common"), load_example("plots")
    plt = plots.pyplot()
    try:
        for smoke in (True, False):
            common.mark_smoke_run(smoke)
            fig, ax = plt.subplots(figsize=(5, 3.5))
            ax.plot([0, 1], [0, 1])
            common.save_figure(fig, tmp_path / f"smoke_{smoke}.png")
            marks = [t.get_text() for t in fig.texts if "SMOKE RUN" in t.get_text()]
            assert marks == (["SMOKE RUN (--quick)\nnot a measurement"] if smoke else [])
    finally:
        common.mark_smoke_run(False)


def test_every_example_with_quick_and_pictures_marks_its_smoke_runs():
    """An example that has ``--quick`` and writes a PNG calls ``mark_smoke_run(args.quick)`` in ``main``,
    before any picture: otherwise a smoke run's picture could pass for a measurement."""
    import re
    from pathlib import Path

    examples = Path(__file__).resolve().parent.parent / "examples"
    checked = []
    for path in sorted(examples.glob("*.py")):
        src = path.read_text()
        if '"--quick"' not in src or not re.search(r"save_figure|plots\.finish|draw_grid|generator_grid|grid_by_class",
                                                   src):
            continue
        main = src[src.index("def main("):]
        assert re.match(r"def main\(argv=None\):\n    args = parse_args\(argv\)\n    mark_smoke_run\(args\.quick\)",
                        main), path.name
        checked.append(path.stem)
    assert len(checked) >= 8, checked  # the hands-on, prune, quantize, quantface, hinton, kd methods, data-free, G
