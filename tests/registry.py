"""The registry of optimizers that the property tests run over.

Each entry says how to build the optimizer and what it can do (capability
flags); the property tests read the flags instead of keeping skip lists.
A new optimizer is added here and gets the same tests for free.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import numpy as np

import gradtx


@dataclasses.dataclass(frozen=True)
class Spec:
  """One registered optimizer configuration.

  Attributes:
    name: test id.
    make: builds the transform from a learning rate.
    lr_quadratic, lr_rosenbrock: learning rates that converge on the two
      benchmark problems within the step budgets in test_convergence.
    needs_params: update() must be given params.
    rosenbrock_tol: the Rosenbrock loss (24.2 at the start) it must get
      below within ``rosenbrock_steps``.
    converges: whether the convergence tests apply (False for a wrapper
      that keeps some params still on purpose).
    eager_recompiles: update() compiles anew on every eager call (a line
      search: its while_loop's body is a new closure at each update, about
      a second per call on CPU). The property tests run such an entry
      eagerly in float64 (jit == eager) and jitted in the other dtypes.
    eager_costly: update() run eagerly compiles many small programs of its
      own (a dense Hessian, a linear solve), so that one jitted program
      per dtype costs less. Tests that check values, not eagerness, run
      such an entry (and an ``eager_recompiles`` one) jitted.
    needs_objective: update() must be given the objective as keyword
      arguments ``value``, ``grad`` and ``value_fn`` (a line search).
    needs_residuals: update() must be given a residual function as the
      keyword argument ``residual_fn`` (least squares); the tests give the
      residuals whose ``sum(r**2) / 2`` has the gradients they feed (up to
      a constant).
    needs_outputs: update() must be given the model's outputs as the
      keyword argument ``output_fn`` (natural gradient); the tests give the
      residuals above, with a squared loss.
  """

  name: str
  make: Callable[[float], Any]
  lr_quadratic: float
  lr_rosenbrock: float
  needs_params: bool = False
  rosenbrock_tol: float = 0.05
  rosenbrock_steps: int = 3000
  converges: bool = True
  eager_recompiles: bool = False
  eager_costly: bool = False
  needs_objective: bool = False
  needs_residuals: bool = False
  needs_outputs: bool = False


KEY = jax.random.key(0)


def _by_size(params):
  return jax.tree.map(lambda x: "big" if x.size > 2 else "small", params)


def _big(params):
  return jax.tree.map(lambda x: x.size > 2, params)

SPECS = [
    Spec("sgd", lambda lr: gradtx.sgd(lr), 0.1, 1e-3),
    Spec("sgd_momentum", lambda lr: gradtx.sgd(lr, momentum=0.9), 0.05, 1e-3),
    Spec("sgd_nesterov", lambda lr: gradtx.sgd(lr, 0.9, nesterov=True),
         0.05, 1e-3),
    Spec("sgdw", lambda lr: gradtx.sgdw(lr, 0.9, weight_decay=1e-4),
         0.05, 1e-3, needs_params=True),
    Spec("adagrad", lambda lr: gradtx.adagrad(lr), 0.5, 0.5),
    Spec("adagrad_paper", lambda lr: gradtx.adagrad(
        lr, initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False),
         0.5, 0.5),
    Spec("adadelta", lambda lr: gradtx.adadelta(lr, rho=0.95), 1.0, 1.0,
         rosenbrock_tol=0.5),
    Spec("rmsprop", lambda lr: gradtx.rmsprop(lr), 0.01, 1e-3),
    Spec("rmsprop_centered_momentum", lambda lr: gradtx.rmsprop(
        lr, centered=True, momentum=0.9), 0.01, 1e-4),
    Spec("rprop", lambda lr: gradtx.rprop(lr), 0.01, 0.01),
    Spec("adam", lambda lr: gradtx.adam(lr), 0.05, 0.02),
    Spec("adamw", lambda lr: gradtx.adamw(lr, weight_decay=1e-4), 0.05, 0.02,
         needs_params=True),
    Spec("adamax", lambda lr: gradtx.adamax(lr), 0.05, 0.02),
    Spec("nadam", lambda lr: gradtx.nadam(lr), 0.05, 0.02),
    Spec("nadamw", lambda lr: gradtx.nadamw(lr, weight_decay=1e-4), 0.05,
         0.02, needs_params=True),
    Spec("noisy_sgd", lambda lr: gradtx.noisy_sgd(lr, eta=1e-4, key=KEY),
         0.1, 1e-3),
    Spec("amsgrad", lambda lr: gradtx.amsgrad(lr), 0.05, 0.2),
    # RAdam's first five steps are un-adapted momentum steps of size lr * m:
    # on Rosenbrock (gradients ~1e2) they need a small rate.
    Spec("radam", lambda lr: gradtx.radam(lr), 0.05, 5e-3,
         rosenbrock_steps=10000),
    Spec("adabound", lambda lr: gradtx.adabound(lr, final_lr=lr), 0.05, 0.02),
    Spec("amsbound", lambda lr: gradtx.amsbound(lr, final_lr=lr), 0.05, 0.02),
    Spec("adam_amsgrad_rectify_bound", lambda lr: gradtx.chain(
        gradtx.scale_by_adam(), gradtx.amsgrad_max(), gradtx.rectify(),
        gradtx.bound_lr(lr, final_lr=lr)), 0.05, 3e-3),
    Spec("lookahead_sgd", lambda lr: gradtx.lookahead(
        gradtx.sgd(lr, momentum=0.9), sync_period=5), 0.05, 1e-3,
         needs_params=True),
    Spec("ranger", lambda lr: gradtx.ranger(lr), 0.05, 5e-3,
         needs_params=True, rosenbrock_steps=10000),
    Spec("swats", lambda lr: gradtx.swats(lr), 0.05, 0.02),
    Spec("swats_per_leaf", lambda lr: gradtx.swats(lr, per_leaf=True), 0.05,
         0.02),
    Spec("partition", lambda lr: gradtx.partition(
        {"big": gradtx.adam(lr), "small": gradtx.sgd(lr / 20, momentum=0.9)},
        _by_size), 0.05, 0.02),
    Spec("masked_adam", lambda lr: gradtx.chain(
        gradtx.masked(gradtx.scale_by_adam(), _big),
        gradtx.scale_by_learning_rate(lr)), 0.05, 1e-3),
    Spec("ema_params", lambda lr: gradtx.chain(gradtx.adam(lr),
                                               gradtx.ema_params(0.9)),
         0.05, 0.02, needs_params=True),
    Spec("freeze", lambda lr: gradtx.chain(gradtx.adam(lr),
                                           gradtx.freeze(_big)),
         0.05, 0.02, converges=False),
    Spec("multisteps_adam", lambda lr: gradtx.MultiSteps(
        gradtx.adam(lr), 2).gradient_transformation(), 0.05, 0.02,
         rosenbrock_steps=6000),
    Spec("apply_if_finite_adam", lambda lr: gradtx.apply_if_finite(
        gradtx.adam(lr), 3), 0.05, 0.02),
    Spec("clipped_adam", lambda lr: gradtx.chain(
        gradtx.clip_by_global_norm(10.0), gradtx.adam(lr)), 0.05, 0.02),
    # L-BFGS takes its step size from the line search (learning_rate=None);
    # second order, it gets to 1e-12 on Rosenbrock in 100 steps.
    Spec("lbfgs", lambda lr: gradtx.lbfgs(), 1.0, 1.0, needs_params=True,
         eager_recompiles=True,
         rosenbrock_tol=1e-12, rosenbrock_steps=100, needs_objective=True),
    # Second order: step sizes from the line search or the trust region.
    Spec("bfgs", lambda lr: gradtx.bfgs(), 1.0, 1.0, needs_params=True,
         eager_recompiles=True,
         rosenbrock_tol=1e-12, rosenbrock_steps=100, needs_objective=True),
    Spec("newton", lambda lr: gradtx.newton(), 1.0, 1.0, needs_params=True,
         eager_costly=True, rosenbrock_tol=1e-12, rosenbrock_steps=50, needs_objective=True),
    Spec("newton_cg", lambda lr: gradtx.newton_cg(), 1.0, 1.0,
         needs_params=True, eager_recompiles=True, rosenbrock_tol=1e-12, rosenbrock_steps=100,
         needs_objective=True),
    Spec("levenberg_marquardt", lambda lr: gradtx.levenberg_marquardt(),
         1.0, 1.0, needs_params=True, eager_recompiles=True, rosenbrock_tol=1e-12,
         rosenbrock_steps=50, needs_residuals=True),
    Spec("hessian_diag", lambda lr: gradtx.chain(
        gradtx.scale_by_hessian_diag(key=KEY), gradtx.scale(-lr)), 0.5, 0.3,
         needs_params=True, needs_objective=True, eager_costly=True),
    Spec("gauss_newton", lambda lr: gradtx.gauss_newton(), 1.0, 1.0,
         needs_params=True, eager_recompiles=True, rosenbrock_tol=1e-12,
         rosenbrock_steps=50, needs_residuals=True),
    Spec("hessian_diag_gauss_newton", lambda lr: gradtx.chain(
        gradtx.scale_by_hessian_diag(key=KEY, estimator="gauss_newton",
                                     loss="squared"), gradtx.scale(-lr)),
         0.5, 0.3, needs_params=True, needs_outputs=True),
    # vSGD has no learning rate to tune (the lr of the tests is unused).
    Spec("vsgd", lambda lr: gradtx.vsgd(key=KEY), 1.0, 1.0,
         needs_params=True, needs_objective=True, eager_costly=True),
    # The squared loss of residual outputs: a Gauss-Newton step (at rate
    # 0.5 on Rosenbrock, whose gradient is that of |r|**2, not |r|**2 / 2).
    Spec("natural_gradient", lambda lr: gradtx.natural_gradient(
        lr, loss="squared"), 1.0, 0.5, needs_params=True, eager_costly=True,
         rosenbrock_tol=1e-12, rosenbrock_steps=50, needs_outputs=True),
]

BY_NAME = {s.name: s for s in SPECS}


def local_value(x: Any, *, center: Any, slope: Any) -> jax.Array:
  """``<slope, x - center> + |x - center|**2 / 2``, real-valued for complex
  params too (``Re<g, d> + |d|^2 / 2``): 0 at ``center``, where its
  gradient is ``slope``."""
  d = jax.tree.map(lambda a, b: a - b, x, center)
  terms = jax.tree.map(
      lambda gi, di: jax.numpy.sum(jax.numpy.real(jax.numpy.conj(gi) * di)
                                   + jax.numpy.abs(di) ** 2 / 2),
      slope, d)
  return sum(jax.tree.leaves(terms))


def local_residuals(x: Any, *, center: Any, slope: Any) -> Any:
  """``x - center + slope``: half its squared norm is :func:`local_value`
  plus a constant."""
  return jax.tree.map(lambda a, b, g: a - b + g, x, center, slope)


def objective_kwargs(spec: Spec, params: Any, grads: Any) -> dict:
  """The keyword arguments a line search reads, for gradients fed directly.

  Tests that feed arbitrary ``grads`` at ``params`` (zeros, huge values,
  NaN) give an entry flagged ``needs_objective`` the local model whose
  gradient at ``params`` is exactly ``grads``:
  ``f(x) = <grads, x - params> + |x - params|**2 / 2`` (value 0 at params).
  Entries flagged ``needs_residuals`` get ``residual_fn(x) = x - params +
  grads``, whose ``sum(r**2) / 2`` is that model plus a constant. Other
  entries get nothing.

  The functions are the fixed :func:`local_value` and
  :func:`local_residuals`, given ``params`` and ``grads`` as data
  (``center``, ``slope``), as a user passes a model and its batch: the
  programs an update traces from them are the same at every step, so an
  eager step does not compile its line search or Hessian again.
  """
  data = dict(center=params, slope=grads)
  if spec.needs_residuals or spec.needs_outputs:
    key = "residual_fn" if spec.needs_residuals else "output_fn"
    return {key: local_residuals, **data}
  if not spec.needs_objective:
    return {}
  return dict(value=local_value(params, **data), grad=grads,
              value_fn=local_value, **data)


def leaf_arrays(tree: Any) -> list:
  """The leaves of ``tree`` as NumPy arrays, PRNG keys as their key data,
  for comparing states bit for bit."""
  out = []
  for x in jax.tree.leaves(tree):
    if jax.numpy.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    out.append(np.asarray(x))
  return out


# --------------------------------------------------------------------------
# One tree, one rate and one compiled step per (entry, dtype), shared by the
# property, numerics and hypothesis tests: a program compiled for one file
# is found in the compilation cache by the others (same text), and two
# leaves of one shape let eager steps reuse each primitive's program.

LR = 1e-2


def tree_params(dtype=np.float32) -> dict:
  """The params every shared run starts from: two (3, 2) leaves."""
  w = np.linspace(-1.0, 1.0, 6).reshape(3, 2) + 0.1
  b = np.array([[0.5, -0.25], [2.0, 0.3], [-1.5, 0.7]])
  return {"w": jax.numpy.asarray(w, dtype), "b": jax.numpy.asarray(b, dtype)}


def tree_grads(params: dict, i: int) -> dict:
  """Gradients of step ``i`` at ``params``: ``sin(3 p + i) + 0.1``,
  computed in NumPy (no compile) and rounded to the params' dtype."""
  return jax.tree.map(
      lambda p: jax.numpy.asarray(
          np.sin(3.0 * np.asarray(p, np.float64) + i) + 0.1, p.dtype),
      params)


