"""Numerics of every registered optimizer at the edges of the input range.

For each entry of ``registry.SPECS``: zero gradients never give a NaN or an
Inf; a NaN or an Inf in one gradient entry does what docs/robustness.md says
(it propagates as in optax, unless the optimizer skips, zeroes or absorbs
it); float32 gradients of 1e30 and bfloat16 gradients at the dtype's
largest value never put a NaN into the params. Where that fails
today the case is marked ``xfail(strict=True)`` with the reason, so a fix
shows up as an unexpected pass.

Steps run eagerly on float32 (and bfloat16) leaves of one shape (the tree
of ``registry.tree_params``): every optimizer shares the per-primitive
compile cache, which costs far less than one jitted program per optimizer
and dtype. Entries flagged ``eager_recompiles`` or ``eager_costly`` (line
searches, dense Hessians) are the exception: their eager steps compile
more than one jitted step per dtype: they run through
``registry.costly_steps``, one jitted update of all of them per dtype,
which all the tests here share with test_properties.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import common
import gradtx
from registry import (BY_NAME, KEY, LR, SPECS, _big, _by_size, spec_steps,
                      tree_grads, tree_params)

IDS = [s.name for s in SPECS]


# The optax optimizer that each registered one equals, with the same
# hyperparameters as registry.SPECS at learning rate ``lr``. Shared with
# test_hypothesis and test_complex.
OPTAX_TWINS = {
    "sgd": lambda lr: optax.sgd(lr),
    "sgd_momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "sgd_nesterov": lambda lr: optax.sgd(lr, 0.9, nesterov=True),
    "adagrad": lambda lr: optax.adagrad(lr),
    "adadelta": lambda lr: optax.adadelta(lr, rho=0.95),
    "rmsprop": lambda lr: optax.rmsprop(lr),
    "rmsprop_centered_momentum": lambda lr: optax.rmsprop(
        lr, centered=True, momentum=0.9),
    "adam": lambda lr: optax.adam(lr),
    "adamw": lambda lr: optax.adamw(lr, weight_decay=1e-4),
    "adamax": lambda lr: optax.adamax(lr),
    "nadam": lambda lr: optax.nadam(lr),
    "nadamw": lambda lr: optax.nadamw(lr, weight_decay=1e-4),
    "noisy_sgd": lambda lr: optax.noisy_sgd(lr, eta=1e-4, key=KEY),
    "amsgrad": lambda lr: optax.amsgrad(lr),
    "radam": lambda lr: optax.radam(lr),
    "partition": lambda lr: optax.partition(
        {"big": optax.adam(lr), "small": optax.sgd(lr / 20, momentum=0.9)},
        _by_size),
    "masked_adam": lambda lr: optax.chain(
        optax.masked(optax.scale_by_adam(), _big),
        optax.scale_by_learning_rate(lr)),
    "multisteps_adam": lambda lr: optax.MultiSteps(
        optax.adam(lr), 2).gradient_transformation(),
    "apply_if_finite_adam": lambda lr: optax.apply_if_finite(
        optax.adam(lr), 3),
    "clipped_adam": lambda lr: optax.chain(optax.clip_by_global_norm(10.0),
                                           optax.adam(lr)),
}
TWINS = sorted(OPTAX_TWINS)


def test_twins_are_registered():
  assert set(OPTAX_TWINS) <= set(BY_NAME)


def _inexact(tree):
  return [x for x in jax.tree.leaves(tree)
          if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]


def _finite(tree):
  return all(bool(jnp.all(jnp.isfinite(x))) for x in _inexact(tree))


def _run(tx, params, grads_seq, spec=None):
  """Eager steps (gradtx's apply_updates); the (updates, state) after each."""
  return [(u, s) for u, s, _ in
          common.steps(tx, grads_seq, params, spec, gradtx.apply_updates)]


# --------------------------------------------------------------------------
# Zero gradients


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_zero_gradients_stay_finite(spec):
  params = tree_params(jnp.float32)
  zeros = jax.tree.map(jnp.zeros_like, params)
  for step, (updates, state, _) in enumerate(
      spec_steps(spec, params, [zeros] * 4)):
    assert _finite(updates), f"{spec.name}: non-finite update at step {step}"
    assert _finite(state), f"{spec.name}: non-finite state at step {step}"


# --------------------------------------------------------------------------
# NaN and Inf gradients

BAD = {"nan": jnp.nan, "inf": jnp.inf}


def _bad_sequence(params, value):
  """Three steps; the second has ``value`` at ``w[0, 0]``."""
  seq = [tree_grads(params, i) for i in range(3)]
  seq[1] = dict(seq[1], w=seq[1]["w"].at[0, 0].set(value))
  return seq


def _expected(name, kind):
  """Which updates are non-finite at the bad step (see docs/robustness.md).

  "entry": just the bad entry's; "all": every entry's; "none": no entry's.
  """
  if name == "apply_if_finite_adam":
    return "none"  # the step is skipped
  if name == "freeze":
    return "none"  # the bad entry is in a frozen leaf: its update is 0
  if name == "rprop" and kind == "inf":
    return "none"  # Rprop uses only the sign of the gradient
  if name == "clipped_adam" and kind == "nan":
    return "all"  # the global norm is NaN
  if name == "lbfgs":
    return "all"  # the two-loop recursion's inner products mix all entries
  if name == "bfgs" and kind == "inf":
    return "entry"  # the pair with the inf is skipped: a scaled gradient
  if name in ("bfgs", "newton", "newton_cg", "levenberg_marquardt",
              "gauss_newton", "natural_gradient"):
    return "all"  # a dense matrix or inner products mix all entries
  return "entry"


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_non_finite_gradients_propagate(spec, kind):
  params = tree_params(jnp.float32)
  (u0, _, _), (u1, s1, _), _ = spec_steps(spec, params,
                                          _bad_sequence(params, BAD[kind]))
  assert _finite(u0)
  bad = {k: ~np.isfinite(np.asarray(v)) for k, v in u1.items()}
  expected = _expected(spec.name, kind)
  if expected == "none":
    assert not any(b.any() for b in bad.values()), f"{spec.name}: {bad}"
  elif expected == "all":
    assert all(b.all() for b in bad.values()), f"{spec.name}: {bad}"
  else:
    assert bad["w"][0, 0] and bad["w"].sum() == 1 and not bad["b"].any(), (
        f"{spec.name}: non-finite updates at {bad}")
  if spec.name == "apply_if_finite_adam":
    assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(u1))
    assert int(s1.notfinite_count) == 1 and _finite(s1.inner_state)


