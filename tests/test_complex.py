"""Complex parameters: supported where the maths has a complex form.

The Adam family (Adam, AdamW, Nadam, NadamW, AMSGrad, RAdam, Adamax), SGD,
RMSProp and Adagrad, and the wrappers around them, take complex params: the
second moments use ``|g|**2`` and the updates equal optax's step for step.
The transforms whose maths has no complex form raise a ``TypeError`` that
names them at the first ``update`` (a dtype is static under ``jit``, so the
check costs nothing at run time): ``scale_by_adadelta``, ``scale_by_rprop``,
``swats``, ``clip`` and ``bound_lr`` (so ``adabound`` and ``amsbound``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import common
import gradtx
from registry import (BY_NAME, COSTLY, LR, SPECS, eager_update, jitted_update,
                      run_steps)
from test_numerics import OPTAX_TWINS

# Registered optimizers that refuse complex params, and the transform that
# says so. Every other registered optimizer must accept them.
REJECTED = {
    "adadelta": "scale_by_adadelta",
    "rprop": "scale_by_rprop",
    "adabound": "bound_lr",
    "amsbound": "bound_lr",
    "adam_amsgrad_rectify_bound": "bound_lr",
    "swats": "swats",
    "swats_per_leaf": "swats",
    "bfgs": "scale_by_bfgs",
    "newton": "scale_by_newton",
    "newton_cg": "scale_by_newton_cg",
    "levenberg_marquardt": "levenberg_marquardt",
    "gauss_newton": "gauss_newton",
    "hessian_diag_gauss_newton": "scale_by_hessian_diag",
    "vsgd": "scale_by_vsgd",
    "hessian_diag": "scale_by_hessian_diag",
    "natural_gradient": "scale_by_natural_gradient",
}
SUPPORTED = [s for s in SPECS if s.name not in REJECTED]

RNG = np.random.default_rng(0)


def _complex(shape, scale=1.0):
  return jnp.asarray(scale * (RNG.normal(size=shape)
                              + 1j * RNG.normal(size=shape)))


PARAMS = {"w": _complex((3, 2)), "b": _complex((3, 2))}
GRADS = [jax.tree.map(lambda p: _complex(p.shape, 3.0), PARAMS)
         for _ in range(6)]


def _trajectory(tx, params=PARAMS, grads=GRADS, spec=None):
  return common.trajectory(tx, grads, params, spec)


def test_rejected_names_are_registered():
  # Every other registered optimizer is expected to take complex params:
  # a new one that cannot must be added to REJECTED, with its error.
  assert set(REJECTED) <= set(BY_NAME)


@pytest.mark.parametrize("spec", SUPPORTED, ids=[s.name for s in SUPPORTED])
def test_complex_params_work(spec):
  if spec.name in COSTLY:
    # Values are checked here, not eagerness: one jitted step costs less.
    tx, update = jitted_update(spec.name)
  else:
    tx = spec.make(LR)
    update = eager_update(spec, tx)
  state = tx.init(PARAMS)
  steps = run_steps(tx, update, PARAMS, GRADS)
  for updates, _, _ in steps:
    for u in jax.tree.leaves(updates):
      assert u.dtype == jnp.complex128
      assert bool(jnp.all(jnp.isfinite(u)))
  assert jax.tree.structure(state) == jax.tree.structure(
      update(GRADS[0], state, PARAMS)[1])


# optax's MultiSteps accumulates in float32 and drops the imaginary part;
# gradtx's is checked against its inner optimizer instead (below). The
# other wrappers are covered by test_complex_params_work.
CASES = [(name, OPTAX_TWINS[name]) for name in sorted(OPTAX_TWINS)
         if name not in REJECTED
         and name not in ("multisteps_adam", "apply_if_finite_adam")] + [
    ("adam_nesterov_eps_root", lambda m: m.adam(1e-2, nesterov=True,
                                                eps_root=1e-8)),
    ("adagrad_opts", lambda m: m.adagrad(0.3, initial_accumulator_value=0.5,
                                         eps=1e-3)),
    ("rmsprop_eps_out_bias", lambda m: m.rmsprop(
        1e-2, eps_in_sqrt=False, initial_scale=1.0, bias_correction=True)),
    ("rmsprop_centered_nesterov", lambda m: m.rmsprop(
        1e-2, centered=True, momentum=0.9, nesterov=True)),
    ("amsgrad_opts", lambda m: m.amsgrad(1e-2, b1=0.8, b2=0.9)),
    ("adamax_opts", lambda m: m.adamax(1e-2, b1=0.8, b2=0.99, eps=1e-3)),
]


def _pair(name, make):
  if name in OPTAX_TWINS:
    return BY_NAME[name].make(1e-2), make(1e-2)
  return make(gradtx), make(optax)


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_complex_matches_optax(name, make):
  ours, theirs = _pair(name, make)
  for step, ((ua, pa), (ub, pb)) in enumerate(
      zip(_trajectory(ours), _trajectory(theirs))):
    for x, y in zip(jax.tree.leaves((ua, pa)), jax.tree.leaves((ub, pb))):
      assert x.dtype == y.dtype == jnp.complex128
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-10,
                                 atol=1e-15, err_msg=f"{name}, step {step}")


def test_complex_multisteps_steps_on_the_mean_gradient():
  ours = _trajectory(gradtx.MultiSteps(gradtx.adam(1e-2), 2))
  means = [jax.tree.map(lambda a, b: (a + b) / 2, GRADS[i], GRADS[i + 1])
           for i in range(0, len(GRADS), 2)]
  inner = _trajectory(gradtx.adam(1e-2), grads=means)
  for i, (_, p) in enumerate(inner):
    for x, y in zip(jax.tree.leaves(ours[2 * i + 1][1]), jax.tree.leaves(p)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-12)


REJECTIONS = [(name, lambda name=name: BY_NAME[name].make(1e-2), transform)
              for name, transform in REJECTED.items()] + [
    ("clip", lambda: gradtx.clip(1.0), "clip"),
    ("scale_by_rprop", lambda: gradtx.scale_by_rprop(0.1), "scale_by_rprop"),
]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("make,transform", [r[1:] for r in REJECTIONS],
                         ids=[r[0] for r in REJECTIONS])
def test_complex_rejected_with_the_transform_name(make, transform, jit):
  tx = make()
  params = {"w": PARAMS["w"].astype(jnp.complex64)}
  update = jax.jit(tx.update) if jit else tx.update
  # Most refuse at the first update; L-BFGS already at init (the params).
  with pytest.raises(TypeError, match=(
      rf"{transform}: the (update|param) at \['w'\] is complex "
      rf"\(complex64\), which {transform} does not support: .* For complex "
      r"(parameters|updates) use ")):
    update(params, tx.init(params), params)


def test_real_params_next_to_complex_ones_are_still_rejected():
  """The check is per leaf: one complex leaf is enough, and it is named."""
  tx = gradtx.rprop(1e-2)
  params = {"a": jnp.ones(2), "z": jnp.ones(2, jnp.complex64)}
  with pytest.raises(TypeError, match=r"scale_by_rprop: the update at "
                     r"\['z'\] is complex"):
    tx.update(params, tx.init(params))
