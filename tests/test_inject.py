"""Hyperparameters as schedules, and inject_hyperparams.

The trajectories take 25 steps: the schedules below settle by step 10.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import common
from common import GRADS, PARAMS, assert_close, assert_trajectories_close

trajectory = functools.partial(common.trajectory, grads=GRADS[:25])


def decay_sched(count):
  return 0.5 + 0.4 * jnp.minimum(count, 10) / 10  # 0.5 -> 0.9


def small_sched(count):
  return 1e-2 / (1.0 + count)


# (id, gradtx builder, optax builder with the same hyperparameter injected)
SCHEDULED = [
    ("sgd_momentum", lambda: gradtx.sgd(0.1, momentum=decay_sched),
     lambda: optax.inject_hyperparams(optax.sgd)(0.1, momentum=decay_sched)),
    ("adam_b1", lambda: gradtx.adam(1e-2, b1=decay_sched),
     lambda: optax.inject_hyperparams(optax.adam)(1e-2, b1=decay_sched)),
    ("adam_b2", lambda: gradtx.adam(1e-2, b2=decay_sched),
     lambda: optax.inject_hyperparams(optax.adam)(1e-2, b2=decay_sched)),
    ("rmsprop_decay", lambda: gradtx.rmsprop(1e-2, decay=decay_sched),
     lambda: optax.inject_hyperparams(optax.rmsprop)(1e-2,
                                                     decay=decay_sched)),
    ("adadelta_rho", lambda: gradtx.adadelta(0.5, rho=decay_sched),
     lambda: optax.inject_hyperparams(optax.adadelta)(0.5, rho=decay_sched)),
    ("adamw_decay", lambda: gradtx.adamw(1e-2, weight_decay=small_sched),
     lambda: optax.inject_hyperparams(optax.adamw)(
         1e-2, weight_decay=small_sched)),
    ("noisy_sgd_eta", lambda: gradtx.noisy_sgd(1e-2, eta=small_sched,
                                               key=jax.random.key(0)),
     lambda: optax.inject_hyperparams(optax.noisy_sgd)(
         1e-2, eta=small_sched, key=jax.random.key(0))),
]


@pytest.mark.parametrize("ours,theirs", [c[1:] for c in SCHEDULED],
                         ids=[c[0] for c in SCHEDULED])
def test_scheduled_hyperparameter_matches_optax_injection(ours, theirs):
  assert_trajectories_close(trajectory(ours()), trajectory(theirs()))


def test_scheduled_final_lr_bounds_adabound():
  """A final_lr schedule is used as it is for the bounds."""
  tx = gradtx.adabound(1e-3, final_lr=lambda c: 0.05, gamma=100.0)
  state = tx.init(PARAMS)
  u, state = tx.update(GRADS[0], state, PARAMS)
  ratio = np.asarray(-u["w"] / state[1].mu["w"])
  lower, upper = 0.05 * (1 - 1 / 101), 0.05 * (1 + 1 / 100)
  assert np.all((ratio >= lower * (1 - 1e-12)) & (ratio <= upper * (1 + 1e-12)))


INJECTABLE = [
    ("sgd", gradtx.sgd, dict(learning_rate=0.1, momentum=0.9)),
    ("adam", gradtx.adam, dict(learning_rate=1e-2)),
    ("adamw", gradtx.adamw, dict(learning_rate=1e-2, weight_decay=1e-2)),
    ("rmsprop", gradtx.rmsprop, dict(learning_rate=1e-2, centered=True)),
    ("radam", gradtx.radam, dict(learning_rate=1e-2)),
    ("adabound", gradtx.adabound, dict(learning_rate=1e-2, final_lr=0.05)),
    ("amsgrad", gradtx.amsgrad, dict(learning_rate=1e-2)),
]


@pytest.mark.parametrize("factory,kw", [c[1:] for c in INJECTABLE],
                         ids=[c[0] for c in INJECTABLE])
def test_injected_equals_plain_bit_for_bit_in_float64(factory, kw):
  plain = trajectory(factory(**kw))
  injected = trajectory(gradtx.inject_hyperparams(factory)(**kw))
  for (u1, p1), (u2, p2) in zip(plain, injected):
    for a, b in zip(jax.tree.leaves((u1, p1)), jax.tree.leaves((u2, p2))):
      assert np.array_equal(np.asarray(a), np.asarray(b))


def test_changing_the_learning_rate_five_times_compiles_once():
  tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=1e-2)
  ref_tx = gradtx.adam
  params = {"w": jnp.linspace(-1.0, 1.0, 6)}
  loss = lambda p: jnp.sum((p["w"] - 0.3) ** 2)
  traces = []

  @jax.jit
  def step(p, s):
    traces.append(1)
    u, s = tx.update(jax.grad(loss)(p), s, p)
    return gradtx.apply_updates(p, u), s

  schedule = [1e-2, 0.3, np.float32(0.05), jnp.asarray(1e-3), 2e-2]
  p, s = params, tx.init(params)
  for lr in schedule:
    s.hyperparams["learning_rate"] = lr
    p, s = step(p, s)
  assert len(traces) == 1
  assert float(s.hyperparams["learning_rate"]) == pytest.approx(2e-2)

  # The same trajectory as plain Adam whose learning rate follows the list.
  lr_sched = lambda c: jnp.asarray([float(x) for x in schedule])[c]
  ref = ref_tx(lr_sched)
  q, r = params, ref.init(params)
  grad = jax.jit(jax.grad(loss))
  for _ in schedule:
    u, r = ref.update(grad(q), r, q)
    q = gradtx.apply_updates(q, u)
  np.testing.assert_allclose(p["w"], q["w"], rtol=1e-12)


def test_schedule_given_to_inject_is_evaluated_and_logged():
  tx = gradtx.inject_hyperparams(gradtx.sgd)(
      learning_rate=lambda c: 0.1 * (c + 1))
  state = tx.init(PARAMS)
  for k in range(3):
    _, state = tx.update(GRADS[k], state)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(
        0.1 * (k + 1))


def test_bad_static_args_and_bad_values_are_refused():
  with pytest.raises(ValueError, match="static_args"):
    gradtx.inject_hyperparams(gradtx.adam, static_args="beta1")
  with pytest.raises(ValueError, match="b1"):
    gradtx.inject_hyperparams(gradtx.adam)(learning_rate=1e-3, b1=2.0)


def test_injected_state_works_under_optax_and_keeps_bfloat16_params():
  params = {"w": jnp.ones(4, jnp.bfloat16)}
  tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=1e-2)
  state = tx.init(params)
  assert state.hyperparams["b2"].dtype == jnp.float32  # 0.999, not 1.0
  u, state = jax.jit(tx.update)({"w": jnp.ones(4, jnp.bfloat16)}, state)
  assert u["w"].dtype == jnp.bfloat16


def test_gradient_with_respect_to_an_injected_decay_at_zero_is_finite():
  """Meta-learning b1: the bias correction 1 - b1**t is taken as
  -expm1(t log b1), whose derivative at b1 = 0 would be 0 * inf."""
  p = {"w": jnp.array([0.3, -1.2])}
  g = {"w": jnp.array([0.5, 2.0])}

  def loss(b1, lib):
    tx = lib.inject_hyperparams(lib.adam)(learning_rate=0.1, b1=b1)
    s = tx.init(p)
    for _ in range(3):
      u, s = tx.update(g, s, p)
    return jnp.sum(u["w"])

  grad = jax.jit(jax.grad(loss), static_argnums=1)  # b1 traced
  for b1 in (0.0, 0.5, 0.9):
    ours = grad(b1, gradtx)
    theirs = grad(b1, optax)
    assert np.isfinite(ours), b1
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-12)


# --- optax's state, stateful schedules, tree_set, nnx ------------------------


def _paths(tree):
  return [jax.tree_util.keystr(k) for k, _ in
          jax.tree_util.tree_flatten_with_path(tree)[0]]


def test_state_is_optax_inject_stateful_state_leaf_for_leaf():
  kw = dict(learning_rate=small_sched, b1=0.9)
  ours = gradtx.inject_hyperparams(gradtx.adam)(**kw)
  theirs = optax.inject_hyperparams(optax.adam)(**kw)
  so, st = ours.init(PARAMS), theirs.init(PARAMS)
  assert gradtx.InjectHyperparamsState._fields == (
      "count", "hyperparams", "hyperparams_states", "inner_state")
  for _ in range(2):
    assert _paths(so) == _paths(st)
    for a, b in zip(jax.tree.leaves(so), jax.tree.leaves(st)):
      assert (a.shape, a.dtype) == (b.shape, b.dtype)
      np.testing.assert_allclose(a, b, rtol=1e-12)
    _, so = ours.update(GRADS[0], so, PARAMS)
    _, st = theirs.update(GRADS[0], st, PARAMS)


class _LossDrivenLr:
  """A stateful schedule driven by an extra argument: halves the rate each
  time the loss does not improve (optax's StatefulSchedule protocol)."""

  def init(self):
    return {"lr": jnp.asarray(0.1), "best": jnp.asarray(jnp.inf)}

  def update(self, state, loss=None, **extra_args):
    better = loss < state["best"]
    return {"lr": jnp.where(better, state["lr"], state["lr"] / 2),
            "best": jnp.minimum(loss, state["best"])}

  def __call__(self, state, **extra_args):
    return state["lr"]


def test_stateful_schedule_is_used_as_optax_uses_it():
  ours = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=_LossDrivenLr())
  theirs = optax.inject_hyperparams(optax.sgd)(learning_rate=_LossDrivenLr())
  so, st = ours.init(PARAMS), theirs.init(PARAMS)
  for i, loss in enumerate([3.0, 2.0, 2.5, 2.4, 1.0]):
    uo, so = ours.update(GRADS[i], so, PARAMS, loss=jnp.asarray(loss))
    ut, st = theirs.update(GRADS[i], st, PARAMS, loss=jnp.asarray(loss))
    assert_close(uo, ut, rtol=1e-12)
    assert _paths(so) == _paths(st)
    assert_close(so, st, rtol=1e-12)
  assert float(so.hyperparams["learning_rate"]) == 0.025