# optax's MultiSteps resets its accumulator by arithmetic that turns an Inf
# into a NaN for good; gradtx's does not (pinned in the test after this one).
SAME_NON_FINITE = [n for n in TWINS if n != "multisteps_adam"]


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("name", SAME_NON_FINITE)
def test_non_finite_pattern_matches_optax(name, kind):
  """Step for step, the same entries are non-finite as in optax."""
  params = tree_params(jnp.float32)
  seq = _bad_sequence(params, BAD[kind])
  ours = _run(BY_NAME[name].make(LR), params, seq)
  theirs = _run(OPTAX_TWINS[name](LR), params, seq)
  for step, ((a, _), (b, _)) in enumerate(zip(ours, theirs)):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(
          np.isfinite(np.asarray(x)), np.isfinite(np.asarray(y)),
          err_msg=f"{name}, {kind}, step {step}")


def test_multisteps_recovers_from_inf_where_optax_stays_nan():
  params = {"w": jnp.ones(2)}
  seq = [{"w": jnp.array(g)} for g in
         ([1.0, 1.0], [jnp.inf, 1.0], [1.0, 1.0], [1.0, 1.0])]
  ours = _run(gradtx.MultiSteps(gradtx.sgd(0.1), 2), params, seq)
  theirs = _run(optax.MultiSteps(optax.sgd(0.1), 2), params, seq)
  # The cycle with the Inf emits a non-finite update in both.
  assert not np.isfinite(ours[1][0]["w"][0])
  assert not np.isfinite(theirs[1][0]["w"][0])
  # The next cycle: gradtx's accumulator was reset to 0; optax's holds NaN.
  assert _finite(ours[2]) and _finite(ours[3])
  np.testing.assert_allclose(ours[3][0]["w"], [-0.1, -0.1])
  assert np.isnan(theirs[3][0]["w"][0])
  assert np.isnan(theirs[3][1].acc_grads["w"][0])


# --------------------------------------------------------------------------
# Huge gradients

HUGE = {"float32": (jnp.float32, 1e30),
        "bfloat16": (jnp.bfloat16, float(jnp.finfo(jnp.bfloat16).max))}

# Where the params take a NaN, and why. "inherent": the exact result is
# itself beyond the dtype's range, so no way of computing it is finite.
OVERFLOWS = {
    ("sgd_nesterov", "bfloat16"): "inherent: Nesterov's update g + b * v is "
    "1.9 * g at the first step, beyond bfloat16's max",
    # L-BFGS keeps every curvature pair, as optax does (its iterates equal
    # optax's); the pair of two bfloat16-max gradients overflows s.y and
    # y.y, and optax.lbfgs gives the same NaN.
    ("lbfgs", "bfloat16"): "as optax: the curvature pair of two "
    "bfloat16-max gradients overflows",
}
# Newton's step on the local model (Hessian I) is the gradient itself, and
# the model's decrease along it, |g|**2 / 2, is beyond the dtype's range;
# so is the least-squares cost |r|**2 / 2 of residuals at the gradient.
for _name in ("newton_cg", "levenberg_marquardt", "gauss_newton"):
  for _dtype in ("float32", "bfloat16"):
    OVERFLOWS[(_name, _dtype)] = (
        "inherent: the model's value |g|**2 / 2 at the Newton step (or the "
        "cost |r|**2 / 2) is beyond the dtype's max")


def test_overflow_marks_name_registered_optimizers():
  assert {name for name, _ in OVERFLOWS} <= set(BY_NAME)


def _huge_cases():
  for spec in SPECS:
    for dtype_name in HUGE:
      reason = OVERFLOWS.get((spec.name, dtype_name))
      marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
      yield pytest.param(spec, dtype_name, marks=marks,
                         id=f"{spec.name}-{dtype_name}")


def _no_nan(tree):
  return not any(bool(jnp.any(jnp.isnan(x))) for x in _inexact(tree))


@pytest.mark.parametrize("spec,dtype_name", list(_huge_cases()))
def test_huge_gradients_put_no_nan_into_params(spec, dtype_name):
  """Two steps of huge gradients of both signs, then an ordinary one.

  Second moments are stored as ``v`` (as in optax), so ``g**2`` may
  overflow to Inf there; that entry's update is then 0, never NaN.
  """
  dtype, big = HUGE[dtype_name]
  params = tree_params(dtype)
  sign = jax.tree.map(lambda p: jnp.where(p >= 0, 1, -1).astype(dtype),
                      params)
  seq = [jax.tree.map(lambda s: s * jnp.asarray(big, dtype), sign),
         jax.tree.map(lambda s: -s * jnp.asarray(big, dtype), sign),
         tree_grads(params, 2)]
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(seq))
  for step, (updates, _, p) in enumerate(spec_steps(spec, params, seq)):
    assert _no_nan(updates), f"{spec.name}: NaN update at step {step}"
    assert _no_nan(p), f"{spec.name}: NaN params at step {step}"
