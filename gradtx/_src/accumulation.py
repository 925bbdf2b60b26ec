"""Moving averages of the updates: momentum (:func:`trace`) and :func:`ema`."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import tree as T
from gradtx._src import validation as V


class TraceState(NamedTuple):
  """A step count, kept only for a ``decay`` schedule (``None`` otherwise,
  as optax's ``TraceState`` has none), and the momentum buffer.

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``, kept only when ``decay`` is a schedule (which is read at
      it); ``None`` otherwise.
    trace: the momentum buffer (the velocity ``v_t``), one array per leaf.
  """
  count: Optional[jax.Array]
  trace: Any


def trace(decay: Any, nesterov: bool = False,
          accumulator_dtype: Optional[Any] = None,
          ) -> base.GradientTransformation:
  r"""Heavy-ball momentum, optionally Nesterov's.

  .. math::
     v_t = g_t + \beta v_{t-1}, \qquad
     u_t = v_t \text{ (heavy ball)} \quad\text{or}\quad
     u_t = g_t + \beta v_t \text{ (Nesterov)}

  This is the PyTorch/optax form (no ``1 - beta`` damping), so with a learning
  rate ``eta`` the step is ``-eta * u_t``. Sutskever et al. (ICML 2013).

  Args:
    decay: the momentum coefficient ``beta`` in [0, 1), or a schedule.
    nesterov: use Nesterov's look-ahead form.
    accumulator_dtype: dtype of the stored buffer (default: the params').
  """
  V.check_momentum("trace", "decay", decay)
  accumulator_dtype = V.check_dtype("trace", "accumulator_dtype",
                                    accumulator_dtype)

  def init_fn(params):
    return TraceState(count=base.zero_count() if callable(decay) else None,
                      trace=T.tree_zeros_like(params, accumulator_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    beta = T.at(decay, state.count)

    def leaf(g, t):
      b = T.like(beta, g)
      v = g + b * t
      u = g + b * v if nesterov else v
      return u, v if accumulator_dtype is None else v.astype(accumulator_dtype)

    updates, new_trace = T.leafwise(leaf, 2, updates, state.trace,
                                    name="trace")
    count = None if state.count is None else base.safe_increment(state.count)
    return updates, TraceState(count=count, trace=new_trace)

  update_fn.gradtx_name = "trace"
  return base.GradientTransformation(init_fn, update_fn)


class EmaState(NamedTuple):
  """Step count and the exponential moving average.

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``.
    ema: the moving average ``m_t`` of the updates, before the bias correction.
  """
  count: jax.Array
  ema: Any


def ema(decay: Any, debias: bool = True,
        accumulator_dtype: Optional[Any] = None,
        ) -> base.GradientTransformation:
  r"""Exponential moving average of the updates.

  .. math::
     m_t = \beta m_{t-1} + (1 - \beta) g_t, \qquad
     u_t = m_t / (1 - \beta^t) \text{ if debias else } m_t

  Args:
    decay: the weight :math:`\beta` of the past, in [0, 1); a number or a
      schedule of the step count.
    debias: divide the average by ``1 - decay**t`` (Adam's bias correction), so
      early steps are not pulled towards 0.
    accumulator_dtype: the dtype the average is stored in; ``None``: each leaf's
      dtype.
  """
  V.check_decay("ema", "decay", decay)
  accumulator_dtype = V.check_dtype("ema", "accumulator_dtype",
                                    accumulator_dtype)

  def init_fn(params):
    return EmaState(count=base.zero_count(),
                    ema=T.tree_zeros_like(params, accumulator_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    beta = T.at(decay, state.count)
    count = base.safe_increment(state.count)
    bc = 1 - beta ** count

    def leaf(g, t):
      b, omb = T.pair(beta, g)
      m = omb * g + b * t
      u = m / bc.astype(m.dtype) if debias else m
      return u, m if accumulator_dtype is None else m.astype(accumulator_dtype)

    updates, new_ema = T.leafwise(leaf, 2, updates, state.ema, name="ema")
    return updates, EmaState(count=count, ema=new_ema)

  update_fn.gradtx_name = "ema"
  return base.GradientTransformation(init_fn, update_fn)
