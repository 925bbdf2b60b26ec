"""The per-leaf engine of every transform, and its errors.

The hot path of every transform is one call of :func:`leafwise`: all the
per-leaf maths of a step (new moments and the update) is one Python function
applied once per leaf, so the tree is flattened once and XLA sees one fused
expression per leaf instead of a pass over the tree per intermediate.
Mismatched trees raise :func:`structure_error`, which names the transform
and the keys that differ.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from gradtx._src.tree_utils import _is_none
from gradtx._src.validation import _describe


try:
  from jax._src.interpreters.partial_eval import (  # noqa: E402
      DynamicJaxprTracer as _STAGING)
except ImportError:  # pragma: no cover - see _is_staging
  _STAGING = ()


def _is_staging(x: Any) -> bool:
  """Whether ``x`` is a value of a program being staged out (``jax.jit``,
  ``lax.scan``, ``jax.eval_shape``), as opposed to a concrete array or a
  tracer of an eager ``vmap`` or ``grad``.

  The library's one use of a private JAX name: JAX has no public way to
  ask this (``jax.core.Tracer`` is true of eager ``vmap`` and ``grad``
  tracers as well, and under those a per-leaf ``jax.jit`` of ``fn`` would
  compile anew at every update). If the import goes away this returns False: results
  stay the same and lowering a tree of many leaves gets about 3x slower.
  ``tests/test_leafwise.py`` fails then.
  """
  return isinstance(x, _STAGING)


def _paths(tree: Any) -> list:
  return [jax.tree_util.keystr(p) for p, _ in
          jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_none)[0]]


def structure_error(name: str, tree: Any, other: Any, i: int,
                    is_params: bool = False) -> ValueError:
  """The ``ValueError`` for ``tree`` (the updates) not matching ``other``,
  the ``i``-th state tree or the params: which keys are missing or extra,
  or the two structures when only the containers differ."""
  mine, theirs = _paths(tree), _paths(other)
  missing = [p for p in theirs if p not in set(mine)]
  extra = [p for p in mine if p not in set(theirs)]
  what = "params" if is_params else "state"
  if missing or extra:
    detail = ""
    if extra:
      detail += (f"\n  in the updates but not in the {what}: "
                 + ", ".join(extra[:5]))
    if missing:
      detail += (f"\n  in the {what} but not in the updates: "
                 + ", ".join(missing[:5]))
  else:
    detail = (f"\n  the keys agree but the containers differ:"
              f"\n  updates: {jax.tree.structure(tree, is_leaf=_is_none)}"
              f"\n  {what + ':':9s}"
              f"{jax.tree.structure(other, is_leaf=_is_none)}")
  if is_params:
    return ValueError(
        f"{name}: the updates do not match the params.{detail}\n  Pass the "
        f"params these gradients were taken of, with the same keys and "
        f"containers.")
  return ValueError(
      f"{name}: the updates do not match the optimizer state (state tree "
      f"#{i + 1}).{detail}\n  Was the state built by init() on params with "
      f"the same keys and containers as these gradients?")


def check_updates_match_params(name: str, updates: Any, params: Any) -> None:
  """Raises :func:`structure_error` if ``params`` (when given) has another
  tree structure than ``updates``; for wrappers that map the two together."""
  if params is None:
    return
  if (jax.tree.structure(updates, is_leaf=_is_none)
      != jax.tree.structure(params, is_leaf=_is_none)):
    raise structure_error(name, updates, params, 0, is_params=True)


def leafwise(fn: Callable[..., tuple], n_out: int, tree: Any, *rest: Any,
             name: str = "gradtx", same_shape: bool = True,
             params_index: Optional[int] = None) -> tuple:
  """Applies ``fn(leaf, *rest_leaves) -> tuple`` once per leaf of ``tree``.

  Returns ``n_out`` trees with ``tree``'s structure. Leaves of ``tree`` that
  are ``None`` give ``None`` in every output. ``rest`` trees must have the
  same structure as ``tree`` (their ``None`` leaves are passed as ``None``)
  and, with ``same_shape``, leaves of the same shapes. Mismatches, and
  leaves of ``tree`` that are not floating or complex, raise an error that
  names ``name`` and the key path.

  ``rest[params_index]``, if given, is the params: errors about it say so,
  and it may hold an array where the update is ``None`` (the param is left
  alone). Any other rest tree (state) may not: the ``None`` output would
  silently drop that state.
  """
  leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_none)
  others = []
  for i, other in enumerate(rest):
    try:
      others.append(treedef.flatten_up_to(other))
    except (ValueError, TypeError):
      raise structure_error(name, tree, other, i,
                            is_params=i == params_index) from None
  for j, leaf in enumerate(leaves):
    if leaf is None:
      for i, o in enumerate(others):
        if i != params_index and o[j] is not None:
          raise ValueError(
              f"{name}: the update at {_paths(tree)[j]} is None but state "
              f"tree #{i + 1} holds {_describe(o[j])} there; a None update "
              f"would drop that state. None is for params that are None at "
              f"init(). To leave a param unchanged, give it a zero gradient "
              f"or exclude it with gradtx.masked, gradtx.partition or "
              f"gradtx.freeze.")
      continue
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
      raise TypeError(
          f"{name}: the update at {_paths(tree)[j]} is {_describe(leaf)}, "
          f"not an array; gradients must be arrays of a floating or complex "
          f"dtype (wrap numbers with jnp.asarray). Keep non-array leaves out "
          f"of the params, e.g. in a separate tree or as static fields.")
    if not jnp.issubdtype(dtype, jnp.inexact):
      path = _paths(tree)[j]
      raise TypeError(
          f"{name}: the update at {path} has dtype {dtype}; gradients must be "
          f"floating or complex. Keep integer and boolean leaves (step "
          f"counters, masks) out of the params you differentiate, or leave "
          f"them out with gradtx.masked / gradtx.partition.")
    if same_shape:
      for i, o in enumerate(others):
        if o[j] is not None and getattr(o[j], "shape", None) != leaf.shape:
          if i == params_index:
            raise ValueError(
                f"{name}: shape mismatch at {_paths(tree)[j]}: the update "
                f"has shape {leaf.shape} but the param has "
                f"{getattr(o[j], 'shape', None)}. Pass the params these "
                f"gradients were taken of.")
          raise ValueError(
              f"{name}: shape mismatch at {_paths(tree)[j]}: the update has "
              f"shape {leaf.shape} but state tree #{i + 1} holds "
              f"{getattr(o[j], 'shape', None)}. Was the state built by "
              f"init() on these params?")
  # While staging a program (jit, scan, eval_shape) each jnp operation costs
  # JAX a nested trace of its own, so a tree of many leaves takes seconds to
  # lower. Jitted, ``fn`` is traced once per distinct leaf signature and
  # each leaf adds one call; XLA inlines the calls, so the compiled program
  # is the same. Otherwise (eagerly, or under an eager vmap or grad) ``fn``
  # runs as it is: a jit there would compile anew at every update, since
  # ``fn`` is a new closure each time.
  call = fn
  if any(_is_staging(x) for x in leaves):
    call = jax.jit(fn)
  outs = []
  none = (None,) * n_out
  for args in zip(leaves, *others):
    outs.append(none if args[0] is None else call(*args))
  if not outs:
    return tuple(treedef.unflatten([]) for _ in range(n_out))
  return tuple(treedef.unflatten(list(col)) for col in zip(*outs))
