"""Draws the figures of the documentation.

    python docs/make_figures.py --out docs/figures

``docs/hooks.py`` runs it before every ``mkdocs build`` whose inputs changed,
so no figure is placed by hand; ``docs/figures/`` is gitignored. It takes
about 8 s of CPU, most of it importing, laying out and rendering: every
optimizer runs on both problems in one compiled program, a
``jax.lax.scan`` per optimizer.

Figures:

* ``sgd.png``, ``adaptive.png``, ``adam.png``, ``wrappers.png``: a family of
  optimizers on an ill-conditioned quadratic ravine and on Rosenbrock's
  function, 2x2: trajectories above, loss against the step below;
* ``schedules.png``: the schedules, one panel a row;
* ``lr_find.png``: ``gradtx.lr_find`` on a small classifier, with its
  ``plot()``.

They are drawn for the page: 690 px wide as shown (the width of the text
column), saved at twice that for sharp screens, with no text under 8.5 pt
(11 px as shown) and the Okabe-Ito colour-blind-safe palette.
``text_sizes.json`` records, per figure, the smallest text found on it,
in pixels at the width shown; ``tests/test_docs.py`` checks it.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.text  # noqa: E402

import gradtx  # noqa: E402

# The width of the page's text column, in CSS pixels, and the figures' width:
# a figure is drawn at this width, so its text is shown at the size it is
# drawn; it is saved at twice the resolution for sharp screens.
SHOWN_WIDTH_PX = 690
WIDTH_IN = SHOWN_WIDTH_PX / 96
# PNGs without a timestamp or version, so the same inputs give the same bytes.
SAVE = dict(dpi=192, metadata={"Software": None})

# Okabe & Ito (2008), "Color universal design": distinguishable with any of
# the common colour-vision deficiencies. Yellow is left out (too pale on
# white).
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
             "#56B4E9", "#000000"]
SMALL = 8.5  # points: 11.3 px at 96 px per inch
plt.rcParams.update({
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.labelsize": 9.5,
    "xtick.labelsize": SMALL,
    "ytick.labelsize": SMALL,
    "legend.fontsize": SMALL,
    "legend.framealpha": 0.9,
})

TEXT_SIZES: dict[str, dict] = {}


def save(fig, out: pathlib.Path, name: str) -> None:
  """Saves ``fig`` as ``name.png`` and records its smallest text, in CSS
  pixels at the width the page shows it (after saving: the save draws the
  figure, which sets the text of its tick labels)."""
  fig.savefig(out / f"{name}.png", **SAVE)
  sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text)
           if t.get_visible() and t.get_text().strip()]
  shown = min(SHOWN_WIDTH_PX, fig.get_figwidth() * 96)
  # A point is 1/72 inch; the figure is fig_width inches across `shown` px.
  px_per_pt = shown / (fig.get_figwidth() * 72)
  TEXT_SIZES[name] = {"smallest_text_pt": min(sizes),
                      "smallest_text_px": round(min(sizes) * px_per_pt, 2),
                      "shown_width_px": round(shown)}
  plt.close(fig)


# --------------------------------------------------------------------------
# Trajectories: two problems, four families of optimizers


def ravine(p):
  """An ill-conditioned quadratic: curvatures 0.02 along x and 0.8 along y."""
  return (p[0] ** 2 + 40.0 * p[1] ** 2) / 100.0


def rosenbrock(p):
  """Rosenbrock's banana, minimum 0 at (1, 1)."""
  return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


PROBLEMS = {
    "ravine": dict(loss=ravine, start=(-9.0, 1.5), steps=150,
                   box=(-10, 2, -2, 2), minimum=(0.0, 0.0),
                   title="ravine (x² + 40 y²) / 100", legend="lower right"),
    "rosenbrock": dict(loss=rosenbrock, start=(-1.2, 1.0), steps=2000,
                       box=(-2, 2, -1, 3), minimum=(1.0, 1.0),
                       title="Rosenbrock", legend="upper right"),
}


def _momentum(lr):
  return gradtx.sgd(lr, momentum=0.9)


# Per family: label -> (factory of the learning rate, ravine lr, Rosenbrock
# lr). Rates are picked by hand per problem, about the best of a coarse grid.
# RAdam (and Ranger, Lookahead over it) takes plain momentum steps of size
# lr * m_t in its first steps, so Rosenbrock's large early gradients force a
# small rate on it.
FAMILIES: dict[str, dict[str, tuple]] = {
    "sgd": {
        "sgd": (gradtx.sgd, 1.8, 1.5e-3),
        "sgd, momentum 0.9": (_momentum, 0.2, 1.5e-4),
        "sgd, nesterov 0.9": (
            lambda lr: gradtx.sgd(lr, momentum=0.9, nesterov=True), 0.2,
            1.5e-4),
    },
    "adaptive": {
        "adagrad": (gradtx.adagrad, 1.0, 0.5),
        "rmsprop": (gradtx.rmsprop, 0.1, 3e-3),
        "adadelta": (gradtx.adadelta, 30.0, 1.0),
        "rprop": (gradtx.rprop, 0.1, 0.01),
    },
    "adam": {
        "adam": (gradtx.adam, 0.3, 0.05),
        "amsgrad": (gradtx.amsgrad, 0.3, 0.05),
        "radam": (gradtx.radam, 0.5, 5e-3),
        "adabound (final_lr = lr/10)": (
            lambda lr: gradtx.adabound(lr, final_lr=lr / 10), 0.3, 0.05),
    },
    "wrappers": {
        "sgd, momentum 0.9": (_momentum, 0.2, 1.5e-4),
        "lookahead(sgd, momentum 0.9)": (
            lambda lr: gradtx.lookahead(_momentum(lr), sync_period=6,
                                        slow_step_size=0.5), 0.2, 1.5e-4),
        "ranger": (gradtx.ranger, 0.5, 5e-3),
        "swats": (gradtx.swats, 0.3, 0.05),
    },
}