def test_optax_tree_set_changes_the_learning_rate():
  tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
  state = tx.init(PARAMS)
  state = optax.tree_utils.tree_set(state, learning_rate=0.5)
  updates, state = jax.jit(tx.update)(GRADS[0], state, PARAMS)
  assert_close(updates, jax.tree.map(lambda g: -0.5 * g, GRADS[0]),
               rtol=1e-12)
  assert state.hyperparams["learning_rate"].dtype == jnp.float64
  assert float(optax.tree_utils.tree_get(state, "learning_rate")) == 0.5


def test_setting_a_value_keeps_its_dtype_and_the_step_compiles_once():
  tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=1e-3)
  p32 = jax.tree.map(lambda x: x.astype(jnp.float32), PARAMS)
  state = tx.init(p32)
  traces = []

  @jax.jit
  def step(state, g):
    traces.append(1)
    return tx.update(g, state, p32)

  g32 = jax.tree.map(lambda x: x.astype(jnp.float32), GRADS[0])
  _, state = step(state, g32)
  for value in (1e-4, np.float64(2e-4), jnp.asarray(3e-4), 4):
    state.hyperparams["learning_rate"] = value
    assert state.hyperparams["learning_rate"].dtype == jnp.float32
    _, state = step(state, g32)
  assert len(traces) == 1


