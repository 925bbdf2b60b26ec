"""Wrappers that change the layout the inner transform sees."""

from __future__ import annotations

import math
from typing import Any, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import validation as V


def _size(x: Any) -> int:
  return math.prod(jnp.shape(x))


def _dtype(x: Any) -> Any:
  return jnp.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype


class _Layout:
  """Where each leaf of a tree goes: a flat per-dtype buffer or its own slot.

  Built from one tree (the params at ``init``, the updates at ``update``) and
  applied to any tree of the same structure, so that the params are packed
  exactly as the updates are.
  """

  def __init__(self, tree: Any, max_leaf_size: Optional[int]):
    leaves, self.treedef = jax.tree.flatten(tree)
    self.shapes = [jnp.shape(x) for x in leaves]
    self.groups: dict[str, list[int]] = {}
    self.alone: list[int] = []
    for i, x in enumerate(leaves):
      if max_leaf_size is None or _size(x) <= max_leaf_size:
        self.groups.setdefault(jnp.dtype(_dtype(x)).name, []).append(i)
      else:
        self.alone.append(i)
    # optax.flatten's layout: one vector, when every leaf is grouped and
    # they share one dtype.
    self.single = max_leaf_size is None and len(self.groups) <= 1

  def pack(self, tree: Any) -> Any:
    leaves = self.treedef.flatten_up_to(tree)

    def concat(parts):
      if any(isinstance(x, jax.ShapeDtypeStruct) for x in parts):
        # Abstract params (init from shapes alone): an abstract buffer.
        return jax.ShapeDtypeStruct(
            (sum(_size(x) for x in parts),),
            jnp.result_type(*[_dtype(x) for x in parts]))
      return jnp.concatenate([jnp.ravel(x) for x in parts])

    flat = {name: concat([leaves[i] for i in idx])
            for name, idx in self.groups.items()}
    if self.single:
      return (next(iter(flat.values())) if flat
              else jnp.zeros([0], jnp.float32))
    return {"flat": flat, "leaves": tuple(leaves[i] for i in self.alone)}

  def unpack(self, packed: Any, like: Any) -> Any:
    """The tree of ``packed``'s pieces, each cast to the dtype of the
    matching leaf of ``like`` (the updates that were packed)."""
    dtypes = [_dtype(x) for x in self.treedef.flatten_up_to(like)]
    out: list[Any] = [None] * len(self.shapes)
    if self.single:
      flat = {name: packed for name in self.groups}
      alone: tuple = ()
    else:
      flat, alone = packed["flat"], packed["leaves"]
    for name, idx in self.groups.items():
      offset = 0
      for i in idx:
        n = math.prod(self.shapes[i])
        out[i] = jnp.reshape(flat[name][offset:offset + n],
                             self.shapes[i]).astype(dtypes[i])
        offset += n
    for i, x in zip(self.alone, alone):
      out[i] = x
    return self.treedef.unflatten(out)


def flatten(inner: base.GradientTransformation,
            max_leaf_size: Optional[int] = None,
            ) -> base.GradientTransformation:
  """Runs ``inner`` on the leaves concatenated into flat buffers.

  A step costs XLA a few kernels per leaf whatever the leaf's size, so a
  tree of many small leaves (biases, norm scales) spends its time on kernel
  overhead, and its compile time on thousands of tiny fusions. Concatenated,
  the small leaves cost a few kernels in all.

  * ``max_leaf_size=None`` (optax's ``flatten``): every leaf goes into one
    flat vector, and ``inner``'s state holds vectors. With leaves of several
    dtypes, gradtx makes one vector per dtype (optax would promote them all
    to one dtype, so bfloat16 params got float32 updates).
  * ``max_leaf_size=n``: only leaves of at most ``n`` entries are
    concatenated, one vector per dtype; larger leaves are passed to
    ``inner`` as they are, so a large matrix is not copied into a buffer
    every step. ``inner`` sees ``{"flat": {dtype: vector}, "leaves":
    (large leaves...)}``. ``2**14`` keeps the small leaves of GPT-2 or
    ResNet-50 (biases, norms, 1x1 kernels up to 64x64) together and leaves
    the large matrices alone.

  Elementwise transforms (the Adam family, momentum, RMSProp, ...) give the
  same numbers as without ``flatten``; transforms that treat leaves one by
  one (per-leaf SWATS, ``masked``, ``partition`` with per-leaf labels) do
  not, so put ``flatten`` inside those, around the elementwise part. The
  concatenated buffers do not keep the leaves' shardings: use it for small
  replicated leaves, not for sharded ones.

  The layout is the params' (at ``init``, and at ``update`` when the params
  are given), so gradients of another dtype than their params (float32
  gradients for bfloat16 params) are packed where the state expects them,
  and each update comes back in its gradient's dtype. Extra keyword
  arguments are passed to ``inner`` as they are, not flattened: a line
  search that takes the objective's gradient as a tree (``lbfgs``) does not
  work inside ``flatten``.

  Args:
    inner: the transform to run on the flattened layout.
    max_leaf_size: the largest leaf (in entries) that is concatenated;
      ``None`` concatenates every leaf.

  Returns:
    A ``GradientTransformation`` whose state is ``inner``'s state over the
      flattened layout.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> params = {"w": jnp.ones((256, 256)), "b": jnp.zeros(256),
    ...           "scale": jnp.ones(256)}
    >>> tx = gradtx.flatten(gradtx.adam(1e-3), max_leaf_size=2**14)
    >>> state = tx.init(params)
    >>> [x.shape for x in jax.tree.leaves(state[0].mu)]
    [(512,), (256, 256)]
  """
  fn = "flatten"
  V.check_transform(fn, "inner", inner)
  if max_leaf_size is not None:
    V.check_int(fn, "max_leaf_size", max_leaf_size, 0,
                " (the largest leaf, in entries, to concatenate) or None "
                "(all of them)")
  def init_fn(params):
    return inner.init(_Layout(params, max_leaf_size).pack(params))

  def update_fn(updates, state, params=None, **extra_args):
    packed_params = None
    if params is None:
      layout = _Layout(updates, max_leaf_size)
    else:
      LW.check_updates_match_params(fn, updates, params)
      layout = _Layout(params, max_leaf_size)
      packed_params = layout.pack(params)
    new, state = base.call_update(inner, layout.pack(updates), state,
                                  packed_params, **extra_args)
    return layout.unpack(new, updates), state

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
