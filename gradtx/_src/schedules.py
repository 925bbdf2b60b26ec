"""Learning-rate (and other hyperparameter) schedules.

A schedule is a pure function of an integer step ``count`` (the number of
updates made before this one, starting at 0) that returns a scalar. All of
these are jit-safe: ``count`` may be a traced int32, and they stay exact for
counts beyond 2**24 where float32 stops representing every integer (cyclic
positions are computed in integer arithmetic before any conversion).

Names, arguments and values follow optax's where optax has the schedule,
including its fallbacks: a polynomial or exponential schedule with
``transition_steps <= 0``, or an exponential one with ``decay_rate == 0``, is
the constant ``init_value``. Other arguments that make no sense raise
``ValueError`` naming the argument.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import jax
import jax.numpy as jnp

from gradtx._src import numerics as num
from gradtx._src import validation as V
from gradtx._src.base import Schedule


def _real(x: Any) -> jax.Array:
  """``x`` in the default float dtype (float64 under x64).

  Steps arrive as int32 counters, and int32 / int divides in float32 even
  when float64 is enabled; converting first keeps schedules exact there.
  Callers clip or reduce the step in integer arithmetic before this, so
  counts past 2**24 lose nothing in float32 either. A Python int goes
  through ``float`` first: a count past 2**31 would overflow int32.
  """
  if isinstance(x, int) and not isinstance(x, bool):
    x = float(x)
  return jnp.asarray(x).astype(jnp.result_type(float))


def constant_schedule(value: Any) -> Schedule:
  """The schedule that is always ``value``.

  Args:
    value: the value at every step.

  Example:
    >>> import gradtx
    >>> float(gradtx.constant_schedule(0.1)(1000))
    0.1
  """
  return lambda count: value


def polynomial_schedule(init_value: Any, end_value: Any, power: Any,
                        transition_steps: int, transition_begin: int = 0,
                        ) -> Schedule:
  r"""Polynomial decay from ``init_value`` to ``end_value``.

  .. math::
     v(k) = (v_0 - v_1)\left(1 - \frac{\min(\max(k - k_0, 0), K)}{K}\right)^p
            + v_1

  Before ``transition_begin`` (``k_0``) the value is ``init_value``; after
  ``K = transition_steps`` more steps it is ``end_value``.
  ``transition_steps <= 0`` gives the constant ``init_value`` (as in optax).

  Args:
    init_value: :math:`v_0`, the value until ``transition_begin``.
    end_value: :math:`v_1`, the value after the transition.
    power: ``p``, the exponent of the decay (1: linear).
    transition_steps: ``K``, the steps of the transition; ``<= 0`` gives the
      constant ``init_value``.
    transition_begin: ``k_0``, the number of steps for which the value stays
      ``init_value`` before the transition starts; a non-negative int.

  Example:
    >>> import gradtx
    >>> s = gradtx.polynomial_schedule(1.0, 0.0, power=2, transition_steps=10)
    >>> float(s(5))
    0.25
  """
  fn = "polynomial_schedule"
  V.check_int(fn, "transition_steps", transition_steps, None)
  V.check_int(fn, "transition_begin", transition_begin, 0)
  if transition_steps <= 0:
    return lambda count: init_value

  def schedule(count):
    count = _real(jnp.clip(count - transition_begin, 0, transition_steps))
    frac = 1 - count / transition_steps
    return (init_value - end_value) * (frac ** power) + end_value

  return schedule


def linear_schedule(init_value: Any, end_value: Any, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
  """Linear interpolation from ``init_value`` to ``end_value`` (warm-up).

  The usual warm-up: ``linear_schedule(0.0, peak, warmup_steps)``.

  Args:
    init_value: the value until ``transition_begin``.
    end_value: the value from ``transition_begin + transition_steps`` on.
    transition_steps: the steps of the interpolation; ``<= 0`` gives the
      constant ``init_value``.
    transition_begin: the number of steps for which the value stays
      ``init_value`` before the transition starts; a non-negative int.

  Example:
    >>> import gradtx
    >>> float(gradtx.linear_schedule(0.0, 1.0, transition_steps=4)(1))
    0.25
  """
  return polynomial_schedule(init_value, end_value, 1, transition_steps,
                             transition_begin)


def piecewise_constant_schedule(init_value: Any,
                                boundaries_and_scales: Optional[dict] = None,
                                ) -> Schedule:
  r"""Step decay: multiply by ``scale`` once ``count`` reaches each boundary.

  .. math:: v(k) = v_0 \prod_{b \le k} s_b

  (a boundary ``b`` applies from step ``b`` on, as in optax).

  Args:
    init_value: :math:`v_0`, the value before the first boundary.
    boundaries_and_scales: a dict from boundary step (a non-negative int) to the
      non-negative factor applied from that step on; the factors multiply.
      ``None``: the constant ``init_value``.

  Example:
    >>> import gradtx
    >>> s = gradtx.piecewise_constant_schedule(0.1, {10: 0.1, 20: 0.1})
    >>> [round(float(s(k)), 6) for k in (9, 10, 20)]
    [0.1, 0.01, 0.001]
  """
  fn = "piecewise_constant_schedule"
  items = sorted((boundaries_and_scales or {}).items())
  for b, scale in items:
    V.check_int(fn, "boundaries_and_scales key", b, 0)
    V.check_nonnegative(fn, f"boundaries_and_scales[{b}]", scale)

  def schedule(count):
    v = init_value
    for threshold, scale in items:
      indicator = jnp.maximum(0.0, jnp.sign(threshold - count))
      v = v * indicator + (1 - indicator) * scale * v
    return v

  return schedule


def exponential_decay(init_value: Any, transition_steps: int,
                      decay_rate: float, transition_begin: int = 0,
                      staircase: bool = False,
                      end_value: Optional[Any] = None) -> Schedule:
  r"""Exponential decay: :math:`v(k) = v_0\, r^{(k - k_0)/K}` after ``k_0``.

  With ``staircase`` the exponent is floored (decay every ``K`` steps).
  ``end_value`` bounds the value (from below when decaying). As in optax,
  ``transition_steps <= 0`` or ``decay_rate == 0`` gives the constant
  ``init_value``.

  Args:
    init_value: :math:`v_0`, the value until ``transition_begin``.
    transition_steps: ``K``, the steps over which the value is multiplied by
      ``decay_rate`` once; ``<= 0`` gives the constant ``init_value``.
    decay_rate: ``r``, the factor per ``transition_steps`` steps, non-negative
      (above 1 the value grows; 0 gives the constant ``init_value``).
    transition_begin: ``k_0``, the steps before the decay starts, a non-negative
      int.
    staircase: floor the exponent, so the value drops every ``transition_steps``
      steps instead of continuously.
    end_value: a bound on the value: a floor when decaying, a ceiling when
      growing; ``None``: unbounded.

  Example:
    >>> import gradtx
    >>> float(gradtx.exponential_decay(1.0, 10, 0.5)(20))
    0.25
  """
  fn = "exponential_decay"
  V.check_int(fn, "transition_steps", transition_steps, None)
  V.check_int(fn, "transition_begin", transition_begin, 0)
  V.check_nonnegative(fn, "decay_rate", decay_rate)
  if transition_steps <= 0 or (V.is_concrete_number(decay_rate)
                               and float(decay_rate) == 0.0):
    return lambda count: init_value
  clip_fn = None
  if end_value is not None:
    clip_fn = jnp.maximum if decay_rate < 1.0 else jnp.minimum

  def schedule(count):
    decreased = _real(count) - transition_begin
    p = decreased / transition_steps
    if staircase:
      p = jnp.floor(p)
    value = jnp.where(decreased <= 0, init_value,
                      init_value * jnp.power(decay_rate, p))
    return value if clip_fn is None else clip_fn(value, end_value)

  return schedule


def inverse_time_decay(init_value: Any, decay_rate: Any = 1.0,
                       transition_steps: int = 1, staircase: bool = False,
                       ) -> Schedule:
  r"""The 1/k schedule: :math:`v(k) = v_0 / (1 + r\,k/K)`.

  The classic Robbins-Monro rate for SGD on strongly convex problems.
  optax has no such schedule.

  Args:
    init_value: :math:`v_0`, the value at step 0.
    decay_rate: ``r``, non-negative.
    transition_steps: ``K``, a positive int: the step count is divided by it.
    staircase: floor ``k / K``, so the value drops every ``transition_steps``
      steps.

  Example:
    >>> import gradtx
    >>> float(gradtx.inverse_time_decay(1.0, decay_rate=1.0)(3))
    0.25
  """
  fn = "inverse_time_decay"
  V.check_int(fn, "transition_steps", transition_steps, 1)
  V.check_nonnegative(fn, "decay_rate", decay_rate)

  def schedule(count):
    if staircase:
      p = _real(jnp.asarray(count) // transition_steps)
    else:
      p = _real(count) / transition_steps
    return init_value / (1 + decay_rate * p)

  return schedule


def inverse_sqrt_decay(init_value: Any, warmup_steps: int = 0,
                       timescale: int = 1) -> Schedule:
  r"""The 1/sqrt(k) schedule: :math:`v(k) = v_0/\sqrt{1 + k/\tau}`.

  With ``warmup_steps > 0`` it is the Transformer schedule (Vaswani et al.
  2017): a linear warm-up to ``init_value`` at ``warmup_steps``, then
  :math:`v_0 \sqrt{w / k}`. optax has no such schedule.

  Args:
    init_value: :math:`v_0`, the value at step 0 (without warm-up) or the peak
      at ``warmup_steps`` (with it).
    warmup_steps: ``w``, the steps of the linear warm-up from 0; 0: no warm-up.
    timescale: :math:`\tau`, the steps over which the value falls to
      :math:`v_0/\sqrt2` (without warm-up); a positive int.

  Example:
    >>> import gradtx
    >>> float(gradtx.inverse_sqrt_decay(1.0)(3))
    0.5
  """
  fn = "inverse_sqrt_decay"
  V.check_int(fn, "warmup_steps", warmup_steps, 0)
  V.check_int(fn, "timescale", timescale, 1)

  def schedule(count):
    count = _real(count)
    if warmup_steps == 0:
      return init_value / jnp.sqrt(1 + count / timescale)
    warm = init_value * count / warmup_steps
    decay = init_value * jnp.sqrt(warmup_steps / jnp.maximum(count, 1))
    return jnp.where(count < warmup_steps, warm, decay)

  return schedule


def cosine_decay_schedule(init_value: Any, decay_steps: int,
                          alpha: Any = 0.0, exponent: Any = 1.0) -> Schedule:
  r"""Cosine decay (Loshchilov & Hutter 2017) to ``alpha * init_value``.

  .. math::
     v(k) = v_0\left((1-\alpha)\Big(\tfrac12\big(1 + \cos\tfrac{\pi
       \min(k, K)}{K}\big)\Big)^{p} + \alpha\right)

  Args:
    init_value: the value at step 0.
    decay_steps: ``K``, the steps over which the value decays, a positive int;
      after it the value stays ``alpha * init_value``.
    alpha: the final value as a fraction of ``init_value``.
    exponent: ``p``, the power of the cosine factor (1: plain cosine).

  Example:
    >>> import gradtx
    >>> float(gradtx.cosine_decay_schedule(1.0, 10)(5))
    0.5
  """
  fn = "cosine_decay_schedule"
  V.check_int(fn, "decay_steps", decay_steps, 1)

  def schedule(count):
    if isinstance(count, int):
      count = min(count, decay_steps)  # exact, and no int32 overflow
    elif decay_steps < 2 ** 31:
      count = jnp.minimum(count, decay_steps)
    # (else an int32 count is always below decay_steps)
    count = _real(count)
    cosine = 0.5 * (1 + jnp.cos(jnp.pi * count / float(decay_steps)))
    return init_value * ((1 - alpha) * cosine ** exponent + alpha)

  return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int],
                   ) -> Schedule:
  """Runs ``schedules[i]`` from ``boundaries[i - 1]`` on, restarted at 0.

  Args:
    schedules: the schedules to run one after the other; one more than
      ``boundaries``.
    boundaries: the increasing steps at which the next schedule takes over, each
      started at its own step 0.

  Example:
    >>> import gradtx
    >>> s = gradtx.join_schedules([gradtx.constant_schedule(1.0),
    ...                            gradtx.linear_schedule(1.0, 0.0, 10)], [5])
    >>> float(s(10))
    0.5
  """
  if len(schedules) != len(boundaries) + 1:
    raise ValueError(
        f"join_schedules: needs one more schedule than boundaries, got "
        f"{len(schedules)} schedules and {len(boundaries)} boundaries.")
  if list(boundaries) != sorted(boundaries):
    raise ValueError(f"join_schedules: boundaries must be increasing, got "
                     f"{list(boundaries)}.")

  def schedule(count):
    out = schedules[0](count)
    for boundary, s in zip(boundaries, schedules[1:]):
      out = jnp.where(count < boundary, out, s(count - boundary))
    return out

  return schedule


def warmup_cosine_decay_schedule(init_value: Any, peak_value: Any,
                                 warmup_steps: int, decay_steps: int,
                                 end_value: Any = 0.0, exponent: Any = 1.0,
                                 ) -> Schedule:
  """Linear warm-up to ``peak_value``, then cosine decay to ``end_value``.

  ``decay_steps`` counts the warm-up too, as in optax.

  Args:
    init_value: the value at step 0, the start of the warm-up.
    peak_value: the value reached at the end of the warm-up.
    warmup_steps: the steps of the linear warm-up, a non-negative int.
    decay_steps: the total length, warm-up included, greater than
      ``warmup_steps``; after it the value stays ``end_value``.
    end_value: the value the cosine decays to.
    exponent: the power of the cosine factor (1: plain cosine).

  Example:
    >>> import gradtx
    >>> s = gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110)
    >>> float(s(10)), float(s(60))
    (1.0, 0.5)
  """
  fn = "warmup_cosine_decay_schedule"
  V.check_int(fn, "warmup_steps", warmup_steps, 0)
  V.check_int(fn, "decay_steps", decay_steps, warmup_steps + 1)
  alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
  return join_schedules(
      [linear_schedule(init_value, peak_value, warmup_steps),
       cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha,
                             exponent)], [warmup_steps])


def warmup_exponential_decay_schedule(
    init_value: Any, peak_value: Any, warmup_steps: int,
    transition_steps: int, decay_rate: Any, transition_begin: int = 0,
    staircase: bool = False, end_value: Optional[Any] = None) -> Schedule:
  """Linear warm-up to ``peak_value``, then :func:`exponential_decay`.

  Args:
    init_value: the value at step 0, the start of the warm-up.
    peak_value: the value reached at the end of the warm-up, where the decay
      starts.
    warmup_steps: the steps of the linear warm-up, a non-negative int.
    transition_steps: the steps over which the value is multiplied by
      ``decay_rate`` once (see :func:`exponential_decay`).
    decay_rate: the factor per ``transition_steps`` steps, non-negative.
    transition_begin: the steps after the warm-up before the decay starts, a
      non-negative int.
    staircase: drop the value every ``transition_steps`` steps instead of
      continuously.
    end_value: a bound on the decayed value (a floor when decaying); ``None``:
      unbounded.

  Example:
    >>> import gradtx
    >>> s = gradtx.warmup_exponential_decay_schedule(0.0, 1.0, 10, 10, 0.5)
    >>> float(s(5)), float(s(20))
    (0.5, 0.5)
  """
  V.check_int("warmup_exponential_decay_schedule", "warmup_steps",
             warmup_steps, 0)
  return join_schedules(
      [linear_schedule(init_value, peak_value, warmup_steps),
       exponential_decay(peak_value, transition_steps, decay_rate,
                         transition_begin, staircase, end_value)],
      [warmup_steps])


def sgdr_schedule(cosine_kwargs: Iterable[dict]) -> Schedule:
  """SGDR (Loshchilov & Hutter, ICLR 2017) as optax builds it.

  One :func:`warmup_cosine_decay_schedule` per dict of keyword arguments,
  run one after the other. For PyTorch's ``CosineAnnealingWarmRestarts``
  with growing periods use :func:`cosine_warm_restarts_schedule`.

  Args:
    cosine_kwargs: one dict of :func:`warmup_cosine_decay_schedule` keyword
      arguments per cycle (``init_value``, ``peak_value``, ``warmup_steps``,
      ``decay_steps``, optionally ``end_value`` and ``exponent``); each cycle
      lasts its ``decay_steps``.

  Example:
    >>> import gradtx
    >>> s = gradtx.sgdr_schedule([dict(init_value=0.0, peak_value=1.0,
    ...     warmup_steps=0, decay_steps=10)] * 2)
    >>> float(s(10))
    1.0
  """
  boundaries, schedules, step = [], [], 0
  for kwargs in cosine_kwargs:
    schedules.append(warmup_cosine_decay_schedule(**kwargs))
    step += kwargs["decay_steps"]
    boundaries.append(step)
  if not schedules:
    raise ValueError("sgdr_schedule: cosine_kwargs is empty; give at least "
                     "one cycle.")
  return join_schedules(schedules, boundaries[:-1])


def _interpolate_schedule(kind: str, init_value: Any,
                          boundaries_and_scales: dict) -> Schedule:
  """optax's piecewise interpolation between cumulative scales."""
  boundaries, scales = zip(*sorted(boundaries_and_scales.items()))

  def interp(a, b, pct):
    if kind == "linear":
      return a + pct * (b - a)
    return b + (a - b) * (jnp.cos(jnp.pi * pct) + 1) / 2

  def schedule(count):
    bounds = jnp.stack((0,) + boundaries)
    values = jnp.cumprod(jnp.stack((init_value,) + scales))
    sizes = _real(jnp.maximum(bounds[1:] - bounds[:-1], 1))
    indicator = jnp.logical_and(bounds[:-1] <= count, count < bounds[1:])
    pct = _real(jnp.clip(count - bounds[:-1], 0, bounds[-1])) / sizes
    vals = interp(values[:-1], values[1:], pct)
    return indicator.dot(vals) + (bounds[-1] <= count) * values[-1]

  return schedule


