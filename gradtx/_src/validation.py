"""Construction-time checks of hyperparameters.

Only concrete numbers are checked: a schedule or a traced value passes
through, since its value is only known when the step runs. Every message
names the function, the argument and the value, and says what was expected.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._src.numerics import is_concrete_number


def _fmt(lo: float, hi: float, lo_closed: bool, hi_closed: bool) -> str:
  return (("[" if lo_closed else "(") + f"{lo:g}, {hi:g}"
          + ("]" if hi_closed else ")"))


def check_interval(fn: str, arg: str, value: Any, lo: float, hi: float, *,
                   lo_closed: bool = True, hi_closed: bool = False,
                   hint: str = "") -> None:
  """Raises ``ValueError`` unless ``value`` lies in the interval.

  Schedules (callables) and traced values pass; anything else that is not a
  real scalar (a string, a complex number, an array of several entries) is
  refused here rather than failing obscurely inside the first step.
  """
  if value is None or callable(value) or isinstance(value, jax.core.Tracer):
    return
  if not is_concrete_number(value):
    shape = getattr(value, "shape", None)
    what = (f"an array of shape {shape}" if shape not in (None, ())
            else f"a {type(value).__name__}")
    raise ValueError(
        f"{fn}: {arg} must be a real number (or a schedule), got "
        f"{arg}={value!r}, {what}.")
  v = float(value)
  ok = (not math.isnan(v)
        and (v >= lo if lo_closed else v > lo)
        and (v <= hi if hi_closed else v < hi))
  if not ok:
    raise ValueError(
        f"{fn}: {arg} must be in {_fmt(lo, hi, lo_closed, hi_closed)}, got "
        f"{arg}={value!r}.{(' ' + hint) if hint else ''}")


def check_nonnegative(fn: str, arg: str, value: Any, hint: str = "") -> None:
  check_interval(fn, arg, value, 0.0, math.inf, hi_closed=True, hint=hint)


def check_positive(fn: str, arg: str, value: Any, hint: str = "") -> None:
  check_interval(fn, arg, value, 0.0, math.inf, lo_closed=False,
                 hi_closed=True, hint=hint)


def check_decay(fn: str, arg: str, value: Any) -> None:
  """A decay rate or momentum: in [0, 1)."""
  check_interval(
      fn, arg, value, 0.0, 1.0,
      hint=f"{arg} is the weight of the past in a moving average; values "
           f"like 0.9 or 0.999 are usual.")


def check_momentum(fn: str, arg: str, value: Any) -> None:
  """A heavy-ball momentum: any number >= 0 (1 sums the gradients), as in
  optax's ``trace`` and ``torch.optim.SGD``."""
  check_nonnegative(
      fn, arg, value,
      hint=f"{arg} is the weight of the previous velocity; 0.9 is usual.")


def check_learning_rate(fn: str, value: Any, arg: str = "learning_rate",
                        ) -> None:
  if value is None:
    # None would reach scale_by_learning_rate(None), the identity, and the
    # optimizer would step along the gradient: uphill.
    raise ValueError(
        f"{fn}: {arg} is None; pass a step size such as 1e-3 or a schedule "
        f"of the step count.")
  check_interval(
      fn, arg, value, 0.0, math.inf,
      hint="gradtx negates the step itself; pass a finite, positive step "
      "size.")


def is_int(x: Any) -> bool:
  """A Python or NumPy integer, not a bool."""
  return isinstance(x, (int, np.integer)) and not isinstance(
      x, (bool, np.bool_))


def check_int(fn: str, arg: str, value: Any, lo: int,
              meaning: str = "") -> None:
  """Raises ``ValueError`` unless ``value`` is an int >= ``lo``; ``meaning``
  follows the bound in the message (e.g. what the number counts)."""
  if not is_int(value) or value < lo:
    raise ValueError(f"{fn}: {arg} must be an int >= {lo}{meaning}, got "
                     f"{arg}={value!r}.")


def check_transform(fn: str, arg: str, tx: Any) -> None:
  """Raises ``TypeError`` unless ``tx`` has ``init`` and ``update``."""
  if not (hasattr(tx, "init") and hasattr(tx, "update")):
    raise TypeError(
        f"{fn}: {arg} is {tx!r}, not a gradient transformation (an object "
        f"with .init and .update). Did you pass a factory such as gradtx.adam "
        f"instead of gradtx.adam(1e-3)?")


def check_dtype(fn: str, arg: str, value: Any) -> Any:
  """Returns the canonical dtype for ``value`` (or None), or raises."""
  if value is None:
    return None
  import jax.numpy as jnp
  try:
    dtype = jnp.dtype(value)
  except TypeError:
    raise ValueError(f"{fn}: {arg} must be a dtype such as jnp.bfloat16 or "
                     f"'float32', got {arg}={value!r}.") from None
  if not jnp.issubdtype(dtype, jnp.inexact):
    raise ValueError(f"{fn}: {arg} must be a floating or complex dtype, got "
                     f"{arg}={value!r}.")
  return dtype


# --------------------------------------------------------------------------
# Params, schedule values and complex leaves


def _describe(x: Any) -> str:
  """``x`` in a few words, for error messages."""
  if hasattr(x, "shape") and hasattr(x, "dtype"):
    return f"an array of shape {x.shape} and dtype {x.dtype}"
  text = repr(x)
  text = text if len(text) <= 40 else text[:37] + "..."
  return f"a {type(x).__name__} ({text})"


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
