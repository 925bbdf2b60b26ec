"""Registry-driven properties of every optimizer's step.

For each entry of ``registry.SPECS``: ``jax.jit`` equals eager; the second
jitted call does not recompile; ``update`` keeps the state's tree
structure, shapes and dtypes; updates keep the params' dtype (float32,
bfloat16, float64). Convergence is in test_convergence. Entries that need
an objective (line searches, least squares) are given the local model of
``registry.objective_kwargs`` whose gradient is the one fed.

All runs use the tree, rate and gradients of ``registry``; the float32 and
bfloat16 runs of entries flagged ``eager_recompiles`` or ``eager_costly``
go through ``registry.costly_steps``, the program test_numerics runs.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import common
import gradtx
from registry import (BY_NAME, LR, SPECS, eager_update, leaf_arrays,
                      run_steps, spec_steps, tree_grads, tree_params,
                      update_all)

IDS = [s.name for s in SPECS]
STEPS = 4


def _grads_seq():
  """STEPS gradients (``registry.tree_grads``), each a function of the
  params of its step."""
  return [functools.partial(tree_grads, i=i) for i in range(STEPS)]


@functools.cache
def _eager_steps(name, dtype):
  """The eager run of entry ``name`` in ``dtype``, shared by the jit ==
  eager test (float64) and the state test."""
  spec = BY_NAME[name]
  tx = spec.make(LR)
  return run_steps(tx, eager_update(spec, tx), tree_params(dtype),
                   _grads_seq())


def _jitted_steps(specs):
  """STEPS float64 steps of every entry in ``specs`` at once, through one
  jitted step that takes {name: grads}, {name: state}, {name: params}, with
  the states donated as a training step does (init must not hand the same
  buffer to two state leaves). XLA compiles one program holding every
  entry's update in far less time than one program per entry.

  Returns {name: (final state, final params)}, {name: [what jax.jit keys
  its cache on, for that entry's arguments, at each call]} and how many
  times the step was traced.
  """
  txs = {s.name: s.make(LR) for s in specs}
  update = update_all({s.name: eager_update(s, txs[s.name]) for s in specs})
  traces = []

  def step(gs, ss, ps):
    traces.append(1)
    return update(gs, ss, ps)

  step = jax.jit(step, donate_argnums=1)
  ps = {n: tree_params(jnp.float64) for n in txs}
  ss = {n: tx.init(ps[n]) for n, tx in txs.items()}
  types = {n: [] for n in txs}
  for i in range(STEPS):
    gs = {n: tree_grads(ps[n], i) for n in txs}
    for n in txs:
      types[n].append(common.arg_types((gs[n], ss[n], ps[n])))
    us, ss = step(gs, ss, ps)
    ps = {n: gradtx.apply_updates(ps[n], us[n]) for n in txs}
  return {n: (ss[n], ps[n]) for n in txs}, types, len(traces)


@functools.cache
def _all_jitted_steps():
  """:func:`_jitted_steps` of every entry, or None if that raised (each
  test then runs its own entry alone, which names the one at fault)."""
  try:
    return _jitted_steps(SPECS)
  except Exception:  # pylint: disable=broad-except
    return None


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_jit_equals_eager_and_compiles_once(spec):
  """Jitted (one program for all entries, see :func:`_jitted_steps`), the
  step is traced once in STEPS calls: each entry's arguments keep what
  jax.jit keys its cache on, and nothing else makes the shared step
  retrace. Its float64 results equal the eager run's."""
  runs = _all_jitted_steps() or _jitted_steps([spec])
  finals, types, traces = runs
  assert len(set(types[spec.name])) == 1, (
      f"{spec.name}: the jitted step would be traced anew: its arguments "
      f"changed type between calls: {types[spec.name]}")
  distinct = len(set(zip(*types.values())))
  assert traces == distinct, (
      f"the jitted step was traced {traces} times in {STEPS} calls, for "
      f"{distinct} different argument types")
  jit_s, jit_p = finals[spec.name]
  _, eager_s, eager_p = _eager_steps(spec.name, jnp.float64)[-1]
  for a, b in zip(leaf_arrays((eager_p, eager_s)),
                  leaf_arrays((jit_p, jit_s)), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14,
                               err_msg=spec.name)


def _signature(tree):
  return (jax.tree.structure(tree),
          [(x.shape, x.dtype) for x in jax.tree.leaves(tree)])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_state_stable_and_dtype_kept(spec, dtype):
  tx = spec.make(LR)
  before = _signature(tx.init(tree_params(dtype)))
  if dtype == jnp.float64:
    run = _eager_steps(spec.name, dtype)  # shared with jit == eager
  else:
    # Eager, or (an entry whose eager steps cost more) the jitted step that
    # test_numerics runs too: the same signatures and dtypes.
    run = spec_steps(spec, tree_params(dtype), _grads_seq())
  for updates, state, params in run:
    assert _signature(state) == before, f"{spec.name}: state changed shape"
    for u, p in zip(jax.tree.leaves(updates), jax.tree.leaves(params)):
      assert u.dtype == p.dtype, f"{spec.name}: {u.dtype} update for {p.dtype}"
      assert u.shape == p.shape
      assert bool(jnp.all(jnp.isfinite(u)))


@pytest.mark.parametrize("spec", [s for s in SPECS if s.needs_params],
                         ids=[s.name for s in SPECS if s.needs_params])
def test_params_required_says_so(spec):
  tx = spec.make(LR)
  params = tree_params(jnp.float32)
  with pytest.raises(ValueError, match="needs the current params"):
    tx.update(params, tx.init(params))


def test_eager_vmap_of_an_update_compiles_nothing_after_the_first_call():
  """leafwise jits its per-leaf function only while a program is staged
  (jit, scan); under an eager vmap that jit would compile anew every call,
  since the per-leaf function is a new closure at each update."""
  # Leaves of one shape: each op compiles once for all of them, on the
  # first call.
  params = {f"l{i}": jnp.ones((2,)) for i in range(3)}
  tx = gradtx.adam(0.1)
  state = tx.init(params)
  batched = jax.vmap(lambda g: tx.update(g, state, params)[0])
  grads = jax.tree.map(lambda p: jnp.ones((3,) + p.shape), params)
  batched(grads)
  with common.CountCompiles() as compiles:
    batched(grads)
  assert compiles.count == 0
