"""Determinism of every registered optimizer.

Over ``registry.SPECS``, in float32 on the tree and gradients of
``registry``: two runs of the same steps give bit-identical params and
state, jitted or eager; training resumed from an orbax checkpoint is bit
for bit the uninterrupted run. A jitted step and the same step run eagerly
agree to rounding only: inside a fused kernel XLA's CPU backend contracts
``a * b + c`` into one fused multiply-add, which rounds once instead of
twice (each on its own is bit-reproducible).

The jitted runs step every optimizer through two programs: the one of
``registry.jitted_costly_update`` for the entries whose eager steps cost more
(line searches, Hessians; test_numerics and test_properties run the same
float32 program) and one for all the others. The eager runs take
EAGER_STEPS steps only, while the jitted runs, whose steps cost nothing
once compiled, cross the phase changes (Lookahead's sync at step 5,
RAdam's first rectified steps) and the checkpoint. The arrays are never
committed to a device (orbax's restored arrays are copied through the
host first): jax.jit and eager operations key their programs on that, and
uncommitted arrays find the programs the other files compiled.

The repeated eager runs cover the entries that run op by op, those that
take no function of the params (``registry.objective_kwargs`` gives them
nothing). An entry given an objective, residuals or outputs runs what it
traces from that function (a line search's while_loop, a Hessian) as a
compiled program: its repeat is that of a compiled program, which the
repeated jitted runs check, for every entry, over all N + M steps.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from common import arg_types
from registry import (BY_NAME, LR, SPECS, eager_update, jitted_costly_update,
                      leaf_arrays, run_steps, tree_grads, tree_params,
                      update_all)

ocp = pytest.importorskip("orbax.checkpoint")

IDS = [s.name for s in SPECS]
# The entries whose eager update runs op by op (see above).
OP_BY_OP = [s.name for s in SPECS
            if not (s.needs_objective or s.needs_residuals or s.needs_outputs)]
DTYPE = jnp.float32
N, M = 4, 3  # steps before and after the checkpoint
# Eager steps: two repeated eager runs, and the comparison with the jitted
# run after as many steps. The third step is the first in which every
# optimizer reads state written by two earlier updates (L-BFGS: two
# curvature pairs).
EAGER_STEPS = 3


@functools.cache
def _jitted():
  """({name: transform}, the jitted ``update(grads, states, params)`` of
  every entry over dicts keyed by name, and its two jitted programs)."""
  costly_txs, costly = jitted_costly_update()
  txs = {s.name: s.make(LR) for s in SPECS if s.name not in costly_txs}
  light = jax.jit(update_all(
      {n: eager_update(BY_NAME[n], tx) for n, tx in txs.items()}))

  def update(gs, ss, ps):
    out = [program({n: gs[n] for n in names}, {n: ss[n] for n in names},
                   {n: ps[n] for n in names})
           for program, names in ((light, txs), (costly, costly_txs))]
    return ({n: u[n] for u, _ in out for n in u},
            {n: s[n] for _, s in out for n in s})

  return {**txs, **costly_txs}, update, (light, costly)


def _start():
  txs = _jitted()[0]
  params = {n: tree_params(DTYPE) for n in IDS}
  return params, {n: txs[n].init(params[n]) for n in IDS}


def _train(params, states, start, steps):
  """(params, states) after each of the jitted steps ``start`` ..
  ``start + steps - 1`` (``registry.tree_grads`` of the step's params)."""
  update, out = _jitted()[1], []
  for i in range(start, start + steps):
    gs = {n: tree_grads(params[n], i) for n in IDS}
    us, states = update(gs, states, params)
    params = {n: gradtx.apply_updates(params[n], us[n]) for n in IDS}
    out.append((params, states))
  return out


def _eager(names):
  """(params, states) after EAGER_STEPS eager steps, as dicts keyed by
  name."""
  grads = [functools.partial(tree_grads, i=i) for i in range(EAGER_STEPS)]
  params, states = {}, {}
  for n in names:
    tx = BY_NAME[n].make(LR)
    _, states[n], params[n] = run_steps(tx, eager_update(BY_NAME[n], tx),
                                        tree_params(DTYPE), grads)[-1]
  return params, states


def _assert_identical(a, b, what, names=IDS):
  """Same tree, dtypes and bits (NaN == NaN), per optimizer: ``a`` and
  ``b`` are (params, states) pairs of dicts keyed by name."""
  for name in names:
    ta, tb = (a[0][name], a[1][name]), (b[0][name], b[1][name])
    assert jax.tree.structure(ta) == jax.tree.structure(tb), name
    for x, y in zip(leaf_arrays(ta), leaf_arrays(tb)):
      assert x.dtype == y.dtype, f"{name}: {what}: {x.dtype} != {y.dtype}"
      assert x.tobytes() == y.tobytes(), f"{name}: {what} differ: {x} {y}"


@functools.cache
def _jit_run():
  """(params, states) after each of the N + M jitted steps."""
  return _train(*_start(), 0, N + M)


@functools.cache
def _eager_run():
  return _eager(IDS)


def test_repeated_jitted_runs_are_bit_identical():
  _assert_identical(_jit_run()[-1], _train(*_start(), 0, N + M)[-1],
                    "two jitted runs")


def test_repeated_eager_runs_are_bit_identical():
  _assert_identical(_eager_run(), _eager(OP_BY_OP), "two eager runs",
                    OP_BY_OP)


def test_jit_and_eager_agree_to_rounding():
  jitted, eager = _jit_run()[EAGER_STEPS - 1], _eager_run()
  for spec in SPECS:
    # L-BFGS divides by s.y and y.y, differences of nearly equal float32
    # numbers, so a last-bit difference in the gradients grows over the
    # steps: measured 1.9e-6 absolute on O(1) params, 4.6e-5 on a state
    # entry of 19 and at most 8.9e-5 relative, after EAGER_STEPS = 3 steps
    # (and 3e-3 relative after 7).
    rtol, atol = (1e-3, 1e-4) if spec.needs_objective else (2e-5, 1e-7)
    n = spec.name
    for x, y in zip(leaf_arrays((jitted[0][n], jitted[1][n])),
                    leaf_arrays((eager[0][n], eager[1][n])), strict=True):
      assert x.dtype == y.dtype
      np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=n)


