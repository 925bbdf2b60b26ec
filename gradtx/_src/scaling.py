"""Scaling by a constant or by a schedule of the step count."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V


def scale(step_size: Any) -> base.GradientTransformation:
  """Multiplies every update by the constant ``step_size``: ``u <- s * u``.

  Args:
    step_size: the factor ``s``, a number or a scalar array (use
      :func:`scale_by_schedule` for a schedule).
  """

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    return LW.leafwise(lambda g: (T.like(step_size, g) * g,), 1, updates,
                      name="scale")[0], state

  update_fn.gradtx_name = "scale"
  return base.GradientTransformation(base.init_empty_state, update_fn)


class ScaleByScheduleState(NamedTuple):
  """The number of updates made so far (int32, saturating).

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``; the schedule is read at it.
  """
  count: jax.Array


def scale_by_schedule(step_size_fn: Callable[[jax.Array], Any],
                      ) -> base.GradientTransformation:
  """Multiplies the updates by ``step_size_fn(count)``.

  ``count`` is the number of updates made before this one, so the first step
  uses ``step_size_fn(0)`` (as in optax).

  Args:
    step_size_fn: the schedule, a function of the int32 step count returning a
      scalar.
  """
  if not callable(step_size_fn):
    raise TypeError(
        f"scale_by_schedule: step_size_fn must be a function of the step "
        f"count, got {step_size_fn!r}. For a constant use gradtx.scale.")

  def init_fn(params):
    del params
    return ScaleByScheduleState(count=num.zero_count())

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    step_size = V.at(step_size_fn, state.count)
    updates = LW.leafwise(lambda g: (jnp.array(step_size, dtype=g.dtype) * g,),
                         1, updates, name="scale_by_schedule")[0]
    return updates, ScaleByScheduleState(
        count=num.safe_increment(state.count))

  update_fn.gradtx_name = "scale_by_schedule"
  return base.GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(
    learning_rate: Optional[base.ScalarOrSchedule] = None, *,
    flip_sign: bool = True) -> base.GradientTransformation:
  """Multiplies the updates by ``-learning_rate`` (or ``+`` if not flipped).

  ``learning_rate`` is a number or a schedule ``count -> value``; ``None``
  (the default, as in optax) gives the identity: the step size is already in
  the updates.

  Args:
    learning_rate: the step size, a number or a schedule of the step count (read
      at the number of steps taken before this one); ``None``: the identity.
    flip_sign: multiply by ``-learning_rate`` (True, for descent) rather than
      ``+learning_rate``.
  """
  if learning_rate is None:
    return base.identity()
  V.check_learning_rate("scale_by_learning_rate", learning_rate)
  m = -1 if flip_sign else 1
  if callable(learning_rate):
    return scale_by_schedule(lambda count: m * V.at(learning_rate, count))
  return scale(m * learning_rate)
