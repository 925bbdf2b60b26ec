"""The learning-rate range test (Smith, WACV 2017; popularised by fastai)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._src import base


@dataclasses.dataclass(frozen=True)
class LRFindResult:
  """What :func:`lr_find` measured.

  Attributes:
    learning_rates: the rate used at each step taken.
    losses: the loss at each step (evaluated before that step's update).
    smoothed_losses: the bias-corrected exponential moving average of losses.
    suggestion: the rate where the smoothed loss falls fastest against
      ``log(lr)``; ``None`` if too few steps were taken to tell.
    stopped_early: True if the loss diverged (or became NaN/Inf) before
      ``num_steps``.
    reason: why the sweep ended.
  """

  learning_rates: np.ndarray
  losses: np.ndarray
  smoothed_losses: np.ndarray
  suggestion: Optional[float]
  stopped_early: bool
  reason: str

  def plot(self, path: Optional[str] = None, ax: Any = None) -> Any:
    """Draws the loss against the learning rate, both on log scales.

    The raw losses are drawn faint, the smoothed loss bold, and the
    suggestion is marked on it. The loss axis is clipped to the useful
    range, from the lowest loss to a little above the highest smoothed
    loss, so that one spike (the end of a sweep often jumps tenfold) does
    not flatten the region where the choice is made; clipped points are
    drawn at the top edge.

    Needs matplotlib (``pip install matplotlib``). Saves a PNG to ``path``
    if given, and returns the matplotlib figure.
    """
    from gradtx._src.tools import plots
    return plots.lr_find_figure(self, path, ax)


def _steepest(lrs: np.ndarray, smoothed: np.ndarray) -> Optional[float]:
  # Ignore the first and last few points: the average is still settling at
  # the start, and the end is where the loss turns up.
  n = len(lrs)
  if n < 8:
    return None
  lo, hi = max(1, n // 10), n - max(1, n // 20)
  slopes = np.gradient(smoothed, np.log(lrs))[lo:hi]
  return float(lrs[lo + int(np.argmin(slopes))])


def lr_find(loss_fn: Callable[[Any, Any], Any], params: Any,
            batches: Iterable[Any],
            optimizer_factory: Callable[[Any], base.GradientTransformation],
            *, min_lr: float = 1e-7, max_lr: float = 10.0,
            num_steps: int = 100, smoothing: float = 0.98,
            diverge_threshold: float = 4.0,
            on_step: Optional[Callable[[int, float, float], Any]] = None,
            ) -> LRFindResult:
  r"""The LR range test: sweep the learning rate up and watch the loss.

  Step ``k`` of ``num_steps`` uses
  :math:`\eta_k = \eta_{min} (\eta_{max}/\eta_{min})^{k/(n-1)}`. The loss is
  smoothed by an exponential moving average (``smoothing``, bias-corrected);
  the sweep stops early when the smoothed loss exceeds ``diverge_threshold``
  times its minimum or a loss is not finite. The suggested rate is where the
  smoothed loss falls fastest against ``log(lr)``; Smith (2017) proposes
  reading the useful range off this curve.

  The step is jitted once: the learning rate reaches the optimizer as a
  schedule indexed by the step, so sweeping it compiles nothing more.

  Args:
    loss_fn: ``loss_fn(params, batch) -> scalar``.
    params: the starting params (not modified).
    batches: an iterable of batches; the sweep ends if it runs out.
    optimizer_factory: ``learning_rate -> GradientTransformation``, e.g.
      ``gradtx.adam`` or ``lambda lr: gradtx.sgd(lr, momentum=0.9)``. It is
      given a schedule.
    min_lr: the first learning rate of the sweep.
    max_lr: the last one.
    num_steps: how many steps (learning rates) to try.
    smoothing: the EMA weight of past losses, in [0, 1).
    diverge_threshold: stop once the smoothed loss exceeds this multiple of
      its best value.
    on_step: called after each step with ``(step, learning_rate, loss)``,
      ``step`` counting from 1: a progress bar or a log line. The first
      call comes after the step has been compiled.

  Example:
    >>> import gradtx, jax.numpy as jnp, itertools
    >>> loss = lambda p, b: jnp.mean((b[0] * p - b[1]) ** 2)
    >>> data = itertools.repeat((jnp.arange(4.0), 3 * jnp.arange(4.0)))
    >>> r = gradtx.lr_find(loss, jnp.zeros(()), data, gradtx.sgd,
    ...                    min_lr=1e-4, max_lr=1.0, num_steps=40)
    >>> 1e-4 <= r.suggestion <= 1.0
    True
  """
  fn = "lr_find"
  if not (0 < min_lr < max_lr and math.isfinite(max_lr)):
    raise ValueError(f"{fn}: need 0 < min_lr < max_lr < inf, got "
                     f"{min_lr=} and {max_lr=}.")
  if not isinstance(num_steps, int) or num_steps < 2:
    raise ValueError(f"{fn}: num_steps must be an int >= 2, got "
                     f"{num_steps=}.")
  if not 0 <= smoothing < 1:
    raise ValueError(f"{fn}: smoothing must be in [0, 1), got {smoothing=}.")
  if not diverge_threshold > 1:
    raise ValueError(f"{fn}: diverge_threshold must be > 1, got "
                     f"{diverge_threshold=}.")

  lrs = min_lr * (max_lr / min_lr) ** (np.arange(num_steps) / (num_steps - 1))
  table = jnp.asarray(lrs)
  tx = optimizer_factory(lambda count: table[jnp.minimum(count, num_steps - 1)])

  @jax.jit
  def step(p, s, batch):
    loss, grads = jax.value_and_grad(loss_fn)(p, batch)
    updates, s = tx.update(grads, s, p)
    return base.apply_updates(p, updates), s, loss

  state = tx.init(params)
  losses, smoothed = [], []
  avg, best = 0.0, math.inf
  reason, early = "reached num_steps", False
  iterator = iter(batches)
  for k in range(num_steps):
    try:
      batch = next(iterator)
    except StopIteration:
      reason = f"batches ran out after {k} steps"
      break
    params, state, loss = step(params, state, batch)
    loss = float(loss)
    if on_step is not None:
      on_step(k + 1, float(lrs[k]), loss)
    if not math.isfinite(loss):
      reason, early = f"loss became {loss} at lr={lrs[k]:.3g}", True
      break
    avg = smoothing * avg + (1 - smoothing) * loss
    value = avg / (1 - smoothing ** (k + 1))
    losses.append(loss)
    smoothed.append(value)
    best = min(best, value)
    if value > diverge_threshold * best:
      reason, early = f"loss diverged at lr={lrs[k]:.3g}", True
      break
  n = len(losses)
  return LRFindResult(learning_rates=lrs[:n], losses=np.array(losses),
                      smoothed_losses=np.array(smoothed),
                      suggestion=_steepest(lrs[:n], np.array(smoothed)),
                      stopped_early=early, reason=reason)
