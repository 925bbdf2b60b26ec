"""Small pytree helpers shared by the transforms.

The hot path of every transform is one call of :func:`leafwise`: all the
per-leaf maths of a step (new moments and the update) is one Python function
applied once per leaf, so the tree is flattened once and XLA sees one fused
expression per leaf instead of a pass over the tree per intermediate.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np


try:  # the tracer of a program being staged out; private, hence the guard
  from jax._src.interpreters.partial_eval import (  # noqa: E402
      DynamicJaxprTracer as _STAGING)
except ImportError:  # pragma: no cover - then leafwise never jits
  _STAGING = ()


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


def check_params(tree: Any) -> Any:
  """Returns ``tree`` if every leaf can be a param (an array, an abstract
  ``jax.ShapeDtypeStruct`` or a Python number); raises a ``TypeError`` with
  the key path otherwise, before ``init`` fails obscurely on it."""
  for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
    numeric = isinstance(x, (bool, int, float, complex, np.number,
                             np.bool_))
    dtype = getattr(x, "dtype", None)
    if not (numeric or (dtype is not None and hasattr(x, "shape") and (
        jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)
        or jnp.issubdtype(dtype, jax.dtypes.prng_key)))):
      raise TypeError(
          f"gradtx init: the param at {jax.tree_util.keystr(path)} is "
          f"{_describe(x)}; params must be numeric arrays. Keep strings, "
          f"callables and other objects out of the params tree (as static "
          f"fields or in a separate tree).")
  return tree


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


def at(h: Any, count: Any) -> Any:
  """A hyperparameter's value at step ``count``: ``h(count)`` for a schedule.

  A schedule must return a real scalar; anything else (an array of several
  entries would broadcast against the params) raises here.
  """
  if not callable(h):
    return h
  return check_schedule_value(h, h(count))


def check_schedule_value(h: Any, value: Any) -> Any:
  """Returns ``value``, the output of the schedule ``h``, if it is a real
  scalar (a Python number or a 0-d real array, traced or not); raises a
  ``ValueError`` that names the schedule otherwise."""
  if isinstance(value, (bool, np.bool_)):
    ok = False
  elif isinstance(value, (int, float, np.integer, np.floating)):
    ok = True
  else:
    dtype = getattr(value, "dtype", None)
    ok = (dtype is not None and getattr(value, "shape", None) == ()
          and (jnp.issubdtype(dtype, jnp.floating)
               or jnp.issubdtype(dtype, jnp.integer)))
  if not ok:
    what = getattr(h, "__qualname__", None) or repr(h)
    raise ValueError(
        f"gradtx: the schedule {what} returned {_describe(value)}; a "
        f"schedule must return a real scalar (a number or a 0-d array) for "
        f"each step. For per-parameter values use gradtx.partition.")
  return value


def one_minus_pow(decay: Any, count: Any) -> jax.Array:
  """``1 - decay**count`` (a bias correction), accurate to a few ulps.

  Computed in the default float precision and cast per leaf by the caller:
  ``decay**count`` in bfloat16 would round to 1 and divide by zero. For a
  Python-number decay, ``log(decay)`` is taken in double and the result as
  ``-expm1(count * log(decay))``: without x64, ``1 - float32(0.999)**t``
  is 1.3e-5 relative too small at every step (``float32(0.999) =
  0.99900001``), which torch (double scalars) does not have. An array decay
  (``inject_hyperparams``) takes the same form, so that the two agree bit
  for bit in float64; at decay 0 it falls back to the plain form, whose
  gradient with respect to the decay is finite there.
  """
  if isinstance(decay, (int, float)):
    if 0.0 < decay < 1.0:
      return -jnp.expm1(count * math.log(decay))
    return 1 - decay ** count
  positive = decay > 0
  safe = jnp.where(positive, decay, 1)
  return jnp.where(positive, -jnp.expm1(count * jnp.log(safe)),
                   1 - decay ** count)


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


def _paths(tree: Any) -> list:
  return [jax.tree_util.keystr(p) for p, _ in
          jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_none)[0]]


def _describe(x: Any) -> str:
  """``x`` in a few words, for error messages."""
  if hasattr(x, "shape") and hasattr(x, "dtype"):
    return f"an array of shape {x.shape} and dtype {x.dtype}"
  text = repr(x)
  text = text if len(text) <= 40 else text[:37] + "..."
  return f"a {type(x).__name__} ({text})"


def reject_complex(name: str, tree: Any, why: str,
                   what: str = "update") -> None:
  """Raises a ``TypeError`` naming ``name`` if a leaf of ``tree`` is complex.

  For the transforms whose maths has no complex form; ``what`` says what
  the tree holds ("update", "param"). Dtypes are static under ``jit``, so
  this costs nothing when the step runs.
  """
  for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
    dtype = getattr(x, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.complexfloating):
      at = f" at {jax.tree_util.keystr(path)}" if path else ""
      raise TypeError(
          f"{name}: the {what}{at} is complex ({dtype}), which {name} does "
          f"not support: {why}")


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
  if any(isinstance(x, _STAGING) for x in leaves):
    call = jax.jit(fn)
  outs = []
  none = (None,) * n_out
  for args in zip(leaves, *others):
    outs.append(none if args[0] is None else call(*args))
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
