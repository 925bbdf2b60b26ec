"""What the second-order transforms share: flat views of a params tree and
the rule for curvature pairs.

The dense methods (:func:`gradtx.bfgs`, :func:`gradtx.newton`, the
least-squares ones) work on the params as one vector in the scalar dtype
(at least float32, the params' own for float64): :func:`ravel` flattens a
tree and returns the map back, which casts each leaf to its param's dtype.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._src import tree_utils as T
from gradtx._src import validation as V


def _explicit_sharding(x: Any) -> Any:
  """``x``'s sharding if it is sharded along explicit mesh axes, else None."""
  try:
    sharding = jax.typeof(x).sharding
  except (AttributeError, TypeError):
    return None
  spec = getattr(sharding, "spec", None)
  if spec is None or all(s is None for s in spec):
    return None
  return sharding


def _replicated(x: jax.Array) -> jax.Array:
  if _explicit_sharding(x) is None:
    return x
  return jax.sharding.reshard(x, jax.sharding.PartitionSpec())


def replicated(x: jax.Array) -> jax.Array:
  """``x`` replicated on the mesh in use, if any: a matrix or vector over
  all params (BFGS's inverse Hessian) belongs to no one param, and XLA's
  propagation would otherwise shard it like one of them."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return x
  if _explicit_sharding(x) is not None:
    return jax.sharding.reshard(x, jax.sharding.PartitionSpec())
  if isinstance(x, jax.core.Tracer):
    return jax.lax.with_sharding_constraint(x, jax.sharding.PartitionSpec())
  return x


def _like_leaf(piece: jax.Array, leaf: Any) -> jax.Array:
  sharding = _explicit_sharding(leaf)
  if sharding is None:
    return T.follow_sharding(piece, leaf)
  return jax.sharding.reshard(piece, sharding.spec)


def ravel(tree: Any, dtype: Any) -> tuple[jax.Array, Callable[[Any], Any]]:
  """``tree``'s leaves as one vector of ``dtype``, and the inverse map.

  The inverse splits a vector into the leaves' shapes and casts each piece
  to its leaf's dtype (unlike ``jax.flatten_util.ravel_pytree``, which
  flattens in the leaves' common dtype: bfloat16 for bfloat16 params).
  """
  leaves, treedef = jax.tree.flatten(tree)
  shapes = [jnp.shape(x) for x in leaves]
  dtypes = [jnp.asarray(x).dtype for x in leaves]
  sizes = [int(np.prod(s)) for s in shapes]
  if leaves:
    flat = jnp.concatenate([jnp.ravel(_replicated(jnp.asarray(x)))
                            .astype(dtype) for x in leaves])
  else:
    flat = jnp.zeros([0], dtype)
  cuts = np.cumsum(sizes)[:-1].tolist()

  def unravel(vec):
    pieces = jnp.split(vec, cuts) if cuts else [vec]
    return treedef.unflatten([_like_leaf(p.reshape(s).astype(d), x)
                              for p, s, d, x
                              in zip(pieces, shapes, dtypes, leaves)])

  return flat, unravel


def size(tree: Any) -> int:
  """The number of entries of a tree of arrays (static)."""
  return sum(int(np.prod(jnp.shape(x))) for x in jax.tree.leaves(tree))


def matvec(a: jax.Array, x: jax.Array) -> jax.Array:
  """``a @ x`` at full precision (no TF32 on GPUs, see lbfgs._dot)."""
  return jnp.matmul(a, x, precision=jax.lax.Precision.HIGHEST)


def accept_curvature_pair(s_dot_y: jax.Array, s_dot_s: jax.Array,
                          y_dot_y: jax.Array) -> jax.Array:
  r"""Whether a curvature pair :math:`(s, y)` may update a quasi-Newton
  inverse Hessian without breaking its positive definiteness.

  True when :math:`s^\top y > \sqrt{\varepsilon}\,\|s\|\,\|y\|` (the cosine
  of the angle between :math:`s` and :math:`y` above
  :math:`\sqrt{\varepsilon}`, :math:`\varepsilon` the machine epsilon of the
  scalars' dtype) and both :math:`1/s^\top y` and
  :math:`s^\top y / y^\top y` are finite. A NaN anywhere gives False. This
  is the rule :func:`gradtx.scale_by_lbfgs` states in its docstring;
  :func:`gradtx.scale_by_bfgs` applies it here.
  """
  dtype = jnp.result_type(s_dot_y)
  tol = math.sqrt(float(jnp.finfo(dtype).eps))
  return ((s_dot_y > tol * jnp.sqrt(s_dot_s) * jnp.sqrt(y_dot_y))
          & jnp.isfinite(1 / s_dot_y) & jnp.isfinite(s_dot_y / y_dot_y))


def real_leaves(fn: str, tree: Any, what: str = "param") -> list:
  """The leaves of ``tree``, checked to be real floating point.

  The second-order methods build inner products, Hessians and Jacobians of
  real vectors; complex parameters are refused with a hint rather than
  silently mistreated.
  """
  leaves = jax.tree.leaves(tree)
  V.reject_complex(
      fn, tree, "its curvature model uses real inner products. For complex "
      "parameters use their real and imaginary parts as two real leaves.",
      what=what)
  for x in leaves:
    dtype = jnp.asarray(x).dtype
    if not jnp.issubdtype(dtype, jnp.floating):
      raise TypeError(
          f"{fn}: params must be floating point, a leaf has dtype {dtype}. "
          f"Keep integer and boolean leaves out of the params you optimise.")
  return leaves