def run_all() -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
  """Every optimizer of ``FAMILIES`` on both problems, in one jitted
  ``lax.scan``: per label and problem, the points visited and the losses.

  The params are ``{label: {problem: point}}``. Each label's point pair gets
  its own optimizer, and ``gradtx.partition`` gives each point of the pair
  its own learning rate, so every run is as independent as a separate one;
  they share one compilation. A label shared by two figures is one run.
  """
  specs = {label: spec for family in FAMILIES.values()
           for label, spec in family.items()}
  names = list(PROBLEMS)
  txs = {label: gradtx.partition({n: factory(lr)
                                  for n, lr in zip(names, lrs)},
                                 {n: n for n in names})
         for label, (factory, *lrs) in specs.items()}
  steps = max(prob["steps"] for prob in PROBLEMS.values())

  def losses(p):
    return {n: PROBLEMS[n]["loss"](p[n]) for n in names}

  def scan(tx, p0):
    def step(carry, _):
      p, s = carry
      g = jax.grad(lambda q: sum(losses(q).values()))(p)
      u, s = tx.update(g, s, p)
      return (gradtx.apply_updates(p, u), s), (p, losses(p))

    return jax.lax.scan(step, (p0, tx.init(p0)), None, length=steps)[1]

  @jax.jit
  def go(p0):
    return {label: scan(tx, p0) for label, tx in txs.items()}

  start = {n: np.asarray(PROBLEMS[n]["start"], np.float32) for n in names}
  visited = go(start)
  return {label: {n: (np.asarray(ps[n])[:PROBLEMS[n]["steps"]],
                      np.asarray(values[n])[:PROBLEMS[n]["steps"]])
                  for n in names}
          for label, (ps, values) in visited.items()}


def family_figure(family: str, runs: dict, out: pathlib.Path) -> None:
  """2x2: the trajectories on each problem above, their losses below;
  ``runs`` is ``run_all()``."""
  fig, axes = plt.subplots(2, 2, figsize=(WIDTH_IN, 6.4),
                           gridspec_kw=dict(height_ratios=[1.15, 1.0]))
  family_specs = FAMILIES[family]
  runs = {label: runs[label] for label in family_specs}
  styles = ["-", "--", "-.", ":"]
  for k, (name, prob) in enumerate(PROBLEMS.items()):
    ax, loss_ax = axes[0, k], axes[1, k]
    x0, x1, y0, y1 = prob["box"]
    xs, ys = np.meshgrid(np.linspace(x0, x1, 160), np.linspace(y0, y1, 120))
    zs = np.asarray(prob["loss"](np.stack([xs, ys])))
    ax.contour(xs, ys, np.log1p(zs), levels=18, colors="0.8",
               linewidths=0.6)
    ax.plot(*prob["minimum"], marker="*", color="k", markersize=9, zorder=5)
    for i, (label, result) in enumerate(runs.items()):
      ps, values = result[name]
      ax.plot(ps[:, 0], ps[:, 1], lw=1.4, color=OKABE_ITO[i],
              ls=styles[i % len(styles)])
      loss_ax.semilogy(np.maximum(values, 1e-12), lw=1.4,
                       color=OKABE_ITO[i], ls=styles[i % len(styles)])
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(prob["title"])
    loss_ax.set_title(f"loss on {name}, {prob['steps']} steps")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylim(1e-10, 1e3)
  # One legend for the four panels, above them: label, then the learning
  # rate on each problem.
  handles = [matplotlib.lines.Line2D([], [], color=OKABE_ITO[i], lw=1.6,
                                     ls=styles[i % len(styles)])
             for i in range(len(runs))]
  labels = [f"{label} (lr {spec[1]:g} / {spec[2]:g})"
            for label, spec in family_specs.items()]
  fig.legend(handles, labels, loc="upper center", ncol=2,
             bbox_to_anchor=(0.5, 1.0), frameon=False)
  fig.tight_layout(rect=(0, 0, 1, 0.93))
  save(fig, out, family)


# --------------------------------------------------------------------------
# Schedules