def _check_onecycle(fn: str, transition_steps: Any, pct_start: Any,
                    div_factor: Any, final_div_factor: Any) -> None:
  """The arguments both one-cycle schedules take, checked."""
  V.check_int(fn, "transition_steps", transition_steps, 1)
  V.check_interval(fn, "pct_start", pct_start, 0.0, 1.0)
  V.check_positive(fn, "div_factor", div_factor)
  V.check_positive(fn, "final_div_factor", final_div_factor)


def linear_onecycle_schedule(transition_steps: int, peak_value: Any,
                             pct_start: float = 0.3, pct_final: float = 0.85,
                             div_factor: float = 25.0,
                             final_div_factor: float = 1e4) -> Schedule:
  """One-cycle policy (Smith & Topin 2018), linear pieces, as in optax.

  Rises linearly from ``peak / div_factor`` to ``peak`` over the first
  ``pct_start`` of the run, falls back to ``peak / div_factor`` by
  ``pct_final``, then anneals to ``peak / (div_factor * final_div_factor)``
  at ``transition_steps``.

  Args:
    transition_steps: the length of the whole cycle, a positive int; the value
      stays at its end value after it.
    peak_value: the highest value, reached after
      ``pct_start * transition_steps`` steps.
    pct_start: the fraction of the cycle, in [0, 1), spent rising from
      ``peak_value / div_factor`` to ``peak_value``.
    pct_final: the fraction of the cycle, in [``pct_start``, 1], at which the
      value is back at ``peak_value / div_factor``; then it anneals to the end
      value.
    div_factor: the start value is ``peak_value / div_factor``; positive.
    final_div_factor: the end value is ``peak_value / (div_factor *
      final_div_factor)``; positive.

  Example:
    >>> import gradtx
    >>> s = gradtx.linear_onecycle_schedule(100, 1.0)
    >>> round(float(s(30)), 6)
    1.0
  """
  fn = "linear_onecycle_schedule"
  _check_onecycle(fn, transition_steps, pct_start, div_factor,
                  final_div_factor)
  V.check_interval(fn, "pct_final", pct_final, 0.0, 1.0, hi_closed=True)
  if pct_final < pct_start:
    raise ValueError(f"{fn}: pct_final must be >= pct_start, got "
                     f"{pct_start=} and {pct_final=}.")
  return _interpolate_schedule("linear", peak_value / div_factor, {
      int(pct_start * transition_steps): div_factor,
      int(pct_final * transition_steps): 1.0 / div_factor,
      transition_steps: 1.0 / final_div_factor})