def _to_host_and_back(tree):
  """The same bits, shapes and dtypes, copied through the host: arrays no
  longer committed to a device (PRNG keys through their key data)."""
  def copy(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(np.asarray(jax.random.key_data(x)),
                                      impl=jax.random.key_impl(x))
    return jnp.asarray(np.asarray(x))
  return jax.tree.map(copy, tree)


def test_resume_from_checkpoint_is_bit_identical(tmp_path):
  params, states = _jit_run()[N - 1]
  saved = {n: {"params": params[n], "state": states[n]} for n in IDS}
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(tmp_path / "ckpt", saved)
  # The restore target is built from init, as a fresh process would.
  fresh_params, fresh_states = _start()
  fresh = {n: {"params": fresh_params[n], "state": fresh_states[n]}
           for n in IDS}
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, fresh)
  with ocp.StandardCheckpointer() as ckptr:
    restored = ckptr.restore(tmp_path / "ckpt", abstract)
  for n in IDS:
    # A restored leaf that lost its weak type (or changed dtype) would
    # make the jitted step compile again.
    assert arg_types(restored[n]) == arg_types(fresh[n]), (
        f"{n}: the restored state would recompile the step")
  restored = _to_host_and_back(restored)
  pairs = ({n: restored[n]["params"] for n in IDS},
           {n: restored[n]["state"] for n in IDS})
  _assert_identical((params, states), pairs, "restored")
  programs = _jitted()[2]
  sizes = [p._cache_size() for p in programs]
  resumed = _train(*pairs, N, M)[-1]
  _assert_identical(_jit_run()[-1], resumed, "resumed vs uninterrupted")
  assert [p._cache_size() for p in programs] == sizes, (
      "the restored state recompiled")
