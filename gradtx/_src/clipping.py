"""Clipping of the updates, element-wise or by their global norm."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import tree_utils as T
from gradtx._src import validation as V


def clip(max_delta: Any) -> base.GradientTransformation:
  """Clips every entry of the updates to ``[-max_delta, max_delta]``.

  Args:
    max_delta: the largest magnitude an entry keeps, a non-negative number
      (or a traced scalar). Real updates only: a complex update has no
      interval to clip to (use :func:`clip_by_global_norm`).

  Returns:
    A stateless :class:`GradientTransformation` (its state is
      :class:`EmptyState`).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> updates, _ = gradtx.clip(1.0).update(jnp.array([-3.0, 0.5, 2.0]),
    ...                                      gradtx.EmptyState())
    >>> print(updates)
    [-1.   0.5  1. ]
  """
  V.check_nonnegative("clip", "max_delta", max_delta)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    V.reject_complex(
        "clip", updates, "it bounds each entry to [-max_delta, max_delta], "
        "an interval of the real line. For complex updates use "
        "clip_by_global_norm, which bounds their magnitude.")
    return jax.tree.map(lambda g: jnp.clip(g, -max_delta, max_delta),
                        updates), state

  update_fn.gradtx_name = "clip"
  return base.GradientTransformation(base.init_empty_state, update_fn)


def clip_by_global_norm(max_norm: Any) -> base.GradientTransformation:
  r"""Rescales the updates so their global l2 norm is at most ``max_norm``.

  .. math:: u \leftarrow u \cdot \min(1, \text{max\_norm} / \lVert u\rVert_2)

  Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural
  networks" (ICML 2013).

  Args:
    max_norm: the largest global l2 norm the updates keep, over every leaf
      of the tree together; a non-negative number (or a traced scalar).

  Returns:
    A stateless :class:`GradientTransformation` (its state is
      :class:`EmptyState`).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.clip_by_global_norm(1.0)
    >>> updates, _ = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(None))
    >>> print(updates["w"])
    [0.6 0.8]
  """
  V.check_nonnegative("clip_by_global_norm", "max_norm", max_norm)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    g_norm = T.tree_global_norm(updates)
    trigger = g_norm < max_norm

    def clip_leaf(t):
      return jax.lax.select(trigger, t, (t / g_norm.astype(t.dtype)) * max_norm)

    return jax.tree.map(clip_leaf, updates), state

  update_fn.gradtx_name = "clip_by_global_norm"
  return base.GradientTransformation(base.init_empty_state, update_fn)
