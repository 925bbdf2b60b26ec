"""The per-leaf engine, gradtx._src.leafwise.

leafwise jits the per-leaf function while a program is being staged out, so
that lowering a tree of many leaves traces it once per distinct leaf
signature instead of once per leaf. Telling staging apart from eager
execution needs a private JAX name (``_is_staging``); these tests fail if a
JAX release moves or changes it.
"""

import collections

import jax
import jax.numpy as jnp
import gradtx
from gradtx._src import leafwise as LW

X = jnp.arange(3.0, dtype=jnp.float32)


def _seen(transform):
  """What ``_is_staging`` said of the value ``transform`` ran a function on."""
  seen = []

  def f(x):
    seen.append(LW._is_staging(x))
    return jnp.sum(x * x)

  transform(f)
  assert seen, "the function never ran"
  return seen


def test_staging_under_jit_eval_shape_and_scan():
  assert _seen(lambda f: jax.jit(f)(X)) == [True]
  assert _seen(lambda f: jax.eval_shape(f, X)) == [True]
  # scan may trace its body more than once; every time it is staged.
  assert set(_seen(lambda f: jax.lax.scan(
      lambda c, x: (c + f(x), None), 0.0, jnp.stack([X, X])))) == {True}


def test_not_staging_eagerly_or_under_eager_vmap_and_grad():
  assert _seen(lambda f: f(X)) == [False]
  assert _seen(lambda f: jax.vmap(f)(jnp.stack([X, X]))) == [False]
  assert _seen(lambda f: jax.grad(f)(X)) == [False]
  assert _seen(lambda f: jax.jacfwd(f)(X)) == [False]


def _tree(n):
  """``n`` leaves of 4 distinct signatures (3 shapes, 2 dtypes)."""
  kinds = [((3,), jnp.float32), ((2, 2), jnp.float32), ((5,), jnp.float32),
           ((3,), jnp.float64)]
  return {f"p{i:03d}": jnp.ones(*kinds[i % len(kinds)]) for i in range(n)}


def test_jitted_step_traces_fn_once_per_leaf_signature():
  tree = _tree(200)
  calls = collections.Counter()

  def fn(g, m):
    calls[(g.shape, str(g.dtype))] += 1
    m = 0.9 * m + 0.1 * g
    return g / (1 + jnp.abs(m)), m

  def step(g, m):
    return LW.leafwise(fn, 2, g, m, name="test")

  out, _ = jax.jit(step)(tree, tree)
  assert sum(calls.values()) == 4, calls  # 200 leaves, 4 signatures
  assert set(calls.values()) == {1}
  for k in tree:  # and the results are per leaf, not the first leaf's
    want = tree[k] / (1 + jnp.abs(tree[k]))
    assert out[k].shape == tree[k].shape and out[k].dtype == tree[k].dtype
    assert jnp.allclose(out[k], want)


def test_eager_step_runs_fn_once_per_leaf():
  tree = _tree(20)
  calls = []

  def fn(g):
    calls.append(LW._is_staging(g))
    return (2 * g,)

  LW.leafwise(fn, 1, tree, name="test")
  assert calls == [False] * 20


def test_adam_lowering_traces_its_leaf_function_once_per_signature(
    monkeypatch):
  """The same through a real optimizer: lowering adam on 200 leaves calls
  jnp.sqrt (once in each trace of the per-leaf function) 4 times, not
  200."""
  tree = _tree(200)
  tx = gradtx.adam(1e-3)
  state = tx.init(tree)
  real_sqrt, n = jnp.sqrt, [0]

  def counting_sqrt(x):
    n[0] += 1
    return real_sqrt(x)

  monkeypatch.setattr(jnp, "sqrt", counting_sqrt)
  jax.jit(tx.update).lower(tree, state, tree)
  assert n[0] == 4
