"""Loop-level wrappers: gradient accumulation and skipping non-finite steps."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import combine
from gradtx._src import tree as T


def _call(inner, forwards, updates, state, params, extra_args):
  if forwards:
    return inner.update(updates, state, params, **extra_args)
  return inner.update(updates, state, params)


class MultiStepsState(NamedTuple):
  """Gradient accumulation state.

  Attributes:
    mini_step: mini-steps taken since the last inner update.
    gradient_step: inner updates made so far.
    inner_opt_state: the inner optimizer's state.
    acc_grads: the running mean (or sum) of this cycle's gradients: the one
      extra copy of the params that accumulation needs.
  """
  mini_step: jax.Array
  gradient_step: jax.Array
  inner_opt_state: Any
  acc_grads: Any


class MultiSteps:
  r"""Gradient accumulation: one inner step every ``k`` mini-steps.

  .. math::
     \bar g \leftarrow \bar g + \frac{g_i - \bar g}{i + 1}
     \ (i = 0..k-1),\qquad
     \text{at } i = k-1:\ u = \text{opt}(\bar g),\ \bar g \leftarrow 0

  Updates are zero on the other mini-steps. Only the running mean is kept
  (one copy of the params); the inner update runs inside a ``lax.cond``, so
  mini-steps cost no more than the accumulation. Same API as
  ``optax.MultiSteps`` (``init``, ``update``, ``has_updated``,
  ``gradient_transformation()``); its ``skip_state`` is not kept, and the
  accumulator has the params' dtype (optax's defaults to float32).

  Args:
    opt: the inner optimizer.
    every_k_schedule: ``k`` as an int, or a function of the number of inner
      updates made so far.
    use_grad_mean: average the gradients (True) or sum them.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> ms = gradtx.MultiSteps(gradtx.adam(1e-3), every_k_schedule=4)
    >>> state = ms.init({"w": jnp.ones(2)})
  """

  def __init__(self, opt: base.GradientTransformation,
               every_k_schedule: Union[int, Callable[[Any], Any]],
               use_grad_mean: bool = True):
    if not callable(every_k_schedule) and (
        isinstance(every_k_schedule, bool)
        or not isinstance(every_k_schedule, int) or every_k_schedule < 1):
      raise ValueError(
          f"MultiSteps: every_k_schedule must be an int >= 1 or a function "
          f"of the step, got {every_k_schedule=}.")
    self._opt = opt
    self._every_k = every_k_schedule
    self._mean = use_grad_mean
    self._forwards = combine._accepts_extra_args(opt.update)

  @property
  def inner_opt(self) -> base.GradientTransformation:
    return self._opt

  def init(self, params: Any) -> MultiStepsState:
    return MultiStepsState(
        mini_step=base.zero_count(), gradient_step=base.zero_count(),
        inner_opt_state=self._opt.init(params),
        acc_grads=T.tree_zeros_like(params))

  def update(self, updates, state, params=None, **extra_args):
    k = T.at(self._every_k, state.gradient_step)
    i = state.mini_step

    def acc_leaf(g, a):
      if self._mean:
        return (a + (g - a) / (i + 1).astype(a.dtype),)
      return (a + g,)

    acc = T.leafwise(acc_leaf, 1, updates, state.acc_grads,
                     name="MultiSteps")[0]
    emit = i + 1 >= k
    out_shape = jax.eval_shape(
        lambda: _call(self._opt, self._forwards, acc, state.inner_opt_state,
                      params, extra_args)[0])

    def final(_):
      u, inner = _call(self._opt, self._forwards, acc, state.inner_opt_state,
                       params, extra_args)
      return u, inner, jax.tree.map(jnp.zeros_like, acc), \
          jnp.zeros([], jnp.int32), base.safe_increment(state.gradient_step)

    def mid(_):
      zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)
      return zeros, state.inner_opt_state, acc, base.safe_increment(i), \
          state.gradient_step

    u, inner, acc, mini, gstep = jax.lax.cond(emit, final, mid, None)
    return u, MultiStepsState(mini_step=mini, gradient_step=gstep,
                              inner_opt_state=inner, acc_grads=acc)

  def has_updated(self, state: MultiStepsState) -> jax.Array:
    """True if the last ``update`` ran the inner optimizer."""
    return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

  def gradient_transformation(self) -> base.GradientTransformation:
    return base.GradientTransformation(self.init, self.update)


class ApplyIfFiniteState(NamedTuple):
  """Counters of non-finite steps and the inner state.

  Attributes:
    notfinite_count: consecutive steps with NaN or Inf gradients.
    last_finite: whether the last step's gradients were finite.
    total_notfinite: all such steps so far.
    inner_state: the inner optimizer's state.
  """
  notfinite_count: jax.Array
  last_finite: jax.Array
  total_notfinite: jax.Array
  inner_state: Any


def apply_if_finite(inner: base.GradientTransformation,
                    max_consecutive_errors: int,
                    ) -> base.GradientTransformation:
  """Skips steps whose gradients hold a NaN or an Inf.

  A skipped step returns zero updates and leaves the inner state untouched
  (bit for bit), so the next finite step proceeds as if the bad one never
  came. After more than ``max_consecutive_errors`` bad steps in a row the
  update is applied anyway, as in optax, so that a run that has really
  diverged shows it rather than stalling silently. The state counts
  consecutive and total bad steps.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.apply_if_finite(gradtx.adam(1e-3), max_consecutive_errors=5)
    >>> state = tx.init({"w": jnp.ones(2)})
    >>> u, state = tx.update({"w": jnp.array([jnp.nan, 1.0])}, state)
    >>> print(u["w"], int(state.total_notfinite))
    [0. 0.] 1
  """
  if isinstance(max_consecutive_errors, bool) or not isinstance(
      max_consecutive_errors, int) or max_consecutive_errors < 0:
    raise ValueError(
        f"apply_if_finite: max_consecutive_errors must be an int >= 0, got "
        f"{max_consecutive_errors=}.")
  forwards = combine._accepts_extra_args(inner.update)

  def init_fn(params):
    return ApplyIfFiniteState(
        notfinite_count=base.zero_count(), last_finite=jnp.array(True),
        total_notfinite=base.zero_count(), inner_state=inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    leaves = jax.tree.leaves(updates)
    isfinite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])
                       ) if leaves else jnp.array(True)
    count = jnp.where(isfinite, 0, base.safe_increment(state.notfinite_count))
    out_shape = jax.eval_shape(lambda: _call(
        inner, forwards, updates, state.inner_state, params, extra_args)[0])

    def apply(_):
      return _call(inner, forwards, updates, state.inner_state, params,
                   extra_args)

    def skip(_):
      return (jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape),
              state.inner_state)

    updates, inner_state = jax.lax.cond(
        isfinite | (count > max_consecutive_errors), apply, skip, None)
    return updates, ApplyIfFiniteState(
        notfinite_count=count.astype(jnp.int32), last_finite=isfinite,
        total_notfinite=jnp.where(isfinite, state.total_notfinite,
                                  base.safe_increment(state.total_notfinite)),
        inner_state=inner_state)

  update_fn.gradtx_name = "apply_if_finite"
  return base.GradientTransformation(init_fn, update_fn)
