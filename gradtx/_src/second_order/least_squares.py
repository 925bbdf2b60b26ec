"""Nonlinear least squares: Levenberg-Marquardt.

It minimises :math:`F(w) = \\tfrac12 \\|r(w)\\|^2` for a residual function
:math:`r` (params -> a tree of arrays, flattened to one vector of
:math:`m` residuals) given to ``update`` as the keyword argument
``residual_fn`` (with any data it takes by keyword). It linearises
:math:`r` with its Jacobian (``jax.jacfwd``, dense ``m x n``), decides the
step itself (a trust region on :math:`F`), and keeps the cost and
gradient of the params it was given in its state, so that a step costs
one Jacobian and, when its first trial is accepted, one evaluation of
:math:`r`. The incoming updates are not used: the gradient
:math:`J^\\top r` comes from the Jacobian. :func:`gradtx.least_squares`
runs a whole solve.
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

__all__ = ["LeastSquaresInfo", "ScaleByLevenbergMarquardtState",
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
    converged: the transform's own convergence tests passed (for
      :func:`levenberg_marquardt`, MINPACK's ``ftol``, ``xtol`` and
      ``gtol`` tests): a driver should stop.
    stalled: no trial decreased the objective (the step is 0): the solve
      has converged as far as the arithmetic allows, or cannot go on.
  """
  num_fun_evals: jax.Array
  num_jac_evals: jax.Array
  converged: jax.Array
  stalled: jax.Array


