"""Line searches, and the objective they read.

* :func:`scale_by_backtracking_linesearch` (Armijo) and
  :func:`scale_by_zoom_linesearch` (strong Wolfe, Nocedal & Wright,
  Algorithms 3.5 and 3.6) scale a direction by a step size they search for.
  They read the objective through the ``value``, ``grad`` and ``value_fn``
  keyword arguments of ``update``, which :func:`gradtx.chain` forwards, and
  store the value and gradient of the point they accept in their state.
* :func:`value_and_grad_from_state` hands that stored value and gradient to
  the next step, so that a step whose first trial is accepted costs one
  evaluation of the objective and its gradient.

The helpers at the top (dot products and sums of trees of real arrays in
the scalar dtype, the objective's keyword arguments) are shared by the
second-order methods in ``gradtx/_src/second_order/``.

Names, arguments, defaults and states are optax 0.2.8's (its
``linesearch.py``). Scalars (dot products, step sizes) are accumulated in at
least float32.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V

__all__ = [
    "BacktrackingLinesearchInfo",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "scale_by_backtracking_linesearch",
    "scale_by_zoom_linesearch",
    "value_and_grad_from_state",
]


# --------------------------------------------------------------------------
# Helpers on trees of real arrays


def _dtype(x: Any) -> Any:
  """A leaf's dtype; also for an abstract ``jax.ShapeDtypeStruct``."""
  dtype = getattr(x, "dtype", None)
  return jnp.asarray(x).dtype if dtype is None else jnp.dtype(dtype)


def _inexact_leaves(fn: str, tree: Any) -> list:
  leaves = jax.tree.leaves(tree)
  for x in leaves:
    dtype = _dtype(x)
    if not jnp.issubdtype(dtype, jnp.inexact):
      raise TypeError(
          f"{fn}: params must be floating point or complex, a leaf has dtype "
          f"{dtype}. Keep integer and boolean leaves out of the params you "
          f"optimise.")
  return leaves


def _scalar_dtype(fn: str, tree: Any) -> Any:
  """The dtype of dot products and step sizes: real, at least float32.

  bfloat16 and float16 params get float32 scalars; float64 params (with x64
  on) get float64; complex params the dtype of their real part.
  """
  dtypes = [jnp.finfo(_dtype(x)).dtype for x in _inexact_leaves(fn, tree)]
  return jnp.result_type(jnp.float32, *dtypes)


def _dot(a: Any, b: Any, dtype: Any) -> jax.Array:
  r"""``Re sum_i <a_i, b_i>`` over the leaves, accumulated in ``dtype``.

  The real inner product :math:`\mathrm{Re}(a^H b)` (optax's
  ``real(vdot(a, b))``): for complex params it is the inner product of
  their real and imaginary parts as two real leaves. An elementwise product
  and a sum rather than ``jnp.vdot``: on GPUs a float32 dot may run in
  TF32, whose 10-bit mantissa would ruin slopes and curvature pairs.
  """
  total = jnp.zeros([], dtype)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    if jnp.iscomplexobj(x) or jnp.iscomplexobj(y):
      x, y = jnp.asarray(x), jnp.asarray(y)
      total = total + jnp.sum(x.real.astype(dtype) * y.real.astype(dtype)
                              + x.imag.astype(dtype) * y.imag.astype(dtype))
    else:
      total = total + jnp.sum(x.astype(dtype) * y.astype(dtype))
  return total


def _axpy(alpha: jax.Array, x: Any, y: Any) -> Any:
  """``y + alpha * x`` per leaf, ``alpha`` cast to each leaf's dtype."""
  return jax.tree.map(lambda a, b: b + alpha.astype(b.dtype) * a, x, y)


def _scale_tree(alpha: jax.Array, x: Any) -> Any:
  return jax.tree.map(lambda a: alpha.astype(a.dtype) * a, x)


def _where(cond: jax.Array, x: Any, y: Any) -> Any:
  return jax.tree.map(lambda a, b: jnp.where(cond, a, b), x, y)


def _like_params(tree: Any, params: Any) -> Any:
  """``tree``'s leaves as arrays of the matching params' dtypes."""
  return jax.tree.map(lambda g, p: jnp.asarray(g).astype(p.dtype), tree,
                      params)