def cosine_onecycle_schedule(transition_steps: int, peak_value: Any,
                             pct_start: float = 0.3, div_factor: float = 25.0,
                             final_div_factor: float = 1e4) -> Schedule:
  """One-cycle policy with cosine pieces (fastai's form), as in optax.

  Args:
    transition_steps: the length of the whole cycle, a positive int; the value
      stays at its end value after it.
    peak_value: the highest value, reached after
      ``pct_start * transition_steps`` steps.
    pct_start: the fraction of the cycle, in [0, 1), spent rising from
      ``peak_value / div_factor`` to ``peak_value``; the rest anneals to the end
      value.
    div_factor: the start value is ``peak_value / div_factor``; positive.
    final_div_factor: the end value is ``peak_value / (div_factor *
      final_div_factor)``; positive.

  Example:
    >>> import gradtx
    >>> s = gradtx.cosine_onecycle_schedule(100, 1.0)
    >>> round(float(s(30)), 6)
    1.0
  """
  _check_onecycle("cosine_onecycle_schedule", transition_steps, pct_start,
                  div_factor, final_div_factor)
  return _interpolate_schedule("cosine", peak_value / div_factor, {
      int(pct_start * transition_steps): div_factor,
      int(transition_steps): 1.0 / (div_factor * final_div_factor)})


_CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


def cyclic_schedule(base_value: Any, max_value: Any, step_size: int,
                    mode: str = "triangular", gamma: Any = 1.0) -> Schedule:
  r"""Cyclical learning rates (Smith, "Cyclical learning rates for training
  neural networks", WACV 2017).

  The value climbs linearly from ``base_value`` to ``max_value`` over
  ``step_size`` steps and back over the next ``step_size``:

  .. math::
     c = \lfloor k / 2s \rfloor + 1,\quad
     x = \left|\frac{k}{s} - 2c + 1\right|,\quad
     v(k) = b + (m - b)\max(0, 1 - x)\,\sigma(k)

  with :math:`\sigma = 1` (``triangular``), :math:`2^{-(c-1)}`
  (``triangular2``, the amplitude halves every cycle) or :math:`\gamma^k`
  (``exp_range``). Equals ``torch.optim.lr_scheduler.CyclicLR(base_lr,
  max_lr, step_size_up=step_size, mode=mode, gamma=gamma)`` at every step.
  The position in the cycle is computed in integer arithmetic, so it is
  exact at any int32 step.

  Args:
    base_value: ``b``, the lowest value, at the start of each cycle.
    max_value: ``m``, the highest value (before the amplitude scaling), at least
      ``base_value``.
    step_size: ``s``, the steps of each half cycle, a positive int.
    mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``: how the
      amplitude changes from cycle to cycle (see above).
    gamma: the per-step amplitude factor of ``"exp_range"``, in (0, 1]; unused
      by the other modes.

  Example:
    >>> import gradtx
    >>> s = gradtx.cyclic_schedule(0.1, 1.0, step_size=10)
    >>> [round(float(s(k)), 6) for k in (0, 5, 10, 15, 20)]
    [0.1, 0.55, 1.0, 0.55, 0.1]
  """
  fn = "cyclic_schedule"
  V.check_int(fn, "step_size", step_size, 1)
  if mode not in _CYCLIC_MODES:
    raise ValueError(f"{fn}: mode must be one of {_CYCLIC_MODES}, got "
                     f"mode={mode!r}.")
  if V.is_concrete_number(base_value) and V.is_concrete_number(max_value) \
      and float(max_value) < float(base_value):
    raise ValueError(f"{fn}: max_value must be >= base_value, got "
                     f"{base_value=} and {max_value=}.")
  V.check_interval(fn, "gamma", gamma, 0.0, 1.0, lo_closed=False,
                   hi_closed=True)

  def schedule(count):
    count = jnp.asarray(count)
    period = 2 * step_size
    cycle = count // period  # 0-based cycle index, integer
    pos = count - cycle * period  # integer position in [0, 2s)
    height = 1 - _real(jnp.abs(pos - step_size)) / step_size
    if mode == "triangular":
      scale = 1.0
    elif mode == "triangular2":
      scale = 1 / num.int_pow(2.0, cycle)
    else:
      scale = num.int_pow(gamma, count)
    return base_value + (max_value - base_value) * height * scale

  return schedule


