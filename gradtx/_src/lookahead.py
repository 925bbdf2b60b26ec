"""Lookahead (Zhang, Lucas, Hinton & Ba, NeurIPS 2019), on plain params or
optax's ``LookaheadParams``."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V


class LookaheadParams(NamedTuple):
  """Fast and slow weights, for lookahead in optax's form.

  Take gradients at ``fast``; evaluate with ``slow``. The same fields as
  ``optax.LookaheadParams`` (either class works with :func:`lookahead`).

  Attributes:
    fast: the fast weights, where the gradients are taken.
    slow: the slow weights, to evaluate with.
  """
  fast: Any
  slow: Any

  @classmethod
  def init_synced(cls, params: Any) -> "LookaheadParams":
    """Fast and slow weights both equal to ``params``."""
    return cls(fast=params, slow=params)


class LookaheadState(NamedTuple):
  """The fast optimizer's state, the fast steps since the last sync and,
  for plain params only, the slow weights (``None`` with
  :class:`LookaheadParams`, which hold them: the state is then optax's
  ``LookaheadState``, leaf for leaf).

  Attributes:
    fast_state: the state of the fast optimizer.
    steps_since_sync: the fast steps taken since the last sync, an int32 scalar
      in ``[0, sync_period)``.
    slow: the slow weights for plain params; ``None`` with
      :class:`LookaheadParams`, which hold them.
  """
  fast_state: Any
  steps_since_sync: jax.Array
  slow: Any = None


def _is_lookahead_params(params: Any) -> bool:
  return hasattr(params, "fast") and hasattr(params, "slow")


def lookahead(fast_optimizer: Optional[base.GradientTransformation] = None,
              sync_period: int = 5, slow_step_size: Any = 0.5,
              reset_state: bool = False, *,
              optimizer: Optional[base.GradientTransformation] = None,
              ) -> base.GradientTransformation:
  r"""Lookahead: the inner optimizer explores, slow weights follow.

  Zhang, Lucas, Hinton & Ba, "Lookahead optimizer: k steps forward, 1 step
  back" (NeurIPS 2019). Algorithm 1 of the paper, with fast weights
  :math:`\theta` and slow weights :math:`\phi`:

  .. math::
     \theta_{t} = \theta_{t-1} + A(g_t)\ \text{(the fast step)};\quad
     \text{every } k \text{ steps: }
     \phi \leftarrow \phi + \alpha(\theta_t - \phi),\ \theta_t \leftarrow \phi

  Two forms of params:

  * plain params (gradtx's form): the params you train are the fast
    weights and the slow weights live in ``state.slow``. On a sync step the
    update returned moves the params onto the new slow weights, so after
    ``gradtx.apply_updates`` they are the slow weights (up to one rounding:
    ``theta + (phi - theta)``).
  * :class:`LookaheadParams` ``(fast, slow)`` (optax's form, and optax's
    ``LookaheadParams`` too): take the gradients at ``params.fast``; the
    updates are a ``LookaheadParams`` of both, and the state is optax's,
    leaf for leaf, with the same numbers.

  Args:
    fast_optimizer: the inner (fast) optimizer, any transform or chain
      (optax's name for it).
    sync_period: ``k``, the number of fast steps between syncs.
    slow_step_size: ``alpha`` in [0, 1], how far the slow weights move.
    reset_state: reset the fast optimizer's state at every sync.
    optimizer: another name for ``fast_optimizer``; give one of the two.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.lookahead(gradtx.adam(1e-3), sync_period=6)
    >>> params = {"w": jnp.ones(3)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.ones(3)}, state, params)
  """
  fn = "lookahead"
  if (fast_optimizer is None) == (optimizer is None):
    raise TypeError(
        f"{fn}: pass the inner optimizer once, as fast_optimizer (optax's "
        f"name) or optimizer, e.g. lookahead(gradtx.adam(1e-3), "
        f"sync_period=5, slow_step_size=0.5).")
  inner = fast_optimizer if optimizer is None else optimizer
  V.check_transform(fn, "fast_optimizer", inner)
  V.check_int(fn, "sync_period", sync_period, 1)
  V.check_interval(fn, "slow_step_size", slow_step_size, 0.0, 1.0,
                   hi_closed=True)
  def init_fn(params):
    if _is_lookahead_params(params):
      return LookaheadState(fast_state=inner.init(params.fast),
                            steps_since_sync=num.zero_count())
    return LookaheadState(fast_state=inner.init(params),
                          steps_since_sync=num.zero_count(),
                          slow=T.tree_strong(params))

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG.format(name=fn))
    split = _is_lookahead_params(params)
    if split != (state.slow is None):
      raise ValueError(
          f"{fn}: the state was built by init() on "
          f"{'plain params' if split else 'LookaheadParams'} but update() "
          f"got {'LookaheadParams' if split else 'plain params'}; use the "
          f"same form for both.")
    fast = params.fast if split else params
    fast_updates, fast_state = base.call_update(inner, updates,
                                                state.fast_state, fast,
                                                **extra_args)
    sync = state.steps_since_sync == sync_period - 1
    steps = num.safe_increment(state.steps_since_sync) % sync_period

    if split:
      # optax's merged step: with d = fast + u - slow, the slow weights
      # move by alpha * d and the fast ones land on the new slow weights.
      def leaf(u, f, s):
        d = f + u - s
        a = T.like(slow_step_size, d)
        return (jnp.where(sync, u - (1 - a) * d, u).astype(u.dtype),
                jnp.where(sync, a * d, jnp.zeros_like(d)).astype(s.dtype))

      fast_out, slow_out = LW.leafwise(leaf, 2, fast_updates, params.fast,
                                      params.slow, name=fn, params_index=0)
      out, slow = type(params)(fast=fast_out, slow=slow_out), None
      reset_at = params.fast
    else:
      def leaf(u, p, s):
        new_slow = s + T.like(slow_step_size, s) * (p + u - s)
        return (jnp.where(sync, (new_slow - p).astype(u.dtype), u),
                jnp.where(sync, new_slow, s))

      out, slow = LW.leafwise(leaf, 2, fast_updates, params, state.slow,
                             name=fn, params_index=0)
      reset_at = slow
    if reset_state:
      fresh = inner.init(reset_at)
      fast_state = jax.tree.map(lambda a, b: jnp.where(sync, a, b), fresh,
                                fast_state)
    return out, LookaheadState(fast_state=fast_state,
                               steps_since_sync=steps, slow=slow)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