def _objective_kwargs(fn: str, value_fn: Callable[..., Any],
                      extra_args: dict, strict: bool = True) -> dict:
  """The extra keyword arguments of ``update``, all meant for ``value_fn``.

  As in optax, an argument that ``value_fn`` does not take is an error (it
  is almost always a typo, and the line search would silently search a
  different objective); a ``value_fn`` with ``**kwargs`` takes them all.
  With ``strict=False`` (the second-order transforms, which share a chain's
  keyword arguments with the other members) such arguments are left out.
  """
  sig = base.signature(value_fn)
  if sig is None:
    return dict(extra_args)
  params = sig.parameters
  if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
    return dict(extra_args)
  unused = sorted(k for k in extra_args if k not in params)
  if unused and not strict:
    return {k: v for k, v in extra_args.items() if k in params}
  if unused:
    raise TypeError(
        f"{fn}: Unexpected keyword arguments passed to update: {unused} are "
        f"not arguments of value_fn. Pass only value, grad, value_fn and the "
        f"data value_fn takes by keyword (value_fn accepts "
        f"{[k for k in params][1:]}).")
  return dict(extra_args)


_NEEDS_OBJECTIVE = (
    "{name}: update needs the objective through keyword arguments: "
    "update(updates, state, params, value=f(params), grad=grad_f(params), "
    "value_fn=f, **data_for_f); missing {missing}. Use it inside "
    "gradtx.chain (which forwards them), not optax.chain, and see "
    "gradtx.value_and_grad_from_state.")


def _check_objective(name, params, value, grad, value_fn):
  if params is None:
    raise ValueError(base.NO_PARAMS_MSG.format(name=name))
  missing = [n for n, v in (("value", value), ("grad", grad),
                            ("value_fn", value_fn)) if v is None]
  if missing:
    raise TypeError(_NEEDS_OBJECTIVE.format(name=name,
                                            missing=", ".join(missing)))
  if not callable(value_fn):
    raise TypeError(f"{name}: value_fn must be the objective, a function "
                    f"params -> scalar, got value_fn={value_fn!r}.")


# --------------------------------------------------------------------------
# Backtracking (Armijo) line search


