"""Steps taken on a condition: :func:`apply_if_finite` skips the steps whose
gradients hold a NaN or an Inf.

The inner update runs inside a ``jax.lax.cond`` (:func:`_cond`), so a step
that does not use it does not compute it, and the inner state is kept bit
for bit on the steps held back. :class:`gradtx.MultiSteps` uses the same
two helpers.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import numerics as num
from gradtx._src import validation as V


def _cond(pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any],
          ) -> Any:
  """``jax.lax.cond`` under a trace; a plain ``if`` when ``pred`` is known.

  Called eagerly, ``lax.cond`` would compile its branches afresh at every
  step (they are new closures each time); with a concrete predicate only
  the branch taken runs, op by op, as the rest of an eager step does.
  """
  if isinstance(pred, jax.core.Tracer):
    return jax.lax.cond(pred, lambda _: true_fn(), lambda _: false_fn(), None)
  return true_fn() if bool(pred) else false_fn()


def _zero_updates_of(call: Callable[[], tuple]) -> Any:
  """Zeros shaped like the updates ``call()`` returns, without running it.

  ``jax.eval_shape`` only traces ``call``: the inner update's arithmetic is
  never executed, and the zeros have exactly the inner update's dtypes (and,
  with explicit mesh axes, shardings), so both branches of the ``lax.cond``
  agree.
  """
  shapes = jax.eval_shape(lambda: call()[0])
  return jax.tree.map(jnp.zeros_like, shapes)


class ApplyIfFiniteState(NamedTuple):
  """The state of :func:`apply_if_finite`.

  Attributes:
    notfinite_count: consecutive steps so far whose gradients held a NaN or
      an Inf (0 after a finite step).
    last_finite: whether the last step's gradients were all finite.
    total_notfinite: all such steps since ``init``; never reset.
    inner_state: the inner optimizer's state.
  """
  notfinite_count: jax.Array
  last_finite: jax.Array
  total_notfinite: jax.Array
  inner_state: Any


def _all_finite(tree: Any) -> jax.Array:
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return jnp.array(True)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def apply_if_finite(inner: base.GradientTransformation,
                    max_consecutive_errors: int,
                    ) -> base.GradientTransformation:
  r"""Skips the steps whose gradients hold a NaN or an Inf.

  With :math:`c_t` the number of consecutive non-finite steps up to step
  :math:`t` and :math:`M` = ``max_consecutive_errors``:

  .. math::
     (u_t, s_t) = \begin{cases}
       \mathrm{inner}(g_t, s_{t-1}) & g_t \text{ finite, or } c_t > M \\
       (0,\ s_{t-1}) & \text{otherwise}
     \end{cases}

  A skipped step returns zero updates and leaves the inner state bit for
  bit as it was, so the next finite step proceeds exactly as if the bad
  one had never come. The inner update runs inside ``jax.lax.cond``; one
  jitted step serves both cases.

  As in ``optax.apply_if_finite`` (same state field names and numbers),
  after ``max_consecutive_errors`` skipped steps in a row the next
  non-finite step *is applied*, and so is every one after it until a finite
  step resets the count: a run that has really diverged then shows it (NaN
  params) instead of stalling silently. ``max_consecutive_errors=0`` never
  skips. The same NaN-skipping is used by mixed-precision training with
  dynamic loss scaling (Micikevicius et al., "Mixed precision training",
  ICLR 2018).

  Args:
    inner: the optimizer to protect, any transform or chain.
    max_consecutive_errors: an int >= 0, the most non-finite steps in a row
      that are skipped.

  Extra keyword arguments of ``update`` are forwarded to ``inner.update``
  when it accepts ``**extra_args``.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.apply_if_finite(gradtx.sgd(0.5), max_consecutive_errors=2)
    >>> state = tx.init({"w": jnp.ones(2)})
    >>> u, state = tx.update({"w": jnp.array([jnp.nan, 1.0])}, state)
    >>> print(u["w"], int(state.notfinite_count), bool(state.last_finite))
    [0. 0.] 1 False
    >>> u, state = tx.update({"w": jnp.array([2.0, 1.0])}, state)
    >>> print(u["w"], int(state.notfinite_count), int(state.total_notfinite))
    [-1.  -0.5] 0 1
  """
  fn = "apply_if_finite"
  V.check_transform(fn, "inner", inner)
  if not V.is_int(max_consecutive_errors):
    raise ValueError(
        f"{fn}: max_consecutive_errors must be an int >= 0 (the most "
        f"non-finite steps in a row to skip), got {max_consecutive_errors=} "
        f"of type {type(max_consecutive_errors).__name__}.")
  if max_consecutive_errors < 0:
    raise ValueError(
        f"{fn}: max_consecutive_errors must be an int >= 0 (the most "
        f"non-finite steps in a row to skip), got {max_consecutive_errors=}.")
  max_errors = int(max_consecutive_errors)
  def init_fn(params):
    return ApplyIfFiniteState(
        notfinite_count=num.zero_count(), last_finite=jnp.array(True),
        total_notfinite=num.zero_count(), inner_state=inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    isfinite = _all_finite(updates)
    notfinite_count = jnp.where(isfinite, jnp.zeros([], jnp.int32),
                                num.safe_increment(state.notfinite_count))

    def inner_step():
      return base.call_update(inner, updates, state.inner_state, params,
                              **extra_args)

    def skip():
      return _zero_updates_of(inner_step), state.inner_state

    new_updates, inner_state = _cond(
        jnp.logical_or(isfinite, notfinite_count > max_errors), inner_step,
        skip)
    return new_updates, ApplyIfFiniteState(
        notfinite_count=notfinite_count, last_finite=isfinite,
        total_notfinite=jnp.where(isfinite, state.total_notfinite,
                                  num.safe_increment(state.total_notfinite)),
        inner_state=inner_state)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
