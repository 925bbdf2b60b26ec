"""Nonlinear least squares: Gauss-Newton and Levenberg-Marquardt.

Both minimise :math:`F(w) = \\tfrac12 \\|r(w)\\|^2` for a residual function
:math:`r` (params -> a tree of arrays, flattened to one vector of
:math:`m` residuals) given to ``update`` as the keyword argument
``residual_fn`` (with any data it takes by keyword). They linearise
:math:`r` with its Jacobian (``jax.jacfwd``, dense ``m x n``), decide the
step themselves (a damping or a backtracking on :math:`F`), and keep the
residuals and Jacobian of the point they accepted in their state, so that a
step costs one Jacobian and, when its first trial is accepted, one
evaluation of :math:`r`. The incoming updates are not used: the gradient
:math:`J^\\top r` comes from the Jacobian. :func:`gradtx.least_squares`
runs a whole solve.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import curvature as C
from gradtx._src import lbfgs as L
from gradtx._src import tree as T
from gradtx._src import validation as V

__all__ = ["LeastSquaresInfo", "ScaleByGaussNewtonState",
           "ScaleByLevenbergMarquardtState", "gauss_newton",
           "levenberg_marquardt"]


_NEEDS_RESIDUALS = (
    "{name}: update needs the residual function: update(updates, state, "
    "params, residual_fn=r, **data_for_r), r(params) returning the "
    "residuals (an array or a tree of arrays) whose squared norm / 2 is "
    "minimised; got residual_fn={residual_fn!r}. Use gradtx.least_squares "
    "for a whole solve.")


class LeastSquaresInfo(NamedTuple):
  """What the last ``update`` of a least-squares transform evaluated.

  Attributes:
    num_fun_evals: evaluations of the residual function (trials).
    num_jac_evals: evaluations of its Jacobian (each also gives the
      residuals at the same point).
    stalled: no trial decreased the objective (the step is 0): the solve
      has converged as far as the arithmetic allows, or cannot go on.
  """
  num_fun_evals: jax.Array
  num_jac_evals: jax.Array
  stalled: jax.Array


def _residuals(name, params, residual_fn, extra_args):
  if params is None:
    raise ValueError(base.NO_PARAMS_MSG.format(name=name))
  if not callable(residual_fn):
    raise TypeError(_NEEDS_RESIDUALS.format(name=name,
                                            residual_fn=residual_fn))
  kw = L._objective_kwargs(residual_fn, extra_args)
  return lambda p: residual_fn(p, **kw)


def _flat_residuals(residual_fn, unravel, dtype):
  def r(x):
    out = residual_fn(unravel(x))
    return C.ravel(out, dtype)[0]
  return r


def _jacobian(r, x):
  """(J, r(x)) by forward mode: one pass gives both."""
  def with_value(x):
    value = r(x)
    return value, value
  return jax.jacfwd(with_value, has_aux=True)(x)


class ScaleByLevenbergMarquardtState(NamedTuple):
  r"""The state of :func:`levenberg_marquardt`.

  Attributes:
    count: ``update`` calls so far (int32, saturating).
    cost: :math:`F(w) = \frac12\|r(w)\|^2` at the params given to the last
      ``update`` (``inf`` before the first).
    gradient: :math:`\nabla F(w) = J^\top r` there, a tree like the params.
    damping: :math:`\mu`, the damping the next ``update`` starts from.
    damping_factor: :math:`\nu`, how much :math:`\mu` grows at the next
      rejected trial.
    scale: the diagonal :math:`D` of the damping (ones, or the largest
      squared column norms of :math:`J` seen, with ``scaled=True``).
    info: a :class:`LeastSquaresInfo`.
  """
  count: jax.Array
  cost: jax.Array
  gradient: Any
  damping: jax.Array
  damping_factor: jax.Array
  scale: jax.Array
  info: LeastSquaresInfo


def _solve_damped(jac, residuals, damping_diag):
  """``argmin_h |J h + r|^2 + h^T diag(damping_diag) h`` by QR of the
  stacked system ``[J; sqrt(diag)] h = [-r; 0]`` (no normal equations, so
  the conditioning is that of J, not of J^T J)."""
  n = jac.shape[1]
  a = jnp.concatenate([jac, jnp.diag(jnp.sqrt(damping_diag))], axis=0)
  b = jnp.concatenate([-residuals, jnp.zeros([n], residuals.dtype)])
  q, rr = jnp.linalg.qr(a)
  return jax.scipy.linalg.solve_triangular(rr, C.matvec(q.T, b))


def levenberg_marquardt(damping_init: Any = 1e-3, scaled: bool = True,
                        max_trials: int = 30) -> base.GradientTransformation:
  r"""Levenberg-Marquardt for nonlinear least squares.

  Minimises :math:`F(w) = \tfrac12\|r(w)\|^2`: with :math:`J` the Jacobian
  of :math:`r` at :math:`w`, each trial step solves

  .. math::
     (J^\top J + \mu D)\, h = -J^\top r

  and is accepted if the gain ratio
  :math:`\rho = \big(F(w) - F(w+h)\big) / \big(L(0) - L(h)\big)`, actual
  over predicted decrease (:math:`L` the linear model), is positive. The
  damping then follows Nielsen's rule (Nielsen, 1999; Madsen, Nielsen &
  Tingleff, *Methods for non-linear least squares problems*, 2004,
  Algorithm 3.16): :math:`\mu \leftarrow \mu \max(\frac13, 1 - (2\rho -
  1)^3)`, :math:`\nu = 2` on acceptance; :math:`\mu \leftarrow \mu\nu`,
  :math:`\nu \leftarrow 2\nu` on rejection, and the next trial is made.
  Small :math:`\mu` gives the Gauss-Newton step, large :math:`\mu` a short
  gradient step: the method "switches between Newton's and gradient
  descent" (Levenberg, 1944; Marquardt, 1963). The first :math:`\mu` is
  ``damping_init`` times the largest diagonal entry of
  :math:`J^\top J D^{-1}`. With ``scaled=True`` :math:`D` is Marquardt's
  diagonal, the largest squared column norms of :math:`J` seen so far (as
  MINPACK's ``lmder``, Moré 1978), which makes the method invariant to the
  scale of each parameter; otherwise :math:`D = I`. Each trial is solved by
  a QR factorisation of :math:`[J; \sqrt{\mu D}]` (no normal equations).

  ``update(updates, state, params, residual_fn=r, **data_for_r)`` returns
  the step :math:`h` itself (add it with :func:`apply_updates`; the
  incoming updates are ignored). Each call evaluates the Jacobian at
  ``params`` once (forward mode, which gives the residuals too), then makes
  trials until one is accepted (at most ``max_trials``; if none is, the
  step is 0 and ``state.info.stalled`` says so): one residual evaluation
  per trial. :func:`gradtx.least_squares` runs a whole solve in one
  ``jax.lax.while_loop``.

  Args:
    damping_init: :math:`\tau > 0`, the first damping relative to the
      largest curvature.
    scaled: use Marquardt's diagonal :math:`D` (else :math:`D = I`).
    max_trials: the most trials per call.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> def r(w):   # Rosenbrock as least squares
    ...   return jnp.stack([10 * (w[1] - w[0] ** 2), 1 - w[0]])
    >>> result = gradtx.least_squares(r, jnp.array([-1.2, 1.0]),
    ...                               gradtx.levenberg_marquardt())
    >>> print(jnp.round(result.params, 6), bool(result.converged))
    [1. 1.] True
  """
  fn = "levenberg_marquardt"
  V.check_positive(fn, "damping_init", damping_init)
  V.check_int(fn, "max_trials", max_trials, 1)

  def init_fn(params):
    dtype = L._scalar_dtype(fn, params)
    n = C.size(params)
    return ScaleByLevenbergMarquardtState(
        count=base.zero_count(), cost=jnp.full([], jnp.inf, dtype),
        gradient=T.tree_zeros_like(params), damping=jnp.zeros([], dtype),
        damping_factor=jnp.full([], 2, dtype), scale=jnp.zeros([n], dtype),
        info=LeastSquaresInfo(num_fun_evals=base.zero_count(),
                              num_jac_evals=base.zero_count(),
                              stalled=jnp.asarray(False)))

  def update_fn(updates, state, params=None, *, residual_fn=None,
                **extra_args):
    del updates
    res = _residuals(fn, params, residual_fn, extra_args)
    L._real_leaves(fn, params)
    dtype = state.cost.dtype
    w, unravel = C.ravel(params, dtype)
    r = _flat_residuals(res, unravel, dtype)
    jac, r0 = _jacobian(r, w)
    value0 = L._dot(r0, r0, dtype) / 2
    g = C.matvec(jac.T, r0)
    col = jnp.sum(jac * jac, axis=0)
    if scaled:
      scale = jnp.maximum(state.scale, col)
      scale_used = jnp.where(scale > 0, scale, 1)
    else:
      scale = scale_used = jnp.ones_like(col)
    first = state.count == 0
    mu0 = jnp.where(first, jnp.asarray(damping_init).astype(dtype)
                    * jnp.max(col / scale_used), state.damping)
    mu0 = jnp.where(mu0 > 0, mu0, jnp.finfo(dtype).eps)

    def trial(z):
      k, mu, nu, _, _ = z
      h = _solve_damped(jac, r0, mu * scale_used)
      r_new = r(w + h)
      value_new = L._dot(r_new, r_new, dtype) / 2
      jh = C.matvec(jac, h)
      # L(0) - L(h) = -g.h - |Jh|^2 / 2 >= 0, computed without cancelling.
      predicted = -L._dot(g, h, dtype) - L._dot(jh, jh, dtype) / 2
      rho = (value0 - value_new) / predicted
      ok = (rho > 0) & jnp.isfinite(value_new) & (predicted > 0)
      mu_ok = mu * jnp.maximum(1 / 3, 1 - (2 * rho - 1) ** 3)
      return (k + 1, jnp.where(ok, mu_ok, mu * nu).astype(dtype),
              jnp.where(ok, 2, 2 * nu).astype(dtype), ok, h)

    def cond(z):
      k, mu, _, ok, _ = z
      return ~ok & (k < max_trials) & jnp.isfinite(mu)

    z0 = (jnp.zeros([], jnp.int32), mu0.astype(dtype),
          jnp.full([], 2, dtype), jnp.asarray(False), jnp.zeros_like(w))
    k, mu, nu, ok, h = jax.lax.while_loop(cond, trial, z0)
    h = jnp.where(ok, h, 0)
    return unravel(h), ScaleByLevenbergMarquardtState(
        count=base.safe_increment(state.count), cost=value0,
        gradient=unravel(g), damping=jnp.where(ok, mu, mu0).astype(dtype),
        damping_factor=nu, scale=scale.astype(dtype),
        info=LeastSquaresInfo(num_fun_evals=k, num_jac_evals=jnp.ones(
            [], jnp.int32), stalled=~ok))

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