class BacktrackingLinesearchInfo(NamedTuple):
  """What the last backtracking search did.

  Attributes:
    num_linesearch_steps: objective evaluations it made (int32).
    decrease_error: how far the accepted step is from sufficient decrease
      (0 when it holds, ``inf`` for a non-finite value).
  """
  num_linesearch_steps: jax.Array
  decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
  """The state of :func:`scale_by_backtracking_linesearch`.

  Attributes:
    learning_rate: the step size accepted last (the next search starts from
      ``increase_factor`` times it).
    value: the objective at the accepted point (``inf`` before the first
      step), for :func:`value_and_grad_from_state`.
    grad: its gradient with ``store_grad=True``; ``None`` otherwise.
    info: a :class:`BacktrackingLinesearchInfo`.
  """
  learning_rate: jax.Array
  value: jax.Array
  grad: Any
  info: BacktrackingLinesearchInfo


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: Any = 1e-4,
    decrease_factor: Any = 0.8,
    increase_factor: Any = 1.5,
    max_learning_rate: Any = 1.0,
    atol: Any = 0.0,
    rtol: Any = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> base.GradientTransformation:
  r"""Backtracking line search for sufficient decrease (Armijo).

  Scales the direction :math:`u` (the updates it receives) by the first step
  size :math:`\eta` of :math:`\eta_0, \delta\eta_0, \delta^2\eta_0, \dots`
  that satisfies

  .. math::
     f(w + \eta u) \le (1 + r) f(w) + c\,\eta\, \langle u, \nabla f(w)
     \rangle + a,

  with :math:`c` = ``slope_rtol``, :math:`\delta` = ``decrease_factor``,
  :math:`r` = ``rtol``, :math:`a` = ``atol`` and
  :math:`\eta_0 = \min(\text{increase\_factor} \cdot \eta_{\text{prev}},
  \text{max\_learning\_rate})`. Armijo, Pacific J. Math. 1966; Nocedal &
  Wright, *Numerical Optimization*, 2nd ed. 2006, Algorithm 3.1.

  The search makes at most ``max_backtracking_steps + 1`` evaluations (the
  first trial, then up to ``max_backtracking_steps`` decreases), as in
  optax. If none satisfies the condition it takes the last (smallest) trial,
  or no step at all if that trial's value is not finite;
  ``state.info.decrease_error > 0`` reports it (and the next search starts
  from ``max_learning_rate`` again, where optax would start from 0 for
  good). ``u`` should be a descent direction
  (:math:`\langle u, \nabla f(w)\rangle < 0`).

  ``update`` takes the objective as keyword arguments, which
  :func:`gradtx.chain` forwards: ``value`` (:math:`f(w)`), ``grad``
  (:math:`\nabla f(w)`), ``value_fn`` (:math:`f`, called as
  ``value_fn(params, **kw)``) and any data ``value_fn`` takes by keyword
  (extra arguments it does not name are ignored). The value at the accepted
  point is stored in the state; with ``store_grad=True`` so is its gradient
  (each trial then runs ``jax.vjp`` and the accepted one is pulled back), so
  :func:`value_and_grad_from_state` can reuse both.

  Args:
    max_backtracking_steps: the most times the step size is decreased.
    slope_rtol: :math:`c` in [0, 1).
    decrease_factor: :math:`\delta` in (0, 1).
    increase_factor: positive, usually at least 1; ``math.inf`` starts every
      search at ``max_learning_rate``.
    max_learning_rate: the largest step size tried.
    atol: :math:`a \ge 0`.
    rtol: :math:`r \ge 0`.
    store_grad: also store the gradient at the accepted point.
    verbose: print a line when a search fails.

  Example:
    >>> import gradtx, jax, jax.numpy as jnp
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
    >>> tx = gradtx.chain(gradtx.sgd(1.0),
    ...                   gradtx.scale_by_backtracking_linesearch(
    ...                       max_backtracking_steps=15, decrease_factor=0.5,
    ...                       store_grad=True))
    >>> w = jnp.zeros(3)
    >>> state = tx.init(w)
    >>> value_and_grad = gradtx.value_and_grad_from_state(f)
    >>> for _ in range(3):
    ...   value, grad = value_and_grad(w, state=state)
    ...   updates, state = tx.update(grad, state, w, value=value, grad=grad,
    ...                              value_fn=f)
    ...   w = gradtx.apply_updates(w, updates)
    >>> print(f"{float(f(w)):.4f}")
    0.0000
  """
  fn = "scale_by_backtracking_linesearch"
  V.check_int(fn, "max_backtracking_steps", max_backtracking_steps, 0)
  V.check_interval(fn, "slope_rtol", slope_rtol, 0.0, 1.0)
  V.check_interval(fn, "decrease_factor", decrease_factor, 0.0, 1.0,
                   lo_closed=False)
  # optax takes any positive factor; below 1 each search starts lower.
  V.check_positive(fn, "increase_factor", increase_factor)
  V.check_positive(fn, "max_learning_rate", max_learning_rate)
  V.check_nonnegative(fn, "atol", atol)
  V.check_nonnegative(fn, "rtol", rtol)
  n_max = max_backtracking_steps

  def init_fn(params):
    dtype = _scalar_dtype(fn, params)
    return ScaleByBacktrackingLinesearchState(
        learning_rate=jnp.ones([], dtype),
        value=jnp.full([], jnp.inf, dtype),
        grad=T.tree_zeros_like(params) if store_grad else None,
        info=BacktrackingLinesearchInfo(
            num_linesearch_steps=num.zero_count(),
            decrease_error=jnp.full([], jnp.inf, dtype)))

  def update_fn(updates, state, params=None, *, value=None, grad=None,
                value_fn=None, **extra_args):
    _check_objective(fn, params, value, grad, value_fn)
    dtype = state.value.dtype
    kw = _objective_kwargs(fn, value_fn, extra_args)
    f = lambda p: jnp.asarray(value_fn(p, **kw)).astype(dtype)
    c = lambda h: jnp.asarray(h).astype(dtype)
    value = c(value)
    grad = _like_params(grad, params)
    slope = _dot(updates, grad, dtype)
    if isinstance(increase_factor, (int, float)) and math.isinf(
        increase_factor):
      lr0 = c(max_learning_rate)
    else:
      # After a search that took no step, start again from the top.
      prev = jnp.where(state.learning_rate > 0, state.learning_rate,
                       c(max_learning_rate))
      lr0 = jnp.minimum(c(increase_factor) * prev, c(max_learning_rate))

    def error(lr, new_value):
      err = new_value - (1 + c(rtol)) * value - lr * c(slope_rtol) * slope
      return jnp.where(jnp.isnan(err), jnp.inf, jnp.maximum(err, 0))

    def cond(carry):
      _, _, _, err, it = carry
      return (err > c(atol)) & (it <= n_max)

    def body(carry):
      lr, _, new_grad, _, it = carry
      lr = jnp.where(it > 0, c(decrease_factor) * lr, lr)
      trial = base.apply_updates(params, _scale_tree(lr, updates))
      if store_grad:
        new_value, pullback = jax.vjp(f, trial)
        err = error(lr, new_value)
        new_grad = jax.lax.cond(
            (err <= c(atol)) | (it == n_max),
            lambda: pullback(jnp.ones([], dtype))[0],
            lambda: new_grad)
      else:
        new_value = f(trial)
        err = error(lr, new_value)
      return lr, new_value, new_grad, err, it + 1

    carry = (lr0, value, state.grad, jnp.full([], jnp.inf, dtype),
             jnp.zeros([], jnp.int32))
    lr, new_value, new_grad, err, n = jax.lax.while_loop(cond, body, carry)
    lr = jnp.where(jnp.isinf(err), jnp.zeros([], dtype), lr)
    if not store_grad:
      new_grad = None
    else:
      new_grad = _where(jnp.isinf(err), grad, new_grad)
    new_value = jnp.where(jnp.isinf(err), value, new_value)
    if verbose:
      jax.lax.cond(
          err > c(atol),
          lambda: jax.debug.print(
              f"{fn}: no step size with sufficient decrease in "
              "{n} trials; value {v}, slope {s}, taking step size {lr}.",
              n=n, v=value, s=slope, lr=lr),
          lambda: None)
    new_updates = LW.leafwise(lambda u: (lr.astype(u.dtype) * u,), 1,
                             updates, name=fn)[0]
    return new_updates, ScaleByBacktrackingLinesearchState(
        learning_rate=lr, value=new_value, grad=new_grad,
        info=BacktrackingLinesearchInfo(num_linesearch_steps=n,
                                        decrease_error=err))

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Zoom (strong Wolfe) line search


