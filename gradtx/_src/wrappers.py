"""Wrappers that change where or when an inner transform applies."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Union

import jax

from gradtx._src import base
from gradtx._src import combine


class MaskedNode(NamedTuple):
  """Stands for a masked-out subtree: a pytree node with no leaves."""


class MaskedState(NamedTuple):
  """The inner transform's state, built on the masked params."""
  inner_state: Any


def masked(inner: base.GradientTransformation,
           mask: Union[Any, Callable[[Any], Any]],
           ) -> base.GradientTransformation:
  """Applies ``inner`` to the leaves where ``mask`` is True only.

  ``mask`` is a tree of bools with the params' structure (or a prefix of it),
  or a function from params to such a tree. Masked-out leaves pass through
  unchanged, and the inner state holds nothing for them.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> params = {"w": jnp.ones(3), "b": jnp.zeros(3)}
    >>> decay_w_only = gradtx.masked(gradtx.add_decayed_weights(1e-2),
    ...                              {"w": True, "b": False})
    >>> state = decay_w_only.init(params)
  """
  forwards = combine._accepts_extra_args(inner.update)

  def apply_mask(tree, mask_tree):
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)

  def get_mask(tree):
    return mask(tree) if callable(mask) else mask

  def init_fn(params):
    return MaskedState(inner_state=inner.init(apply_mask(params,
                                                         get_mask(params))))

  def update_fn(updates, state, params=None, **extra_args):
    mask_tree = get_mask(updates)
    masked_updates = apply_mask(updates, mask_tree)
    masked_params = None if params is None else apply_mask(params, mask_tree)
    if forwards:
      new, inner_state = inner.update(masked_updates, state.inner_state,
                                      masked_params, **extra_args)
    else:
      new, inner_state = inner.update(masked_updates, state.inner_state,
                                      masked_params)
    updates = jax.tree.map(lambda m, n, u: n if m else u, mask_tree, new,
                           updates)
    return updates, MaskedState(inner_state=inner_state)

  update_fn.gradtx_name = "masked"
  return base.GradientTransformation(init_fn, update_fn)
