"""Accumulation over steps: moving averages of the updates (momentum,
:func:`trace`, and :func:`ema`) and of the params (:func:`ema_params`), and
gradient accumulation over mini-batches (:class:`MultiSteps`, with the skip
rules :func:`skip_not_finite` and :func:`skip_large_updates`).

:class:`MultiSteps` steps the inner optimizer once per cycle, inside a
``jax.lax.cond``, so a step that does not use it does not compute it, and
it keeps the inner state bit for bit on the steps it holds back.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V
from gradtx._src.conditionality import _cond, _zero_updates_of


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
    return TraceState(count=num.zero_count() if callable(decay) else None,
                      trace=T.tree_zeros_like(params, accumulator_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    beta = V.at(decay, state.count)

    def leaf(g, t):
      b = T.like(beta, g)
      v = g + b * t
      u = g + b * v if nesterov else v
      return u, v if accumulator_dtype is None else v.astype(accumulator_dtype)

    updates, new_trace = LW.leafwise(leaf, 2, updates, state.trace,
                                    name="trace")
    count = None if state.count is None else num.safe_increment(state.count)
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
    return EmaState(count=num.zero_count(),
                    ema=T.tree_zeros_like(params, accumulator_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    beta = V.at(decay, state.count)
    count = num.safe_increment(state.count)
    bc = 1 - beta ** count

    def leaf(g, t):
      b, omb = T.pair(beta, g)
      m = omb * g + b * t
      u = m / bc.astype(m.dtype) if debias else m
      return u, m if accumulator_dtype is None else m.astype(accumulator_dtype)

    updates, new_ema = LW.leafwise(leaf, 2, updates, state.ema, name="ema")
    return updates, EmaState(count=count, ema=new_ema)

  update_fn.gradtx_name = "ema"
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Moving average of the params


class EmaParamsState(NamedTuple):
  """Step count and the moving average of the params.

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``.
    ema: the moving average of the params, the weights to evaluate with.
  """
  count: jax.Array
  ema: Any


def ema_params(decay: Any = 0.999) -> base.GradientTransformation:
  r"""Keeps an exponential moving average of the weights, for evaluation.

  .. math::
     \bar\theta_t = \beta\,\bar\theta_{t-1} + (1-\beta)\,\theta_t,\qquad
     \bar\theta_0 = \theta_0

  (Polyak & Juditsky 1992 averaging, in its exponential form). The updates
  pass through unchanged; put it last in the chain so that
  :math:`\theta_t` is ``params + updates``. Read ``state.ema`` (for a
  chain, the last member's state) to evaluate.

  Args:
    decay: the weight :math:`\beta` of the past average, in [0, 1).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.chain(gradtx.adam(1e-3), gradtx.ema_params(0.99))
    >>> state = tx.init({"w": jnp.ones(2)})
  """
  fn = "ema_params"
  V.check_decay(fn, "decay", decay)

  def init_fn(params):
    return EmaParamsState(count=num.zero_count(),
                          ema=T.tree_strong(params))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG.format(name=fn))
    beta = V.at(decay, state.count)

    def leaf(u, p, e):
      b, omb = T.pair(beta, e)
      return (b * e + omb * (p + u).astype(e.dtype),)

    ema = LW.leafwise(leaf, 1, updates, params, state.ema, name=fn,
                     params_index=0)[0]
    return updates, EmaParamsState(count=num.safe_increment(state.count),
                                   ema=ema)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Gradient accumulation


class MultiStepsState(NamedTuple):
  """The state of :class:`MultiSteps`.

  Attributes:
    mini_step: mini-steps accumulated since the last inner update (0 right
      after one).
    gradient_step: inner updates made so far.
    inner_opt_state: the inner optimizer's state.
    acc_grads: the running mean (or sum) of this cycle's gradients: the one
      extra copy of the params that accumulation costs.
    skip_state: what ``should_skip_update_fn`` returned for the last
      mini-step (``()`` without one), for logging.
  """
  mini_step: jax.Array
  gradient_step: jax.Array
  inner_opt_state: Any
  acc_grads: Any
  skip_state: Any = ()


def skip_not_finite(updates: base.Updates, gradient_step: jax.Array,
                    params: Optional[base.Params]) -> tuple:
  """A ``should_skip_update_fn`` for :class:`MultiSteps`: skip a mini-step
  whose gradients hold a NaN or an Inf.

  Returns ``(should_skip, {"should_skip": ..., "num_not_finite": ...})``,
  as ``optax.skip_not_finite`` does.

  Args:
    updates: the mini-step's gradients (the updates :class:`MultiSteps`
      received).
    gradient_step: the number of inner updates made so far (unused, part
      of the ``should_skip_update_fn`` signature).
    params: the params (unused, part of the signature).
  """
  del gradient_step, params
  num = jnp.sum(jnp.array([jnp.sum(~jnp.isfinite(x))
                           for x in jax.tree.leaves(updates)]))
  should_skip = num > 0
  return should_skip, {"should_skip": should_skip, "num_not_finite": num}


def skip_large_updates(updates: base.Updates, gradient_step: jax.Array,
                       params: Optional[base.Params],
                       max_squared_norm: Any) -> tuple:
  """A ``should_skip_update_fn`` for :class:`MultiSteps` (bind
  ``max_squared_norm`` with ``functools.partial``): skip a mini-step whose
  gradients' squared global norm is not below ``max_squared_norm`` (a NaN
  norm is skipped too).

  Returns ``(should_skip, {"should_skip": ..., "norm_squared": ...})``, as
  ``optax.skip_large_updates`` does.

  Args:
    updates: the mini-step's gradients (the updates :class:`MultiSteps`
      received).
    gradient_step: the number of inner updates made so far (unused, part
      of the ``should_skip_update_fn`` signature).
    params: the params (unused, part of the signature).
    max_squared_norm: the threshold on the squared global l2 norm of
      ``updates``; a mini-step at or above it is skipped.
  """
  del gradient_step, params
  norm_sq = T.tree_norm_sq(updates)
  should_skip = jnp.logical_not(norm_sq < max_squared_norm)
  return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


def _never_skip(updates, gradient_step, params):
  del updates, gradient_step, params
  return jnp.array(False), ()


class MultiSteps:
  r"""Gradient accumulation: one inner step every ``k`` mini-steps.

  Mini-step :math:`i = 0, \dots, k-1` of a cycle folds its gradient
  :math:`g_i` into the accumulator :math:`a` (Welford's running mean, as in
  optax, or a plain sum with ``use_grad_mean=False``):

  .. math::
     a_{i+1} = a_i + \frac{g_i - a_i}{i + 1}
     \ \Big(= \tfrac{1}{i+1}\textstyle\sum_{j \le i} g_j\Big),\qquad
     u_i = \begin{cases} 0 & i < k - 1 \\
     \mathrm{opt}(a_k) & i = k - 1 \end{cases}

  after which :math:`a` is reset to 0. ``k`` mini-batches of size ``B``
  then step the inner optimizer exactly as one batch of size ``kB`` would
  (for a loss that is a mean over the batch); Welford (1962), "Note on a
  method for calculating corrected sums of squares and products",
  Technometrics 4(3), for the running mean.

  Same API and state as ``optax.MultiSteps`` (``init``, ``update``,
  ``has_updated``, ``inner_opt``, ``gradient_transformation()``, the state's
  fields and leaves), so an optax checkpoint restores into it. Differences:

  * the state holds one accumulator and nothing else of the params' size:
    the memory cost is one copy of the params (in ``accumulator_dtype``);
  * the inner update runs inside ``jax.lax.cond``: on the ``k - 1`` other
    mini-steps it is not computed at all, and the zero updates returned
    there have the inner update's dtypes;
  * the accumulator is kept in the gradients' dtype unless
    ``accumulator_dtype`` is given (optax defaults to float32, which loses
    precision for float64 params);
  * a cycle ends once ``mini_step + 1 >= k``, so a schedule that lowers
    ``k`` mid-cycle ends the cycle at once instead of never.

  Args:
    opt: the inner optimizer, any transform or chain.
    every_k_schedule: ``k``, an int >= 1, or a function of
      ``gradient_step`` (the number of inner updates made so far, as in
      optax) returning it, to grow the effective batch during training.
    use_grad_mean: hand the inner optimizer the mean of the ``k``
      gradients (True) or their sum (False).
    should_skip_update_fn: ``f(updates, gradient_step, params) ->
      (should_skip, skip_state)``, with ``should_skip`` a bool scalar: a
      skipped mini-step returns zero updates and leaves the state as it
      was but for ``skip_state``. :func:`gradtx.skip_not_finite` and
      :func:`gradtx.skip_large_updates` are two such functions (as in
      optax).
    accumulator_dtype: the dtype to accumulate in, e.g. ``jnp.float32``
      for bfloat16 params; ``None`` (the default) keeps each gradient's own
      dtype. The inner optimizer receives the result cast back to the
      gradients' dtype.

  Extra keyword arguments of ``update`` are forwarded to ``opt.update`` on
  the steps where it runs, when it accepts ``**extra_args``.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> ms = gradtx.MultiSteps(gradtx.sgd(0.5), every_k_schedule=2)
    >>> params = {"w": jnp.array([1.0, 1.0])}
    >>> state = ms.init(params)
    >>> u, state = ms.update({"w": jnp.array([1.0, 3.0])}, state, params)
    >>> print(u["w"], bool(ms.has_updated(state)))
    [0. 0.] False
    >>> u, state = ms.update({"w": jnp.array([3.0, 5.0])}, state, params)
    >>> print(u["w"], bool(ms.has_updated(state)))
    [-1. -2.] True
  """

  def __init__(self, opt: base.GradientTransformation,
               every_k_schedule: Union[int, Callable[[jax.Array], Any]],
               use_grad_mean: bool = True,
               should_skip_update_fn: Optional[Callable[..., tuple]] = None,
               *, accumulator_dtype: Optional[Any] = None):
    fn = "MultiSteps"
    V.check_transform(fn, "opt", opt)
    if not callable(every_k_schedule):
      if not V.is_int(every_k_schedule):
        raise ValueError(
            f"{fn}: every_k_schedule must be an int >= 1 (the number of "
            f"mini-steps per inner step) or a function of the gradient step, "
            f"got {every_k_schedule=} of type "
            f"{type(every_k_schedule).__name__}.")
      if every_k_schedule < 1:
        raise ValueError(
            f"{fn}: every_k_schedule must be an int >= 1 (the number of "
            f"mini-steps per inner step), got {every_k_schedule=}.")
      every_k_schedule = int(every_k_schedule)
    if not isinstance(use_grad_mean, (bool, np.bool_)):
      raise ValueError(
          f"{fn}: use_grad_mean must be True (average the gradients) or "
          f"False (sum them), got {use_grad_mean=}.")
    if should_skip_update_fn is not None and not callable(
        should_skip_update_fn):
      raise ValueError(
          f"{fn}: should_skip_update_fn must be a function f(updates, "
          f"gradient_step, params) -> (should_skip, skip_state), got "
          f"{should_skip_update_fn!r}.")
    self._should_skip = should_skip_update_fn or _never_skip
    self._opt = opt
    self._every_k = every_k_schedule
    self._use_grad_mean = bool(use_grad_mean)
    self._acc_dtype = V.check_dtype(fn, "accumulator_dtype",
                                    accumulator_dtype)

  @property
  def inner_opt(self) -> base.GradientTransformation:
    """The wrapped optimizer."""
    return self._opt

  def init(self, params: base.Params) -> MultiStepsState:
    """Zero counters, the inner state and a zero accumulator."""
    gradient_step = num.zero_count()
    _, skip_state = self._should_skip(T.tree_zeros_like(params),
                                      gradient_step, params)
    return MultiStepsState(
        mini_step=num.zero_count(), gradient_step=gradient_step,
        inner_opt_state=self._opt.init(params),
        acc_grads=T.tree_zeros_like(params, self._acc_dtype),
        skip_state=skip_state)

  def update(self, updates: base.Updates, state: MultiStepsState,
             params: Optional[base.Params] = None, **extra_args: Any,
             ) -> tuple[base.Updates, MultiStepsState]:
    """Accumulates ``updates``; steps the inner optimizer every ``k``-th call.

    Returns zero updates on the other calls, and on the calls that
    ``should_skip_update_fn`` skips.
    """
    fn = "MultiSteps"
    if not isinstance(state, MultiStepsState):
      raise TypeError(
          f"{fn}: state must be the MultiStepsState built by this "
          f"MultiSteps' init(), got a {type(state).__name__}.")
    i = state.mini_step
    k = V.at(self._every_k, state.gradient_step)
    mean = self._use_grad_mean
    should_skip, skip_state = self._should_skip(updates, state.gradient_step,
                                                params)
    should_skip = jnp.asarray(should_skip)
    if (should_skip.dtype, should_skip.shape) != (jnp.bool_, ()):
      raise ValueError(
          f"{fn}: should_skip_update_fn must return a bool scalar as its "
          f"first result, got an array of dtype {should_skip.dtype} and "
          f"shape {should_skip.shape}.")

    def fold(g, a):
      if mean:
        n = (i + 1).astype(jnp.result_type(g, a))
        # a + (g - a) / n as (a - a / n) + g / n: g - a overflows for
        # gradients of opposite signs near the dtype's max.
        return (((a - a / n) + g / n).astype(a.dtype),)
      return ((a + g).astype(a.dtype),)

    acc = LW.leafwise(fold, 1, updates, state.acc_grads, name=fn)[0]

    def inner_step():
      grads = jax.tree.map(lambda a, g: a.astype(g.dtype), acc, updates)
      return base.call_update(self._opt, grads, state.inner_opt_state,
                              params, **extra_args)

    def final():
      new_updates, inner_state = inner_step()
      return (new_updates, inner_state, T.tree_zeros_like(acc),
              jnp.zeros([], jnp.int32),
              num.safe_increment(state.gradient_step))

    def mid():
      return (_zero_updates_of(inner_step), state.inner_opt_state, acc,
              num.safe_increment(i), state.gradient_step)

    def skip():
      return (_zero_updates_of(inner_step), state.inner_opt_state,
              state.acc_grads, i, state.gradient_step)

    emit = i + 1 >= k
    if self._should_skip is _never_skip:
      branches = _cond(emit, final, mid)
    else:
      branches = _cond(should_skip, skip, lambda: _cond(emit, final, mid))
    new_updates, inner_state, acc, mini, gstep = branches
    return new_updates, MultiStepsState(
        mini_step=mini, gradient_step=gstep, inner_opt_state=inner_state,
        acc_grads=acc, skip_state=skip_state)

  def has_updated(self, state: MultiStepsState) -> jax.Array:
    """Whether the ``update`` that returned ``state`` stepped the inner opt."""
    return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

  def gradient_transformation(self) -> base.GradientTransformation:
    """This wrapper as a plain ``GradientTransformation(init, update)``."""
    return base.GradientTransformation(self.init, self.update)