class ZoomLinesearchInfo(NamedTuple):
  """What the last zoom search did.

  Attributes:
    num_linesearch_steps: objective (and gradient) evaluations it made.
    decrease_error: by how much the accepted step misses the (approximate)
      sufficient decrease condition: 0 when it holds, ``inf`` when the
      search found no finite value and took no step.
    curvature_error: by how much it misses the strong curvature condition
      (0 when it holds; positive is mild: the step still decreases ``f``).
  """
  num_linesearch_steps: jax.Array
  decrease_error: jax.Array
  curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
  """The state of :func:`scale_by_zoom_linesearch`.

  Attributes:
    learning_rate: the step size accepted last.
    value: the objective at the accepted point (``inf`` before the first
      step), for :func:`value_and_grad_from_state`.
    grad: the gradient at the accepted point.
    info: a :class:`ZoomLinesearchInfo`.
  """
  learning_rate: jax.Array
  value: jax.Array
  grad: Any
  info: ZoomLinesearchInfo


class _Search(NamedTuple):
  """The carry of the zoom search's while loop (all scalars but grads)."""
  count: jax.Array
  stepsize: jax.Array       # the last trial
  value: jax.Array
  grad: Any
  slope: jax.Array
  decrease_error: jax.Array
  curvature_error: jax.Array
  interval_found: jax.Array
  done: jax.Array
  failed: jax.Array
  low: jax.Array            # f(low) <= f(high); not necessarily low < high
  value_low: jax.Array
  slope_low: jax.Array
  high: jax.Array
  value_high: jax.Array
  slope_high: jax.Array
  ref: jax.Array            # the third point of the cubic interpolation
  value_ref: jax.Array
  has_ref: jax.Array
  safe_stepsize: jax.Array  # the best trial with sufficient decrease
  safe_value: jax.Array
  safe_grad: Any
  safe_curvature_error: jax.Array


def _cubicmin(a, fa, fpa, b, fb, c, fc):
  """The minimiser of the cubic through (a, fa), (b, fb), (c, fc) with slope
  fpa at a (scipy.optimize's ``_cubicmin``); NaN when there is none."""
  db, dc = b - a, c - a
  denom = (db * dc) ** 2 * (db - dc)
  r1 = fb - fa - fpa * db
  r2 = fc - fa - fpa * dc
  aa = (dc ** 2 * r1 - db ** 2 * r2) / denom
  bb = (-(dc ** 3) * r1 + db ** 3 * r2) / denom
  radical = bb * bb - 3 * aa * fpa
  return a + (-bb + jnp.sqrt(radical)) / (3 * aa)


