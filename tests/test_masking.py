"""masked, partition, freeze and ema_params, on dicts, FrozenDicts and nnx."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.core import freeze as frozen

import gradtx
from common import GRADS, PARAMS, trajectory


def _split(tree, keys):
  return {k: tree[k] for k in keys}


def test_partition_equals_running_the_groups_separately():
  labels = {"w": "adam", "b": "sgd", "s": "sgd"}
  tx = gradtx.partition({"adam": gradtx.adam(1e-2),
                         "sgd": gradtx.sgd(1e-1, momentum=0.9)}, labels)
  ours = trajectory(tx)
  adam_part = trajectory(gradtx.adam(1e-2), [_split(g, ["w"]) for g in GRADS],
                         _split(PARAMS, ["w"]))
  sgd_part = trajectory(gradtx.sgd(1e-1, momentum=0.9),
                        [_split(g, ["b", "s"]) for g in GRADS],
                        _split(PARAMS, ["b", "s"]))
  for (u, p), (ua, pa), (us, ps) in zip(ours, adam_part, sgd_part):
    assert np.array_equal(p["w"], pa["w"])
    assert np.array_equal(p["b"], ps["b"]) and np.array_equal(p["s"], ps["s"])


def test_partition_labels_from_a_function_and_state_per_group():
  tx = gradtx.partition(
      {"decay": gradtx.adamw(1e-2, weight_decay=0.1),
       "none": gradtx.adam(1e-2)},
      lambda p: jax.tree.map(lambda x: "decay" if x.ndim > 1 else "none", p))
  state = tx.init(PARAMS)
  adam_state = state.inner_states["none"].inner_state[0]
  assert set(adam_state.mu) == {"w", "b", "s"}  # masked-out leaves are nodes
  assert jax.tree.leaves(adam_state.mu["w"]) == []
  u, _ = tx.update(GRADS[0], state, PARAMS)
  expected = gradtx.adamw(1e-2, weight_decay=0.1).update(
      {"w": GRADS[0]["w"]}, gradtx.adamw(1e-2, weight_decay=0.1).init(
          {"w": PARAMS["w"]}), {"w": PARAMS["w"]})[0]["w"]
  np.testing.assert_array_equal(u["w"], expected)


def test_partition_names_a_label_without_transform():
  tx = gradtx.partition({"a": gradtx.sgd(0.1)}, {"w": "a", "b": "x",
                                                 "s": "a"})
  with pytest.raises(ValueError, match=r"partition: .*\['x'\].*no transform"):
    tx.init(PARAMS)


def test_missing_key_in_a_plain_dict_spec_names_the_path():
  params = frozen({"enc": {"w": jnp.ones(2)}, "head": jnp.ones(2)})
  tx = gradtx.masked(gradtx.sgd(0.1), {"enc": True})
  with pytest.raises(ValueError, match=r"masked: no entry .*\['head'\]"):
    tx.init(params)


def _frozen_params():
  return frozen({"enc": {"w": jnp.linspace(0.0, 1.0, 6).reshape(2, 3)},
                 "head": {"w": jnp.ones(3), "b": jnp.zeros(3)}})


def _nnx_params():
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  return nnx.state(model, nnx.Param)


@pytest.mark.parametrize("make_params,spec", [
    (_frozen_params, {"enc": "a", "head": "b"}),
    (_frozen_params, lambda p: frozen({"enc": {"w": "a"},
                                       "head": {"w": "b", "b": "b"}})),
    (_nnx_params, {"kernel": "a", "bias": "b"}),
])
def test_wrappers_accept_frozendict_and_nnx_state(make_params, spec):
  params = make_params()
  grads = jax.tree.map(lambda p: jnp.ones_like(p), params)
  label_of = gradtx._src.masking.broadcast_to_params("test", spec, params)
  a_mask = jax.tree.map(lambda l: l == "a", label_of)
  txs = {
      "partition": gradtx.partition({"a": gradtx.sgd(0.5), "b": gradtx.sgd(
          0.1)}, spec),
      "masked": gradtx.chain(gradtx.masked(gradtx.scale(0.0), a_mask),
                             gradtx.sgd(0.1)),
      "freeze": gradtx.chain(gradtx.sgd(0.1), gradtx.freeze(a_mask)),
      "ema_params": gradtx.chain(gradtx.sgd(0.1), gradtx.ema_params(0.5)),
  }
  expected_a = {"partition": -0.5, "masked": 0.0, "freeze": 0.0,
                "ema_params": -0.1}
  for name, tx in txs.items():
    state = tx.init(params)
    u, state = jax.jit(tx.update)(grads, state, params)
    assert type(u) is type(params), name
    for is_a, x in zip(jax.tree.leaves(a_mask), jax.tree.leaves(u)):
      want = expected_a[name] if is_a else -0.1
      np.testing.assert_allclose(np.asarray(x), want, err_msg=name)


def test_freeze_zeroes_updates_and_keeps_structure():
  tx = gradtx.chain(gradtx.adam(1e-2), gradtx.freeze({"w": True, "b": False,
                                                      "s": False}))
  params = PARAMS
  for u, p in trajectory(tx):
    assert not np.any(np.asarray(u["w"]))
    assert np.any(np.asarray(u["b"]))
  assert np.array_equal(p["w"], PARAMS["w"])


def test_ema_params_matches_its_formula():
  decay = 0.9
  tx = gradtx.chain(gradtx.sgd(1e-2), gradtx.ema_params(decay))
  params, state = PARAMS, tx.init(PARAMS)
  ema = {k: np.asarray(v) for k, v in PARAMS.items()}
  for g in GRADS[:20]:
    u, state = tx.update(g, state, params)
    params = gradtx.apply_updates(params, u)
    ema = {k: decay * ema[k] + (1 - decay) * np.asarray(params[k])
           for k in ema}
  for k in ema:
    np.testing.assert_allclose(state[1].ema[k], ema[k], rtol=1e-13)
  plain = trajectory(gradtx.sgd(1e-2), GRADS[:20])
  assert np.array_equal(plain[-1][1]["w"], params["w"])


# --- optax's structure and signatures ---------------------------------------

NESTED = {"a": {"x": jnp.ones(2), "y": jnp.ones(3)}, "b": jnp.ones(1)}


@pytest.mark.parametrize("mask", [
    {"a": False, "b": True},
    {"a": {"x": True, "y": False}, "b": False},
    {"a": True, "b": False},
])
def test_masked_and_freeze_states_have_optaxs_structure(mask):
  # A masked-out subtree is one MaskedNode, and freeze is masked(set_to_zero)
  # with MaskedState(inner_state=EmptyState()), so checkpoints line up.
  for make in [lambda lib: lib.masked(lib.adam(1e-2), mask),
               lambda lib: lib.freeze(mask),
               lambda lib: lib.partition(
                   {"u": lib.adam(1e-2), "v": lib.sgd(1e-2)},
                   jax.tree.map(lambda m: "u" if m else "v", mask))]:
    ours, theirs = make(gradtx).init(NESTED), make(optax).init(NESTED)
    assert str(jax.tree.structure(ours)) == str(jax.tree.structure(theirs))
  u, _ = gradtx.freeze(mask).update(NESTED, gradtx.freeze(mask).init(NESTED))
  v, _ = optax.freeze(mask).update(NESTED, optax.freeze(mask).init(NESTED))
  jax.tree.map(np.testing.assert_array_equal, u, v)


def test_a_callable_pytree_mask_is_a_tree_as_in_optax():
  eqx = pytest.importorskip("equinox")

  class Pair(eqx.Module):
    a: object
    b: object

    def __call__(self, x):   # callable, but a tree of bools all the same
      raise AssertionError("the mask must not be called")

  params = Pair(jnp.ones(2), jnp.ones(3))
  tx = gradtx.masked(gradtx.scale(2.0), Pair(True, False))
  updates, _ = tx.update(params, tx.init(params))
  np.testing.assert_array_equal(updates.a, 2.0)
  np.testing.assert_array_equal(updates.b, 1.0)


def test_mask_compatible_extra_args_masks_tree_shaped_extra_args():
  seen = {}

  def update_fn(updates, state, params=None, **extra_args):
    seen.update(extra_args)
    return updates, state

  inner = gradtx.GradientTransformation(lambda p: gradtx.EmptyState(),
                                        update_fn)
  params = {"w": jnp.ones(2), "b": jnp.ones(1)}
  mask = {"w": True, "b": False}
  for flag in [True, False]:
    tx = gradtx.masked(inner, mask, mask_compatible_extra_args=flag)
    tx.update(params, tx.init(params), weights=params, scale=3.0)
    assert seen["scale"] == 3.0   # not tree-shaped: passed as it is
    assert isinstance(seen["weights"]["b"], gradtx.MaskedNode) == flag
    assert seen["weights"]["w"] is params["w"]
  tx = gradtx.partition({"u": inner}, {"w": "u", "b": "u"},
                        mask_compatible_extra_args=True)
  tx.update(params, tx.init(params), weights=params)
  assert seen["weights"]["w"] is params["w"]
