"""Wrappers that decide when an inner transform steps.

:class:`MultiSteps` accumulates gradients over several mini-batches and steps
the inner optimizer once per cycle; :func:`apply_if_finite` skips the steps
whose gradients hold a NaN or an Inf. Both run the inner update inside a
``jax.lax.cond``, so a step that does not use it does not compute it, and
both keep the inner state bit for bit on the steps they hold back.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._src import base
from gradtx._src import tree as T
from gradtx._src import validation as V


def _cond(pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any],
          ) -> Any:
  """``jax.lax.cond`` under a trace; a plain ``if`` when ``pred`` is known.

  Called eagerly, ``lax.cond`` would compile its branches afresh at every
  step (they are new closures each time); with a concrete predicate only
  the branch taken runs, op by op, as the rest of an eager step does.
  """
  if isinstance(pred, jax.core.Tracer):
    return jax.lax.cond(pred, lambda _: true_fn(), lambda _: false_fn(), None)
  return true_fn() if bool(pred) else false_fn()


def _zero_updates_of(call: Callable[[], tuple]) -> Any:
  """Zeros shaped like the updates ``call()`` returns, without running it.

  ``jax.eval_shape`` only traces ``call``: the inner update's arithmetic is
  never executed, and the zeros have exactly the inner update's dtypes (and,
  with explicit mesh axes, shardings), so both branches of the ``lax.cond``
  agree.
  """
  shapes = jax.eval_shape(lambda: call()[0])
  return jax.tree.map(jnp.zeros_like, shapes)


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
    gradient_step = base.zero_count()
    _, skip_state = self._should_skip(T.tree_zeros_like(params),
                                      gradient_step, params)
    return MultiStepsState(
        mini_step=base.zero_count(), gradient_step=gradient_step,
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
    k = T.at(self._every_k, state.gradient_step)
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

    acc = T.leafwise(fold, 1, updates, state.acc_grads, name=fn)[0]

    def inner_step():
      grads = jax.tree.map(lambda a, g: a.astype(g.dtype), acc, updates)
      return base.call_update(self._opt, grads, state.inner_opt_state,
                              params, **extra_args)

    def final():
      new_updates, inner_state = inner_step()
      return (new_updates, inner_state, T.tree_zeros_like(acc),
              jnp.zeros([], jnp.int32),
              base.safe_increment(state.gradient_step))

    def mid():
      return (_zero_updates_of(inner_step), state.inner_opt_state, acc,
              base.safe_increment(i), state.gradient_step)

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


# --------------------------------------------------------------------------
# Skipping non-finite steps


class ApplyIfFiniteState(NamedTuple):
  """The state of :func:`apply_if_finite`.

  Attributes:
    notfinite_count: consecutive steps so far whose gradients held a NaN or
      an Inf (0 after a finite step).
    last_finite: whether the last step's gradients were all finite.
    total_notfinite: all such steps since ``init``; never reset.
    inner_state: the inner optimizer's state.
  """
  notfinite_count: jax.Array
  last_finite: jax.Array
  total_notfinite: jax.Array
  inner_state: Any


def _all_finite(tree: Any) -> jax.Array:
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return jnp.array(True)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def apply_if_finite(inner: base.GradientTransformation,
                    max_consecutive_errors: int,
                    ) -> base.GradientTransformation:
  r"""Skips the steps whose gradients hold a NaN or an Inf.

  With :math:`c_t` the number of consecutive non-finite steps up to step
  :math:`t` and :math:`M` = ``max_consecutive_errors``:

  .. math::
     (u_t, s_t) = \begin{cases}
       \mathrm{inner}(g_t, s_{t-1}) & g_t \text{ finite, or } c_t > M \\
       (0,\ s_{t-1}) & \text{otherwise}
     \end{cases}

  A skipped step returns zero updates and leaves the inner state bit for
  bit as it was, so the next finite step proceeds exactly as if the bad
  one had never come. The inner update runs inside ``jax.lax.cond``; one
  jitted step serves both cases.

  As in ``optax.apply_if_finite`` (same state field names and numbers),
  after ``max_consecutive_errors`` skipped steps in a row the next
  non-finite step *is applied*, and so is every one after it until a finite
  step resets the count: a run that has really diverged then shows it (NaN
  params) instead of stalling silently. ``max_consecutive_errors=0`` never
  skips. The same NaN-skipping is used by mixed-precision training with
  dynamic loss scaling (Micikevicius et al., "Mixed precision training",
  ICLR 2018).

  Args:
    inner: the optimizer to protect, any transform or chain.
    max_consecutive_errors: an int >= 0, the most non-finite steps in a row
      that are skipped.

  Extra keyword arguments of ``update`` are forwarded to ``inner.update``
  when it accepts ``**extra_args``.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.apply_if_finite(gradtx.sgd(0.5), max_consecutive_errors=2)
    >>> state = tx.init({"w": jnp.ones(2)})
    >>> u, state = tx.update({"w": jnp.array([jnp.nan, 1.0])}, state)
    >>> print(u["w"], int(state.notfinite_count), bool(state.last_finite))
    [0. 0.] 1 False
    >>> u, state = tx.update({"w": jnp.array([2.0, 1.0])}, state)
    >>> print(u["w"], int(state.notfinite_count), int(state.total_notfinite))
    [-1.  -0.5] 0 1
  """
  fn = "apply_if_finite"
  V.check_transform(fn, "inner", inner)
  if not V.is_int(max_consecutive_errors):
    raise ValueError(
        f"{fn}: max_consecutive_errors must be an int >= 0 (the most "
        f"non-finite steps in a row to skip), got {max_consecutive_errors=} "
        f"of type {type(max_consecutive_errors).__name__}.")
  if max_consecutive_errors < 0:
    raise ValueError(
        f"{fn}: max_consecutive_errors must be an int >= 0 (the most "
        f"non-finite steps in a row to skip), got {max_consecutive_errors=}.")
  max_errors = int(max_consecutive_errors)
  def init_fn(params):
    return ApplyIfFiniteState(
        notfinite_count=base.zero_count(), last_finite=jnp.array(True),
        total_notfinite=base.zero_count(), inner_state=inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    isfinite = _all_finite(updates)
    notfinite_count = jnp.where(isfinite, jnp.zeros([], jnp.int32),
                                base.safe_increment(state.notfinite_count))

    def inner_step():
      return base.call_update(inner, updates, state.inner_state, params,
                              **extra_args)

    def skip():
      return _zero_updates_of(inner_step), state.inner_state

    new_updates, inner_state = _cond(
        jnp.logical_or(isfinite, notfinite_count > max_errors), inner_step,
        skip)
    return new_updates, ApplyIfFiniteState(
        notfinite_count=notfinite_count, last_finite=isfinite,
        total_notfinite=jnp.where(isfinite, state.total_notfinite,
                                  base.safe_increment(state.total_notfinite)),
        inner_state=inner_state)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