# The entries whose eager steps cost more than one jitted step per dtype.
COSTLY = [s.name for s in SPECS if s.eager_recompiles or s.eager_costly]


@functools.cache
def jitted_update(name: str):
  """Entry ``name`` at rate LR and its update jitted, given the local model
  of :func:`objective_kwargs` if it needs one: what :func:`spec_steps`
  runs for one entry when the step of all :data:`COSTLY` entries cannot
  be traced (so that the failure names the entry at fault)."""
  spec = BY_NAME[name]
  tx = spec.make(LR)
  return tx, jax.jit(eager_update(spec, tx))


@functools.cache
def jitted_costly_update():
  """Every :data:`COSTLY` entry at rate LR and one jitted update of them
  all, taking and returning {name: ...} for grads, state and params.
  Cached: XLA compiles one program holding every entry's update in less
  time than one program per entry (about 20% less), and the program text
  is the same in every file for a dtype (a persistent-cache hit there)."""
  txs = {name: BY_NAME[name].make(LR) for name in COSTLY}
  return txs, jax.jit(update_all(
      {n: eager_update(BY_NAME[n], tx) for n, tx in txs.items()}))


def costly_steps(params: Any, grads_seq) -> dict:
  """{name: (updates, state, params) after each step} of every
  :data:`COSTLY` entry from ``params``, all through
  :func:`jitted_costly_update`; ``grads_seq`` as in :func:`run_steps`."""
  txs, update = jitted_costly_update()
  ps = {n: params for n in txs}
  ss = {n: tx.init(params) for n, tx in txs.items()}
  out = {n: [] for n in txs}
  for g in grads_seq:
    gs = {n: g(ps[n]) if callable(g) else g for n in txs}
    us, ss = update(gs, ss, ps)
    ps = {n: gradtx.apply_updates(ps[n], us[n]) for n in txs}
    for n in txs:
      out[n].append((us[n], ss[n], ps[n]))
  return out