def _quadmin(a, fa, fpa, b, fb):
  """The minimiser of the quadratic through (a, fa), (b, fb) with slope fpa
  at a (scipy.optimize's ``_quadmin``)."""
  db = b - a
  bb = (fb - fa - fpa * db) / (db * db)
  return a - fpa / (2 * bb)


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: Optional[Any] = None,
    tol: Any = 0.0,
    increase_factor: Any = 2.0,
    slope_rtol: Any = 1e-4,
    curv_rtol: Any = 0.9,
    approx_dec_rtol: Optional[Any] = 1e-6,
    stepsize_precision: Any = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> base.GradientTransformation:
  r"""Line search for the strong Wolfe conditions (bracketing, then zoom).

  Scales the direction :math:`u` by a step size :math:`\eta` with

  .. math::
     f(w + \eta u) \le f(w) + c_1 \eta \langle u, \nabla f(w)\rangle,
     \qquad
     |\langle \nabla f(w + \eta u), u\rangle| \le
     c_2\, |\langle \nabla f(w), u\rangle|

  (:math:`c_1` = ``slope_rtol``, :math:`c_2` = ``curv_rtol``, both up to
  ``tol``), by Nocedal & Wright, *Numerical Optimization* (2nd ed. 2006),
  Algorithm 3.5: try :math:`\eta_0` (1, or the previous step size with
  ``initial_guess_strategy="keep"``), multiply by ``increase_factor`` until
  an interval that must contain such a step is bracketed; then Algorithm 3.6
  (zoom) shrinks it, trying the minimiser of a cubic interpolation, else of a
  quadratic one, else the midpoint (the safeguards of scipy's
  ``line_search``). With :math:`c_1 < c_2 < 1` every accepted step gives a
  curvature pair with :math:`s^\top y > 0`, which L-BFGS needs.

  Near a minimiser :math:`f(w + \eta u) - f(w)` drowns in rounding error, and
  with ``approx_dec_rtol`` (:math:`\epsilon`) not ``None`` the decrease
  condition may be met instead by Hager & Zhang's approximate Wolfe condition
  (ACM TOMS 2006, eq. 23),
  :math:`\langle\nabla f(w+\eta u), u\rangle \le (2c_1 - 1)
  \langle\nabla f(w), u\rangle`, for trials with
  :math:`f(w + \eta u) \le f(w) + \epsilon |f(w)|`.

  The search makes at most ``max_linesearch_steps`` evaluations of ``f`` and
  its gradient. If it runs out, or the interval shrinks below
  ``stepsize_precision`` after a step with sufficient decrease was seen, it
  takes such a step (the lowest of them once zooming; curvature not met:
  ``info.curvature_error > 0``). If no trial had sufficient
  decrease it takes the last trial, or no step if that trial was not finite
  (``info.decrease_error`` is then ``inf``). ``max_learning_rate`` caps the
  step; a capped step with sufficient decrease is taken even if its slope is
  still steep.

  ``update`` takes ``value``, ``grad``, ``value_fn`` and the data for
  ``value_fn`` as keyword arguments, as
  :func:`scale_by_backtracking_linesearch` does, and stores the value and
  gradient at the accepted point in the state (for
  :func:`value_and_grad_from_state`): a step whose first trial is accepted
  costs one evaluation of ``value_fn`` and its gradient.

  Same trials and steps as optax 0.2.8's ``scale_by_zoom_linesearch`` (up to
  rounding), except: with ``"keep"`` a previous step size of 0 restarts from
  1 (optax would try 0 forever); and ``info`` describes the step taken, where
  optax's describes the last trial.

  Args:
    max_linesearch_steps: the most evaluations per search.
    max_learning_rate: the largest step size, or ``None``.
    tol: tolerance on both conditions.
    increase_factor: the bracketing phase's growth factor, usually > 1
      (any positive number is taken, as in optax).
    slope_rtol: :math:`c_1` in (0, 1).
    curv_rtol: :math:`c_2` in (:math:`c_1`, 1), or ``math.inf`` to drop the
      curvature condition (an interpolating backtracking search).
    approx_dec_rtol: :math:`\epsilon \ge 0` or ``None`` (Armijo only).
    stepsize_precision: the interval length below which the zoom gives up
      and takes its best step with sufficient decrease.
    initial_guess_strategy: ``"one"`` (for Newton-like directions such as
      L-BFGS's) or ``"keep"`` (the previous step size, for gradient descent).
    verbose: print a line when a search fails.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
    >>> tx = gradtx.chain(gradtx.sgd(1.0),
    ...                   gradtx.scale_by_zoom_linesearch(
    ...                       max_linesearch_steps=15))
    >>> w = jnp.zeros(3)
    >>> state = tx.init(w)
    >>> value_and_grad = gradtx.value_and_grad_from_state(f)
    >>> value, grad = value_and_grad(w, state=state)
    >>> updates, state = tx.update(grad, state, w, value=value, grad=grad,
    ...                            value_fn=f)
    >>> print(gradtx.apply_updates(w, updates), state[-1].learning_rate)
    [1. 1. 1.] 0.5
  """
  fn = "scale_by_zoom_linesearch"
  V.check_int(fn, "max_linesearch_steps", max_linesearch_steps, 1)
  if max_learning_rate is not None:
    V.check_positive(fn, "max_learning_rate", max_learning_rate)
  V.check_nonnegative(fn, "tol", tol)
  # optax takes any positive factor; at or below 1 the bracketing phase
  # cannot grow the step and the search stays within the first guess.
  V.check_positive(fn, "increase_factor", increase_factor)
  V.check_interval(fn, "slope_rtol", slope_rtol, 0.0, 1.0, lo_closed=False)
  V.check_interval(fn, "curv_rtol", curv_rtol, 0.0, math.inf,
                   lo_closed=False, hi_closed=True,
                   hint="Wolfe's curvature constant; 0.9 is usual for "
                   "quasi-Newton directions.")
  if (V.is_concrete_number(slope_rtol) and V.is_concrete_number(curv_rtol)
      and not float(slope_rtol) <= float(curv_rtol)):
    raise ValueError(
        f"{fn}: the Wolfe conditions need slope_rtol <= curv_rtol, got "
        f"slope_rtol={slope_rtol!r} and curv_rtol={curv_rtol!r}.")
  if approx_dec_rtol is not None:
    V.check_nonnegative(fn, "approx_dec_rtol", approx_dec_rtol)
  V.check_nonnegative(fn, "stepsize_precision", stepsize_precision)
  if initial_guess_strategy not in ("one", "keep"):
    raise ValueError(
        f"{fn}: initial_guess_strategy must be 'one' or 'keep', got "
        f"initial_guess_strategy={initial_guess_strategy!r}.")
  n_max = max_linesearch_steps

  def init_fn(params):
    dtype = _scalar_dtype(fn, params)
    return ScaleByZoomLinesearchState(
        learning_rate=jnp.ones([], dtype),
        value=jnp.full([], jnp.inf, dtype),
        grad=T.tree_zeros_like(params),
        info=ZoomLinesearchInfo(
            num_linesearch_steps=num.zero_count(),
            decrease_error=jnp.full([], jnp.inf, dtype),
            curvature_error=jnp.full([], jnp.inf, dtype)))

  def update_fn(updates, state, params=None, *, value=None, grad=None,
                value_fn=None, **extra_args):
    _check_objective(fn, params, value, grad, value_fn)
    dtype = state.value.dtype
    kw = _objective_kwargs(fn, value_fn, extra_args)
    c = lambda h: jnp.asarray(h).astype(dtype)
    zero, inf = jnp.zeros([], dtype), jnp.full([], jnp.inf, dtype)
    value_and_grad = jax.value_and_grad(lambda p: value_fn(p, **kw))
    grad = _like_params(grad, params)
    value0 = c(value)
    slope0 = _dot(updates, grad, dtype)
    if initial_guess_strategy == "one":
      guess = jnp.ones([], dtype)
    else:
      guess = jnp.where(state.learning_rate > 0, state.learning_rate, 1)

    def errors(t, f_t, slope_t):
      dec = f_t - value0 - c(slope_rtol) * t * slope0
      if approx_dec_rtol is not None:
        approx = jnp.maximum(
            slope_t - (2 * c(slope_rtol) - 1) * slope0,
            f_t - value0 - c(approx_dec_rtol) * jnp.abs(value0))
        dec = jnp.minimum(approx, dec)
      curv = jnp.abs(slope_t) - c(curv_rtol) * jnp.abs(slope0)
      fix = lambda e: jnp.where(jnp.isnan(e), inf, jnp.maximum(e, 0))
      return fix(dec), fix(curv)

    def body(z):
      first = z.count == 0
      # Next trial. Bracketing (Algorithm 3.5): grow the step.
      t_grow = jnp.where(first, guess, c(increase_factor) * z.stepsize)
      if max_learning_rate is not None:
        capped = t_grow >= c(max_learning_rate)
        t_grow = jnp.minimum(t_grow, c(max_learning_rate))
      else:
        capped = jnp.asarray(False)
      # Zoom (Algorithm 3.6): interpolate inside [low, high], safeguarded.
      delta = jnp.abs(z.high - z.low)
      left, right = jnp.minimum(z.low, z.high), jnp.maximum(z.low, z.high)
      cubic = _cubicmin(z.low, z.value_low, z.slope_low, z.high, z.value_high,
                        z.ref, z.value_ref)
      use_cubic = z.has_ref & (cubic > left + 0.2 * delta) & (
          cubic < right - 0.2 * delta)
      quad = _quadmin(z.low, z.value_low, z.slope_low, z.high, z.value_high)
      use_quad = ~use_cubic & (quad > left + 0.1 * delta) & (
          quad < right - 0.1 * delta)
      t_zoom = jnp.where(use_cubic, cubic,
                         jnp.where(use_quad, quad, (z.low + z.high) / 2))
      too_small = delta <= c(stepsize_precision)
      zooming = z.interval_found
      t = jnp.where(zooming, t_zoom, t_grow)

      trial = base.apply_updates(params, _scale_tree(t, updates))
      f_t, g_t = value_and_grad(trial)
      f_t = c(f_t)
      g_t = _like_params(g_t, params)
      slope_t = _dot(g_t, updates, dtype)
      dec, curv = errors(t, f_t, slope_t)
      good = jnp.maximum(dec, curv) <= c(tol)
      dec_ok = dec <= c(tol)

      # Bracketing outcome.
      b_high_new = (dec > 0) | ((f_t >= z.value) & ~first)
      b_low_new = (slope_t >= 0) & ~b_high_new
      b_found = b_high_new | b_low_new | good
      b_low = jnp.where(b_low_new, jnp.stack([t, f_t, slope_t]),
                        jnp.stack([z.stepsize, z.value, z.slope]))
      b_high = jnp.where(b_low_new, jnp.stack([z.stepsize, z.value, z.slope]),
                         jnp.stack([t, f_t, slope_t]))
      b_done = good | (capped & ~b_found)
      # Zoom outcome.
      z_high_mid = (dec > 0) | (f_t >= z.value_low)
      z_high_low = ~z_high_mid & (slope_t * (z.high - z.low) >= 0)
      old_low = jnp.stack([z.low, z.value_low, z.slope_low])
      old_high = jnp.stack([z.high, z.value_high, z.slope_high])
      mid = jnp.stack([t, f_t, slope_t])
      z_high = jnp.where(z_high_mid, mid, jnp.where(z_high_low, old_low,
                                                    old_high))
      z_low = jnp.where(z_high_mid, old_low, mid)
      z_ref = jnp.where(z_high_mid | z_high_low, old_high[:2], old_low[:2])

      low = jnp.where(zooming, z_low, b_low)
      high = jnp.where(zooming, z_high, b_high)
      ref = jnp.where(zooming, z_ref, b_low[:2])
      done = good | (~zooming & b_done)
      # The safeguard: the best trial with sufficient decrease so far.
      take_safe = dec_ok & (~zooming | (f_t < z.safe_value))
      safe_t = jnp.where(take_safe, t, z.safe_stepsize)
      failed = ~done & ((z.count + 1 >= n_max)
                        | (zooming & too_small & (safe_t > 0)))
      return _Search(
          count=z.count + 1, stepsize=t, value=f_t, grad=g_t, slope=slope_t,
          decrease_error=dec, curvature_error=curv,
          interval_found=z.interval_found | b_found, done=done,
          failed=failed, low=low[0], value_low=low[1], slope_low=low[2],
          high=high[0], value_high=high[1], slope_high=high[2], ref=ref[0],
          value_ref=ref[1], has_ref=zooming, safe_stepsize=safe_t,
          safe_value=jnp.where(take_safe, f_t, z.safe_value),
          safe_grad=_where(take_safe, g_t, z.safe_grad),
          safe_curvature_error=jnp.where(take_safe, curv,
                                         z.safe_curvature_error))

    z0 = _Search(
        count=jnp.zeros([], jnp.int32), stepsize=zero, value=value0,
        grad=grad, slope=slope0, decrease_error=inf, curvature_error=inf,
        interval_found=jnp.asarray(False), done=jnp.asarray(False),
        failed=jnp.asarray(False), low=zero, value_low=value0,
        slope_low=slope0, high=zero, value_high=value0, slope_high=slope0,
        ref=zero, value_ref=value0, has_ref=jnp.asarray(False),
        safe_stepsize=zero, safe_value=value0, safe_grad=grad,
        safe_curvature_error=inf)
    z = jax.lax.while_loop(lambda z: ~(z.done | z.failed), body, z0)

    # On failure: the safe step if there is one (or no step if the last
    # trial was not even finite), else the last trial.
    use_safe = z.failed & ((z.safe_stepsize > 0) | jnp.isinf(z.decrease_error))
    t = jnp.where(use_safe, z.safe_stepsize, z.stepsize)
    new_value = jnp.where(use_safe, z.safe_value, z.value)
    new_grad = _where(use_safe, z.safe_grad, z.grad)
    no_step = use_safe & (z.safe_stepsize == 0)
    dec = jnp.where(use_safe & ~no_step, zero, z.decrease_error)
    curv = jnp.where(use_safe & ~no_step, z.safe_curvature_error,
                     z.curvature_error)
    if verbose:
      jax.lax.cond(
          z.failed,
          lambda: jax.debug.print(
              f"{fn}: no step size met both Wolfe conditions in "
              "{n} trials (slope at 0: {s}); taking step size {t} "
              "(decrease error {d}, curvature error {k}).",
              n=z.count, s=slope0, t=t, d=dec, k=curv),
          lambda: None)
    new_updates = LW.leafwise(lambda u: (t.astype(u.dtype) * u,), 1, updates,
                             name=fn)[0]
    return new_updates, ScaleByZoomLinesearchState(
        learning_rate=t, value=new_value, grad=new_grad,
        info=ZoomLinesearchInfo(num_linesearch_steps=z.count,
                                decrease_error=dec, curvature_error=curv))

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# The default line search of gradtx.lbfgs, gradtx.bfgs and gradtx.newton


