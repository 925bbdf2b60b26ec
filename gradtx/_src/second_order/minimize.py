"""Whole solves in one ``jax.lax.while_loop``: :func:`minimize` for a
scalar objective and :func:`least_squares` for a residual function.

Both drive a gradient transformation through the objective keyword
arguments of gradtx's contract (``value``, ``grad``, ``value_fn`` for
:func:`minimize`; ``residual_fn`` for :func:`least_squares`) and count the
evaluations it makes from what its state reports: a line search's
``info.num_linesearch_steps``, ``num_hvp_evals`` (Newton-CG),
``num_hess_evals`` (Newton), a least-squares ``info``. Names and fields
follow ``scipy.optimize`` where they can.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import linesearch as L
from gradtx._src.second_order import least_squares as LS
from gradtx._src import validation as V

__all__ = ["LeastSquaresResult", "MinimizeResult", "least_squares",
           "minimize"]


def _max_abs(tree: Any) -> jax.Array:
  leaves = [jnp.max(jnp.abs(x)) for x in jax.tree.leaves(tree)
            if jnp.size(x)]
  if not leaves:
    return jnp.zeros([])
  return jnp.max(jnp.stack(leaves))


class MinimizeResult(NamedTuple):
  """What :func:`minimize` returns.

  Attributes:
    params: the params it stopped at (``x`` in scipy).
    value: the objective there (``fun``).
    grad_norm: the largest absolute entry of the gradient there (the norm
      scipy's ``gtol`` applies to).
    num_steps: ``update`` calls made (``nit``).
    num_fun_evals: evaluations of the objective (``nfev``).
    num_grad_evals: evaluations of its gradient (``njev``); the objective
      and its gradient are evaluated together, so it equals
      ``num_fun_evals`` except for a backtracking line search.
    num_hvp_evals: Hessian-vector products (Newton-CG; ``nhev`` of scipy's
      Newton-CG with ``hessp``).
    num_hess_evals: full Hessians evaluated (Newton).
    converged: ``grad_norm <= gtol``.
    state: the optimizer state at the end.
  """
  params: Any
  value: jax.Array
  grad_norm: jax.Array
  num_steps: jax.Array
  num_fun_evals: jax.Array
  num_grad_evals: jax.Array
  num_hvp_evals: jax.Array
  num_hess_evals: jax.Array
  converged: jax.Array
  state: Any


def _sum(values, dtype=jnp.int32):
  total = jnp.zeros([], dtype)
  for v in values:
    total = total + jnp.asarray(v).astype(dtype)
  return total


def _step_evaluations(state: Any) -> tuple:
  """(fun, grad, hvp, hess) evaluations the last update made, read from
  the state of each transform of the chain that reports them."""
  fun = grad = jnp.zeros([], jnp.int32)
  for info in L._find_field(state, "info"):
    if isinstance(info, L.ZoomLinesearchInfo):
      fun = fun + info.num_linesearch_steps
      grad = grad + info.num_linesearch_steps
    elif isinstance(info, L.BacktrackingLinesearchInfo):
      fun = fun + info.num_linesearch_steps
  for search in L._find_field(state, "learning_rate"):
    del search
  hvp = _sum(L._find_field(state, "num_hvp_evals"))
  hess = _sum(L._find_field(state, "num_hess_evals"))
  return fun, grad, hvp, hess


def _stored_value_and_grad(state: Any):
  """The line search's (value, grad) at the accepted point, or None."""
  values, grads = L._find_field(state, "value"), L._find_field(state, "grad")
  if len(values) == 1 and len(grads) == 1 and grads[0] is not None:
    return values[0], grads[0]
  return None


def minimize(fun: Callable[[Any], Any], params: Any,
             optimizer: base.GradientTransformation, *,
             max_steps: int = 1000, gtol: float = 1e-5) -> MinimizeResult:
  r"""Minimises ``fun`` from ``params`` with ``optimizer``, in one
  ``jax.lax.while_loop``.

  Each step calls ``optimizer.update(grad, state, params, value=f(params),
  grad=grad, value_fn=fun)`` and applies the updates; the loop stops when
  the largest absolute entry of the gradient is at most ``gtol`` (scipy's
  ``gtol``, the infinity norm) or after ``max_steps`` steps. When the
  optimizer's state holds one ``value`` and one ``grad`` (a line search as
  its last member, as in :func:`bfgs`, :func:`lbfgs`, :func:`newton`,
  :func:`newton_cg`), they are the objective and its gradient at the new
  params and are reused; otherwise ``jax.value_and_grad(fun)`` is called
  after each step. Evaluations are counted from the states (see
  :class:`MinimizeResult`): the value and the gradient at the start count
  one each.

  Works for any optimizer of the contract (a fixed-step one converges as it
  would in a training loop); call it inside ``jax.jit`` to compile the
  solve once.

  Args:
    fun: the objective, params -> scalar.
    params: the starting point, any tree of real floating arrays.
    optimizer: a gradient transformation, e.g. :func:`bfgs`.
    max_steps: the most ``update`` calls.
    gtol: stop when :math:`\max_i |\partial_i f| \le` ``gtol``.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> f = lambda w: jnp.sum((w - 2.0) ** 2)
    >>> result = gradtx.minimize(f, jnp.zeros(3), gradtx.bfgs())
    >>> print(jnp.round(result.params, 4), int(result.num_steps),
    ...       int(result.num_fun_evals))
    [2. 2. 2.] 2 3
  """
  name = "minimize"
  if not callable(fun):
    raise TypeError(f"{name}: fun must be the objective, a function params "
                    f"-> scalar, got fun={fun!r}.")
  V.check_transform(name, "optimizer", optimizer)
  V.check_int(name, "max_steps", max_steps, 0)
  V.check_nonnegative(name, "gtol", gtol)
  value_and_grad = jax.value_and_grad(fun)
  state = optimizer.init(params)
  reuse = _stored_value_and_grad(state) is not None
  value, grad = value_and_grad(params)
  value = jnp.asarray(value)
  grad = L._like_params(grad, params)
  zero = jnp.zeros([], jnp.int32)
  one = jnp.ones([], jnp.int32)

  def cond(carry):
    _, _, value, gnorm, k = carry[:5]
    return (k < max_steps) & (gnorm > gtol) & jnp.isfinite(value)

  def body(carry):
    params, state, value, _, k, grad, nfev, ngev, nhvp, nhess = carry
    updates, state = optimizer.update(grad, state, params, value=value,
                                      grad=grad, value_fn=fun)
    params = base.apply_updates(params, updates)
    fun_n, grad_n, hvp_n, hess_n = _step_evaluations(state)
    if reuse:
      new_value, new_grad = _stored_value_and_grad(state)
    else:
      new_value, new_grad = value_and_grad(params)
      fun_n, grad_n = fun_n + 1, grad_n + 1
    new_value = jnp.asarray(new_value).astype(value.dtype)
    new_grad = L._like_params(new_grad, params)
    return (params, state, new_value, _max_abs(new_grad), k + 1, new_grad,
            nfev + fun_n, ngev + grad_n, nhvp + hvp_n, nhess + hess_n)

  carry = (params, state, value, _max_abs(grad), zero, grad, one, one, zero,
           zero)
  (params, state, value, gnorm, k, _, nfev, ngev, nhvp,
   nhess) = jax.lax.while_loop(cond, body, carry)
  return MinimizeResult(
      params=params, value=value, grad_norm=gnorm, num_steps=k,
      num_fun_evals=nfev, num_grad_evals=ngev, num_hvp_evals=nhvp,
      num_hess_evals=nhess, converged=gnorm <= gtol, state=state)


class LeastSquaresResult(NamedTuple):
  """What :func:`least_squares` returns.

  Attributes:
    params: the params it stopped at (``x``).
    value: :math:`\\frac12\\|r\\|^2` there (``cost``).
    grad_norm: the largest absolute entry of :math:`J^\\top r` at the last
      Jacobian evaluation (the params before the last step, when the
      solve ended on a step that converged).
    num_steps: ``update`` calls that took a step (``nit``).
    num_fun_evals: evaluations of the residual function (``nfev``).
    num_jac_evals: evaluations of its Jacobian (``njev``), each of which
      also gives the residuals at its point.
    converged: the optimizer's tests passed or ``grad_norm <= gtol``.
    state: the optimizer state at the end.
  """
  params: Any
  value: jax.Array
  grad_norm: jax.Array
  num_steps: jax.Array
  num_fun_evals: jax.Array
  num_jac_evals: jax.Array
  converged: jax.Array
  state: Any


def least_squares(residual_fn: Callable[[Any], Any], params: Any,
                  optimizer: base.GradientTransformation, *,
                  max_steps: int = 100, gtol: float = 0.0,
                  ) -> LeastSquaresResult:
  r"""Minimises :math:`\frac12\|r(w)\|^2` with a least-squares optimizer
  (:func:`levenberg_marquardt`), in one ``jax.lax.while_loop``.

  Each step calls ``optimizer.update(grad, state, params,
  residual_fn=residual_fn)``, which evaluates the Jacobian at ``params``,
  reports the cost and gradient there in its state and proposes a step.
  The loop stops when the optimizer's own tests pass (``info.converged``:
  MINPACK's ``ftol``, ``xtol`` and ``gtol`` for
  :func:`levenberg_marquardt`; the step found is taken, as MINPACK does),
  when the largest absolute entry of the gradient at ``params`` is at most
  ``gtol`` or the optimizer found no decrease (``info.stalled``; then the
  step is not taken), or after ``max_steps`` steps.

  Args:
    residual_fn: params -> residuals (an array or a tree of arrays).
    params: the starting point, any tree of real floating arrays.
    optimizer: :func:`levenberg_marquardt` (or another transform whose
      state holds ``cost``, ``gradient`` and a :class:`LeastSquaresInfo`).
    max_steps: the most steps.
    gtol: also stop when :math:`\max_i |(J^\top r)_i| \le` ``gtol``
      (0: only the optimizer's own tests).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> t = jnp.linspace(0.0, 1.0, 5)
    >>> r = lambda w: w[0] * jnp.exp(w[1] * t) - 2.0 * jnp.exp(-t)
    >>> result = gradtx.least_squares(r, jnp.array([1.0, 0.0]),
    ...                               gradtx.levenberg_marquardt())
    >>> print(jnp.round(result.params, 6), bool(result.converged))
    [ 2. -1.] True
  """
  name = "least_squares"
  if not callable(residual_fn):
    raise TypeError(f"{name}: residual_fn must be a function params -> "
                    f"residuals, got residual_fn={residual_fn!r}.")
  V.check_transform(name, "optimizer", optimizer)
  V.check_int(name, "max_steps", max_steps, 0)
  V.check_nonnegative(name, "gtol", gtol)
  state = optimizer.init(params)

  def fields(state):
    costs = L._find_field(state, "cost")
    grads = L._find_field(state, "gradient")
    infos = [i for i in L._find_field(state, "info")
             if isinstance(i, LS.LeastSquaresInfo)]
    if len(costs) != 1 or len(grads) != 1 or len(infos) != 1:
      raise TypeError(
          f"{name}: the optimizer must be a least-squares transform such as "
          f"gradtx.levenberg_marquardt(), whose state holds one 'cost', one "
          f"'gradient' and one LeastSquaresInfo; got {optimizer!r}.")
    return costs[0], grads[0], infos[0]

  cost, grad, _ = fields(state)
  zero = jnp.zeros([], jnp.int32)

  def cond(carry):
    return ~carry[-1]

  def body(carry):
    params, state, k, nfev, njev, _, _ = carry
    updates, new_state = optimizer.update(
        fields(state)[1], state, params, residual_fn=residual_fn)
    cost, grad, info = fields(new_state)
    nfev = nfev + info.num_fun_evals
    njev = njev + info.num_jac_evals
    # A step the update found while converging is taken (as MINPACK
    # does); the gradient test is at the params before it.
    take = (info.converged | ~((_max_abs(grad) <= gtol) | info.stalled)) & (
        k < max_steps)
    done = ((_max_abs(grad) <= gtol) | info.stalled | info.converged
            | ~jnp.isfinite(cost))
    done = done | (k + 1 >= max_steps)
    new_params = base.apply_updates(params, updates)
    params = jax.tree.map(lambda a, b: jnp.where(take, b, a), params,
                          new_params)
    step_costs = L._find_field(new_state, "step_cost")
    value = jnp.where(take, step_costs[0], cost) if step_costs else cost
    return (params, new_state, jnp.where(take, k + 1, k), nfev, njev, value,
            done)

  carry = (params, state, zero, zero, zero, jnp.asarray(jnp.inf, cost.dtype),
           jnp.asarray(False))
  (params, state, k, nfev, njev, cost,
   _) = jax.lax.while_loop(cond, body, carry)
  _, grad, info = fields(state)
  gnorm = _max_abs(grad)
  return LeastSquaresResult(
      params=params, value=cost, grad_norm=gnorm, num_steps=k,
      num_fun_evals=nfev, num_jac_evals=njev,
      converged=info.converged | (gnorm <= gtol),
      state=state)
