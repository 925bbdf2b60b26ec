"""Errors that teach: mismatched trees, bad leaves, misuse."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

PARAMS = {"enc": {"w": jnp.ones((2, 3))}, "b": jnp.zeros(3)}


def _grads(**change):
  g = {"enc": {"w": jnp.ones((2, 3))}, "b": jnp.ones(3)}
  g.update(change)
  return g


def test_missing_key_names_the_transform_and_the_path():
  tx = gradtx.adam(1e-3)
  state = tx.init(PARAMS)
  with pytest.raises(ValueError, match=r"(?s)scale_by_adam: .*in the state "
                     r"but not in the updates: \['b'\]\n"):
    tx.update({"enc": {"w": jnp.ones((2, 3))}}, state)


def test_extra_key_names_the_path():
  tx = gradtx.sgd(0.1, momentum=0.9)
  state = tx.init(PARAMS)
  with pytest.raises(ValueError, match=r"(?s)trace: .*in the updates but "
                     r"not in the state: \['c'\]\n"):
    tx.update(_grads(c=jnp.ones(1)), state)


def test_wrong_shape_names_the_path_and_both_shapes():
  tx = gradtx.adam(1e-3)
  state = tx.init(PARAMS)
  with pytest.raises(ValueError, match=r"scale_by_adam: shape mismatch at "
                     r"\['b'\]: the update has shape \(1,\) but state tree "
                     r"#1 holds \(3,\)"):
    tx.update(_grads(b=jnp.ones(1)), state)


def test_different_container_type_is_reported():
  from flax.core import freeze
  tx = gradtx.adam(1e-3)
  state = tx.init({"a": jnp.ones(2)})
  with pytest.raises(ValueError, match="(?s)scale_by_adam: .*containers "
                     "differ.*FrozenDict"):
    tx.update(freeze({"a": jnp.ones(2)}), state)


@pytest.mark.parametrize("bad", [jnp.ones(3, jnp.int32), jnp.ones(3, bool)])
@pytest.mark.parametrize("make", [lambda: gradtx.sgd(0.1),
                                  lambda: gradtx.adam(1e-3),
                                  lambda: gradtx.adamw(1e-3)])
def test_integer_and_boolean_gradients_are_rejected_with_the_path(make, bad):
  tx = make()
  params = {"enc": {"w": jnp.ones((2, 3))}, "b": bad}
  state = tx.init(jax.tree.map(lambda x: x.astype(jnp.float32), params))
  with pytest.raises(TypeError, match=r"\['b'\] has dtype (int32|bool)"):
    tx.update(_grads(b=bad), state, params)


def test_none_leaves_pass_through_and_empty_trees_work():
  tx = gradtx.adam(1e-3)
  state = tx.init({"a": jnp.ones(2), "b": None})
  u, _ = tx.update({"a": jnp.ones(2), "b": None}, state)
  assert u["b"] is None and u["a"].shape == (2,)
  empty = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-3))
  u, _ = empty.update({}, empty.init({}), {})
  assert u == {}


def test_update_with_params_missing_says_how_to_call():
  tx = gradtx.adamw(1e-3, weight_decay=0.1)
  with pytest.raises(ValueError, match=r"add_decayed_weights: this transform "
                     r"needs the current params; call update\(updates, "
                     r"state, params\)"):
    tx.update(_grads(), tx.init(PARAMS))


def test_state_from_another_optimizer_is_refused_by_the_chain():
  with pytest.raises(ValueError, match="chain: the state holds 3 member"):
    gradtx.adam(1e-3).update(_grads(), gradtx.amsgrad(1e-3).init(PARAMS))