def schedules_figure(out: pathlib.Path) -> None:
  n = 300
  steps = np.arange(n, dtype=np.int32)
  panels = {
      "warm-up then decay": {
          "warmup_cosine_decay_schedule(0, 1, 30, 300)":
              gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 30, 300),
          "warmup_exponential_decay_schedule(0, 1, 30, 60, 0.5)":
              gradtx.warmup_exponential_decay_schedule(0.0, 1.0, 30, 60, 0.5),
          "inverse_sqrt_decay(1, warmup_steps=30)":
              gradtx.inverse_sqrt_decay(1.0, warmup_steps=30),
      },
      "decay": {
          "exponential_decay(1, 50, 0.5)":
              gradtx.exponential_decay(1.0, 50, 0.5),
          "exponential_decay(1, 50, 0.5, staircase=True)":
              gradtx.exponential_decay(1.0, 50, 0.5, staircase=True),
          "piecewise_constant_schedule(1, {100: .3, 200: .3})":
              gradtx.piecewise_constant_schedule(1.0, {100: 0.3, 200: 0.3}),
          "inverse_time_decay(1, 0.05)":
              gradtx.inverse_time_decay(1.0, 0.05),
          "cosine_decay_schedule(1, 300)":
              gradtx.cosine_decay_schedule(1.0, 300),
      },
      "restarts": {
          "cosine_warm_restarts_schedule(1, 40, period_mult=2)":
              gradtx.cosine_warm_restarts_schedule(1.0, 40, period_mult=2),
          "sgdr_schedule(3 x 100 steps, 10 warm-up)":
              gradtx.sgdr_schedule([dict(init_value=0.0, peak_value=1.0,
                                         warmup_steps=10, decay_steps=100)]
                                   * 3),
      },
      "cyclic and one-cycle": {
          "cyclic_schedule(0.1, 1, 40)":
              gradtx.cyclic_schedule(0.1, 1.0, 40),
          "cyclic_schedule(0.1, 1, 40, 'triangular2')":
              gradtx.cyclic_schedule(0.1, 1.0, 40, "triangular2"),
          "linear_onecycle_schedule(300, 1)":
              gradtx.linear_onecycle_schedule(300, 1.0),
          "cosine_onecycle_schedule(300, 1)":
              gradtx.cosine_onecycle_schedule(300, 1.0),
      },
  }
  # Every schedule over every step, in one compiled function.
  flat = [s for schedules in panels.values() for s in schedules.values()]
  values = iter(jax.jit(lambda k: [jax.vmap(s)(k) for s in flat])(steps))
  fig, axes = plt.subplots(len(panels), 1, figsize=(WIDTH_IN, 9.6),
                           sharex=True)
  for ax, (title, schedules) in zip(axes, panels.items()):
    for i, label in enumerate(schedules):
      ax.plot(np.asarray(steps), np.asarray(next(values)),
              color=OKABE_ITO[i], ls=["-", "--", "-.", ":"][i % 4],
              label=label, lw=1.5)
    ax.set_title(title, loc="left")
    # The legend beside the panel: the labels are whole calls.
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    ax.set_ylim(0, 1.25)
  axes[-1].set_xlabel("step (count)")
  fig.tight_layout()
  save(fig, out, "schedules")


# --------------------------------------------------------------------------
# The LR range test


def lr_find_figure(out: pathlib.Path) -> None:
  """lr_find on a one-hidden-layer classifier of 2-D points (5 classes)."""
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(5, 2)) * 2.0
  labels = rng.integers(0, 5, size=4096)
  points = (centres[labels] + rng.normal(size=(4096, 2))).astype(np.float32)

  def batches():
    r = np.random.default_rng(1)
    while True:
      idx = r.integers(0, len(points), size=64)
      yield points[idx], labels[idx].astype(np.int32)

  def loss(p, batch):
    x, y = batch
    h = jnp.tanh(x @ p["w1"] + p["b1"])
    logits = h @ p["w2"] + p["b2"]
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

  init = np.random.default_rng(2)
  params = {"w1": (init.normal(size=(2, 32)) * 0.5).astype(np.float32),
            "b1": np.zeros(32, np.float32),
            "w2": (init.normal(size=(32, 5)) * 0.2).astype(np.float32),
            "b2": np.zeros(5, np.float32)}
  result = gradtx.lr_find(loss, params, batches(), gradtx.adam, min_lr=1e-5,
                          max_lr=10.0, num_steps=200, smoothing=0.9)
  fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.6))
  result.plot(ax=ax)
  ax.set_title(f"gradtx.lr_find(loss, params, batches, gradtx.adam):\n"
               f"{result.reason}")
  fig.tight_layout()
  save(fig, out, "lr_find")


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--out", default=str(pathlib.Path(__file__).parent
                                      / "figures"))
  args = p.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  runs = run_all()
  for family in FAMILIES:
    family_figure(family, runs, out)
  schedules_figure(out)
  lr_find_figure(out)
  (out / "text_sizes.json").write_text(
      json.dumps(TEXT_SIZES, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
  main()