_DEFAULT_LINESEARCH = scale_by_zoom_linesearch(max_linesearch_steps=20,
                                               initial_guess_strategy="one")


# --------------------------------------------------------------------------
# Reusing the value and gradient a line search stored


def _find_field(state: Any, name: str) -> list:
  """The values of every NamedTuple field called ``name`` in ``state``."""
  found = []

  def walk(x):
    if isinstance(x, tuple) and hasattr(x, "_fields"):
      for field in x._fields:
        v = getattr(x, field)
        if field == name:
          found.append(v)
        else:
          walk(v)
    elif isinstance(x, (tuple, list)):
      for v in x:
        walk(v)
    elif hasattr(x, "keys") and hasattr(x, "values"):
      for v in x.values():
        walk(v)

  walk(state)
  return found


class _AmbiguousStateField(KeyError, ValueError):
  """Several ``value`` or ``grad`` fields: optax raises ``KeyError``."""

  def __str__(self):
    return str(self.args[0])


def value_and_grad_from_state(value_fn: Callable[..., Any],
                              ) -> Callable[..., tuple]:
  r"""Like ``jax.value_and_grad(value_fn)``, but reuses what a line search
  stored.

  Returns ``value_and_grad(params, *args, state, **kwargs) -> (value,
  grad)``. ``state`` is the optimizer state; it must hold exactly one
  ``value`` and one ``grad`` field (the state of
  :func:`scale_by_zoom_linesearch`, or of
  :func:`scale_by_backtracking_linesearch` with ``store_grad=True``). When
  the stored value is finite, those are :math:`f(w_k)` and
  :math:`\nabla f(w_k)` at the params the line search accepted, that is,
  ``params`` now, and they are returned without evaluating anything; before
  the first step (stored value ``inf``) it calls
  ``jax.value_and_grad(value_fn)(params, *args, **kwargs)``. The choice is a
  ``jax.lax.cond``, so it works under ``jit`` and in loops.

  The stored pair is only right if ``params`` are the params the line search
  produced and ``value_fn`` and its data have not changed since: use it for
  deterministic (full-batch) objectives, not for mini-batches.

  Args:
    value_fn: the objective ``value_fn(params, *args, **kwargs) -> scalar``, the
      same as the line search's ``value_fn``.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> f = lambda w: jnp.sum(w ** 2)
    >>> tx = gradtx.lbfgs()
    >>> w = jnp.array([1.0, 2.0])
    >>> state = tx.init(w)
    >>> value_and_grad = gradtx.value_and_grad_from_state(f)
    >>> value, grad = value_and_grad(w, state=state)   # evaluates f
    >>> updates, state = tx.update(grad, state, w, value=value, grad=grad,
    ...                            value_fn=f)
    >>> w = gradtx.apply_updates(w, updates)
    >>> value, grad = value_and_grad(w, state=state)   # reuses the search's
    >>> print(f"{float(value):.4f} {float(f(w)):.4f}")
    1.5279 1.5279
  """
  name = "value_and_grad_from_state"
  if not callable(value_fn):
    raise TypeError(f"{name}: value_fn must be a function params -> scalar, "
                    f"got {value_fn!r}.")

  def value_and_grad(params, *args, state, **kwargs):
    values, grads = _find_field(state, "value"), _find_field(state, "grad")
    if len(values) != 1 or len(grads) != 1:
      # Several candidates is a KeyError, as in optax; none a ValueError.
      error = _AmbiguousStateField if len(values) > 1 or len(grads) > 1 \
          else ValueError
      raise error(
          f"{name}: the state must hold exactly one 'value' and one 'grad' "
          f"field (a line search's state), found {len(values)} and "
          f"{len(grads)}. Use gradtx.scale_by_zoom_linesearch or "
          f"gradtx.scale_by_backtracking_linesearch(..., store_grad=True).")
    value, grad = values[0], grads[0]
    if grad is None:
      raise ValueError(
          f"{name}: the line search stores no gradient; build it with "
          f"scale_by_backtracking_linesearch(..., store_grad=True).")

    def evaluate(p):
      v, g = jax.value_and_grad(value_fn)(p, *args, **kwargs)
      return jnp.asarray(v).astype(value.dtype), _like_params(g, grad)

    return jax.lax.cond(jnp.isfinite(value), lambda p: (value, grad),
                        evaluate, params)

  return value_and_grad