def eager_update(spec: Spec, tx: Any) -> Callable:
  """``update(grads, state, params)`` of ``tx`` run eagerly, given the local
  model of :func:`objective_kwargs` if ``spec`` needs one."""
  return lambda g, s, p: tx.update(g, s, p, **objective_kwargs(spec, p, g))


def update_all(updates: dict) -> Callable:
  """``update(grads, states, params)`` over dicts keyed like ``updates``
  ({name: ``update(g, s, p)``}): each entry steps on its own values, and
  the updates and new states come back as two dicts."""
  def update(gs, ss, ps):
    out = {n: updates[n](gs[n], ss[n], ps[n]) for n in gs}
    return ({n: u for n, (u, _) in out.items()},
            {n: s for n, (_, s) in out.items()})
  return update


def run_steps(tx: Any, update: Callable, params: Any, grads_seq,
              apply_updates: Callable = gradtx.apply_updates) -> list:
  """(updates, state, params) after each step of ``update`` from ``params``
  and ``tx.init(params)``; ``grads_seq`` holds gradients, or functions of
  the current params that return them."""
  state, out = tx.init(params), []
  for g in grads_seq:
    g = g(params) if callable(g) else g
    updates, state = update(g, state, params)
    params = apply_updates(params, updates)
    out.append((updates, state, params))
  return out


def spec_steps(spec: Spec, params: Any, grads_seq) -> list:
  """(updates, state, params) after each step of entry ``spec`` at rate LR:
  eager, or for an entry whose eager steps cost more
  (``eager_recompiles``, ``eager_costly``) jitted, with every such entry
  run alongside it (:func:`costly_steps`, one program per dtype for all
  of them and all tests). For tests that check values, not eagerness."""
  if spec.name in COSTLY:
    try:
      return costly_steps(params, grads_seq)[spec.name]
    except Exception:  # pylint: disable=broad-except
      tx, update = jitted_update(spec.name)  # raises for the one at fault
  else:
    tx = spec.make(LR)
    update = eager_update(spec, tx)
  return run_steps(tx, update, params, grads_seq)