def cosine_warm_restarts_schedule(init_value: Any, first_period: int,
                                  period_mult: int = 1,
                                  min_value: Any = 0.0) -> Schedule:
  r"""SGDR's cosine annealing with warm restarts and growing periods
  (Loshchilov & Hutter, ICLR 2017).

  Period :math:`i` lasts :math:`T_i = T_0 \cdot T_{mult}^i` steps; within
  it, at step :math:`T_{cur}`:

  .. math::
     v = v_{min} + \tfrac12 (v_0 - v_{min})
         \left(1 + \cos\frac{\pi T_{cur}}{T_i}\right)

  Equals ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0,
  T_mult, eta_min)`` at every step. Period boundaries are found in integer
  arithmetic.

  Args:
    init_value: the value at the start of each period, :math:`v_0`.
    first_period: :math:`T_0`, the length of the first period in steps, a
      positive int.
    period_mult: :math:`T_{mult}`, the factor by which each period is longer
      than the one before, a positive int (1: equal periods).
    min_value: :math:`v_{min}`, the value the cosine anneals to, at most
      ``init_value``.

  Example:
    >>> import gradtx
    >>> s = gradtx.cosine_warm_restarts_schedule(1.0, 10, period_mult=2)
    >>> [round(float(s(k)), 6) for k in (0, 5, 10, 20, 30)]
    [1.0, 0.5, 1.0, 0.5, 1.0]
  """
  fn = "cosine_warm_restarts_schedule"
  V.check_int(fn, "first_period", first_period, 1)
  V.check_int(fn, "period_mult", period_mult, 1)
  if V.is_concrete_number(init_value) and V.is_concrete_number(min_value) \
      and float(min_value) > float(init_value):
    raise ValueError(f"{fn}: min_value must be <= init_value, got "
                     f"{init_value=} and {min_value=}.")
  # Restart boundaries that fit in int32 (a longer run stays in the last).
  starts, lengths = [0], [first_period]
  while period_mult > 1 and starts[-1] + lengths[-1] < 2 ** 31 - 1:
    starts.append(starts[-1] + lengths[-1])
    lengths.append(lengths[-1] * period_mult)

  def schedule(count):
    count = jnp.asarray(count)
    if period_mult == 1:
      t_cur, t_i = count % first_period, first_period
    else:
      start, t_i = 0, float(first_period)
      for s, length in zip(starts[1:], lengths[1:]):
        start = jnp.where(count >= s, s, start)
        t_i = jnp.where(count >= s, float(length), t_i)
      t_cur = count - start
    t_cur = _real(t_cur)
    return min_value + (init_value - min_value) * (
        1 + jnp.cos(jnp.pi * t_cur / t_i)) / 2

  return schedule
