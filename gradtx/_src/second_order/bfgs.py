"""BFGS: the dense inverse-Hessian quasi-Newton method.

:func:`scale_by_bfgs` keeps the inverse-Hessian approximation of the params
flattened to one vector (an ``n x n`` matrix: for problems up to a few
thousand parameters; :func:`gradtx.lbfgs` for larger ones). :func:`bfgs`
chains it with the line searches of :mod:`gradtx._src.linesearch`, with the
same arguments as :func:`gradtx.lbfgs`, and stores curvature pairs by the
same rule (:func:`gradtx._src.second_order.curvature.accept_curvature_pair`).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import combining
from gradtx._src import leafwise as LW
from gradtx._src import linesearch as L
from gradtx._src import numerics as num
from gradtx._src import scaling
from gradtx._src import tree_utils as T
from gradtx._src import validation as V
from gradtx._src.second_order import curvature as C

__all__ = ["ScaleByBFGSState", "bfgs", "scale_by_bfgs"]


class ScaleByBFGSState(NamedTuple):
  r"""The state of :func:`scale_by_bfgs`.

  Attributes:
    count: ``update`` calls so far (int32, saturating).
    params: the params at the previous call (zeros before the first).
    updates: the updates (gradients) received at the previous call.
    inv_hessian: :math:`H_k`, the inverse-Hessian approximation of the
      flattened params (``n x n``, in the scalar dtype: at least float32).
    identity_scale: :math:`\gamma` of the first stored pair, 0 while no
      pair has been stored (then the direction is :math:`\gamma_0 g`).
  """
  count: jax.Array
  params: Any
  updates: Any
  inv_hessian: jax.Array
  identity_scale: jax.Array


def scale_by_bfgs(scale_init_precond: bool = True,
                  ) -> base.GradientTransformation:
  r"""Scales the updates by the BFGS approximation of the inverse Hessian.

  With :math:`s = w_{k+1} - w_k`, :math:`y = g_{k+1} - g_k` and
  :math:`\rho = 1 / s^\top y`, the inverse Hessian is updated by

  .. math::
     H_{k+1} = (I - \rho s y^\top) H_k (I - \rho y s^\top)
               + \rho s s^\top

  (Broyden, Fletcher, Goldfarb and Shanno, 1970; Nocedal & Wright,
  *Numerical Optimization*, 2nd ed. 2006, eq. 6.17) and the output is
  :math:`H_{k+1} g_{k+1}`, the direction to step *against*: chain a
  negative scaling and a line search after it, as :func:`bfgs` does.

  Before the first pair is stored the output is :math:`\gamma_0 g` with
  :math:`\gamma_0 = \min(1, 1/\|g\|)` (a first step of length at most 1, as
  :func:`scale_by_lbfgs`). With ``scale_init_precond`` the first stored pair
  starts from :math:`H_0 = \frac{s^\top y}{y^\top y} I` (Nocedal & Wright,
  eq. 6.20) instead of :math:`I`, which sets the scale of the first
  quasi-Newton step. Pairs are stored under the same rule as
  :func:`scale_by_lbfgs` (cosine of :math:`s, y` above
  :math:`\sqrt{\varepsilon}`), so :math:`H_k` stays positive definite.

  Memory: the ``n x n`` matrix (``n`` the number of params, all leaves
  together) and two copies of the params; ``update`` needs ``params``.

  Args:
    scale_init_precond: start from :math:`\frac{s^\top y}{y^\top y} I`
      rather than :math:`I` and scale the first direction by
      :math:`\min(1, 1/\|g\|)`.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.scale_by_bfgs()
    >>> w = jnp.array([3.0, 4.0])
    >>> state = tx.init(w)
    >>> d, state = tx.update(2 * w, state, w)   # grad of sum(w**2)
    >>> print(d)     # the first direction has length 1
    [0.6 0.8]
  """
  fn = "scale_by_bfgs"

  def init_fn(params):
    C.real_leaves(fn, params)
    dtype = L._scalar_dtype(fn, params)
    n = C.size(params)
    return ScaleByBFGSState(
        count=num.zero_count(), params=T.tree_zeros_like(params),
        updates=T.tree_zeros_like(params),
        inv_hessian=jnp.eye(n, dtype=dtype),
        identity_scale=jnp.zeros([], dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG.format(name=fn))
    C.real_leaves(fn, updates, "update")
    LW.check_updates_match_params(fn, updates, params)
    dtype = state.inv_hessian.dtype
    g, unravel = C.ravel(updates, dtype)
    w, _ = C.ravel(params, dtype)
    s = w - C.ravel(state.params, dtype)[0]
    y = g - C.ravel(state.updates, dtype)[0]
    sy, ss, yy = L._dot(s, y, dtype), L._dot(s, s, dtype), L._dot(y, y, dtype)
    accept = (state.count > 0) & C.accept_curvature_pair(sy, ss, yy)
    first = accept & (state.identity_scale == 0)
    gamma = jnp.where(first, sy / yy, state.identity_scale)
    h = state.inv_hessian
    if scale_init_precond:
      h = jnp.where(first, gamma * jnp.eye(h.shape[0], dtype=dtype), h)
    # H+ = H - v (Hy)^T - (Hy) v^T + (y^T H y) v v^T + v s^T with
    # v = rho s: eq. 6.17 multiplied out (H is symmetric), in products that
    # stay finite when s and y are tiny (rho alone may be 1e300).
    rho = jnp.where(accept, 1 / sy, 0)
    v = rho * s
    hy = C.matvec(h, y)
    yhy = L._dot(y, hy, dtype)
    new_h = (h - jnp.outer(v, hy) - jnp.outer(hy, v)
             + yhy * jnp.outer(v, v) + jnp.outer(v, s))
    accept = accept & jnp.all(jnp.isfinite(new_h))
    h = jnp.where(accept, new_h, h)
    stored = accept | (state.identity_scale > 0)
    if scale_init_precond:
      gnorm = jnp.sqrt(L._dot(g, g, dtype))
      gamma0 = jnp.minimum(1, 1 / gnorm)
    else:
      gamma0 = jnp.ones([], dtype)
    direction = jnp.where(stored, C.matvec(h, g), gamma0 * g)
    return unravel(direction), ScaleByBFGSState(
        count=num.safe_increment(state.count), params=T.tree_strong(params),
        updates=T.tree_strong(updates), inv_hessian=C.replicated(h),
        identity_scale=jnp.where(accept, jnp.maximum(gamma, 1e-30),
                                 state.identity_scale).astype(dtype))

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


def bfgs(learning_rate: Optional[base.ScalarOrSchedule] = None,
         scale_init_precond: bool = True,
         linesearch: Optional[base.GradientTransformation] = (
             L._DEFAULT_LINESEARCH),
         ) -> base.GradientTransformation:
  r"""BFGS with a line search: ``w <- w - eta * H_k g_k``.

  .. math::
     w_{k+1} = w_k - \eta_k H_k \nabla f(w_k)

  with :math:`H_k` the dense BFGS inverse-Hessian approximation of
  :func:`scale_by_bfgs` (Broyden; Fletcher; Goldfarb; Shanno, 1970;
  Nocedal & Wright, *Numerical Optimization*, 2nd ed. 2006, Algorithm 6.1)
  and :math:`\eta_k` chosen by ``linesearch``, by default
  :func:`scale_by_zoom_linesearch` (strong Wolfe, 20 evaluations at most,
  first trial 1). It is ``chain(scale_by_bfgs(scale_init_precond), scale(-1)
  or scale_by_learning_rate(learning_rate), linesearch)``: the arguments and
  the objective keyword arguments (``value``, ``grad``, ``value_fn``) are
  :func:`lbfgs`'s. Use :func:`value_and_grad_from_state` to reuse the line
  search's evaluations, or :func:`gradtx.minimize` for a whole solve.

  Prefer it to :func:`lbfgs` when the params are few (up to a few
  thousand): the full matrix remembers all the curvature seen, which often
  saves evaluations on small, badly conditioned problems.

  Args:
    learning_rate: ``None`` (the default): the direction is negated
      (``scale(-1)``) and the line search alone sets the step length; otherwise
      the direction is multiplied by ``-learning_rate``, a number or a schedule
      of the step count, before the line search.
    scale_init_precond: start from :math:`\frac{s^\top y}{y^\top y} I` rather
      than :math:`I` and scale the first direction by :math:`\min(1, 1/\|g\|)`
      (see :func:`scale_by_bfgs`).
    linesearch: the transform that chooses the step along the direction, by
      default ``scale_by_zoom_linesearch(max_linesearch_steps=20,
      initial_guess_strategy="one")``; ``None``: no line search, fixed
      steps of ``learning_rate`` (of 1 without one).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> def f(w):   # Rosenbrock
    ...   return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2
    >>> result = gradtx.minimize(f, jnp.array([-1.2, 1.0]), gradtx.bfgs(),
    ...                          gtol=1e-8)
    >>> print(jnp.round(result.params, 6), bool(result.converged))
    [1. 1.] True
  """
  fn = "bfgs"
  if learning_rate is None:
    base_scaling = scaling.scale(-1.0)
  else:
    V.check_learning_rate(fn, learning_rate)
    base_scaling = scaling.scale_by_learning_rate(learning_rate)
  if linesearch is None:
    linesearch = base.identity()
  else:
    V.check_transform(fn, "linesearch", linesearch)
  return combining.chain(scale_by_bfgs(scale_init_precond=scale_init_precond),
                       base_scaling, linesearch)