def test_nnx_optimizer_learning_rate_set_between_jitted_steps():
  """Setting the learning rate on an nnx.Optimizer's state, as the
  docstring says: the step is traced once and lr 0 stops the params."""
  nnx = pytest.importorskip("flax.nnx")
  # NumPy weights: a JAX draw would compile a sampler for this one shape.
  kernel = np.random.default_rng(0).standard_normal((3, 2)) / np.sqrt(3)
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0),
                     kernel_init=lambda *_: jnp.asarray(kernel, jnp.float32))
  opt = nnx.Optimizer(
      model, gradtx.inject_hyperparams(gradtx.adam)(learning_rate=1e-2),
      wrt=nnx.Param)
  traces = []
  x = jnp.ones((4, 3))

  @nnx.jit
  def step(model, opt):
    traces.append(1)
    grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
    opt.update(model, grads)

  def kernel():
    return np.asarray(nnx.state(model, nnx.Param)["kernel"][...])

  step(model, opt)
  before = kernel()
  step(model, opt)
  assert not np.array_equal(kernel(), before)
  opt.opt_state.hyperparams["learning_rate"] = 0.0
  before = kernel()
  step(model, opt)
  step(model, opt)
  np.testing.assert_array_equal(kernel(), before)
  assert float(opt.opt_state.hyperparams["learning_rate"][...]) == 0.0
  assert len(traces) == 1


@pytest.mark.parametrize("name", ["adam", "adamw", "nadam", "radam", "amsgrad",
                                  "adabound", "ranger"])
def test_eager_steps_compile_nothing_after_the_first(name):
  """Eager steps of an injected optimizer reuse their programs: a bias
  correction ``b ** count`` with the count fixed in the program
  (``lax.integer_pow``, what ``**`` makes of a concrete exponent) would
  compile anew at every step."""
  static = ("sync_period",) if name == "ranger" else ()
  tx = gradtx.inject_hyperparams(getattr(gradtx, name),
                                 static_args=static)(learning_rate=1e-2)
  params, state = PARAMS, tx.init(PARAMS)

  def steps(grads):
    nonlocal params, state
    for g in grads:
      updates, state = tx.update(g, state, params)
      params = gradtx.apply_updates(params, updates)

  steps(GRADS[:3])
  with common.CountCompiles() as compiles:
    steps(GRADS[3:8])
  assert compiles.count == 0, f"{name}: {compiles.count} compiles in 5 steps"


def test_an_int_that_must_stay_static_is_named_in_the_error():
  tx = gradtx.inject_hyperparams(gradtx.swats)(learning_rate=1e-3)
  with pytest.raises(ValueError, match=r"static_args=\('min_adam_steps',\)"):
    tx.init(PARAMS)
  tx = gradtx.inject_hyperparams(gradtx.swats,
                                 static_args=("min_adam_steps",))(1e-3)
  tx.update(GRADS[0], tx.init(PARAMS), PARAMS)


def test_a_jax_error_from_the_factory_keeps_its_kind_and_gets_the_hint():
  def factory(learning_rate, period=3):
    del period  # read as a Python int below
    return gradtx.sgd(learning_rate)

  def needs_int(learning_rate, period=3):
    int(period)  # a tracer under jit: JAX's own TypeError subclass
    return factory(learning_rate)

  tx = gradtx.inject_hyperparams(needs_int)(learning_rate=0.1)
  with pytest.raises(TypeError, match=r"static_args=\('period',\)"):
    jax.jit(tx.init)(PARAMS)
