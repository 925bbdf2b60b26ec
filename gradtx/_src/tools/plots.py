"""The figures of the command line and of the LR range test.

:func:`race_figure` (``gradtx race``): train loss and test accuracy, against
the step and against wall-clock time. :func:`lr_find_figure`
(:meth:`gradtx.LRFindResult.plot`, ``gradtx lr-find``): the loss against
the learning rate. matplotlib is imported only when a figure is drawn.

Each optimizer keeps one colour (Okabe & Ito's palette, which readers with
any of the common colour-vision deficiencies can tell apart) and one line
style in the four panels, and is named at the end of its curve rather than
in a legend, so that curves lying on each other can still be told apart.
"""

from __future__ import annotations

import pathlib
from typing import Any, Optional

import numpy as np

# Okabe & Ito (2008), without yellow, which is faint on white.
# Orange last: next to vermillion it is the least distinct pair.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000", "#56B4E9",
           "#E69F00"]
STYLES = ["-", "--", "-.", ":", (0, (6, 2, 1, 2, 1, 2)), (0, (8, 3))]


def style(i: int) -> dict:
  """The colour and line style of the i-th curve (no two alike for i < 42)."""
  return {"color": PALETTE[i % len(PALETTE)],
          "linestyle": STYLES[i % len(STYLES)]}


def moving_average(values, k: int):
  import numpy as np
  values = np.asarray(values, dtype=float)
  k = max(1, min(k, len(values)))
  return np.convolve(values, np.ones(k) / k, mode="valid"), k


def _direct_labels(ax: Any, ends: list, min_gap: float = 0.075) -> None:
  """Writes each name just right of the axes, at the height of its curve's
  end, pushed apart where two would overlap, with a thin leader line."""
  if not ends:
    return
  to_axes = ax.transAxes.inverted()
  placed = []
  for name, x, y, st in ends:
    fy = to_axes.transform(ax.transData.transform((x, y)))[1]
    placed.append([min(max(fy, 0.0), 1.0), name, x, y, st])
  placed.sort(key=lambda p: p[0])
  # Push up from the bottom, then back down from the top.
  for i in range(1, len(placed)):
    placed[i][0] = max(placed[i][0], placed[i - 1][0] + min_gap)
  top = 1.0
  for p in reversed(placed):
    p[0] = min(p[0], top)
    top = p[0] - min_gap
  for fy, name, x, y, st in placed:
    ax.annotate(name, xy=(x, y), xycoords="data", xytext=(1.02, fy),
                textcoords="axes fraction", va="center", ha="left",
                color=st["color"], fontsize=11,
                arrowprops=dict(arrowstyle="-", color=st["color"], lw=0.6,
                                alpha=0.6, shrinkA=0, shrinkB=0))


