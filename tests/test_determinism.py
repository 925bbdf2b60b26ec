"""Determinism of every registered optimizer.

Over ``registry.SPECS``: two runs of the same steps give bit-identical
params and state, jitted or eager; training resumed from an orbax
checkpoint is bit for bit the uninterrupted run. A jitted step and the
same step run eagerly agree to rounding only: inside a fused kernel XLA's
CPU backend contracts ``a * b + c`` into one fused multiply-add, which
rounds once instead of twice (each on its own is bit-reproducible).

All optimizers step inside one jitted function, compiled once and shared by
every test here; the params are tiny. The eager runs take EAGER_STEPS steps
only: an eager step compiles each op on its first call, and an L-BFGS step
compiles its line search's while_loop on every call (about a second each),
while the jitted runs, whose steps cost nothing once compiled, cross the
phase changes (Lookahead's sync at step 5, RAdam's first rectified
steps) and the checkpoint.

The repeated eager runs cover the entries that run op by op, those that
take no function of the params (``registry.objective_kwargs`` gives them
nothing). An entry given an objective, residuals or outputs traces that
function afresh at every eager update and runs what it traced (a line
search's while_loop, a Hessian) as a compiled program, about a second per
step: its repeat is that of a compiled program, which the repeated jitted
runs check, for every entry, over all N + M steps.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from registry import SPECS, leaf_arrays, objective_kwargs

ocp = pytest.importorskip("orbax.checkpoint")

IDS = [s.name for s in SPECS]
TXS = [s.make(1e-2) for s in SPECS]
# Indices of the entries whose eager update runs op by op (see above).
OP_BY_OP = [k for k, s in enumerate(SPECS)
            if not (s.needs_objective or s.needs_residuals or s.needs_outputs)]
PARAMS = {"w": jnp.linspace(-1.0, 1.0, 6, dtype=jnp.float32).reshape(3, 2),
          "b": jnp.array([[0.5, -0.25], [2.0, 0.3], [-1.5, 0.7]],
                         jnp.float32)}
N, M = 4, 3  # steps before and after the checkpoint
# Eager steps: two repeated eager runs, and the comparison with the jitted
# run after as many steps. The third step is the first in which every
# optimizer reads state written by two earlier updates (L-BFGS: two
# curvature pairs).
EAGER_STEPS = 3


def _grads(params, i):
  return jax.tree.map(lambda p: jnp.sin(3.0 * p + i) * (1.0 + i % 3), params)


def _step(params, states, i, which=None):
  """One step of every optimizer, or of those indexed by ``which``; ``i``
  (the step index) picks the grads."""
  new_params, new_states = [], []
  which = range(len(SPECS)) if which is None else which
  for k, p, s in zip(which, params, states):
    spec, tx = SPECS[k], TXS[k]
    g = _grads(p, i)
    u, s = tx.update(g, s, p, **objective_kwargs(spec, p, g))
    new_params.append(gradtx.apply_updates(p, u))
    new_states.append(s)
  return new_params, new_states


_jit_step = jax.jit(_step)


def _train(step, params, states, start, steps, keep=None):
  """(params, states) after ``steps`` steps; with ``keep``, also those
  after step ``keep`` (counted from 1), as a second value."""
  kept = None
  for i in range(start, start + steps):
    params, states = step(params, states, jnp.asarray(i, jnp.int32))
    if i + 1 == keep:
      kept = (params, states)
  return ((params, states), kept) if keep else (params, states)


def _start():
  # Committed to a device, as orbax restores arrays: a restored state then
  # has the same signature and the jitted step does not compile again.
  return jax.device_put(([PARAMS] * len(TXS), [tx.init(PARAMS) for tx in TXS]),
                        jax.devices()[0])


def _assert_identical(a, b, what, which=None):
  """Same tree, dtypes and bits (NaN == NaN), per optimizer (those indexed
  by ``which``, in that order, if given)."""
  names = IDS if which is None else [IDS[k] for k in which]
  for k, name in enumerate(names):
    ta, tb = (a[0][k], a[1][k]), (b[0][k], b[1][k])
    assert jax.tree.structure(ta) == jax.tree.structure(tb), name
    for x, y in zip(leaf_arrays(ta), leaf_arrays(tb)):
      assert x.dtype == y.dtype, f"{name}: {what}: {x.dtype} != {y.dtype}"
      assert x.tobytes() == y.tobytes(), f"{name}: {what} differ: {x} {y}"


@functools.cache
def _jit_runs():
  """The jitted run after N + M steps and after EAGER_STEPS steps."""
  return _train(_jit_step, *_start(), 0, N + M, keep=EAGER_STEPS)


def _jit_run():
  return _jit_runs()[0]


@functools.cache
def _eager_run():
  return _train(_step, *_start(), 0, EAGER_STEPS)


def test_repeated_jitted_runs_are_bit_identical():
  _assert_identical(_jit_run(), _train(_jit_step, *_start(), 0, N + M),
                    "two jitted runs")


def test_repeated_eager_runs_are_bit_identical():
  params, states = _eager_run()
  first = ([params[k] for k in OP_BY_OP], [states[k] for k in OP_BY_OP])
  start = _start()
  again = _train(functools.partial(_step, which=OP_BY_OP),
                 [start[0][k] for k in OP_BY_OP],
                 [start[1][k] for k in OP_BY_OP], 0, EAGER_STEPS)
  _assert_identical(first, again, "two eager runs", OP_BY_OP)


def test_jit_and_eager_agree_to_rounding():
  jitted, eager = _jit_runs()[1], _eager_run()
  for k, spec in enumerate(SPECS):
    # L-BFGS divides by s.y and y.y, differences of nearly equal float32
    # numbers, so a last-bit difference in the gradients grows over the
    # steps: measured 1.9e-6 absolute on O(1) params, 4.6e-5 on a state
    # entry of 19 and at most 8.9e-5 relative, after EAGER_STEPS = 3 steps
    # (and 3e-3 relative after 7).
    rtol, atol = (1e-3, 1e-4) if spec.needs_objective else (2e-5, 1e-7)
    for x, y in zip(leaf_arrays((jitted[0][k], jitted[1][k])),
                    leaf_arrays((eager[0][k], eager[1][k]))):
      assert x.dtype == y.dtype
      np.testing.assert_allclose(x, y, rtol=rtol, atol=atol,
                                 err_msg=spec.name)


def test_resume_from_checkpoint_is_bit_identical(tmp_path):
  params, states = _train(_jit_step, *_start(), 0, N)
  saved = {name: {"params": p, "state": s}
           for name, p, s in zip(IDS, params, states)}
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(tmp_path / "ckpt", saved)
  # The restore target is built from init, as a fresh process would.
  fresh = {name: {"params": PARAMS, "state": tx.init(PARAMS)}
           for name, tx in zip(IDS, TXS)}
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, fresh)
  with ocp.StandardCheckpointer() as ckptr:
    restored = ckptr.restore(tmp_path / "ckpt", abstract)
  _assert_identical((params, states),
                    ([restored[n]["params"] for n in IDS],
                     [restored[n]["state"] for n in IDS]), "restored")
  resumed = _train(_jit_step, [restored[n]["params"] for n in IDS],
                   [restored[n]["state"] for n in IDS], N, M)
  _assert_identical(_jit_run(), resumed, "resumed vs uninterrupted")
  assert _jit_step._cache_size() == 1, "the restored state recompiled"
