"""Small pytree helpers shared by the transforms.

The hot path of every transform is one call of :func:`leafwise`: all the
per-leaf maths of a step (new moments and the update) is one Python function
applied once per leaf, so the tree is flattened once and XLA sees one fused
expression per leaf instead of a pass over the tree per intermediate.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np


def _is_none(x: Any) -> bool:
  return x is None


def tree_zeros_like(tree: Any, dtype: Optional[Any] = None) -> Any:
  """Zeros shaped like each leaf, in ``dtype`` or the leaf's own dtype.

  The result is strongly typed even for a weakly typed leaf
  (``jnp.asarray(0.3)``): state that changed weak type after one step would
  make the jitted step compile twice.

  ``zeros_like`` rather than ``zeros(shape)``: it gives each buffer its
  leaf's sharding, eagerly and under ``jit`` with explicit mesh axes, where
  ``zeros(shape)`` would put the whole state on one device.
  """
  return jax.tree.map(lambda x: jnp.zeros_like(
      x, dtype=dtype or jnp.result_type(x)), tree)


def tree_full_like(tree: Any, value: Any, dtype: Optional[Any] = None) -> Any:
  """``value`` broadcast to each leaf's shape, in ``dtype`` or the leaf's,
  with the leaf's sharding (see :func:`tree_zeros_like`)."""
  return jax.tree.map(lambda x: jnp.full_like(
      x, value, dtype=dtype or jnp.result_type(x)), tree)


def tree_strong(tree: Any) -> Any:
  """A copy of the tree with every leaf strongly typed (see above)."""
  return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.result_type(x)),
                      tree)


def tree_map_leaves(f: Callable[[Any], Any], tree: Any) -> Any:
  """``jax.tree.map(f, tree)``, skipping ``None`` leaves."""
  return jax.tree.map(lambda x: None if x is None else f(x), tree,
                      is_leaf=_is_none)


def tree_cast(tree: Any, dtype: Optional[Any]) -> Any:
  """Casts every leaf to ``dtype``; ``dtype=None`` leaves the tree as it is."""
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
  """The l2 norm of all entries of the tree taken as one vector."""
  return jnp.sqrt(tree_norm_sq(tree))


def at(h: Any, count: Any) -> Any:
  """A hyperparameter's value at step ``count``: ``h(count)`` for a schedule."""
  return h(count) if callable(h) else h


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


def abs_sq(x: jax.Array) -> jax.Array:
  """``|x|**2`` for real or complex ``x``, in the real dtype."""
  if jnp.iscomplexobj(x):
    return x.real * x.real + x.imag * x.imag
  return x * x


# Second moments are kept as roots (see root_ema). Squaring doubles the
# exponent, so a root above about sqrt(finfo.max) cannot be squared in its
# own dtype: such entries are scaled down by a power of two (exact) before
# squaring and back up after the root. 2**(e//2 - 2) and 2**-(e//2 + 2),
# with e = finfo.maxexp, leave headroom for the sums below.
def _root_scales(dtype) -> tuple:
  e = jnp.finfo(dtype).maxexp
  return 2.0 ** (e // 2 - 2), 2.0 ** -(e // 2 + 2)


def root_ema(r: jax.Array, g: jax.Array, keep: Any, add: Any) -> jax.Array:
  """``sqrt(keep * r**2 + add * |g|**2)`` that never overflows.

  ``r`` is a stored root (``>= 0``), ``g`` a real or complex gradient and
  ``keep``, ``add`` non-negative scalars. Entries whose ``r`` or ``|g|``
  exceed ``2**(e/2 - 2)`` are computed scaled by an exact power of two, so
  gradients up to the dtype's largest finite value give a finite root. For
  all other entries it is the plain formula, one ``sqrt``.
  """
  a = jnp.abs(g)
  dt = jnp.result_type(r, a)
  r, a = r.astype(dt), a.astype(dt)
  hi, down = _root_scales(dt)
  big = jnp.maximum(r, a) > hi
  s = jnp.where(big, down, 1.0).astype(r.dtype)
  rs, gs = r * s, a * s
  return (jnp.sqrt(keep * rs * rs + add * gs * gs)
          * jnp.where(big, 1 / down, 1.0).astype(r.dtype))


def root_add(r: jax.Array, c: Any) -> jax.Array:
  """``sqrt(r**2 + c)`` for a root ``r >= 0`` and a scalar ``c >= 0``,
  without overflow (see :func:`root_ema`)."""
  if isinstance(c, (int, float)) and c == 0:
    return r
  hi, down = _root_scales(r.dtype)
  big = r > hi
  s = jnp.where(big, down, 1.0).astype(r.dtype)
  rs = r * s
  return (jnp.sqrt(rs * rs + like(c, r) * s * s)
          * jnp.where(big, 1 / down, 1.0).astype(r.dtype))


def root_add_rsqrt(r: jax.Array, c: Any) -> jax.Array:
  """``1 / sqrt(r**2 + c)``, the reciprocal of :func:`root_add`, in one
  ``rsqrt``."""
  hi, down = _root_scales(r.dtype)
  s = jnp.where(r > hi, down, 1.0).astype(r.dtype)
  rs = r * s
  return jax.lax.rsqrt(rs * rs + like(c, r) * s * s) * s


def _paths(tree: Any) -> list:
  return [jax.tree_util.keystr(p) for p, _ in
          jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_none)[0]]


