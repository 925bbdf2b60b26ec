"""Newton's method: the exact Hessian (dense) and Newton-CG (matrix-free).

Both read the objective the way the line searches do: ``update(updates,
state, params, value_fn=f, **data_for_f)``, with ``updates`` the gradient
of ``f`` at ``params``. :func:`scale_by_newton` forms the Hessian of the
flattened params with ``jax.hessian``; :func:`scale_by_newton_cg` only
multiplies by it, through ``jax.jvp`` of ``jax.grad(f)`` (forward over
reverse), inside conjugate gradients.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import linesearch as L
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V
from gradtx._src.second_order import curvature as C

__all__ = ["ScaleByNewtonCGState", "ScaleByNewtonState", "newton",
           "newton_cg", "scale_by_newton", "scale_by_newton_cg"]


_NEEDS_VALUE_FN = (
    "{name}: update needs the objective: update(updates, state, params, "
    "value_fn=f, **data_for_f), with updates the gradient of f at params; "
    "got value_fn={value_fn!r}. Use it inside gradtx.chain (which forwards "
    "keyword arguments), or gradtx.minimize.")


def objective(name: str, params: Any, value_fn: Any,
              extra_args: dict) -> Callable[[Any], jax.Array]:
  """``params -> f(params, **data)`` from the keyword arguments of
  ``update``, after checking they are there."""
  if params is None:
    raise ValueError(base.NO_PARAMS_MSG.format(name=name))
  if not callable(value_fn):
    raise TypeError(_NEEDS_VALUE_FN.format(name=name, value_fn=value_fn))
  kw = L._objective_kwargs(name, value_fn, extra_args, strict=False)
  return lambda p: value_fn(p, **kw)


def _extra_without_objective(extra_args: dict) -> dict:
  return {k: v for k, v in extra_args.items() if k not in ("value", "grad")}


class ScaleByNewtonState(NamedTuple):
  """The state of :func:`scale_by_newton`.

  Attributes:
    num_hess_evals: Hessians evaluated by the last ``update`` (1).
    min_eigenvalue: the smallest eigenvalue of the last Hessian (negative
      where it was indefinite).
  """
  num_hess_evals: jax.Array
  min_eigenvalue: jax.Array


def scale_by_newton(damping: Any = 0.0) -> base.GradientTransformation:
  r"""Scales the updates by the inverse of the (modified) Hessian.

  With :math:`\nabla^2 f(w) = Q \Lambda Q^\top` the eigendecomposition of
  the Hessian of the flattened params, the output is

  .. math::
     d = Q\, \mathrm{diag}\Big(\frac{1}{\max(|\lambda_i| + \mu,\;
         \delta)}\Big)\, Q^\top g,
     \qquad \delta = \sqrt{\varepsilon}\, \max_i |\lambda_i|,

  the direction to step *against* (chain a negative scaling and a line
  search after it, as :func:`newton` does). Where the Hessian is positive
  definite and :math:`\mu` (``damping``) is 0 this is Newton's direction
  :math:`H^{-1} g`, which converges quadratically near a minimum. Negative
  eigenvalues are replaced by their absolute values (Greenstadt, Math.
  Comp. 1967; the saddle-free Newton method of Dauphin et al., NeurIPS
  2014), so :math:`d` is a descent direction everywhere and a negative
  curvature direction is followed downhill with a step of its own scale.
  :math:`\mu > 0` adds Levenberg-Marquardt damping (:math:`(|H| + \mu
  I)^{-1}`), which shortens the steps towards gradient descent.

  ``update`` takes the objective as a keyword argument, as the line
  searches do: ``value_fn`` (:math:`f`, called as ``value_fn(params,
  **data)``, the data being any other keyword arguments it names), with
  ``updates`` its gradient at ``params``. Each call evaluates the Hessian
  once (``jax.hessian``: ``n`` Hessian-vector products) and decomposes it
  (:math:`O(n^3)`): for problems of up to a few thousand params; see
  :func:`scale_by_newton_cg` for larger ones.

  Args:
    damping: :math:`\mu \ge 0`.

  Example:
    >>> import gradtx, jax, jax.numpy as jnp
    >>> f = lambda w: w[0] ** 2 + 10 * w[1] ** 2
    >>> tx = gradtx.scale_by_newton()
    >>> @jax.jit   # forms and factors the Hessian in one compiled call
    ... def direction(g, w):
    ...   return tx.update(g, tx.init(w), w, value_fn=f)[0]
    >>> d = direction(jnp.array([2.0, 20.0]), jnp.array([1.0, 1.0]))
    >>> print(d)   # H^-1 g: one step against it reaches the minimum
    [1. 1.]
  """
  fn = "scale_by_newton"
  V.check_nonnegative(fn, "damping", damping)

  def init_fn(params):
    C.real_leaves(fn, params)
    dtype = L._scalar_dtype(fn, params)
    return ScaleByNewtonState(num_hess_evals=num.zero_count(),
                              min_eigenvalue=jnp.zeros([], dtype))

  def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
    f = objective(fn, params, value_fn, _extra_without_objective(extra_args))
    C.real_leaves(fn, updates, "update")
    LW.check_updates_match_params(fn, updates, params)
    dtype = state.min_eigenvalue.dtype
    w, unravel_params = C.ravel(params, dtype)
    g, unravel = C.ravel(updates, dtype)
    hess = jax.hessian(lambda x: jnp.asarray(
        f(unravel_params(x))).astype(dtype))(w)
    hess = (hess + hess.T) / 2
    lam, q = jnp.linalg.eigh(hess)
    mu = jnp.asarray(damping).astype(dtype)
    floor = math.sqrt(float(jnp.finfo(dtype).eps)) * jnp.max(jnp.abs(lam))
    curv = jnp.maximum(jnp.abs(lam) + mu, floor)
    # A zero Hessian (floor 0) gives no curvature to divide by: fall back to
    # the gradient itself.
    inv = jnp.where(curv > 0, 1 / jnp.where(curv > 0, curv, 1), 1)
    qt_g = C.matvec(q.T, g)
    d = C.matvec(q, inv * qt_g)
    d = jnp.where(jnp.all(jnp.isfinite(hess)), d, jnp.full_like(d, jnp.nan))
    return unravel(d), ScaleByNewtonState(
        num_hess_evals=jnp.ones([], jnp.int32),
        min_eigenvalue=jnp.min(lam).astype(dtype))

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


def newton(learning_rate: Optional[base.ScalarOrSchedule] = None,
           damping: Any = 0.0,
           linesearch: Optional[base.GradientTransformation] = (
               L._DEFAULT_LINESEARCH),
           ) -> base.GradientTransformation:
  r"""Newton's method with a line search: ``w <- w - eta * H^-1 g``.

  .. math::
     w_{k+1} = w_k - \eta_k \big(|\nabla^2 f(w_k)| + \mu I\big)^{-1}
               \nabla f(w_k)

  (Newton; Nocedal & Wright, *Numerical Optimization*, 2nd ed. 2006,
  Section 3.3 and 3.4 for the modification), with :math:`|H|` the Hessian
  with its eigenvalues replaced by their absolute values (see
  :func:`scale_by_newton`) and :math:`\eta_k` chosen by ``linesearch``
  (default: :func:`scale_by_zoom_linesearch`, first trial 1, which a
  Newton step near a minimum passes: the convergence is then quadratic).
  It is ``chain(scale_by_newton(damping), scale(-1) or
  scale_by_learning_rate(learning_rate), linesearch)`` and reads ``value``,
  ``grad`` and ``value_fn`` as :func:`lbfgs` does.

  Args:
    learning_rate: ``None`` (the default): the direction is negated
      (``scale(-1)``) and the line search alone sets the step length; otherwise
      the direction is multiplied by ``-learning_rate``, a number or a schedule
      of the step count, before the line search.
    damping: the Levenberg-Marquardt damping :math:`\mu \ge 0` added to the
      (absolute-value) Hessian's eigenvalues.
    linesearch: the transform that chooses the step along the direction, by
      default ``scale_by_zoom_linesearch(max_linesearch_steps=20,
      initial_guess_strategy="one")``; ``None``: no line search, fixed
      steps of ``learning_rate`` (of 1 without one).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> def f(w):   # Rosenbrock
    ...   return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2
    >>> result = gradtx.minimize(f, jnp.array([-1.2, 1.0]), gradtx.newton(),
    ...                          gtol=1e-10)
    >>> print(jnp.round(result.params, 6), int(result.num_hess_evals))
    [1. 1.] 22
  """
  return C.with_linesearch("newton", scale_by_newton(damping=damping),
                           learning_rate, linesearch)


class ScaleByNewtonCGState(NamedTuple):
  """The state of :func:`scale_by_newton_cg`.

  Attributes:
    num_hvp_evals: Hessian-vector products made by the last ``update``
      (the conjugate-gradient iterations).
    negative_curvature: whether the last ``update`` met a direction of
      non-positive curvature (and stopped there).
  """
  num_hvp_evals: jax.Array
  negative_curvature: jax.Array


def scale_by_newton_cg(max_cg_steps: Optional[int] = None,
                       forcing: Any = 0.5) -> base.GradientTransformation:
  r"""Scales the updates by an inexact Newton solve, by conjugate gradients.

  Solves :math:`\nabla^2 f(w)\, d = g` by conjugate gradients from
  :math:`d = 0`, multiplying by the Hessian only through Hessian-vector
  products (``jax.jvp`` of ``jax.grad(f)``: no matrix is formed), and stops
  when the residual is small enough (the forcing sequence of Dembo,
  Eisenstat & Steihaug, SIAM J. Numer. Anal. 1982):

  .. math::
     \|\nabla^2 f(w)\, d - g\| \le \min(\eta, \sqrt{\|g\|})\, \|g\|,

  with :math:`\eta` = ``forcing``, which gives superlinear convergence near
  a minimum (Nocedal & Wright, *Numerical Optimization*, 2nd ed. 2006,
  Algorithm 7.1, line-search Newton-CG). When a search direction
  :math:`p` has non-positive curvature :math:`p^\top \nabla^2 f\, p \le 0`,
  CG stops and returns the iterate so far, which is a descent direction
  (Steihaug's rule, SIAM J. Numer. Anal. 1983, without the trust region);
  at the first iteration it returns :math:`\frac{g^\top g}{|g^\top \nabla^2
  f g|}\, g`, a gradient step scaled by the curvature along it. The output
  is the direction to step *against*: chain a negative scaling and a line
  search, as :func:`newton_cg` does.

  ``update`` reads the objective as :func:`scale_by_newton` does
  (``value_fn`` and its data, ``updates`` its gradient at ``params``).

  Args:
    max_cg_steps: the most conjugate-gradient iterations (Hessian-vector
      products) per call; ``None``: the number of params.
    forcing: :math:`\eta \in (0, 1)`.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> f = lambda w: w[0] ** 2 + 10 * w[1] ** 2
    >>> tx = gradtx.scale_by_newton_cg(forcing=1e-6)
    >>> w = jnp.array([1.0, 1.0])
    >>> d, state = tx.update(jnp.array([2.0, 20.0]), tx.init(w), w,
    ...                      value_fn=f)
    >>> print(jnp.round(d, 6), int(state.num_hvp_evals))
    [1. 1.] 2
  """
  fn = "scale_by_newton_cg"
  if max_cg_steps is not None:
    V.check_int(fn, "max_cg_steps", max_cg_steps, 1)
  V.check_interval(fn, "forcing", forcing, 0.0, 1.0, lo_closed=False)

  def init_fn(params):
    C.real_leaves(fn, params)
    return ScaleByNewtonCGState(num_hvp_evals=num.zero_count(),
                                negative_curvature=jnp.asarray(False))

  def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
    del state
    f = objective(fn, params, value_fn, _extra_without_objective(extra_args))
    C.real_leaves(fn, updates, "update")
    LW.check_updates_match_params(fn, updates, params)
    dtype = L._scalar_dtype(fn, params)
    max_steps = C.size(params) if max_cg_steps is None else max_cg_steps
    g = L._like_params(updates, params)
    grad_f = jax.grad(lambda p: jnp.asarray(f(p)).astype(dtype))

    def hvp(v):
      return L._like_params(jax.jvp(grad_f, (params,), (v,))[1], params)

    dot = lambda a, b: L._dot(a, b, dtype)
    gg = dot(g, g)
    gnorm = jnp.sqrt(gg)
    tol = jnp.minimum(jnp.asarray(forcing).astype(dtype),
                      jnp.sqrt(gnorm)) * gnorm
    zero = T.tree_zeros_like(g)

    def cond(z):
      k, _, _, _, rr, stop = z
      return (k < max_steps) & ~stop & (jnp.sqrt(rr) > tol)

    def body(z):
      k, d, r, p, rr, _ = z
      hp = hvp(p)
      php = dot(p, hp)
      negative = ~(php > 0)   # NaN counts as negative: stop.
      alpha = rr / jnp.where(negative, 1, php)
      d_next = L._axpy(alpha, p, d)
      r_next = L._axpy(-alpha, hp, r)
      rr_next = dot(r_next, r_next)
      p_next = L._axpy(rr_next / rr, p, r_next)
      # At the first iteration, a curvature-scaled gradient step.
      first = L._scale_tree(rr / jnp.where(php == 0, 1, jnp.abs(php)), g)
      d_neg = L._where(k == 0, first, d)
      return (k + 1, L._where(negative, d_neg, d_next),
              L._where(negative, r, r_next), L._where(negative, p, p_next),
              jnp.where(negative, rr, rr_next), negative)

    z0 = (jnp.zeros([], jnp.int32), zero, g, g, gg, jnp.asarray(False))
    k, d, _, _, _, negative = jax.lax.while_loop(cond, body, z0)
    # A non-finite gradient stops CG at once; say so instead of stepping 0.
    d = jax.tree.map(lambda x: jnp.where(jnp.isfinite(gg), x, jnp.nan), d)
    d = LW.leafwise(lambda u: (u,), 1, d, name=fn)[0]
    return d, ScaleByNewtonCGState(num_hvp_evals=k,
                                   negative_curvature=negative)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


def newton_cg(learning_rate: Optional[base.ScalarOrSchedule] = None,
              max_cg_steps: Optional[int] = None, forcing: Any = 0.5,
              linesearch: Optional[base.GradientTransformation] = (
                  L._DEFAULT_LINESEARCH),
              ) -> base.GradientTransformation:
  r"""Newton-CG (truncated Newton) with a line search.

  .. math::
     w_{k+1} = w_k - \eta_k d_k, \qquad
     \nabla^2 f(w_k)\, d_k \approx \nabla f(w_k)
     \text{ by conjugate gradients}

  (Dembo & Steihaug, Math. Programming 1983; Nocedal & Wright,
  *Numerical Optimization*, 2nd ed. 2006, Algorithm 7.1): the direction of
  :func:`scale_by_newton_cg`, matrix-free (Hessian-vector products by
  forward-over-reverse differentiation, any params tree), then
  ``scale(-1)`` (or ``scale_by_learning_rate(learning_rate)``) and
  ``linesearch`` (default: :func:`scale_by_zoom_linesearch`, first trial
  1). Reads ``value``, ``grad`` and ``value_fn`` as :func:`lbfgs` does.

  Args:
    learning_rate: ``None`` (the default): the direction is negated
      (``scale(-1)``) and the line search alone sets the step length; otherwise
      the direction is multiplied by ``-learning_rate``, a number or a schedule
      of the step count, before the line search.
    max_cg_steps: the most conjugate-gradient iterations (Hessian-vector
      products) per step; ``None``: the number of params.
    forcing: the forcing term :math:`\eta \in (0, 1)`: conjugate gradients stop
      once the residual is below :math:`\min(\eta, \sqrt{\|g\|})\,\|g\|` (see
      :func:`scale_by_newton_cg`).
    linesearch: the transform that chooses the step along the direction, by
      default ``scale_by_zoom_linesearch(max_linesearch_steps=20,
      initial_guess_strategy="one")``; ``None``: no line search, fixed
      steps of ``learning_rate`` (of 1 without one).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> def f(w):   # Rosenbrock
    ...   return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2
    >>> result = gradtx.minimize(f, jnp.array([-1.2, 1.0]),
    ...                          gradtx.newton_cg(), gtol=1e-8)
    >>> print(jnp.round(result.params, 6), bool(result.converged))
    [1. 1.] True
  """
  return C.with_linesearch(
      "newton_cg", scale_by_newton_cg(max_cg_steps=max_cg_steps,
                                      forcing=forcing),
      learning_rate, linesearch)
