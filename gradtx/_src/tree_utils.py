"""Pytree helpers: zeros and fills shaped like the params (with their
sharding), casts, norms, and a hyperparameter as a scalar of a leaf's
dtype."""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from gradtx._src.numerics import abs_sq
from gradtx._src.validation import check_params


def _is_none(x: Any) -> bool:
  return x is None


def tree_zeros_like(tree: Any, dtype: Optional[Any] = None) -> Any:
  """Zeros shaped like each leaf, in ``dtype`` or the leaf's own dtype.

  The result is strongly typed even for a weakly typed leaf
  (``jnp.asarray(0.3)``): state that changed weak type after one step would
  make the jitted step compile twice.

  Each buffer gets its leaf's sharding: eagerly, and under ``jit`` with
  explicit or automatic mesh axes (see :func:`follow_sharding`), where
  ``zeros(shape)`` would put the whole state on one device.

  Args:
    tree: a pytree of arrays.
    dtype: the dtype of the zeros; ``None``: each leaf's dtype.
  """
  return jax.tree.map(lambda x: follow_sharding(jnp.zeros_like(
      x, dtype=dtype or jnp.result_type(x)), x), check_params(tree))


_MISSING = object()


def tree_full_like(tree: Any, fill_value: Any = _MISSING,
                   dtype: Optional[Any] = None, *, value: Any = _MISSING,
                   ) -> Any:
  """``fill_value`` broadcast to each leaf's shape, in ``dtype`` or the
  leaf's, with the leaf's sharding (see :func:`tree_zeros_like`).

  ``fill_value`` is optax's name; ``value=`` is accepted too.

  Args:
    tree: a pytree of arrays.
    fill_value: the scalar to fill with.
    dtype: the dtype of the result; ``None``: each leaf's dtype.
    value: another name for ``fill_value``; give one of the two.
  """
  if (fill_value is _MISSING) == (value is _MISSING):
    raise TypeError("tree_full_like: give the fill value once, as "
                    "fill_value (optax's name) or value.")
  fill = value if fill_value is _MISSING else fill_value
  return jax.tree.map(lambda x: follow_sharding(jnp.full_like(
      x, fill, dtype=dtype or jnp.result_type(x)), x), check_params(tree))


def follow_sharding(new: jax.Array, leaf: Any) -> jax.Array:
  """``new``, tied to ``leaf`` under a trace so that it takes its sharding.

  Under ``jit`` with automatic mesh axes a constant has no sharding of its
  own, and XLA would replicate the whole state on every device. Selecting it
  against the leaf makes sharding propagation give it the leaf's; XLA folds
  the select away once the program is partitioned, so nothing of the leaf
  is read at run time (a NaN in it cannot leak). Eagerly, ``zeros_like``
  already took the leaf's sharding.
  """
  if not isinstance(leaf, jax.core.Tracer) or leaf.shape != new.shape:
    return new
  if jnp.iscomplexobj(leaf) and not jnp.iscomplexobj(new):
    leaf = leaf.real
  return jnp.where(True, new, leaf.astype(new.dtype))


def tree_strong(tree: Any) -> Any:
  """A copy of the tree with every leaf strongly typed (see above).

  A copy in buffers of its own: state that held the params' own arrays
  could not be donated by a jitted step that is also given (or donates)
  the params."""
  return jax.tree.map(
      lambda x: jnp.array(x, dtype=jnp.result_type(x), copy=True), tree)


def tree_map_leaves(f: Callable[[Any], Any], tree: Any) -> Any:
  """``jax.tree.map(f, tree)``, skipping ``None`` leaves."""
  return jax.tree.map(lambda x: None if x is None else f(x), tree,
                      is_leaf=_is_none)


def tree_cast(tree: Any, dtype: Optional[Any]) -> Any:
  """Casts every leaf to ``dtype``; ``dtype=None`` leaves the tree as it is.

  Args:
    tree: a pytree of arrays (``None`` leaves stay ``None``).
    dtype: the dtype to cast to; ``None``: no cast.
  """
  if dtype is None:
    return tree
  return jax.tree.map(lambda x: None if x is None else x.astype(dtype), tree,
                      is_leaf=_is_none)


def tree_norm_sq(tree: Any) -> jax.Array:
  """Sum of squared magnitudes of all entries (complex-aware)."""
  leaves = [x for x in jax.tree.leaves(tree)]
  if not leaves:
    return jnp.zeros([])
  return sum(jnp.sum(abs_sq(x)) for x in leaves)


def tree_global_norm(tree: Any) -> jax.Array:
  """The l2 norm of all entries of the tree taken as one vector.

  Args:
    tree: a pytree of arrays, real or complex (a complex entry counts by its
      magnitude).
  """
  return jnp.sqrt(tree_norm_sq(tree))


def like(h: Any, x: jax.Array) -> Any:
  """``h`` as a scalar of ``x``'s dtype, so it never promotes ``x``.

  Python numbers are left alone (they are weakly typed already); arrays, from
  a schedule or ``inject_hyperparams``, are cast.
  """
  if isinstance(h, (int, float)):
    return h
  return jnp.asarray(h).astype(x.dtype)


def pair(h: Any, x: jax.Array) -> tuple:
  """``(h, 1 - h)`` for a decay ``h``, each as a scalar of ``x``'s dtype.

  ``1 - h`` is formed before the cast: in bfloat16, 0.999 rounds to 1 and
  ``1 - bf16(0.999)`` would be 0, where ``bf16(1 - 0.999)`` is 0.001.
  """
  if isinstance(h, (int, float)):
    return h, 1 - h
  h = jnp.asarray(h)
  return h.astype(x.dtype), (1 - h).astype(x.dtype)
