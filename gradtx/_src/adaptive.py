"""Per-parameter adaptive scalings: Adagrad, RMSProp, Adadelta and Rprop.

Each factory's update runs one fused per-leaf function (see
:func:`gradtx._src.leafwise.leafwise`). Numbers match optax 0.2.8 op for op
where optax has the transform, except :func:`scale_by_rprop` (see its
docstring). Adam and Adamax are in ``adam.py``.

The states hold what optax's hold, leaf for leaf: second moments as ``v``,
the running average of ``g**2`` (as optax and PyTorch store them), so a state
saved by one library restores into the other. A step count is kept only where
the maths needs it (a bias correction, or a decay given as a schedule of the
step); elsewhere the ``count`` field is ``None``, which holds no leaf, as
optax's states have none.

A gradient entry beyond about ``1.8e19`` (in float32 or bfloat16) squares to
Inf: ``v`` becomes Inf and the update of that entry 0, as in optax, until
``v`` decays back. Guard against such spikes by clipping first,
``chain(clip_by_global_norm(1.0), rmsprop(...))``, or by skipping the steps
whose gradients are not finite, ``apply_if_finite(rmsprop(...), k)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V


def _count_if(needed: bool) -> Optional[jax.Array]:
  """A zero step count if the transform needs one, else ``None`` (no leaf)."""
  return num.zero_count() if needed else None


def _next_count(count: Optional[jax.Array]) -> Optional[jax.Array]:
  return None if count is None else num.safe_increment(count)


def _ema_sq(v: jax.Array, g: jax.Array, keep: Any, add: Any) -> jax.Array:
  """``keep * v + add * |g|**2``: a second moment's running average, in
  the promoted dtype of ``v`` and ``|g|**2`` (a bfloat16 ``v`` is updated
  in the gradient's float32, then rounded once when stored)."""
  g2 = num.abs_sq(g)
  return add * g2 + keep * v.astype(jnp.promote_types(v.dtype, g2.dtype))


# --------------------------------------------------------------------------
# Adagrad


class ScaleByRssState(NamedTuple):
  """The running sum of squared gradients, ``G_t``.

  Attributes:
    sum_of_squares: the sum ``G_t`` of the squared gradients so far, plus
      ``initial_accumulator_value``.
  """
  sum_of_squares: Any


def scale_by_rss(initial_accumulator_value: Any = 0.1, eps: Any = 1e-7, *,
                 eps_in_sqrt: bool = True) -> base.GradientTransformation:
  r"""Adagrad's scaling by the root of the sum of squared gradients.

  .. math::
     G_t = G_{t-1} + g_t^2, \qquad
     u_t = g_t / \sqrt{G_t + \epsilon}\ \text{(eps\_in\_sqrt)} \quad\text{or}
     \quad u_t = g_t / (\sqrt{G_t} + \epsilon)

  With ``eps_in_sqrt=True`` (the optax default) entries whose ``G_t`` is 0
  get a 0 update. Duchi, Hazan & Singer (JMLR 2011) start ``G_0 = 0`` and add
  ``eps`` outside the root: ``initial_accumulator_value=0.0,
  eps_in_sqrt=False`` (PyTorch's ``Adagrad`` form).

  Args:
    initial_accumulator_value: the starting value ``G_0`` of the sum of squares,
      non-negative.
    eps: the denominator's :math:`\epsilon`, non-negative: inside the root with
      ``eps_in_sqrt``, added to the root otherwise.
    eps_in_sqrt: put ``eps`` inside the square root (optax's default) rather
      than outside it (the paper's and PyTorch's form).
  """
  fn = "scale_by_rss"
  V.check_nonnegative(fn, "initial_accumulator_value",
                      initial_accumulator_value)
  V.check_nonnegative(fn, "eps", eps)

  def init_fn(params):
    return ScaleByRssState(sum_of_squares=T.tree_full_like(
        params, initial_accumulator_value))

  def leaf(g, s):
    s = num.abs_sq(g) + s
    if eps_in_sqrt:
      return jnp.where(s > 0, jax.lax.rsqrt(s + T.like(eps, s)), 0.0) * g, s
    return g / (jnp.sqrt(s) + T.like(eps, s)), s

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    updates, s = LW.leafwise(leaf, 2, updates, state.sum_of_squares, name=fn)
    return updates, ScaleByRssState(sum_of_squares=s)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# RMSProp


class ScaleByRmsState(NamedTuple):
  """The EMA ``nu`` of ``g**2``, and a step count where the bias correction
  or a ``decay`` schedule needs it (``None`` otherwise: optax's
  ``ScaleByRmsState`` or ``ScaleByRmsWithCountState``, leaf for leaf).

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``, kept only for the bias correction or a ``decay`` schedule;
      ``None`` otherwise.
    nu: the moving average of the squared gradients, ``nu_t``.
  """
  count: Optional[jax.Array]
  nu: Any


def _rms_scaling(v, eps, eps_in_sqrt):
  """``1/sqrt(v + eps)`` or ``1/(sqrt(v) + eps)``."""
  if eps_in_sqrt:
    return jax.lax.rsqrt(v + T.like(eps, v))
  return 1 / (jnp.sqrt(v) + T.like(eps, v))


def scale_by_rms(decay: Any = 0.9, eps: Any = 1e-8, initial_scale: Any = 0.0,
                 eps_in_sqrt: bool = True, bias_correction: bool = False,
                 ) -> base.GradientTransformation:
  r"""RMSProp's scaling (Hinton, Lecture 6e, 2012).

  .. math::
     \nu_t = \rho \nu_{t-1} + (1 - \rho) g_t^2, \qquad
     u_t = g_t / \sqrt{\nu_t + \epsilon}

  ``eps_in_sqrt=False`` gives ``g / (sqrt(nu) + eps)`` (PyTorch's form);
  ``bias_correction`` divides ``nu`` by ``1 - rho**t``.

  Args:
    decay: the decay rate :math:`\rho` of the moving average, in [0, 1); a
      number or a schedule of the step count.
    eps: the denominator's :math:`\epsilon`, non-negative: inside the root with
      ``eps_in_sqrt``, added to the root otherwise.
    initial_scale: the starting value of ``nu``.
    eps_in_sqrt: put ``eps`` inside the square root (optax's form) rather than
      outside it (PyTorch's).
    bias_correction: divide ``nu`` by ``1 - decay**t`` before the root.
  """
  fn = "scale_by_rms"
  V.check_decay(fn, "decay", decay)
  V.check_nonnegative(fn, "eps", eps)
  V.check_nonnegative(fn, "initial_scale", initial_scale)

  counted = bias_correction or callable(decay)

  def init_fn(params):
    return ScaleByRmsState(count=_count_if(counted),
                           nu=T.tree_full_like(params, initial_scale))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    rho = V.at(decay, state.count)
    count = _next_count(state.count)
    bc = num.one_minus_pow(rho, count) if bias_correction else None

    def leaf(g, n):
      r, omr = T.pair(rho, n)
      n = _ema_sq(n, g, r, omr)
      n_hat = n / bc.astype(n.dtype) if bias_correction else n
      return _rms_scaling(n_hat, eps, eps_in_sqrt) * g, n

    updates, nu = LW.leafwise(leaf, 2, updates, state.nu, name=fn)
    return updates, ScaleByRmsState(count=count, nu=nu)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


class ScaleByStddevState(NamedTuple):
  """The EMAs of ``g`` (``mu``) and of ``g**2`` (``nu``), and a step count
  where the bias correction or a ``decay`` schedule needs it (``None``
  otherwise, as in optax's ``ScaleByRStdDevState``).

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``, kept only for the bias correction or a ``decay`` schedule;
      ``None`` otherwise.
    mu: the moving average of the gradients, ``mu_t``.
    nu: the moving average of the squared gradients, ``nu_t``.
  """
  count: Optional[jax.Array]
  mu: Any
  nu: Any


def scale_by_stddev(decay: Any = 0.9, eps: Any = 1e-8,
                    initial_scale: Any = 0.0, eps_in_sqrt: bool = True,
                    bias_correction: bool = False,
                    ) -> base.GradientTransformation:
  r"""Centered RMSProp's scaling by the running standard deviation.

  .. math::
     \mu_t = \rho\mu_{t-1} + (1-\rho) g_t,\quad
     \nu_t = \rho\nu_{t-1} + (1-\rho) g_t^2,\quad
     u_t = g_t / \sqrt{\nu_t - \mu_t^2 + \epsilon}

  Graves, "Generating sequences with recurrent neural networks" (2013), eq. 38.

  Differs from optax 0.2.8 where the variance estimate rounds below zero:
  gradtx clamps it at 0, where optax's ``sqrt`` returns NaN. This happens at
  the first step with ``bias_correction=True`` (the variance of one sample is
  0), so prefer ``eps_in_sqrt=True`` there. Where ``nu`` overflows to Inf
  the update is 0, where optax's is NaN.

  Args:
    decay: the decay rate :math:`\rho` of both moving averages, in [0, 1); a
      number or a schedule of the step count.
    eps: the denominator's :math:`\epsilon`, non-negative: inside the root with
      ``eps_in_sqrt``, added to the root otherwise.
    initial_scale: the starting value of ``nu`` (``mu`` starts at 0).
    eps_in_sqrt: put ``eps`` inside the square root (optax's form) rather than
      outside it (PyTorch's).
    bias_correction: divide ``mu`` and ``nu`` by ``1 - decay**t``.
  """
  fn = "scale_by_stddev"
  V.check_decay(fn, "decay", decay)
  V.check_nonnegative(fn, "eps", eps)
  V.check_nonnegative(fn, "initial_scale", initial_scale)

  counted = bias_correction or callable(decay)

  def init_fn(params):
    return ScaleByStddevState(count=_count_if(counted),
                              mu=T.tree_zeros_like(params),
                              nu=T.tree_full_like(params, initial_scale))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    rho = V.at(decay, state.count)
    count = _next_count(state.count)
    bc = num.one_minus_pow(rho, count) if bias_correction else None

    def leaf(g, m, n):
      (r, omr), (rn, omrn) = T.pair(rho, g), T.pair(rho, n)
      m = omr * g + r * m
      n = _ema_sq(n, g, rn, omrn)
      if bias_correction:
        m_hat, n_hat = m / bc.astype(m.dtype), n / bc.astype(n.dtype)
      else:
        m_hat, n_hat = m, n
      # A difference of nearly equal numbers: rounding can make it slightly
      # negative (with bias_correction it is exactly 0 at t = 1), and optax
      # then returns NaN. Clamp at 0 instead. |m|**2 <= v, so where v has
      # overflowed to Inf so has the variance (optax forms Inf - Inf = NaN).
      var = jnp.maximum(n_hat - num.abs_sq(m_hat), 0)
      var = jnp.where(n_hat == jnp.inf, n_hat, var)
      return _rms_scaling(var, eps, eps_in_sqrt) * g, m, n

    updates, mu, nu = LW.leafwise(leaf, 3, updates, state.mu, state.nu, name=fn)
    return updates, ScaleByStddevState(count=count, mu=mu, nu=nu)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Adadelta


class ScaleByAdaDeltaState(NamedTuple):
  r"""The EMAs of squared gradients (``e_g``) and of squared updates
  (``e_x``), as in optax, and a step count where a ``rho`` schedule needs
  it (``None`` otherwise).

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``, kept only when ``rho`` is a schedule; ``None`` otherwise.
    e_g: the moving average of the squared gradients, :math:`E[g^2]`.
    e_x: the moving average of the squared updates, :math:`E[\Delta x^2]`.
  """
  count: Optional[jax.Array]
  e_g: Any
  e_x: Any


_ADADELTA_COMPLEX = (
    "it is defined here for real parameters only (optax's version squares "
    "the complex gradient without conjugating it, so there is no reference "
    "to agree with). For complex parameters use adam, rmsprop, adagrad or "
    "sgd, or optimise the real and imaginary parts as separate real leaves.")


_RPROP_COMPLEX = (
    "Rprop adapts each step size from the signs of successive gradients, and "
    "a complex number has no sign. For complex parameters use adam, "
    "rmsprop, adagrad or sgd, or optimise the real and imaginary parts as "
    "separate real leaves.")


def scale_by_adadelta(rho: Any = 0.9, eps: Any = 1e-6,
                      ) -> base.GradientTransformation:
  r"""Adadelta's unit-correcting scaling (Zeiler 2012, Algorithm 1).

  .. math::
     E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2,\quad
     u_t = \frac{\sqrt{E[\Delta x^2]_{t-1} + \epsilon}}
                {\sqrt{E[g^2]_t + \epsilon}}\, g_t,\quad
     E[\Delta x^2]_t = \rho E[\Delta x^2]_{t-1} + (1-\rho) u_t^2

  ``u_t`` points along the gradient: the paper's step is ``-u_t``, which the
  named optimizer :func:`gradtx.adadelta` applies.

  Args:
    rho: the decay rate :math:`\rho` of both moving averages (of the squared
      gradients and of the squared updates), in [0, 1); a number or a schedule
      of the step count.
    eps: added inside both square roots; non-negative. It also sets the size of
      the first steps, since :math:`E[\Delta x^2]` starts at 0.
  """
  fn = "scale_by_adadelta"
  V.check_decay(fn, "rho", rho)
  V.check_nonnegative(fn, "eps", eps)

  def init_fn(params):
    return ScaleByAdaDeltaState(count=_count_if(callable(rho)),
                                e_g=T.tree_zeros_like(params),
                                e_x=T.tree_zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    V.reject_complex(fn, updates, _ADADELTA_COMPLEX)
    r_t = V.at(rho, state.count)

    def leaf(g, e_g, e_x):
      r, omr = T.pair(r_t, g)
      e_g = _ema_sq(e_g, g, r, omr)
      u = (jnp.sqrt(e_x + T.like(eps, e_x))
           / jnp.sqrt(e_g + T.like(eps, e_g))) * g
      e_x = _ema_sq(e_x, u, r, omr)
      return u, e_g, e_x

    updates, e_g, e_x = LW.leafwise(leaf, 3, updates, state.e_g, state.e_x,
                                   name=fn)
    return updates, ScaleByAdaDeltaState(count=_next_count(state.count),
                                         e_g=e_g, e_x=e_x)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Rprop


class ScaleByRpropState(NamedTuple):
  """Per-entry step sizes and the last step taken (``step * sign(g)``).

  Attributes:
    step_sizes: each entry's current step size ``s_t``.
    prev_updates: the last update ``u_t`` (``s_t * sign(g_t)``, 0 where the sign
      flipped), whose sign the next gradient is compared with.
  """
  step_sizes: Any
  prev_updates: Any


def scale_by_rprop(learning_rate: Any, eta_minus: Any = 0.5,
                   eta_plus: Any = 1.2, min_step_size: Any = 1e-6,
                   max_step_size: Any = 50.0) -> base.GradientTransformation:
  r"""Resilient backpropagation, iRprop- (Riedmiller & Braun 1993; Igel &
  Hüsken 2000).

  .. math::
     s_t = \begin{cases}
       \min(\eta^+ s_{t-1}, s_{max}) & g_t g_{t-1} > 0\\
       \max(\eta^- s_{t-1}, s_{min}) & g_t g_{t-1} < 0\\
       s_{t-1} & \text{otherwise}\end{cases},\qquad
     u_t = \begin{cases} 0 & g_t g_{t-1} < 0\\
       s_t\,\mathrm{sign}(g_t) & \text{otherwise}\end{cases}

  After a sign change the stored gradient is zeroed, so the next step does
  not shrink the step size again. The step taken is ``-u_t``
  (:func:`gradtx.rprop` applies the sign).

  Differs from optax 0.2.8, whose ``scale_by_rprop`` returns the update it
  computed at the *previous* step (its first update is all zeros and every
  later one lags by a step). Here step ``t`` applies the update computed from
  ``g_t``, as in the paper and in ``torch.optim.Rprop``.

  Args:
    learning_rate: the initial step size ``s_0`` of every entry, a positive
      number (not a schedule: Rprop adapts its step sizes itself).
    eta_minus: the factor in (0, 1) that shrinks a step size after a sign
      change.
    eta_plus: the factor, at least 1, that grows a step size while the sign
      holds.
    min_step_size: the smallest step size, non-negative.
    max_step_size: the largest step size, at least ``min_step_size``.
  """
  fn = "scale_by_rprop"
  if callable(learning_rate):
    raise ValueError(
        f"{fn}: learning_rate is Rprop's initial step size, a number, got the "
        f"schedule {learning_rate!r}; Rprop adapts its step sizes itself.")
  V.check_learning_rate(fn, learning_rate)
  V.check_interval(fn, "eta_minus", eta_minus, 0.0, 1.0, lo_closed=False,
                   hint="it shrinks the step after a sign change.")
  V.check_interval(fn, "eta_plus", eta_plus, 1.0, float("inf"),
                   hi_closed=True, hint="it grows the step while the sign "
                   "holds.")
  V.check_nonnegative(fn, "min_step_size", min_step_size)
  V.check_nonnegative(fn, "max_step_size", max_step_size)
  if (V.is_concrete_number(min_step_size) and V.is_concrete_number(
      max_step_size) and float(max_step_size) < float(min_step_size)):
    raise ValueError(
        f"{fn}: max_step_size must be >= min_step_size, got "
        f"{min_step_size=} and {max_step_size=}.")

  def init_fn(params):
    return ScaleByRpropState(
        step_sizes=T.tree_full_like(params, learning_rate),
        prev_updates=T.tree_zeros_like(params))

  def leaf(g, s, prev):
    sign = g * prev
    s = jnp.where(sign == 0, s, jnp.clip(
        s * jnp.where(sign > 0, eta_plus, eta_minus),
        min=min_step_size, max=max_step_size))
    u = jnp.where(sign < 0, jnp.zeros_like(g), s * jnp.sign(g))
    return u, s, u

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    V.reject_complex(fn, updates, _RPROP_COMPLEX)
    updates, s, prev = LW.leafwise(leaf, 3, updates, state.step_sizes,
                                  state.prev_updates, name=fn)
    return updates, ScaleByRpropState(step_sizes=s, prev_updates=prev)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
