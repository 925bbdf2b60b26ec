"""L-BFGS: :func:`scale_by_lbfgs` and :func:`lbfgs`.

* :func:`scale_by_lbfgs` turns the gradient into the L-BFGS direction
  :math:`H_k g_k` by the two-loop recursion over the last ``memory_size``
  curvature pairs, kept in fixed-size buffers (jit-safe: the state never
  changes shape).
* :func:`lbfgs` chains it with a line search of
  ``gradtx/_src/linesearch.py`` (optax's signature and defaults); with
  :func:`gradtx.value_and_grad_from_state` a step whose first trial is
  accepted costs one evaluation of the objective and its gradient.

A full deterministic solve fits in one ``jax.lax.while_loop`` under
``jax.jit``; see ``examples/lbfgs_fit.py`` and ``docs/lbfgs.md`` (function
evaluations against ``scipy.optimize.minimize(method='L-BFGS-B')``).

Names, arguments, defaults and states are optax 0.2.8's, and so are the
iterates (``tests/test_lbfgs.py`` checks them step by step). Where gradtx
differs, each docstring says so: scalars (dot products, step sizes) are
accumulated in at least float32, and ``scale_by_lbfgs`` can optionally give
no weight to curvature pairs that would break positive definiteness.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import combining
from gradtx._src import leafwise as LW
from gradtx._src import numerics as num
from gradtx._src import scaling
from gradtx._src import tree_utils as T
from gradtx._src import validation as V
from gradtx._src.linesearch import _DEFAULT_LINESEARCH, _axpy, _dot
from gradtx._src.linesearch import _inexact_leaves, _scalar_dtype
from gradtx._src.linesearch import _scale_tree

__all__ = ["ScaleByLBFGSState", "lbfgs", "scale_by_lbfgs"]


# --------------------------------------------------------------------------
# L-BFGS direction


class ScaleByLBFGSState(NamedTuple):
  r"""The state of :func:`scale_by_lbfgs` (optax's, field for field).

  Attributes:
    count: ``update`` calls so far (int32, saturating). The pair of call
      ``k`` is written to slot ``(k - 1) % memory_size``.
    params: the params at the previous call (zeros before the first).
    updates: the updates (gradients) received at the previous call.
    diff_params_memory: the stored :math:`s_i = w_{i+1} - w_i`, each leaf
      stacked to shape ``(memory_size, *leaf.shape)``.
    diff_updates_memory: the stored :math:`y_i = g_{i+1} - g_i`, stacked
      the same way.
    weights_memory: :math:`\rho_i = 1 / s_i^\top y_i` per slot, 0 for an
      empty (or skipped) slot, which then has no effect on the recursion.
  """
  count: jax.Array
  params: Any
  updates: Any
  diff_params_memory: Any
  diff_updates_memory: Any
  weights_memory: jax.Array


def _two_loop(g, s_mem, y_mem, rho, gamma, order, dtype):
  """Nocedal & Wright Algorithm 7.4: returns :math:`H_k g` (a tree like g).

  ``order`` lists the slots from the oldest pair to the newest.
  """
  def slot(i):
    return (jax.tree.map(lambda b: b[i], s_mem),
            jax.tree.map(lambda b: b[i], y_mem))

  def newest_to_oldest(q, i):
    s_i, y_i = slot(i)
    alpha = rho[i] * _dot(s_i, q, dtype)
    return _axpy(-alpha, y_i, q), alpha

  q, alphas = jax.lax.scan(newest_to_oldest, g, order, reverse=True)
  r = _scale_tree(gamma, q)

  def oldest_to_newest(r, i_alpha):
    i, alpha = i_alpha
    s_i, y_i = slot(i)
    beta = rho[i] * _dot(y_i, r, dtype)
    return _axpy(alpha - beta, s_i, r), None

  r, _ = jax.lax.scan(oldest_to_newest, r, (order, alphas))
  return r


def scale_by_lbfgs(memory_size: int = 10, scale_init_precond: bool = True,
                   *, skip_nonpositive_curvature: bool = False,
                   ) -> base.GradientTransformation:
  r"""Scales the updates by the L-BFGS approximation of the inverse Hessian.

  With :math:`s_i = w_{i+1} - w_i`, :math:`y_i = g_{i+1} - g_i` and
  :math:`\rho_i = 1/s_i^\top y_i` for the last :math:`m` (``memory_size``)
  pairs, the output is :math:`H_k g_k` where

  .. math::
     H_k = V_{k-1}^\top H_{k-1} V_{k-1} + \rho_{k-1} s_{k-1} s_{k-1}^\top,
     \quad V_i = I - \rho_i y_i s_i^\top,\quad
     H_{k-m} = \gamma_k I,\quad
     \gamma_k = \frac{s_{k-1}^\top y_{k-1}}{y_{k-1}^\top y_{k-1}},

  computed without forming :math:`H_k` by the two-loop recursion (Nocedal &
  Wright, *Numerical Optimization*, 2nd ed. 2006, Algorithm 7.4; Liu &
  Nocedal, Math. Programming 1989). The output is the direction to step
  *against*: chain a negative scaling and a line search after it, as
  :func:`lbfgs` does. The pair of the previous step is formed from the
  params and updates given now and those given at the previous call, so
  ``update`` needs ``params``.

  **Which pairs are stored.** As in optax, every pair is stored, with
  :math:`\rho = 0` when :math:`s^\top y = 0` exactly (and :math:`\gamma =
  1` when :math:`y = 0`), so the iterates are optax's. :math:`H_k` is only
  positive definite while every stored pair has :math:`s_i^\top y_i > 0`,
  which the strong Wolfe line search of :func:`lbfgs` guarantees; with fixed
  steps (``linesearch=None``) or Armijo backtracking on a nonconvex problem
  a pair with :math:`s^\top y \le 0` can make the direction an ascent
  direction. ``skip_nonpositive_curvature=True`` (gradtx only) stores such
  a pair with :math:`\rho = 0`, so it has no effect, whenever

  .. math::
     s^\top y \le \sqrt{\varepsilon}\, \|s\|\, \|y\|

  (:math:`\varepsilon` the machine epsilon of the scalar dtype) or
  :math:`\rho` or :math:`\gamma` would not be finite, and takes
  :math:`\gamma` from the newest pair kept. It keeps :math:`H_k` positive
  definite whatever the line search.

  Before the first pair, :math:`\gamma = \min(1, 1/\|g\|)` (optax's
  choice: the first step has length at most 1). ``scale_init_precond=False``
  uses :math:`\gamma = 1` throughout.

  Complex params are handled as optax does, through the real inner product
  :math:`\mathrm{Re}(a^H b)`. Memory: ``2 * memory_size + 2`` copies of the
  params. Dot products are accumulated in float32 for low-precision params,
  the params' (real) dtype otherwise; the updates keep each leaf's dtype.

  Args:
    memory_size: :math:`m`, the number of curvature pairs kept.
    scale_init_precond: scale the initial inverse Hessian by
      :math:`\gamma_k` as above; otherwise use the identity.
    skip_nonpositive_curvature: give pairs that would break positive
      definiteness no weight (see above). Off by default, as in optax.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.scale_by_lbfgs(memory_size=5)
    >>> w = jnp.array([3.0, 4.0])
    >>> state = tx.init(w)
    >>> d, state = tx.update(2 * w, state, w)   # grad of sum(w**2)
    >>> print(d)     # the first direction has length 1
    [0.6 0.8]
  """
  fn = "scale_by_lbfgs"
  V.check_int(fn, "memory_size", memory_size, 1)
  m = memory_size

  def init_fn(params):
    dtype = _scalar_dtype(fn, params)
    # Each history buffer is sharded as its param along the trailing axes
    # (and not along the memory axis): broadcast from a zero that follows
    # the param's sharding, eagerly and under jit.
    def history(z):
      return jnp.broadcast_to(z[None], (m,) + jnp.shape(z))

    # Two histories of their own: a jitted step that donates the state
    # cannot be given one buffer twice.
    return ScaleByLBFGSState(
        count=num.zero_count(),
        params=T.tree_zeros_like(params),
        updates=T.tree_zeros_like(params),
        diff_params_memory=jax.tree.map(history, T.tree_zeros_like(params)),
        diff_updates_memory=jax.tree.map(history, T.tree_zeros_like(params)),
        weights_memory=jnp.zeros([m], dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG.format(name=fn))
    dtype = state.weights_memory.dtype
    _inexact_leaves(fn, updates)
    first = state.count == 0
    s, y = LW.leafwise(
        lambda g, p, p0, g0: (jnp.where(first, 0, p - p0),
                              jnp.where(first, 0, g - g0)), 2, updates,
        params, state.params, state.updates, name=fn)
    sy = _dot(s, y, dtype)
    yy = _dot(y, y, dtype)
    safe_sy = jnp.where(sy == 0, 1, sy)
    new_rho = jnp.where(sy == 0, 0, 1 / safe_sy)
    new_gamma = jnp.where(yy > 0, sy / jnp.where(yy > 0, yy, 1), 1)
    if skip_nonpositive_curvature:
      ss = _dot(s, s, dtype)
      tol = math.sqrt(float(jnp.finfo(dtype).eps))
      # A NaN anywhere fails the comparison. The finiteness checks catch
      # underflow: y.y (or s.y) flushed to 0 while s.y is not would give an
      # infinite gamma (or rho) and a NaN direction.
      keep = ((sy > tol * jnp.sqrt(ss) * jnp.sqrt(yy)) & (yy > 0)
              & jnp.isfinite(1 / safe_sy) & jnp.isfinite(new_gamma))
      new_rho = jnp.where(keep, new_rho, 0)

    # The pair of this call goes to slot (count - 1) % m, as in optax.
    idx = (state.count + m - 1) % m
    s_mem = jax.tree.map(lambda b, v: b.at[idx].set(v),
                         state.diff_params_memory, s)
    y_mem = jax.tree.map(lambda b, v: b.at[idx].set(v),
                         state.diff_updates_memory, y)
    rho = state.weights_memory.at[idx].set(new_rho.astype(dtype))
    order = (state.count + jnp.arange(m, dtype=state.count.dtype)) % m

    if not scale_init_precond:
      gamma = jnp.ones([], dtype)
    else:
      if skip_nonpositive_curvature:
        # gamma = s.y / y.y = 1 / (rho y.y) of the newest pair with rho > 0.
        newest = order[::-1][jnp.argmax(rho[order[::-1]] > 0)]
        y_new = jax.tree.map(lambda b: b[newest], y_mem)
        gamma_pair = 1 / (rho[newest] * _dot(y_new, y_new, dtype))
        have_pair = rho[newest] > 0
      else:
        gamma_pair, have_pair = new_gamma, ~first
      gnorm = jnp.sqrt(_dot(updates, updates, dtype))
      gamma = jnp.where(have_pair, gamma_pair,
                        jnp.minimum(1, 1 / gnorm)).astype(dtype)

    direction = _two_loop(updates, s_mem, y_mem, rho, gamma, order, dtype)
    return direction, ScaleByLBFGSState(
        count=num.safe_increment(state.count), params=T.tree_strong(params),
        updates=T.tree_strong(updates), diff_params_memory=s_mem,
        diff_updates_memory=y_mem, weights_memory=rho)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# The optimizer


def lbfgs(learning_rate: Optional[base.ScalarOrSchedule] = None,
          memory_size: int = 10, scale_init_precond: bool = True,
          linesearch: Optional[base.GradientTransformation] = (
              _DEFAULT_LINESEARCH),
          ) -> base.GradientTransformation:
  r"""L-BFGS with a line search: ``w <- w - eta * H_k g_k``.

  .. math::
     w_{k+1} = w_k - \eta_k H_k \nabla f(w_k)

  with :math:`H_k` the limited-memory BFGS inverse-Hessian approximation of
  :func:`scale_by_lbfgs` (Liu & Nocedal, Math. Programming 1989; Nocedal &
  Wright, *Numerical Optimization*, 2nd ed. 2006, Algorithms 7.4 and 7.5)
  and :math:`\eta_k` chosen by ``linesearch``, by default
  :func:`scale_by_zoom_linesearch` with 20 evaluations at most, starting
  from 1 (the strong Wolfe conditions). It is
  ``chain(scale_by_lbfgs(memory_size, scale_init_precond), scale(-1) or
  scale_by_learning_rate(learning_rate), linesearch)``, as in optax;
  ``linesearch=None`` takes fixed steps of ``learning_rate``.

  The line search needs the objective: pass ``value``, ``grad`` and
  ``value_fn`` (and any data ``value_fn`` takes by keyword) to ``update``.
  :func:`value_and_grad_from_state` reuses the value and gradient the line
  search computed at the accepted point, so each step costs one evaluation
  of ``f`` and its gradient when the first trial is accepted (most steps).
  For a deterministic (full-batch) objective only.

  Args:
    learning_rate: ``None`` (the default): the direction is negated
      (``scale(-1)``) and the line search alone sets the step length; otherwise
      the direction is multiplied by ``-learning_rate``, a number or a schedule
      of the step count, before the line search.
    memory_size: :math:`m`, the number of curvature pairs kept; a positive int.
    scale_init_precond: scale the initial inverse Hessian by
      :math:`\gamma_k = s^\top y / y^\top y` (see :func:`scale_by_lbfgs`);
      otherwise use the identity.
    linesearch: the transform that chooses the step along the direction, by
      default ``scale_by_zoom_linesearch(max_linesearch_steps=20,
      initial_guess_strategy="one")``; ``None``: no line search, fixed
      steps of ``learning_rate`` (of 1 without one).

  Example:
    >>> import gradtx, jax, jax.numpy as jnp
    >>> def f(w):   # Rosenbrock
    ...   return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2
    >>> tx = gradtx.lbfgs()
    >>> w = jnp.array([-1.2, 1.0])
    >>> state = tx.init(w)
    >>> value_and_grad = gradtx.value_and_grad_from_state(f)
    >>> @jax.jit
    ... def step(w, state):
    ...   value, grad = value_and_grad(w, state=state)
    ...   updates, state = tx.update(grad, state, w, value=value, grad=grad,
    ...                              value_fn=f)
    ...   return gradtx.apply_updates(w, updates), state
    >>> for _ in range(40):
    ...   w, state = step(w, state)
    >>> print(jnp.round(w, 4), state[-1].info.num_linesearch_steps)
    [1. 1.] 1
  """
  fn = "lbfgs"
  V.check_int(fn, "memory_size", memory_size, 1)
  if learning_rate is None:
    base_scaling = scaling.scale(-1.0)
  else:
    V.check_learning_rate(fn, learning_rate)
    base_scaling = scaling.scale_by_learning_rate(learning_rate)
  if linesearch is None:
    linesearch = base.identity()
  elif not (hasattr(linesearch, "init") and hasattr(linesearch, "update")):
    raise TypeError(
        f"{fn}: linesearch must be a transform such as "
        f"gradtx.scale_by_zoom_linesearch(max_linesearch_steps=20), or "
        f"None, got linesearch={linesearch!r}.")
  return combining.chain(
      scale_by_lbfgs(memory_size=memory_size,
                     scale_init_precond=scale_init_precond),
      base_scaling, linesearch)
