"""Interoperability with optax and Flax.

gradtx's ``GradientTransformation`` is structurally optax's, so members mix
both ways in ``chain``s, ``extra_args`` reach only members that take them, and
gradtx optimizers drive ``flax.nnx.Optimizer`` and ``flax.training``'s
``TrainState`` with the same numbers as the optax optimizers they mirror.
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.training import train_state

import gradtx

LR = 1e-2


@functools.lru_cache(maxsize=None)
def _params():
  rng = np.random.default_rng(42)
  return {"w": jnp.asarray(rng.standard_normal((3, 2))),
          "b": jnp.asarray(rng.standard_normal(2))}


@functools.lru_cache(maxsize=None)
def _grads(n):
  """``n`` gradient trees; large enough that a global-norm clip at 1 bites."""
  rng = np.random.default_rng(7)
  out = []
  for i in range(n):
    scale = 3.0 if i % 2 == 0 else 0.1  # alternately clipped / not clipped
    out.append({"w": jnp.asarray(scale * rng.standard_normal((3, 2))),
                "b": jnp.asarray(scale * rng.standard_normal(2))})
  return tuple(out)


def _run(tx, steps=6):
  """Runs ``steps`` updates of ``tx``; returns the per-step updates, params.

  Eagerly: a chain of a new mix of members costs a compilation of its own
  when jitted, where its eager ops are shared with the other chains here.
  :func:`_assert_same_run` traces the update as jit would as well."""
  params = _params()
  state = tx.init(params)
  # Traced, not run: the mixed chain must hold under jit too.
  jax.eval_shape(tx.update, _grads(1)[0], state, params)
  history = []
  for g in _grads(steps):
    u, state = tx.update(g, state, params)
    params = optax.apply_updates(params, u)
    history.append(u)
  return history, params


def _assert_trees_close(a, b, rtol=1e-12, atol=1e-15):
  la, ta = jax.tree.flatten(a)
  lb, tb = jax.tree.flatten(b)
  assert ta == tb
  for x, y in zip(la, lb):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol,
                               atol=atol)


def _assert_same_run(tx, ref, rtol=1e-12, atol=1e-15):
  got_u, got_p = _run(tx)
  want_u, want_p = _run(ref)
  for gu, wu in zip(got_u, want_u):
    _assert_trees_close(gu, wu, rtol, atol)
  _assert_trees_close(got_p, want_p, rtol, atol)
  # Something actually moved.
  assert float(optax.tree.norm(got_u[-1])) > 1e-4


def test_grads_exercise_the_clip():
  norms = [float(optax.tree.norm(g)) for g in _grads(6)]
  assert any(n > 1.0 for n in norms) and any(n < 1.0 for n in norms)


# --------------------------------------------------------------------------
# (a) optax members inside gradtx.chain


def test_optax_clip_inside_gradtx_chain():
  tx = gradtx.chain(optax.clip_by_global_norm(1.0), gradtx.scale_by_adam(),
                    gradtx.scale_by_learning_rate(LR))
  ref = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(),
                    optax.scale_by_learning_rate(LR))
  _assert_same_run(tx, ref)


def test_optax_adam_scaling_inside_gradtx_chain():
  tx = gradtx.chain(gradtx.clip_by_global_norm(1.0),
                    optax.scale_by_adam(b1=0.8, b2=0.99, eps=1e-6),
                    gradtx.add_decayed_weights(1e-2), gradtx.scale(-LR))
  ref = optax.chain(optax.clip_by_global_norm(1.0),
                    optax.scale_by_adam(b1=0.8, b2=0.99, eps=1e-6),
                    optax.add_decayed_weights(1e-2), optax.scale(-LR))
  _assert_same_run(tx, ref)


def test_all_optax_members_inside_gradtx_chain():
  tx = gradtx.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(),
                    optax.scale(-LR))
  ref = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(),
                    optax.scale(-LR))
  _assert_same_run(tx, ref)


def test_optax_chain_nested_in_gradtx_chain():
  tx = gradtx.chain(optax.chain(optax.clip_by_global_norm(1.0)),
                    gradtx.adam(LR))
  ref = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(LR))
  _assert_same_run(tx, ref)


def test_gradtx_chain_state_holds_optax_states():
  tx = gradtx.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam())
  state = tx.init(_params())
  assert isinstance(state, tuple) and len(state) == 2
  assert isinstance(state[1], optax.ScaleByAdamState)


# --------------------------------------------------------------------------
# (b) gradtx members inside optax.chain


def test_gradtx_scale_by_adam_inside_optax_chain():
  tx = optax.chain(optax.clip_by_global_norm(1.0), gradtx.scale_by_adam(),
                   optax.scale_by_learning_rate(LR))
  ref = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(),
                    optax.scale_by_learning_rate(LR))
  _assert_same_run(tx, ref)


def test_gradtx_adamw_inside_optax_chain():
  tx = optax.chain(optax.clip_by_global_norm(1.0),
                   gradtx.adamw(LR, b1=0.85, weight_decay=1e-2))
  ref = optax.chain(optax.clip_by_global_norm(1.0),
                    optax.adamw(LR, b1=0.85, weight_decay=1e-2))
  _assert_same_run(tx, ref)


@pytest.mark.parametrize("name", ["adam", "adamw", "nadam", "nadamw",
                                  "adamax", "sgd", "rmsprop"])
def test_gradtx_named_optimizer_equals_optax_under_optax_chain(name):
  kw = {"sgd": {"momentum": 0.9}, "rmsprop": {"momentum": 0.9}}.get(name, {})
  tx = optax.chain(optax.clip(1.0), getattr(gradtx, name)(LR, **kw))
  ref = optax.chain(optax.clip(1.0), getattr(optax, name)(LR, **kw))
  _assert_same_run(tx, ref)


def test_gradtx_in_optax_wrappers():
  # optax.masked and optax.MultiSteps only need (init, update).
  mask = {"w": True, "b": False}
  tx = optax.masked(gradtx.adam(LR), mask)
  ref = optax.masked(optax.adam(LR), mask)
  _assert_same_run(tx, ref)
  _assert_same_run(optax.MultiSteps(gradtx.adam(LR), every_k_schedule=2),
                   optax.MultiSteps(optax.adam(LR), every_k_schedule=2))


# --------------------------------------------------------------------------
# (c) extra_args forwarding


def _strict_member(calls):
  """A plain optax transform whose update takes no **kwargs."""

  def update(updates, state, params=None):
    calls.append("strict")
    return updates, state

  return optax.GradientTransformation(lambda p: optax.EmptyState(), update)


def _recording_member(seen):
  def update(updates, state, params=None, **extra_args):
    seen.append(dict(extra_args))
    return updates, state

  return gradtx.GradientTransformation(lambda p: gradtx.EmptyState(), update)


def test_extra_args_reach_only_members_that_take_them():
  strict_calls, seen = [], []
  tx = gradtx.chain(_strict_member(strict_calls), optax.scale(2.0),
                    _recording_member(seen), gradtx.adam(LR))
  assert "extra_args" not in str(inspect.signature(optax.scale(2.0).update))
  params = _params()
  g = _grads(1)[0]
  state = tx.init(params)
  u, state = tx.update(g, state, params, value=jnp.asarray(3.0), grad=g)
  assert strict_calls == ["strict"]
  assert len(seen) == 1 and sorted(seen[0]) == ["grad", "value"]
  assert float(seen[0]["value"]) == 3.0
  # The extra args change nothing for members that ignore them.
  ref = gradtx.chain(optax.scale(2.0), gradtx.adam(LR))
  want, _ = ref.update(g, ref.init(params), params)
  _assert_trees_close(u, want)


def test_extra_args_under_jit_and_without():
  strict_calls, seen = [], []
  tx = gradtx.chain(_strict_member(strict_calls), _recording_member(seen),
                    optax.clip_by_global_norm(1.0))
  params = _params()
  g = _grads(1)[0]
  state = tx.init(params)
  jax.jit(tx.update)(g, state, params, value=1.0)
  assert sorted(seen[-1]) == ["value"]
  tx.update(g, state, params)  # no extra args at all
  assert seen[-1] == {}
  assert len(strict_calls) == 2


def test_extra_args_reach_optax_extra_args_members():
  seen = []

  def update(updates, state, params=None, **extra_args):
    seen.append(sorted(extra_args))
    return updates, state

  inner = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(),
                                                update)
  # optax.chain forwards to ExtraArgs members and wraps plain ones.
  tx = gradtx.chain(optax.chain(inner, optax.scale(1.0)),
                    gradtx.chain(_recording_member(seen)))
  params = _params()
  tx.update(_grads(1)[0], tx.init(params), params, value=2.0)
  assert seen[0] == ["value"] and seen[1] == {"value": 2.0}


def test_extra_args_not_forwarded_to_explicit_keyword():
  # Only a **kwargs catch-all opts in; an explicit keyword is not enough.
  got = []

  def update(updates, state, params=None, value=None):
    got.append(value)
    return updates, state

  member = optax.GradientTransformation(lambda p: optax.EmptyState(), update)
  tx = gradtx.named_chain(("m", member), ("adam", gradtx.adam(LR)))
  params = _params()
  tx.update(_grads(1)[0], tx.init(params), params, value=5.0)
  assert got == [None]


def test_extra_args_through_masked_and_named_chain():
  seen = []
  tx = gradtx.named_chain(
      ("rec", gradtx.masked(_recording_member(seen), {"w": True, "b": False})),
      ("strict", gradtx.masked(_strict_member([]), {"w": False, "b": True})),
      ("opt", gradtx.adamw(LR)))
  params = _params()
  tx.update(_grads(1)[0], tx.init(params), params, value=1.0)
  assert seen == [{"value": 1.0}]


def test_gradtx_in_optax_chain_with_extra_args():
  # optax.chain gives extra args to ExtraArgs members only; a gradtx member
  # is wrapped and gets none, but runs.
  tx = optax.chain(optax.clip(1.0), gradtx.adam(LR))
  params = _params()
  u, _ = tx.update(_grads(1)[0], tx.init(params), params, value=1.0)
  ref = optax.chain(optax.clip(1.0), optax.adam(LR))
  want, _ = ref.update(_grads(1)[0], ref.init(params), params)
  _assert_trees_close(u, want)


# --------------------------------------------------------------------------
# (d) flax.nnx.Optimizer


def _numpy_init(key, shape, dtype):
  """LeCun-normal weights from NumPy: JAX's random draws would compile a
  sampler for each shape, and the draws are not what these tests are about."""
  rng = np.random.default_rng(list(shape))
  return jnp.asarray(rng.standard_normal(shape) / np.sqrt(shape[0]), dtype)


class MLP(nnx.Module):

  def __init__(self, rngs):
    self.l1 = nnx.Linear(2, 16, kernel_init=_numpy_init, rngs=rngs)
    self.l2 = nnx.Linear(16, 1, kernel_init=_numpy_init, rngs=rngs)

  def __call__(self, x):
    return self.l2(jnp.tanh(self.l1(x)))


def _regression_data():
  x = np.random.default_rng(3).uniform(-1.0, 1.0, (32, 2))
  y = np.sin(2.0 * x[:, :1]) + 0.5 * x[:, 1:]
  return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def _loss(model, x, y):
  return jnp.mean((model(x) - y) ** 2)


def _make_optimizer(model, tx):
  sig = inspect.signature(nnx.Optimizer.__init__)
  if "wrt" in sig.parameters:
    return nnx.Optimizer(model, tx, wrt=nnx.Param)
  return nnx.Optimizer(model, tx)  # flax < 0.11


def _nnx_update(optimizer, model, grads):
  if len(inspect.signature(optimizer.update).parameters) >= 2 and \
      "model" in inspect.signature(optimizer.update).parameters:
    optimizer.update(model, grads)
  else:
    optimizer.update(grads)  # flax < 0.11


@nnx.jit
def _nnx_train_step(model, optimizer, x, y):
  loss, grads = nnx.value_and_grad(_loss)(model, x, y)
  _nnx_update(optimizer, model, grads)
  return loss


def _nnx_train(tx, steps):
  model = MLP(nnx.Rngs(0))
  optimizer = _make_optimizer(model, tx)
  x, y = _regression_data()
  losses = [float(_nnx_train_step(model, optimizer, x, y))
            for _ in range(steps)]
  return model, losses, float(_loss(model, x, y))


def _pure_params(model):
  return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model,
                                                             nnx.Param)))


# One configuration for every nnx test: the same hyperparameters make the
# same jitted training step, compiled once for all of them.
ADAMW_KW = dict(learning_rate=3e-2, b1=0.9, b2=0.99, eps=1e-8,
                weight_decay=1e-2)


def test_nnx_optimizer_matches_optax_adamw():
  g_model, g_losses, _ = _nnx_train(gradtx.adamw(**ADAMW_KW), 3)
  o_model, o_losses, _ = _nnx_train(optax.adamw(**ADAMW_KW), 3)
  got, want = _pure_params(g_model), _pure_params(o_model)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(g_losses, o_losses, rtol=1e-6)
  # The params moved from their initial values.
  init = _pure_params(MLP(nnx.Rngs(0)))
  assert any(np.max(np.abs(a - b)) > 1e-3
             for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(init)))


def test_nnx_optimizer_trains_with_gradtx_adamw():
  _, losses, final = _nnx_train(gradtx.adamw(**ADAMW_KW), 150)
  assert np.all(np.isfinite(losses))
  assert final < 0.1 * losses[0], (losses[0], final)


def test_nnx_optimizer_state_holds_gradtx_state():
  model = MLP(nnx.Rngs(0))
  optimizer = _make_optimizer(model, gradtx.adamw(**ADAMW_KW))
  x, y = _regression_data()
  _nnx_train_step(model, optimizer, x, y)
  _nnx_train_step(model, optimizer, x, y)
  assert int(optimizer.step[...]) == 2
  adam_state = optimizer.opt_state[0]
  assert isinstance(adam_state, gradtx.ScaleByAdamState)
  assert int(adam_state.count[...]) == 2


# --------------------------------------------------------------------------
# (e) flax.training.train_state.TrainState


def _linear_apply(params, x):
  return x @ params["w"] + params["b"][None, :]


def _train_state_run(tx, steps=5):
  params = _params()
  state = train_state.TrainState.create(apply_fn=_linear_apply, params=params,
                                        tx=tx)
  x = jnp.asarray(np.random.default_rng(11).standard_normal((8, 3)))
  y = jnp.asarray(np.random.default_rng(12).standard_normal((8, 2)))

  @jax.jit
  def step(state):
    def loss_fn(p):
      return jnp.mean((state.apply_fn(p, x) - y) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss

  losses = []
  for _ in range(steps):
    state, loss = step(state)
    losses.append(float(loss))
  return state, losses


@pytest.mark.parametrize("name,kw", [("adam", {}),
                                     ("adamw", {"weight_decay": 1e-2}),
                                     ("sgd", {"momentum": 0.9})])
def test_train_state_matches_optax(name, kw):
  got, got_losses = _train_state_run(getattr(gradtx, name)(1e-2, **kw))
  want, want_losses = _train_state_run(getattr(optax, name)(1e-2, **kw))
  assert int(got.step) == int(want.step) == 5
  _assert_trees_close(got.params, want.params)
  np.testing.assert_allclose(got_losses, want_losses, rtol=1e-12)
  assert got_losses[-1] < got_losses[0]
  assert float(jnp.max(jnp.abs(got.params["w"] - _params()["w"]))) > 1e-3


def test_train_state_adam_state_is_gradtx():
  state, _ = _train_state_run(gradtx.adam(1e-2), steps=2)
  assert isinstance(state.opt_state[0], gradtx.ScaleByAdamState)
  assert int(state.opt_state[0].count) == 2