def _residuals(name, params, residual_fn, extra_args):
  if params is None:
    raise ValueError(base.NO_PARAMS_MSG.format(name=name))
  if not callable(residual_fn):
    raise TypeError(_NEEDS_RESIDUALS.format(name=name,
                                            residual_fn=residual_fn))
  kw = L._objective_kwargs(name, residual_fn, extra_args,
                           strict=False)
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
    step_cost: :math:`F(w + h)` for the step :math:`h` returned (``cost``
      when the step is 0).
    radius: :math:`\Delta`, the trust-region radius the next ``update``
      starts from (0 before the first).
    scale: the diagonal :math:`D` (the largest column norms of :math:`J`
      seen, with ``scaled=True``; ones otherwise).
    info: a :class:`LeastSquaresInfo`.
  """
  count: jax.Array
  cost: jax.Array
  gradient: Any
  step_cost: jax.Array
  radius: jax.Array
  scale: jax.Array
  info: LeastSquaresInfo


def _gauss_newton_coefficients(s, vt, ur, dtype):
  r"""The Gauss-Newton step in the right singular basis: with :math:`J =
  U S V^\top` and :math:`b = U^\top r`, :math:`h = -V c` with :math:`c_i
  = b_i / s_i`, singular values below :math:`\varepsilon s_{max}
  \max(m, n)` dropped (the minimum-norm least-squares solution of
  :math:`J h = -r`, as ``numpy.linalg.lstsq``). Returns (kept, c)."""
  eps = jnp.finfo(dtype).eps
  keep = s > eps * jnp.max(s) * max(vt.shape)
  s_safe = jnp.where(keep, s, 1)
  return keep, jnp.where(keep, ur / s_safe, 0)


def _gtol_cosine(jac, g, value):
  """MINPACK's gtol measure: the largest cosine of the angle between the
  residuals and a column of the Jacobian (0 where either is 0), from
  ``g = J^T r`` and ``value = |r|^2 / 2``."""
  col_norm = jnp.sqrt(jnp.sum(jac * jac, axis=0))
  rnorm = jnp.sqrt(2 * value)
  cosine = jnp.max(jnp.where(
      col_norm > 0, jnp.abs(g) / jnp.where(col_norm > 0, col_norm, 1), 0),
                   initial=0)
  return jnp.where(rnorm > 0, cosine / jnp.where(rnorm > 0, rnorm, 1), 0)


def _trust_region_step(u, s, vt, ur, radius, dtype):
  r"""The Levenberg-Marquardt step of a trust region, from an SVD.

  With :math:`\tilde J = U S V^\top` (the Jacobian in scaled variables) and
  :math:`b = U^\top r`, the damped step is :math:`\tilde h(\mu) =
  -V \mathrm{diag}(s_i / (s_i^2 + \mu)) b`, whose norm falls as
  :math:`\mu` grows. Returns :math:`(\tilde h, \mu)`: the Gauss-Newton step
  (:math:`\mu = 0`, singular values below :math:`\varepsilon s_{max}`
  dropped) if it lies inside :math:`\|\tilde h\| \le \Delta`, else the
  :math:`\mu > 0` with :math:`\|\tilde h(\mu)\| = \Delta` to 1e-3, found by
  the safeguarded Newton iteration on :math:`1/\|\tilde h(\mu)\|` of Hebden
  (1973) and Moré (1978), which costs no evaluation.
  """
  del u
  keep, c0 = _gauss_newton_coefficients(s, vt, ur, dtype)

  def coeffs(mu):
    return jnp.where(keep, s * ur / (s * s + mu), 0)

  q0 = jnp.sqrt(jnp.sum(c0 * c0))
  inside = q0 <= radius
  # sqrt(sum (s b)^2) / mu bounds |h(mu)|: mu = |S b| / radius is too big.
  hi0 = jnp.sqrt(jnp.sum((s * ur) ** 2)) / radius

  def body(_, z):
    mu, lo, hi = z
    c = coeffs(mu)
    q = jnp.sqrt(jnp.sum(c * c))
    dq = -jnp.sum(c * c / (s * s + mu)) / jnp.where(q > 0, q, 1)
    lo = jnp.where(q > radius, mu, lo)
    hi = jnp.where(q < radius, mu, hi)
    newton = mu - (q - radius) / radius * q / jnp.where(dq < 0, dq, -1)
    bad = ~((newton > lo) & (newton < hi)) | ~jnp.isfinite(newton)
    mid = jnp.where(lo > 0, jnp.sqrt(lo * hi), hi * 1e-3)
    mu = jnp.where(jnp.abs(q - radius) <= 1e-3 * radius, mu,
                   jnp.where(bad, mid, newton))
    return mu, lo, hi

  zero = jnp.zeros([], dtype)
  mu, _, _ = jax.lax.fori_loop(0, 30, body, (zero, zero, hi0))
  mu = jnp.where(inside, 0, mu)
  c = jnp.where(inside, c0, coeffs(mu))
  return -C.matvec(vt.T, c), mu


def levenberg_marquardt(radius_factor: Any = 100.0, scaled: bool = True,
                        max_trials: int = 30, ftol: Any = 1e-8,
                        xtol: Any = 1e-8, gtol: Any = 1e-8,
                        ) -> base.GradientTransformation:
  r"""Levenberg-Marquardt for nonlinear least squares (trust region).

  Minimises :math:`F(w) = \tfrac12\|r(w)\|^2`: with :math:`J` the Jacobian
  of :math:`r` at :math:`w` and :math:`D` a diagonal scaling, each trial
  step is

  .. math::
     h = -(J^\top J + \mu D^2)^{-1} J^\top r,
     \qquad \mu \ge 0 \text{ the smallest with } \|D h\| \le \Delta,

  the minimiser of the linear model :math:`\tfrac12\|r + J h\|^2` in the
  trust region :math:`\|D h\| \le \Delta`: the Gauss-Newton step
  (:math:`\mu = 0`) when it fits, a damped step that tends to gradient
  descent as :math:`\Delta` shrinks otherwise (Levenberg, 1944;
  Marquardt, 1963: the method "switches between Newton's and gradient
  descent"). The trial is accepted if the gain ratio
  :math:`\rho = \big(F(w) - F(w+h)\big) / \big(L(0) - L(h)\big)` (actual
  over predicted decrease) is at least 1e-4, and :math:`\Delta` follows
  Moré's rules (*The Levenberg-Marquardt algorithm: implementation and
  theory*, 1978, as MINPACK's ``lmder``): doubled to :math:`2\|Dh\|` when
  :math:`\rho \ge 3/4` or the step is Gauss-Newton's, shrunk by a factor
  in :math:`[0.1, 0.5]` (from a quadratic fit along the step) when
  :math:`\rho \le 1/4`. The first :math:`\Delta` is ``radius_factor``
  times :math:`\|D w_0\|` (or ``radius_factor`` if that is 0). With
  ``scaled=True`` :math:`D` holds the largest column norms of :math:`J`
  seen so far, which makes the iterates invariant to the scale of each
  parameter; otherwise :math:`D = I`. :math:`\mu` comes from an SVD of
  :math:`J D^{-1}` (dense: for up to a few thousand params), with no
  evaluation.

  ``update(updates, state, params, residual_fn=r, **data_for_r)`` returns
  the step :math:`h` itself (add it with :func:`apply_updates`; the
  incoming updates are ignored). Each call evaluates the Jacobian at
  ``params`` once (forward mode, which gives the residuals too), then makes
  trials until one is accepted (at most ``max_trials``; if none is, or the
  radius falls below :math:`\varepsilon \|D w\|`, the step is 0 and
  ``state.info.stalled`` says so): one residual evaluation per trial.
  :func:`gradtx.least_squares` runs a whole solve in one
  ``jax.lax.while_loop``.

  It also runs MINPACK's convergence tests, with scipy's names and
  defaults, and reports them in ``state.info.converged``: ``gtol``, before
  any trial, when the cosine of the angle between :math:`r` and every
  column of :math:`J` is at most ``gtol`` (then no trial is made); after a
  trial, ``ftol`` when the actual and predicted relative reductions of
  :math:`\|r\|^2` are at most ``ftol``, and ``xtol`` when :math:`\Delta
  \le` ``xtol`` :math:`\|D w\|`.

  Args:
    radius_factor: the first trust-region radius relative to
      :math:`\|D w_0\|`.
    scaled: use the scaling :math:`D` above (else :math:`D = I`).
    max_trials: the most trials per call.
    ftol: relative reduction of the cost that counts as converged.
    xtol: relative radius that counts as converged.
    gtol: cosine between the residuals and the Jacobian's columns that
      counts as converged.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> t = jnp.linspace(0.0, 1.0, 5)   # fit a * exp(k t) to 2 exp(-t)
    >>> r = lambda w: w[0] * jnp.exp(w[1] * t) - 2.0 * jnp.exp(-t)
    >>> result = gradtx.least_squares(r, jnp.array([1.0, 0.0]),
    ...                               gradtx.levenberg_marquardt())
    >>> print(jnp.round(result.params, 6), bool(result.converged))
    [ 2. -1.] True
  """
  fn = "levenberg_marquardt"
  V.check_positive(fn, "radius_factor", radius_factor)
  V.check_int(fn, "max_trials", max_trials, 1)
  V.check_nonnegative(fn, "ftol", ftol)
  V.check_nonnegative(fn, "xtol", xtol)
  V.check_nonnegative(fn, "gtol", gtol)

  def init_fn(params):
    C.real_leaves(fn, params)
    dtype = L._scalar_dtype(fn, params)
    n = C.size(params)
    return ScaleByLevenbergMarquardtState(
        count=num.zero_count(), cost=jnp.full([], jnp.inf, dtype),
        gradient=T.tree_zeros_like(params),
        step_cost=jnp.full([], jnp.inf, dtype), radius=jnp.zeros([], dtype),
        scale=jnp.zeros([n], dtype),
        info=LeastSquaresInfo(num_fun_evals=num.zero_count(),
                              num_jac_evals=num.zero_count(),
                              converged=jnp.asarray(False),
                              stalled=jnp.asarray(False)))

  def update_fn(updates, state, params=None, *, residual_fn=None,
                **extra_args):
    del updates
    res = _residuals(fn, params, residual_fn, extra_args)
    C.real_leaves(fn, params)
    dtype = state.cost.dtype
    c = lambda v: jnp.asarray(v).astype(dtype)
    eps = jnp.finfo(dtype).eps
    w, unravel = C.ravel(params, dtype)
    r = _flat_residuals(res, unravel, dtype)
    jac, r0 = _jacobian(r, w)
    value0 = L._dot(r0, r0, dtype) / 2
    g = C.matvec(jac.T, r0)
    if scaled:
      scale = jnp.maximum(state.scale, jnp.sqrt(jnp.sum(jac * jac, axis=0)))
      d = jnp.where(scale > 0, scale, 1)
    else:
      scale = d = jnp.ones_like(w)
    g_converged = _gtol_cosine(jac, g, value0) <= c(gtol)
    u, s, vt = jnp.linalg.svd(jac / d[None, :], full_matrices=False)
    ur = C.matvec(u.T, r0)
    xnorm = jnp.sqrt(L._dot(d * w, d * w, dtype))
    factor = jnp.asarray(radius_factor).astype(dtype)
    radius0 = jnp.where(state.count == 0,
                        jnp.where(xnorm > 0, factor * xnorm, factor),
                        state.radius)

    def trial(z):
      k, radius, _, _, _, _ = z
      ht, mu = _trust_region_step(u, s, vt, ur, radius, dtype)
      h = ht / d
      pnorm = jnp.sqrt(L._dot(ht, ht, dtype))
      # Moré: the first step of a solve bounds the radius.
      radius = jnp.where((state.count == 0) & (k == 0),
                         jnp.minimum(radius, pnorm), radius)
      r_new = r(w + h)
      value_new = L._dot(r_new, r_new, dtype) / 2
      jh = C.matvec(jac, h)
      jhjh = L._dot(jh, jh, dtype)
      # L(0) - L(h) = |Jh|^2 / 2 + mu |Dh|^2, no cancellation.
      predicted = jhjh / 2 + mu * pnorm * pnorm
      actual = value0 - value_new
      rho = jnp.where(predicted > 0, actual / predicted, -jnp.inf)
      rho = jnp.where(jnp.isfinite(value_new), rho, -jnp.inf)
      # Moré's shrink factor: the minimiser of the quadratic through the
      # value and slope at 0 and the value at h, kept in [0.1, 0.5].
      slope = -(jhjh + mu * pnorm * pnorm)
      temp = jnp.where(actual >= 0, 0.5,
                       0.5 * slope / (slope + actual))
      temp = jnp.where((jnp.sqrt(2 * value_new) * 0.1
                        >= jnp.sqrt(2 * value0)) | (temp < 0.1)
                       | ~jnp.isfinite(temp), 0.1, temp)
      shrunk = temp * jnp.minimum(radius, pnorm / 0.1)
      grown = jnp.where((mu == 0) | (rho >= 0.75), 2 * pnorm, radius)
      new_radius = jnp.where(rho <= 0.25, shrunk, grown)
      ok = rho >= 1e-4
      # MINPACK's ftol and xtol tests, on relative reductions of |r|^2.
      rel_actual = jnp.where(value0 > 0, actual / jnp.where(
          value0 > 0, value0, 1), 0)
      rel_pred = jnp.where(value0 > 0, predicted / jnp.where(
          value0 > 0, value0, 1), 0)
      done = ((jnp.abs(rel_actual) <= c(ftol)) & (rel_pred <= c(ftol))
              & (rho <= 2)) | (new_radius <= c(xtol) * xnorm)
      return k + 1, new_radius.astype(dtype), ok, h, done, value_new

    def cond(z):
      k, radius, ok, _, done, _ = z
      return ~ok & ~done & (k < max_trials) & (radius > eps * xnorm)

    z0 = (jnp.zeros([], jnp.int32), radius0.astype(dtype),
          jnp.asarray(False), jnp.zeros_like(w), g_converged, value0)
    k, radius, ok, h, done, value_new = jax.lax.while_loop(cond, trial, z0)
    # Non-finite residuals stop the trials at once: a NaN step says so.
    h = jnp.where(ok, h, jnp.where(jnp.isfinite(value0), 0, jnp.nan))
    return unravel(h), ScaleByLevenbergMarquardtState(
        count=num.safe_increment(state.count), cost=value0,
        gradient=unravel(g), step_cost=jnp.where(ok, value_new, value0),
        radius=radius, scale=C.replicated(scale.astype(dtype)),
        info=LeastSquaresInfo(num_fun_evals=k, num_jac_evals=jnp.ones(
            [], jnp.int32), converged=done, stalled=~ok & ~done))

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
