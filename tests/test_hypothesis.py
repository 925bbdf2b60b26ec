"""Property tests over random trees, shapes, dtypes and hyperparameters.

* Per-step equality with optax for the optimizers both libraries have, with
  random hyperparameters, trees and gradient magnitudes.
* For every registered optimizer: the state keeps its structure, shapes and
  dtypes; updates keep the params' dtypes and shapes; zero gradients and
  float32 gradients anywhere up to 1e30 stay finite.
* Bad trees (a key dropped, a shape changed, an integer leaf) always raise
  an error that names the transform (or ``apply_updates``), and never run.

The search is bounded and derandomized (a fixed seed, no example database),
so a CI run is reproducible and takes well under a minute. Shapes come from
a small pool, so most examples reuse the per-primitive compile cache.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradtx
from registry import SPECS, objective_kwargs
from test_numerics import OVERFLOWS

BOUNDED = settings(max_examples=20, deadline=None, derandomize=True,
                   database=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.data_too_large])

SHAPES = [(), (3,), (3, 2)]  # (3, 2): the leaves of registry.tree_params
KEYS = ["a", "b", "c"]


@st.composite
def trees(draw, dtypes=(jnp.float64,)):
  """A dict of 1-3 leaves with shapes from SHAPES and one dtype."""
  keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3,
                       unique=True))
  dtype = draw(st.sampled_from(dtypes))
  shapes = {k: draw(st.sampled_from(SHAPES)) for k in sorted(keys)}
  seed = draw(st.integers(0, 2**16))
  return shapes, jnp.dtype(dtype), seed


def _values(shapes, dtype, rng, lo=-3.0, hi=1.5):
  """Entries ``+-10**u``, ``u`` uniform in ``[lo, hi]``: no exact zeros."""
  out = {}
  for k, shape in shapes.items():
    mag = 10.0 ** rng.uniform(lo, hi, size=shape)
    sign = rng.choice([-1.0, 1.0], size=shape)
    out[k] = jnp.asarray(sign * mag, dtype=dtype)
  return out


unit = st.floats(0.0, 0.99)
b2s = st.floats(0.5, 0.9999)
epss = st.floats(1e-10, 1e-3)
lrs = st.floats(1e-4, 0.3)


@st.composite
def optimizers(draw):
  """(name, kwargs) of an optimizer that gradtx and optax both have."""
  name = draw(st.sampled_from([
      "sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "adamax",
      "nadam", "nadamw", "amsgrad", "radam"]))
  kw = {"learning_rate": draw(lrs)}
  if name == "sgd":
    kw["momentum"] = draw(st.none() | unit)
    kw["nesterov"] = kw["momentum"] is not None and draw(st.booleans())
  elif name == "adagrad":
    kw["initial_accumulator_value"] = draw(st.floats(0.0, 1.0))
    kw["eps"] = draw(epss)
  elif name == "adadelta":
    kw.update(rho=draw(st.floats(0.5, 0.99)), eps=draw(epss))
  elif name == "rmsprop":
    kw.update(decay=draw(st.floats(0.5, 0.99)), eps=draw(epss),
              centered=draw(st.booleans()),
              momentum=draw(st.none() | st.floats(0.0, 0.95)))
  else:
    kw.update(b1=draw(unit), b2=draw(b2s), eps=draw(epss))
    if name in ("adamw", "nadamw"):
      kw["weight_decay"] = draw(st.floats(0.0, 0.1))
  return name, kw


STEPS = 3


@BOUNDED
@given(opt=optimizers(), tree=trees(dtypes=(jnp.float64, jnp.float32)))
def test_matches_optax_per_step(opt, tree):
  name, kw = opt
  shapes, dtype, seed = tree
  rng = np.random.default_rng(seed)
  params = _values(shapes, dtype, rng, -1.0, 0.5)
  grads = [_values(shapes, dtype, rng) for _ in range(STEPS)]
  ours, theirs = getattr(gradtx, name)(**kw), getattr(optax, name)(**kw)
  s_ours, s_theirs = ours.init(params), theirs.init(params)
  p_ours = p_theirs = params
  # Rounding differs between the two (gradtx keeps second moments as
  # roots), so compare to a few ulps of the dtype, scaled by the step size.
  tol = 1e-9 if dtype == jnp.float64 else 1e-4
  for step, g in enumerate(grads):
    u_ours, s_ours = ours.update(g, s_ours, p_ours)
    u_theirs, s_theirs = theirs.update(g, s_theirs, p_theirs)
    for k in shapes:
      assert u_ours[k].dtype == u_theirs[k].dtype == dtype
      np.testing.assert_allclose(
          np.asarray(u_ours[k], np.float64), np.asarray(u_theirs[k],
                                                        np.float64),
          rtol=tol, atol=tol * kw["learning_rate"],
          err_msg=f"{name} {kw}, step {step}, leaf {k}")
    p_ours = gradtx.apply_updates(p_ours, u_ours)
    p_theirs = optax.apply_updates(p_theirs, u_theirs)


def _signature(tree):
  return (jax.tree.structure(tree),
          [(jnp.shape(x), jnp.asarray(x).dtype) for x in jax.tree.leaves(tree)])


def _finite(tree):
  return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree)
             if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact))


@BOUNDED
@given(spec=st.sampled_from(SPECS),
       tree=trees(dtypes=(jnp.float32, jnp.bfloat16, jnp.float64)),
       lr=lrs, zero=st.booleans())
def test_state_and_dtypes_are_stable(spec, tree, lr, zero):
  shapes, dtype, seed = tree
  rng = np.random.default_rng(seed)
  params = _values(shapes, dtype, rng, -1.0, 0.5)
  tx = spec.make(lr)
  state = tx.init(params)
  before = _signature(state)

  def update(g, state, params):
    return tx.update(g, state, params, **objective_kwargs(spec, params, g))

  if spec.eager_recompiles:
    # Its eager update compiles anew at each call; jitted, the two steps
    # share one program (the signatures checked are the same).
    update = jax.jit(update)
  for _ in range(2):
    g = (jax.tree.map(jnp.zeros_like, params) if zero
         else _values(shapes, dtype, rng))
    updates, state = update(g, state, params)
    assert _signature(state) == before, spec.name
    for k, p in params.items():
      assert updates[k].dtype == p.dtype and updates[k].shape == p.shape
    assert _finite(updates) and _finite(state), spec.name
    params = gradtx.apply_updates(params, updates)


# Optimizers whose exact step overflows float32 for gradients near 1e30
# (Newton's step on a model with Hessian I is the gradient itself), as
# test_numerics.OVERFLOWS records with its reason.
FLOAT32_RANGE = [s for s in SPECS if (s.name, "float32") not in OVERFLOWS]


def test_float32_overflows_are_inherent():
  assert all(reason.startswith("inherent")
             for (_, dtype), reason in OVERFLOWS.items()
             if dtype == "float32")


@BOUNDED
@given(spec=st.sampled_from(FLOAT32_RANGE),
       tree=trees(dtypes=(jnp.float32,)),
       top=st.floats(0.0, 30.0))
def test_float32_gradients_up_to_1e30_put_no_nan_into_params(spec, tree,
                                                             top):
  # Second moments are stored as v (as in optax): beyond about 1e19, g**2
  # overflows to Inf there and the entry's update is 0, never NaN.
  shapes, dtype, seed = tree
  rng = np.random.default_rng(seed)
  params = _values(shapes, dtype, rng, -1.0, 0.5)
  tx = spec.make(1e-2)
  state = tx.init(params)
  for _ in range(2):
    g = _values(shapes, dtype, rng, top - 3.0, top)
    updates, state = tx.update(g, state, params,
                               **objective_kwargs(spec, params, g))
    params = gradtx.apply_updates(params, updates)
    assert not any(bool(jnp.any(jnp.isnan(x)))
                   for x in jax.tree.leaves((updates, params))), spec.name


# A stateless transform that reads no params (plain sgd) cannot see a bad
# tree: apply_updates then refuses it, naming the params.
MUTATIONS = {
    "drop_key": (ValueError, "in the (state|params) but not in the updates"),
    "add_key": (ValueError, "in the updates but not in the (state|params)"),
    "reshape": (ValueError, r"shape mismatch at|has shape \("),
    "int_leaf": (TypeError, "gradients must be floating or complex"),
}


@BOUNDED
@given(spec=st.sampled_from(SPECS), tree=trees(),
       mutation=st.sampled_from(sorted(MUTATIONS)), data=st.data())
def test_bad_trees_always_raise(spec, tree, mutation, data):
  shapes, dtype, seed = tree
  rng = np.random.default_rng(seed)
  params = _values(shapes, dtype, rng)
  grads = dict(params)
  key = data.draw(st.sampled_from(sorted(shapes)))
  if mutation == "drop_key":
    if len(grads) == 1:
      grads = {"zz": grads[key]}  # dropped and another added
    else:
      del grads[key]
  elif mutation == "add_key":
    grads["zz"] = jnp.ones(2, dtype)
  elif mutation == "reshape":
    grads[key] = jnp.ones(shapes[key] + (2,), dtype)
  else:
    grads[key] = jnp.ones(shapes[key], jnp.int32)
  err, match = MUTATIONS[mutation]
  if mutation == "drop_key" and len(params) == 1:
    match = "do not match"
  tx = spec.make(1e-2)
  state = tx.init(params)
  with pytest.raises(err, match=match) as info:
    # A line search is given a well-formed objective: the bad tree is the
    # gradient passed as ``updates``.
    updates, _ = tx.update(grads, state, params,
                           **objective_kwargs(spec, params, params))
    gradtx.apply_updates(params, updates)
  # The message names a transform: "name: ..." at its start.
  assert ": " in str(info.value).split("\n")[0]
