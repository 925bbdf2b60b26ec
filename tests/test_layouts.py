"""gradtx.flatten: the inner transform on leaves concatenated per dtype.

Eagerness is tested once (test_jitted_equals_eager); the other runs are
jitted, several transforms to one program: run eagerly, flatten's packing
and unpacking of a new tree compiles dozens of small programs per dtype.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

RNG = np.random.default_rng(0)
SMALL = 16  # max_leaf_size in these tests


def _tree(dtypes=(jnp.float64,)):
  """Big and small leaves, in nested containers, of the given dtypes."""
  out = {}
  for i, dt in enumerate(dtypes):
    out[f"block{i}"] = {
        "w": jnp.asarray(RNG.normal(size=(6, 5)), dt),    # 30 > SMALL
        "b": jnp.asarray(RNG.normal(size=(5,)), dt),
        "scale": jnp.asarray(RNG.normal(size=(2, 3)), dt),
        "s": jnp.asarray(RNG.normal(), dt),
    }
  out["head"] = [jnp.asarray(RNG.normal(size=(40,)), dtypes[0]),
                 jnp.asarray(RNG.normal(size=(4,)), dtypes[0])]
  return out


def _grads(params, step):
  return jax.tree.map(lambda p: jnp.sin(3.0 * p + step).astype(p.dtype),
                      params)


def _run(tx, params, steps=5, jit=False):
  update = jax.jit(tx.update) if jit else tx.update
  state, out = tx.init(params), []
  for t in range(steps):
    u, state = update(_grads(params, t), state, params)
    params = gradtx.apply_updates(params, u)
    out.append(u)
  return out, state


def _runs(txs, params, steps=5):
  """``_run(tx, params, steps)`` for each of ``txs``, all in one jitted
  program (a scan over the steps per transform)."""
  def run(params):
    out = []
    for tx in txs:
      def body(carry, t, tx=tx):
        p, state = carry
        u, state = tx.update(_grads(p, t), state, p)
        return (gradtx.apply_updates(p, u), state), u
      (_, state), us = jax.lax.scan(body, (params, tx.init(params)),
                                    jnp.arange(steps))
      out.append(([jax.tree.map(lambda x, t=t: x[t], us)
                   for t in range(steps)], state))
    return out
  return jax.jit(run)(params)


ELEMENTWISE = {"adam": lambda: gradtx.adam(1e-2),
               "sgd_momentum": lambda: gradtx.sgd(1e-2, momentum=0.9),
               "amsgrad": lambda: gradtx.amsgrad(1e-2),
               "rmsprop": lambda: gradtx.rmsprop(1e-2),
               "adamw": lambda: gradtx.adamw(1e-2, weight_decay=0.1)}


@functools.cache
def _float64_runs():
  """{name: (plain run, flattened run)} for ELEMENTWISE on one float64
  tree, and {"optax": (gradtx.flatten, optax.flatten)} of Adam without a
  size limit, from one jitted program."""
  pairs = {name: (make(), gradtx.flatten(make(), max_leaf_size=SMALL))
           for name, make in ELEMENTWISE.items()}
  pairs["optax"] = (gradtx.flatten(gradtx.adam(1e-2)),
                    optax.flatten(optax.adam(1e-2)))
  params = _tree()
  runs = _runs([tx for pair in pairs.values() for tx in pair], params)
  return params, {name: tuple(runs[2 * i:2 * i + 2])
                  for i, name in enumerate(pairs)}


def _assert_same_numbers(name):
  """In float64: the same numbers with and without flatten, to rounding.
  Jitted, XLA fuses the packed and the per-leaf forms differently (and may
  contract a multiply-add into an FMA in a vector loop and not for a 0-d
  leaf): measured 2.9e-13 relative after 5 steps (amsgrad), where a
  mistake in the packing is of order 1."""
  (plain, _), (flat, _) = _float64_runs()[1][name]
  for t, (a, b) in enumerate(zip(plain, flat), start=1):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      assert x.dtype == y.dtype and x.shape == y.shape
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-12,
                                 atol=0, err_msg=f"{name}, step {t}")


@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "amsgrad",
                                  "rmsprop"])
def test_elementwise_transforms_give_the_same_numbers(name):
  _assert_same_numbers(name)


def test_jitted_equals_eager():
  params = _tree((jnp.float32,))
  tx = gradtx.flatten(gradtx.adam(1e-2), max_leaf_size=SMALL)
  eager, _ = _run(tx, params)
  jitted, _ = _run(tx, params, jit=True)
  for a, b in zip(eager, jitted):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_small_leaves_share_a_buffer_per_dtype_and_big_ones_stay():
  params = _tree((jnp.float32, jnp.bfloat16))
  tx = gradtx.flatten(gradtx.adam(1e-2), max_leaf_size=SMALL)
  # Shapes and dtypes only: traced, not run.
  _, state = jax.eval_shape(lambda p: _run(tx, p, steps=2), params)
  mu = state[0].mu
  small = {"float32": 5 + 6 + 1 + 4, "bfloat16": 5 + 6 + 1}
  assert {k: v.shape for k, v in mu["flat"].items()} == {
      k: (n,) for k, n in small.items()}
  assert {k: v.dtype.name for k, v in mu["flat"].items()} == {
      k: k for k in small}
  # The large leaves, in the order jax flattens the params.
  assert [x.shape for x in mu["leaves"]] == [(6, 5), (6, 5), (40,)]
  # Every update keeps its param's dtype (optax.flatten would promote the
  # bfloat16 leaves to float32).
  u, _ = jax.eval_shape(lambda p: tx.update(_grads(p, 0), tx.init(p), p),
                        params)
  for x, p in zip(jax.tree.leaves(u), jax.tree.leaves(params)):
    assert x.dtype == p.dtype and x.shape == p.shape


def test_without_a_size_limit_it_is_optax_flatten():
  params, runs = _float64_runs()
  (ours, our_state), (theirs, their_state) = runs["optax"]
  for a, b in zip(ours, theirs):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)
  # The same state layout: the moments are one vector of every entry.
  n = sum(x.size for x in jax.tree.leaves(params))
  assert our_state[0].mu.shape == their_state[0].mu.shape == (n,)


def test_max_leaf_size_zero_leaves_every_leaf_alone():
  params = _tree()
  tx = gradtx.flatten(gradtx.adam(1e-2), max_leaf_size=0)
  state = tx.init(params)
  assert state[0].mu["flat"] == {}
  assert len(state[0].mu["leaves"]) == len(jax.tree.leaves(params))


def test_empty_tree():
  tx = gradtx.flatten(gradtx.adam(1e-2), max_leaf_size=SMALL)
  u, _ = tx.update({}, tx.init({}), {})
  assert u == {}


@pytest.mark.parametrize("bad", [-1, 2.5, "16", True])
def test_bad_max_leaf_size(bad):
  with pytest.raises(ValueError, match=r"flatten: max_leaf_size must be an "
                     r"int >= 0"):
    gradtx.flatten(gradtx.adam(1e-2), max_leaf_size=bad)


def test_factory_instead_of_transform():
  with pytest.raises(TypeError, match=r"flatten: inner is .* not a gradient "
                     r"transformation .*Did you pass a factory"):
    gradtx.flatten(gradtx.adam)


def test_params_of_another_structure():
  params = _tree()
  tx = gradtx.flatten(gradtx.adamw(1e-2, weight_decay=0.1),
                      max_leaf_size=SMALL)
  other = dict(params, extra=jnp.ones(2))
  with pytest.raises(ValueError, match=r"(?s)flatten: the updates do not "
                     r"match the params.*in the params but not in the "
                     r"updates: \['extra'\]"):
    tx.update(_grads(params, 0), tx.init(params), other)


def test_decoupled_weight_decay_reads_the_packed_params():
  _assert_same_numbers("adamw")


@functools.cache
def _mixed_dtype_updates():
  """{max_leaf_size: (flattened update, plain update)}: float32 gradients
  for bfloat16 and float32 params, one jitted program."""
  params = _tree((jnp.bfloat16, jnp.float32))
  plain = gradtx.adam(1e-2)
  sizes = (None, SMALL)
  txs = [gradtx.flatten(gradtx.adam(1e-2), max_leaf_size=size)
         for size in sizes]

  def run(params):
    grads = jax.tree.map(lambda p: jnp.cos(p.astype(jnp.float32)), params)
    want, _ = plain.update(grads, plain.init(params), params)
    return [(tx.update(grads, tx.init(params), params)[0], want)
            for tx in txs]
  return dict(zip(sizes, jax.jit(run)(params)))


@pytest.mark.parametrize("max_leaf_size", [None, SMALL])
def test_gradients_of_another_dtype_than_their_params(max_leaf_size):
  """float32 gradients for bfloat16 params: packed as the params are (the
  state's layout), each update back in its gradient's dtype."""
  u, want = _mixed_dtype_updates()[max_leaf_size]
  for x, y in zip(jax.tree.leaves(u), jax.tree.leaves(want)):
    assert x.dtype == y.dtype == jnp.float32
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-9)


def test_init_from_abstract_params():
  params = _tree((jnp.float32,))
  abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype),
                          params)
  tx = gradtx.flatten(gradtx.adam(1e-2), max_leaf_size=SMALL)
  want = tx.init(params)
  got = tx.init(abstract)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert (x.shape, x.dtype) == (y.shape, y.dtype)


def test_none_leaves_pass_through():
  params = {"w": jnp.ones((6, 5)), "b": jnp.ones(3), "frozen": None}
  tx = gradtx.flatten(gradtx.adam(1e-2), max_leaf_size=SMALL)
  grads = {"w": jnp.ones((6, 5)), "b": jnp.ones(3), "frozen": None}
  u, _ = jax.jit(tx.update)(grads, tx.init(params), params)
  assert u["frozen"] is None and u["b"].shape == (3,)
