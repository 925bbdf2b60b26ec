"""Nonlinear least squares: Gauss-Newton with a backtracking line search.

It reads the residual function as :func:`gradtx.levenberg_marquardt` does
(``residual_fn`` and its data) and shares its machinery: the flat view of
the params, the Jacobian by forward mode, the state's ``cost``,
``gradient`` and :class:`LeastSquaresInfo` that :func:`gradtx.least_squares`
reads, and MINPACK's convergence tests.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import linesearch as L
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V
from gradtx._src.second_order import curvature as C
from gradtx._src.second_order import least_squares as LS

__all__ = ["ScaleByGaussNewtonState", "gauss_newton"]

_SOLVERS = ("dense", "cg")

# Armijo's sufficient-decrease constant (Nocedal & Wright, sec. 3.1).
_ARMIJO = 1e-4


class ScaleByGaussNewtonState(NamedTuple):
  r"""The state of :func:`gauss_newton`.

  Attributes:
    count: ``update`` calls so far (int32, saturating).
    cost: :math:`F(w) = \frac12\|r(w)\|^2` at the params given to the last
      ``update`` (``inf`` before the first).
    gradient: :math:`\nabla F(w) = J^\top r` there, a tree like the params.
    step_cost: :math:`F(w + \alpha d)` for the step returned (``cost`` when
      the step is 0).
    step_size: :math:`\alpha`, the fraction of the Gauss-Newton step taken
      (0 when no trial was accepted).
    num_cg_steps: conjugate-gradient iterations of the last ``update``
      (``solver="cg"``; 0 for ``"dense"``), each one Jacobian-vector and
      one vector-Jacobian product.
    info: a :class:`LeastSquaresInfo`.
  """
  count: jax.Array
  cost: jax.Array
  gradient: Any
  step_cost: jax.Array
  step_size: jax.Array
  num_cg_steps: jax.Array
  info: LS.LeastSquaresInfo


def _normal_equations_cg(jvp, vjp, g, max_steps, tol, dtype):
  r"""Conjugate gradients on :math:`J^\top J d = -g` from :math:`d = 0`,
  multiplying by :math:`J^\top J` through one Jacobian-vector and one
  vector-Jacobian product (CGLS: no matrix is formed). Stops when the
  residual is below ``tol`` :math:`\|g\|`, on a direction of zero
  curvature (a null direction of :math:`J`), or after ``max_steps``.
  Every iterate is a descent direction: :math:`g^\top d_k < 0`."""
  dot = lambda a, b: L._dot(a, b, dtype)
  g_norm2 = dot(g, g)
  stop2 = (tol * tol) * g_norm2

  def cond(z):
    k, _, _, _, rr, halt = z
    return (k < max_steps) & (rr > stop2) & ~halt

  def body(z):
    k, d, res, p, rr, _ = z
    jp = jvp(p)
    pap = dot(jp, jp)
    halt = ~(pap > 0)
    alpha = jnp.where(halt, 0, rr / jnp.where(halt, 1, pap))
    d = d + alpha * p
    res = res - alpha * vjp(jp)
    rr_new = dot(res, res)
    beta = rr_new / jnp.where(rr > 0, rr, 1)
    return k + 1, d, res, res + beta * p, rr_new, halt

  z0 = (jnp.zeros([], jnp.int32), jnp.zeros_like(g), -g, -g, g_norm2,
        jnp.asarray(False))
  k, d, _, _, _, _ = jax.lax.while_loop(cond, body, z0)
  return d, k


def gauss_newton(solver: str = "dense", max_cg_steps: int = 50,
                 cg_tol: Any = 1e-6, max_trials: int = 30,
                 ftol: Any = 1e-8, xtol: Any = 1e-8, gtol: Any = 1e-8,
                 ) -> base.GradientTransformation:
  r"""Gauss-Newton for nonlinear least squares, guarded by a line search.

  Minimises :math:`F(w) = \tfrac12\|r(w)\|^2`. With :math:`J` the Jacobian
  of :math:`r` at :math:`w`, the Gauss-Newton direction minimises the
  linear model :math:`\tfrac12\|r + J d\|^2`, i.e. solves the normal
  equations

  .. math::
     J^\top J\, d = -J^\top r, \qquad w \leftarrow w + \alpha d,

  the Newton step with the Hessian :math:`J^\top J + \sum_i r_i \nabla^2
  r_i` replaced by its first term (Gauss, 1809; Nocedal & Wright,
  *Numerical Optimization*, 2006, sec. 10.3). Near a solution with small
  residuals it converges almost as fast as Newton's method (quadratically
  at a zero residual) from first derivatives only.

  **What guards it.** The undamped step (:math:`\alpha = 1` always) can
  diverge: far from a solution, or where :math:`\sum_i r_i \nabla^2 r_i`
  is large, the linear model misleads and :math:`F` may grow. Here
  :math:`d` is always a descent direction (:math:`\nabla F^\top d = -\|J
  d\|^2 < 0` while :math:`\nabla F \ne 0`), and :math:`\alpha` comes from
  a backtracking line search on :math:`F` (damped Gauss-Newton, Hartley
  1961): :math:`\alpha = 1` first, then the minimiser of the quadratic
  through :math:`F(w)`, its slope and :math:`F(w + \alpha d)`, kept in
  :math:`[0.1\alpha, 0.5\alpha]`, until Armijo's condition :math:`F(w +
  \alpha d) \le F(w) + 10^{-4} \alpha \nabla F^\top d` holds. Each step
  therefore decreases :math:`F`; with :math:`J` of full rank along the way
  the iterates reach a stationary point (Nocedal & Wright, Thm. 10.1). It
  cannot take a shorter step in a *different* direction, which is what
  :func:`levenberg_marquardt`'s trust region does: prefer that where
  :math:`J` is (nearly) rank-deficient or the residuals stay large.

  The direction is solved in one of two ways:

  * ``solver="dense"``: the Jacobian by forward mode (``jax.jacfwd``, an
    ``m x n`` matrix) and its SVD, :math:`d` the minimum-norm solution
    (singular values below :math:`\varepsilon s_{max}` dropped): for up to
    a few thousand params, as :func:`levenberg_marquardt`.
  * ``solver="cg"``: conjugate gradients on the normal equations from
    :math:`d = 0`, each iteration one Jacobian-vector product
    (``jax.linearize``) and one vector-Jacobian product (its transpose),
    until the residual is below ``cg_tol`` :math:`\|J^\top r\|` or after
    ``max_cg_steps``: no matrix, for any number of params. Every CG
    iterate is a descent direction, so the line search guards it too.

  ``update(updates, state, params, residual_fn=r, **data_for_r)`` returns
  the step :math:`\alpha d` (add it with :func:`apply_updates`; the
  incoming updates are ignored) and keeps :math:`F` and :math:`J^\top r`
  at ``params`` in its state for :func:`gradtx.least_squares`. A call
  evaluates the Jacobian (or its linearisation) once, which also gives
  :math:`r`, and :math:`r` once per trial (at most ``max_trials``; if none
  is accepted the step is 0 and ``state.info.stalled`` says so).

  Its convergence tests use scipy's names and defaults: ``gtol`` before
  any trial, on MINPACK's cosine between :math:`r` and the columns of
  :math:`J` (dense), or on :math:`\max_i |(J^\top r)_i|` (``"cg"``, where
  the columns are not formed; scipy's ``trf`` test); after the accepted
  trial, ``ftol`` when the actual and predicted relative reductions of
  :math:`\|r\|^2` are at most ``ftol``, and ``xtol`` when the accepted
  direction itself is short, :math:`\|d\| \le` ``xtol`` :math:`(\|w\| +`
  ``xtol``:math:`)` (not the step :math:`\alpha d`: a line search cut
  short where :math:`J` is nearly singular is no convergence).

  Args:
    solver: ``"dense"`` or ``"cg"``, as above.
    max_cg_steps: the most conjugate-gradient iterations (``"cg"``).
    cg_tol: the relative residual that stops conjugate gradients.
    max_trials: the most line-search trials per call.
    ftol: relative reduction of the cost that counts as converged.
    xtol: relative step length that counts as converged.
    gtol: gradient measure (above) that counts as converged.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> t = jnp.linspace(0.0, 1.0, 5)
    >>> r = lambda w: w[0] * jnp.exp(w[1] * t) - 2.0 * jnp.exp(-t)
    >>> result = gradtx.least_squares(r, jnp.array([1.0, 0.0]),
    ...                               gradtx.gauss_newton())
    >>> print(jnp.round(result.params, 5), bool(result.converged))
    [ 2. -1.] True
  """
  fn = "gauss_newton"
  if solver not in _SOLVERS:
    raise ValueError(
        f"{fn}: solver must be one of {_SOLVERS}, got solver={solver!r}: "
        f"'dense' forms the Jacobian (up to a few thousand params), 'cg' "
        f"solves the normal equations with Jacobian-vector products.")
  V.check_int(fn, "max_cg_steps", max_cg_steps, 1)
  V.check_interval(fn, "cg_tol", cg_tol, 0.0, 1.0, lo_closed=True,
                   hi_closed=False)
  V.check_int(fn, "max_trials", max_trials, 1)
  V.check_nonnegative(fn, "ftol", ftol)
  V.check_nonnegative(fn, "xtol", xtol)
  V.check_nonnegative(fn, "gtol", gtol)

  def init_fn(params):
    C.real_leaves(fn, params)
    dtype = L._scalar_dtype(fn, params)
    return ScaleByGaussNewtonState(
        count=num.zero_count(), cost=jnp.full([], jnp.inf, dtype),
        gradient=T.tree_zeros_like(params),
        step_cost=jnp.full([], jnp.inf, dtype),
        step_size=jnp.zeros([], dtype), num_cg_steps=num.zero_count(),
        info=LS.LeastSquaresInfo(num_fun_evals=num.zero_count(),
                                 num_jac_evals=num.zero_count(),
                                 converged=jnp.asarray(False),
                                 stalled=jnp.asarray(False)))

  def update_fn(updates, state, params=None, *, residual_fn=None,
                **extra_args):
    del updates
    res = LS._residuals(fn, params, residual_fn, extra_args)
    C.real_leaves(fn, params)
    dtype = state.cost.dtype
    c = lambda v: jnp.asarray(v).astype(dtype)
    dot = lambda a, b: L._dot(a, b, dtype)
    w, unravel = C.ravel(params, dtype)
    r = LS._flat_residuals(res, unravel, dtype)
    if solver == "dense":
      jac, r0 = LS._jacobian(r, w)
      g = C.matvec(jac.T, r0)
      value0 = dot(r0, r0) / 2
      u, s, vt = jnp.linalg.svd(jac, full_matrices=False)
      _, coeffs = LS._gauss_newton_coefficients(s, vt, C.matvec(u.T, r0),
                                                dtype)
      d = -C.matvec(vt.T, coeffs)
      jd = C.matvec(jac, d)
      g_converged = LS._gtol_cosine(jac, g, value0) <= c(gtol)
      num_cg = jnp.zeros([], jnp.int32)
    else:
      r0, jvp = jax.linearize(r, w)
      transpose = jax.linear_transpose(jvp, w)
      vjp = lambda v: transpose(v)[0]
      g = vjp(r0)
      value0 = dot(r0, r0) / 2
      d, num_cg = _normal_equations_cg(jvp, vjp, g, max_cg_steps,
                                       c(cg_tol), dtype)
      jd = jvp(d)
      g_converged = jnp.max(jnp.abs(g), initial=0) <= c(gtol)
    slope = dot(g, d)          # -|Jd|^2 for the exact step
    jdjd = dot(jd, jd)
    wnorm = jnp.sqrt(dot(w, w))
    dnorm = jnp.sqrt(dot(d, d))

    def trial(z):
      k, alpha, _, _, _ = z
      r_new = r(w + alpha * d)
      value = dot(r_new, r_new) / 2
      value = jnp.where(jnp.isfinite(value), value, jnp.inf)
      ok = value <= value0 + _ARMIJO * alpha * slope
      # The minimiser of the quadratic through F(0), F'(0) and F(alpha),
      # kept in [0.1, 0.5] alpha (Dennis & Schnabel, sec. 6.3.2).
      curv = value - value0 - slope * alpha
      fit = -slope * alpha * alpha / (2 * jnp.where(curv > 0, curv, 1))
      fit = jnp.where((curv > 0) & jnp.isfinite(fit), fit, 0.5 * alpha)
      next_alpha = jnp.clip(fit, 0.1 * alpha, 0.5 * alpha)
      return (k + 1, jnp.where(ok, alpha, next_alpha).astype(dtype), ok,
              value, alpha)

    def cond(z):
      k, alpha, ok, _, _ = z
      return (~ok & (k < max_trials) & ~g_converged & (slope < 0)
              & (alpha * dnorm > jnp.finfo(dtype).eps * wnorm))

    z0 = (jnp.zeros([], jnp.int32), jnp.ones([], dtype), jnp.asarray(False),
          value0, jnp.zeros([], dtype))
    k, _, ok, value_new, alpha = jax.lax.while_loop(cond, trial, z0)
    # MINPACK's ftol test, on the relative reductions of |r|^2 predicted by
    # the linear model for the whole step, L(0) - L(d) = -g.d - |Jd|^2 / 2,
    # and made by the last trial (so that a solve that has converged as far
    # as the arithmetic allows, where no trial decreases F, says so); and
    # xtol.
    predicted = -slope - jdjd / 2
    actual = value0 - value_new
    scale = jnp.where(value0 > 0, value0, 1)
    alpha = jnp.where(ok, alpha, 0)
    done = (g_converged
            | ((jnp.abs(actual) / scale <= c(ftol))
               & (predicted / scale <= c(ftol)) & (k > 0))
            # On the whole direction, not the step taken: a line search
            # cut short by a nearly singular J is no convergence.
            | (ok & (dnorm <= c(xtol) * (wnorm + c(xtol))))
            # The whole step is below the params' rounding: nothing to try.
            | (dnorm <= jnp.finfo(dtype).eps * wnorm))
    # Non-finite residuals stop the trials at once: a NaN step says so.
    h = jnp.where(ok, alpha * d, jnp.where(jnp.isfinite(value0), 0, jnp.nan))
    return unravel(h), ScaleByGaussNewtonState(
        count=num.safe_increment(state.count), cost=value0,
        gradient=unravel(g), step_cost=jnp.where(ok, value_new, value0),
        step_size=alpha, num_cg_steps=num_cg,
        info=LS.LeastSquaresInfo(num_fun_evals=k, num_jac_evals=jnp.ones(
            [], jnp.int32), converged=done, stalled=~ok & ~done))

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
