"""The figures of docs/exercises.md, computed with minikd.

    python docs/exercises/make_figures.py

writes, next to this script:

- temperature.png: softmax(z/T) of the slides' teacher logits (cat 10, lion 2, horse −1) for
  several T, on a log scale, and the entropy of softmax(z/T) against T (recap 3 and 5);
- kl_to_mse.png: KL and T²·KL of the recap's student and teacher logits against T, and the
  squared distance of the centred logits that T²·KL tends to (recap 4, why T²);
- transfer.png: the decision regions of the toy teacher and of two 51-parameter students
  distilled from it, one on the training inputs and one on uniform noise (recap 1, true or
  false 3). The toy task is the page's, with the same seeds.
"""

import math
import os
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minikd as mk  # noqa: E402
from minikd import functional as F  # noqa: E402
from minikd import kd, nn, optim  # noqa: E402

HERE = Path(__file__).resolve().parent


def entropy(p):
    p = np.asarray(p, dtype=np.float64)
    return float(-(p[p > 0] * np.log(p[p > 0])).sum())


def temperature_figure():
    z_teacher = [10.0, 2.0, -1.0]
    classes = ["cat", "lion", "horse"]
    temps = [1, 3, 10, 30]
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(temps)))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(temps)
    for k, (T, c) in enumerate(zip(temps, colors)):
        p = kd.softmax_with_temperature(z_teacher, T).numpy()
        xs = np.arange(3) + (k - (len(temps) - 1) / 2) * width
        ax1.bar(xs, p, width, color=c, label=f"T = {T}")
    ax1.set_yscale("log")
    ax1.set_ylim(1e-5, 5)
    ax1.set_xticks(range(3), classes)
    ax1.set_ylabel("probability (log scale)")
    ax1.set_title("teacher logits (10, 2, −1): softmax(z / T)")
    ax1.axhline(1 / 3, color="grey", lw=0.8, ls="--")
    ax1.text(2.45, 1 / 3 * 1.25, "uniform 1/3", ha="right", va="bottom", fontsize=8, color="grey")
    ax1.legend(loc="upper right", ncol=4, fontsize=8, frameon=False)

    Ts = np.logspace(-1, 2, 200)
    for z, label, c in (([2.0, 1.0, 0.1], "recap logits (2.0, 1.0, 0.1)", "tab:blue"),
                        (z_teacher, "teacher logits (10, 2, −1)", "tab:orange")):
        H = [entropy(kd.softmax_with_temperature(z, T).numpy()) for T in Ts]
        ax2.plot(Ts, H, color=c, label=label)
    ax2.axhline(math.log(3), color="grey", lw=0.8, ls="--")
    ax2.text(0.12, math.log(3) - 0.03, "log 3: the uniform distribution", va="top", fontsize=8, color="grey")
    for T in (1, 2):
        h = entropy(kd.softmax_with_temperature([2.0, 1.0, 0.1], T).numpy())
        ax2.plot([T], [h], "o", color="tab:blue", ms=4)
        ax2.annotate(f"T = {T}: {h:.3f}", (T, h), xytext=(6, -12), textcoords="offset points", fontsize=8)
    ax2.set_xscale("log")
    ax2.set_ylim(0, 1.25)
    ax2.set_xlabel("temperature T (log scale)")
    ax2.set_ylabel("entropy of softmax(z / T)  [nats]")
    ax2.set_title("higher T, softer distribution")
    ax2.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(HERE / "temperature.png", dpi=110)
    plt.close(fig)