def race_figure(runs: dict, path: pathlib.Path, title: str) -> Optional[Any]:
  """Draws the race: ``runs[name]`` has ``losses`` (one per step),
  ``eval_steps``, ``eval_seconds`` (training time when each test accuracy
  was taken, compilation excluded), ``test_accuracy`` and, for SWATS,
  ``switch_step``. Returns the path, or None without matplotlib."""
  try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
  except ImportError:
    return None
  with plt.rc_context({"font.size": 11, "axes.titlesize": 12,
                       "axes.labelsize": 11}):
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.2), layout="constrained",
                             sharey="row")
    n_steps = max(len(r["losses"]) for r in runs.values())
    k = max(1, n_steps // 25)
    loss_ends, acc_ends = ([], []), ([], [])
    for i, (name, r) in enumerate(runs.items()):
      st = style(i)
      smooth, k = moving_average(r["losses"], k)
      steps = np.arange(len(smooth)) + k  # the window's last step
      # Seconds at each step: linear between the timed evaluation points.
      secs = np.interp(steps, [0, *r["eval_steps"]], [0, *r["eval_seconds"]])
      label = name
      if r.get("switch_step"):
        label += f" (SGD from step {r['switch_step']})"
      for col, x in enumerate((steps, secs)):
        axes[0, col].plot(x, smooth, lw=1.8, **st)
        loss_ends[col].append((label, x[-1], smooth[-1], st))
      acc = np.asarray(r["test_accuracy"])
      for col, x in enumerate((np.asarray(r["eval_steps"]),
                               np.asarray(r["eval_seconds"]))):
        axes[1, col].plot(x, acc, lw=1.8, **st)
        acc_ends[col].append((label, x[-1], acc[-1], st))
        if r.get("switch_step"):
          j = int(np.searchsorted(r["eval_steps"], r["switch_step"]))
          j = min(j, len(acc) - 1)
          axes[1, col].plot([x[j]], [acc[j]], marker="v", markersize=8,
                            color=st["color"], linestyle="none")
    for col in range(2):
      axes[0, col].set_yscale("log")
      # From a little below the worst final accuracy: the early rise of a
      # slow starter may leave the panel, the finish stays readable.
      worst = min(r["test_accuracy"][-1] for r in runs.values())
      axes[1, col].set_ylim(max(0.0, worst - 0.15), 1.0)
      for row in range(2):
        axes[row, col].grid(True, alpha=0.3)
    axes[0, 0].set_ylabel(f"train loss\n(moving average of {k} steps)")
    axes[1, 0].set_ylabel("test accuracy\n(360 held-out digits)")
    for row in range(2):
      axes[row, 0].set_xlabel("step")
      axes[row, 1].set_xlabel("wall-clock seconds (compilation excluded)")
    axes[0, 0].set_title("against the step")
    axes[0, 1].set_title("against time")
    fig.canvas.draw()  # the limits the labels are placed against
    for col in range(2):
      _direct_labels(axes[0, col], loss_ends[col])
      _direct_labels(axes[1, col], acc_ends[col])
    fig.suptitle(title, fontsize=13)
    fig.savefig(path, dpi=100)
    plt.close(fig)
  return path


def lr_find_figure(result: Any, path: Optional[str] = None, ax: Any = None,
                   ) -> Any:
  """The figure of :meth:`gradtx.LRFindResult.plot` (see there) for
  ``result``, a :class:`gradtx.LRFindResult`."""
  try:
    import matplotlib
    if ax is None and path is not None:
      matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError as e:
    raise ImportError("LRFindResult.plot needs matplotlib: "
                      "pip install matplotlib") from e
  if ax is None:
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
  else:
    fig = ax.figure
  lrs, raw = result.learning_rates, result.losses
  smooth = result.smoothed_losses
  ax.set_xscale("log")
  ax.set_yscale("log")
  positive = raw[raw > 0]
  if len(positive) and np.all(smooth > 0):
    lo, hi = positive.min() / 1.25, smooth.max() * 1.5
    ax.set_ylim(lo, hi)
    raw = np.clip(raw, lo, hi)
  ax.plot(lrs, raw, color="0.6", linewidth=1, label="loss at each step")
  ax.plot(lrs, smooth, color="#0072B2", linewidth=2.2,
          label="smoothed loss")
  if result.suggestion is not None:
    i = int(np.argmin(np.abs(np.log(lrs / result.suggestion))))
    ax.axvline(result.suggestion, color="#D55E00", linestyle="--",
               linewidth=1.2)
    ax.plot([lrs[i]], [smooth[i]], "o", color="#D55E00", markersize=7,
            label=f"suggestion: {result.suggestion:.2g} (steepest descent)")
  ax.set_xlabel("learning rate")
  ax.set_ylabel("training loss")
  ax.set_title(f"LR range test ({len(lrs)} steps; {result.reason})",
               fontsize=10)
  ax.grid(True, which="major", alpha=0.3)
  ax.legend(loc="lower left")
  if path is not None:
    fig.savefig(path, dpi=150)
  return fig
