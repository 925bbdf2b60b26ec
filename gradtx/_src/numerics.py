"""Numerics shared by the transforms: safe step counters, the bias
correction ``1 - decay**count``, ``|x|**2``, and what counts as a concrete
number.

One implementation of each concept, the most accurate one, called
everywhere.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def safe_increment(count: Array) -> Array:
  """``count + 1``, saturating at the dtype's maximum instead of wrapping.

  A counter that wrapped to ``-2**31`` would turn ``b2 ** count`` into
  ``inf`` and every bias correction into NaN after 2**31 steps.

  Args:
    count: an integer or floating-point array, usually an int32 scalar
      step counter.

  Returns:
    ``count + 1`` in ``count``'s dtype, or the dtype's maximum where
      ``count`` has reached it.
  """
  count = jnp.asarray(count)
  dtype = count.dtype
  if jnp.issubdtype(dtype, jnp.integer):
    top = jnp.iinfo(dtype).max
  elif jnp.issubdtype(dtype, jnp.floating):
    top = jnp.finfo(dtype).max
  else:
    raise TypeError(
        f"safe_increment: a counter must be an integer or float array, got "
        f"dtype {dtype}.")
  top = jnp.asarray(top, dtype)
  return jnp.where(count < top, count + jnp.asarray(1, dtype), top)


def zero_count() -> Array:
  """A fresh step counter: an int32 scalar zero."""
  return jnp.zeros([], jnp.int32)


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


def abs_sq(x: jax.Array) -> jax.Array:
  """``|x|**2`` for real or complex ``x``, in the real dtype."""
  if jnp.iscomplexobj(x):
    return x.real * x.real + x.imag * x.imag
  return x * x


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