def kl_to_mse_figure():
    z_s, z_t = np.array([1.5, 2.5, 0.3]), np.array([1.0, 3.0, 0.5])
    d = (z_s - z_s.mean()) - (z_t - z_t.mean())
    limit = float((d**2).sum() / (2 * 3))
    Ts = np.logspace(-0.5, 2, 120)
    kl = np.array([kd.soft_loss(z_s, z_t, T=T).item() for T in Ts])

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(Ts, Ts**2 * kl, color="tab:blue", label="T² · KL(p_t ‖ p_s)   (the soft term of the loss)")
    ax.plot(Ts, kl, color="tab:orange", label="KL(p_t ‖ p_s) alone: falls like 1/T²")
    ax.axhline(limit, color="grey", ls="--", lw=0.8)
    ax.text(0.35, limit * 1.12, f"‖Δz centred‖² / 2C = {limit:.4f}  (MSE on logits)", fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(3e-6, 0.5)
    ax.set_xlabel("temperature T (log scale)")
    ax.set_ylabel("loss (log scale)")
    ax.set_title("student (1.5, 2.5, 0.3) vs teacher (1.0, 3.0, 0.5)")
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(HERE / "kl_to_mse.png", dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- the toy task, as on the page

rng = np.random.default_rng(0)
CENTRES = np.array([[0.0, 2.0], [-1.7, -1.0], [1.7, -1.0]])


def blobs(n):
    y = rng.integers(0, 3, n)
    return (CENTRES[y] + rng.normal(scale=0.9, size=(n, 2))).astype(np.float32), y


def mlp(*widths):
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def fit(model, inputs, loss_of, steps=300, lr=1e-2):
    opt = optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        i = rng.integers(0, len(inputs), 128)
        loss = loss_of(model(mk.tensor(inputs[i])), i)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def logits(model, x):
    with mk.no_grad():
        return model(mk.tensor(x)).numpy()


def accuracy(model, x, y):
    return float((logits(model, x).argmax(1) == y).mean())


def transfer_figure():
    mk.manual_seed(0)
    x_train, y_train = blobs(600)
    x_test, y_test = blobs(2000)
    teacher = fit(mlp(2, 128, 128, 3), x_train, lambda out, i: F.cross_entropy(out, y_train[i]))
    z_t_train = logits(teacher, x_train)
    mk.manual_seed(1)
    student = fit(mlp(2, 8, 3), x_train, lambda out, i: kd.soft_loss(out, z_t_train[i], T=3.0) * 9.0)
    noise = rng.uniform(-4, 4, size=(4000, 2)).astype(np.float32)
    z_t_noise = logits(teacher, noise)
    mk.manual_seed(2)
    noise_student = fit(mlp(2, 8, 3), noise, lambda out, i: kd.soft_loss(out, z_t_noise[i], T=3.0) * 9.0)

    g = np.linspace(-4, 4, 241, dtype=np.float32)
    gx, gy = np.meshgrid(g, g)
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    cmap = matplotlib.colors.ListedColormap(["#fdd0a2", "#c6dbef", "#c7e9c0"])
    dots = ["#d94801", "#2171b5", "#238b45"]
    panels = [(teacher, "teacher, 17,283 parameters\ntrained on 600 labelled points", x_train),
              (student, "student, 51 parameters\nteacher's soft outputs on the same 600 inputs", None),
              (noise_student, "student, 51 parameters\nteacher's soft outputs on 4,000 noise points", noise[:600])]
    fig, axes = plt.subplots(1, 3, figsize=(13, 5.0), sharey=True, layout="constrained")
    for ax, (model, title, shown) in zip(axes, panels):
        regions = logits(model, grid).argmax(1).reshape(gx.shape)
        ax.imshow(regions, origin="lower", extent=(-4, 4, -4, 4), cmap=cmap, vmin=0, vmax=2, interpolation="nearest")
        sub = slice(0, 300)
        for c in range(3):
            m = y_test[sub] == c
            ax.scatter(x_test[sub][m, 0], x_test[sub][m, 1], s=6, color=dots[c], lw=0)
        if shown is not None and model is noise_student:
            ax.scatter(shown[:, 0], shown[:, 1], s=3, color="black", alpha=0.35, lw=0)
        acc = accuracy(model, x_test, y_test)
        ax.text(-3.85, -3.85, f"test accuracy {acc:.1%}", fontsize=9, va="bottom",
                bbox=dict(boxstyle="round", fc="white", ec="none", alpha=0.85))
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4, 4)
        ax.set_xlabel("x₁")
    axes[0].set_ylabel("x₂")
    axes[2].text(3.85, 3.85, "grey dots: 600 of the noise inputs", fontsize=8, ha="right", va="top",
                 bbox=dict(boxstyle="round", fc="white", ec="none", alpha=0.85))
    fig.suptitle("regions: each model's predicted class; dots: 300 test points coloured by their true class",
                 fontsize=10)
    fig.savefig(HERE / "transfer.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    temperature_figure()
    kl_to_mse_figure()
    transfer_figure()
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("*.png"))))