def _structure_error(name: str, tree: Any, other: Any, i: int) -> ValueError:
  mine, theirs = _paths(tree), _paths(other)
  missing = [p for p in theirs if p not in set(mine)]
  extra = [p for p in mine if p not in set(theirs)]
  if missing or extra:
    detail = ""
    if extra:
      detail += ("\n  in the updates but not in the state: "
                 + ", ".join(extra[:5]))
    if missing:
      detail += ("\n  in the state but not in the updates: "
                 + ", ".join(missing[:5]))
  else:
    detail = (f"\n  the keys agree but the containers differ:"
              f"\n  updates: {jax.tree.structure(tree, is_leaf=_is_none)}"
              f"\n  state:   {jax.tree.structure(other, is_leaf=_is_none)}")
  return ValueError(
      f"{name}: the updates do not match the optimizer state (state tree "
      f"#{i + 1}).{detail}\n  Was the state built by init() on params with "
      f"the same keys and containers as these gradients?")


def leafwise(fn: Callable[..., tuple], n_out: int, tree: Any, *rest: Any,
             name: str = "gradtx", same_shape: bool = True) -> tuple:
  """Applies ``fn(leaf, *rest_leaves) -> tuple`` once per leaf of ``tree``.

  Returns ``n_out`` trees with ``tree``'s structure. Leaves of ``tree`` that
  are ``None`` give ``None`` in every output. ``rest`` trees must have the
  same structure as ``tree`` (their ``None`` leaves are passed as ``None``)
  and, with ``same_shape``, leaves of the same shapes. Mismatches, and
  leaves of ``tree`` that are not floating or complex, raise an error that
  names ``name`` and the key path.
  """
  leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_none)
  others = []
  for i, other in enumerate(rest):
    try:
      others.append(treedef.flatten_up_to(other))
    except (ValueError, TypeError):
      raise _structure_error(name, tree, other, i) from None
  for j, leaf in enumerate(leaves):
    if leaf is None:
      continue
    dtype = getattr(leaf, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
      path = _paths(tree)[j]
      raise TypeError(
          f"{name}: the update at {path} has dtype {dtype}; gradients must be "
          f"floating or complex. Keep integer and boolean leaves (step "
          f"counters, masks) out of the params you differentiate, or leave "
          f"them out with gradtx.masked / gradtx.partition.")
    if same_shape:
      for i, o in enumerate(others):
        if o[j] is not None and getattr(o[j], "shape", None) != leaf.shape:
          raise ValueError(
              f"{name}: shape mismatch at {_paths(tree)[j]}: the update has "
              f"shape {leaf.shape} but state tree #{i + 1} holds "
              f"{getattr(o[j], 'shape', None)}. Was the state built by "
              f"init() on these params?")
  outs = []
  none = (None,) * n_out
  for args in zip(leaves, *others):
    outs.append(none if args[0] is None else fn(*args))
  if not outs:
    return tuple(treedef.unflatten([]) for _ in range(n_out))
  return tuple(treedef.unflatten(list(col)) for col in zip(*outs))


def is_concrete_number(x: Any) -> bool:
  """True for a Python or NumPy number, or a concrete 0-d array.

  Schedules (callables) and traced values are not concrete: validation lets
  them through, since their value is only known at run time.
  """
  if callable(x) or isinstance(x, jax.core.Tracer):
    return False
  if isinstance(x, (bool, np.bool_)):
    return False
  if isinstance(x, (int, float, np.integer, np.floating)):
    return True
  if isinstance(x, (np.ndarray, jax.Array)) and x.ndim == 0:
    return jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(
        x.dtype, jnp.integer)
  return False
