"""Numerics shared by the transforms: safe step counters, powers of a step
counter and the bias correction ``1 - decay**count``, RAdam's
:math:`\rho_t` and :math:`r_t`, ``|x|**2``, and what counts as a concrete
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


def int_pow(x: Any, n: Any) -> Any:
  """``x ** n`` for a floating-point ``x`` and an integer array ``n`` (a
  step counter), computed as JAX computes it under a trace (``lax.pow``).

  Called eagerly with a concrete ``n``, ``x ** n`` becomes
  ``lax.integer_pow`` with ``n`` fixed in the program: a new program to
  compile at every step, whose result can differ in the last bit from the
  jitted step's. An integer ``x``, or a floating-point ``n``, is left to
  ``**``.
  """
  n = jnp.asarray(n)
  if not (jnp.issubdtype(jnp.result_type(x), jnp.floating)
          and jnp.issubdtype(n.dtype, jnp.integer)):
    return x ** n
  return jax.lax.pow(jnp.asarray(x), n)


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
    return 1 - int_pow(decay, count)
  positive = decay > 0
  safe = jnp.where(positive, decay, 1)
  return jnp.where(positive, -jnp.expm1(count * jnp.log(safe)),
                   1 - int_pow(decay, count))


def radam_rho(b2: Any, count: Any) -> tuple:
  r"""``(rho_inf, rho_t)`` of RAdam, ``rho_t`` without cancellation.

  :math:`\rho_\infty = 2/(1-\beta_2) - 1` and
  :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)` (Liu et al.,
  ICLR 2020). The direct form subtracts two numbers near
  :math:`\rho_\infty` (1999 for ``b2=0.999``) in the first steps, losing
  three digits in float32. With :math:`l = \log\beta_2`, :math:`s = -tl`
  and :math:`s/(e^s-1) = 1 - s/2 + R(s)`,
  :math:`\rho_t = (\rho_\infty + 2/l) + t + (2/l)R(s)`, with
  :math:`R(s) = s^2/12 - s^4/720 + \dots` from its series while
  :math:`s < 1`; beyond, the direct form no longer cancels. For a
  Python-number ``b2`` the constants are taken in double; an array ``b2``
  (a schedule's value, or from ``inject_hyperparams``) takes the same form,
  so that the two agree bit for bit in float64.

  Args:
    b2: the second moment's decay :math:`\beta_2`.
    count: the step :math:`t` (1 on the first step), an array.

  Returns:
    ``(rho_inf, rho_t)``, ``rho_t`` in the default float dtype.
  """
  t = jnp.asarray(count).astype(jnp.result_type(float))
  rho_inf = 2 / (1 - b2) - 1
  if isinstance(b2, (int, float)) and not isinstance(b2, bool):
    if b2 == 0:
      return rho_inf, jnp.full_like(t, rho_inf)
    return rho_inf, _radam_rho_from_log(rho_inf, math.log(b2), t)
  positive = b2 > 0
  log_b2 = jnp.log(jnp.where(positive, b2, 0.5))
  return rho_inf, jnp.where(
      positive, _radam_rho_from_log(rho_inf, log_b2, t), rho_inf)


def _radam_rho_from_log(rho_inf: Any, l: Any, t: jax.Array) -> jax.Array:
  s = -l * t
  s2 = s * s
  series = s2 * (1 / 12 - s2 * (1 / 720 - s2 * (
      1 / 30240 - s2 * (1 / 1209600 - s2 / 47900160))))
  small = s < 1
  s_big = jnp.where(small, 1.0, s)  # no 0/0 in the branch not taken
  near = (rho_inf + 2 / l) + t + (2 / l) * series
  # expm1 overflows to inf for large s, and s / inf = 0 gives rho_inf.
  far = rho_inf + (2 / l) * (s_big / jnp.expm1(s_big))
  return jnp.where(small, near, far)


def radam_rectification(rho_inf: Any, rho: Any, adaptive: Any) -> Any:
  r"""RAdam's :math:`r_t = \sqrt{(\rho_t-4)(\rho_t-2)\rho_\infty /
  ((\rho_\infty-4)(\rho_\infty-2)\rho_t)}` where ``adaptive``, else 1.

  :math:`r_t` is evaluated only where it is used, so no NaN is formed even
  in the branch that ``jnp.where`` discards (its gradient would still be
  NaN).
  """
  rho = jnp.where(adaptive, rho, rho_inf)
  return jnp.sqrt((rho - 4.0) * (rho - 2.0) * rho_inf
                  / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho))


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
