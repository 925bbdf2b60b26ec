"""Lookahead (Zhang, Lucas, Hinton & Ba, NeurIPS 2019), on ordinary params."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import combine
from gradtx._src import tree as T
from gradtx._src import validation as V


class LookaheadState(NamedTuple):
  """Steps taken, the slow weights and the inner (fast) optimizer's state."""
  count: jax.Array
  slow: Any
  inner_state: Any


def lookahead(optimizer: base.GradientTransformation, sync_period: int = 5,
              slow_step_size: Any = 0.5, reset_state: bool = False,
              ) -> base.GradientTransformation:
  r"""Lookahead: the inner optimizer explores, slow weights follow.

  Zhang, Lucas, Hinton & Ba, "Lookahead optimizer: k steps forward, 1 step
  back" (NeurIPS 2019).

  Algorithm 1 of the paper, with the params you train as the fast weights
  and the slow weights :math:`\phi` kept in the state:

  .. math::
     \theta_{t} = \theta_{t-1} + A(g_t)\ \text{(the inner step)};\quad
     \text{every } k \text{ steps: }
     \phi \leftarrow \phi + \alpha(\theta_t - \phi),\ \theta_t \leftarrow \phi

  On a sync step the update returned moves the params onto the new slow
  weights, so after ``gradtx.apply_updates`` they are the slow weights (up to
  one rounding: ``theta + (phi - theta)``). No special params type is needed,
  unlike optax's ``lookahead``, which wants ``LookaheadParams``; evaluate with
  the params right after a sync, or with ``state.slow`` at any time.

  Args:
    optimizer: the inner (fast) optimizer, any transform or chain.
    sync_period: ``k``, the number of fast steps between syncs.
    slow_step_size: ``alpha`` in [0, 1], how far the slow weights move.
    reset_state: reset the inner optimizer's state at every sync.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.lookahead(gradtx.adam(1e-3), sync_period=6)
    >>> params = {"w": jnp.ones(3)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.ones(3)}, state, params)
  """
  fn = "lookahead"
  V.check_int(fn, "sync_period", sync_period, 1)
  V.check_interval(fn, "slow_step_size", slow_step_size, 0.0, 1.0,
                   hi_closed=True)
  forwards = combine._accepts_extra_args(optimizer.update)

  def init_fn(params):
    return LookaheadState(count=base.zero_count(), slow=T.tree_strong(params),
                          inner_state=optimizer.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG.format(name=fn))
    if forwards:
      fast_updates, inner_state = optimizer.update(
          updates, state.inner_state, params, **extra_args)
    else:
      fast_updates, inner_state = optimizer.update(
          updates, state.inner_state, params)
    count = base.safe_increment(state.count)
    sync = count % sync_period == 0

    def leaf(u, p, slow):
      fast = p + u
      new_slow = slow + T.like(slow_step_size, slow) * (fast - slow)
      return (jnp.where(sync, (new_slow - p).astype(u.dtype), u),
              jnp.where(sync, new_slow, slow))

    out, slow = T.leafwise(leaf, 2, fast_updates, params, state.slow, name=fn,
                           params_index=0)
    if reset_state:
      fresh = optimizer.init(slow)
      inner_state = jax.tree.map(lambda a, b: jnp.where(sync, a, b), fresh,
                                 inner_state)
    return out, LookaheadState(count=count, slow=slow,
                               inner_state=inner_state)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
