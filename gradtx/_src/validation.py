"""Construction-time checks of hyperparameters.

Only concrete numbers are checked: a schedule or a traced value passes
through, since its value is only known when the step runs. Every message
names the function, the argument and the value, and says what was expected.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from gradtx._src.tree import is_concrete_number


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
