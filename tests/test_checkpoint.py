"""Optimizer states save and restore with orbax; training resumes bit for bit.

Each case trains N steps, saves params and state with orbax-checkpoint,
restores them into a fresh process-like setting (new arrays, abstract target
from ``init``), trains M more steps, and compares with an uninterrupted run
of N + M steps: params and state must be identical bit for bit.

The steps of each case run in one jitted program, a loop whose bounds are
arguments: the uninterrupted run, the first N steps and the resumed M are
the same compiled program, so any difference comes from the checkpoint.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

ocp = pytest.importorskip("orbax.checkpoint")

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4),
          "b": jnp.array([0.5, -0.25, 2.0])}


def _grads(params, i):
  return jax.tree.map(lambda p: jnp.cos(2.0 * p + 0.3 * i) * (1 + i % 3),
                      params)


@functools.cache
def _stepper(tx):
  """``train(params, state, start, stop)``: steps ``start`` to ``stop - 1``
  of ``tx``, jitted once for every start and number of steps."""
  def train(params, state, start, stop):
    def body(i, carry):
      params, state = carry
      u, state = tx.update(_grads(params, i), state, params)
      return gradtx.apply_updates(params, u), state
    return jax.lax.fori_loop(start, stop, body, (params, state))
  return jax.jit(train)


def _train(tx, params, state, start, steps):
  # Committed to the device, as orbax restores arrays: the resumed run is
  # then the same program, not one compiled again for other shardings.
  params, state = jax.device_put((params, state), jax.devices()[0])
  return _stepper(tx)(params, state, start, start + steps)


def _save_restore(tmp_path, params, state, tx):
  path = tmp_path / "ckpt"
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(path, {"params": params, "opt_state": state})
  target = {"params": PARAMS, "opt_state": tx.init(PARAMS)}
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  with ocp.StandardCheckpointer() as ckptr:
    restored = ckptr.restore(path, abstract)
  return restored["params"], restored["opt_state"]


CASES = [
    ("adam", lambda: gradtx.adam(1e-2), 7, 5),
    ("lookahead_mid_cycle", lambda: gradtx.lookahead(
        gradtx.sgd(1e-2, momentum=0.9), sync_period=5), 7, 6),
    ("swats_after_switch", lambda: gradtx.swats(1e-2, eps=1e-3), 12, 6),
    ("amsbound", lambda: gradtx.amsbound(1e-2, final_lr=0.05), 6, 4),
    ("multisteps_mid_accumulation", lambda: gradtx.MultiSteps(
        gradtx.adam(1e-2), 4).gradient_transformation(), 6, 5),
    ("inject_hyperparams", lambda: gradtx.inject_hyperparams(gradtx.adamw)(
        learning_rate=1e-2), 5, 5),
]


BY_NAME = {c[0]: c[1:] for c in CASES}


@functools.cache
def _tx(name):
  return BY_NAME[name][0]()


@functools.cache
def _first_steps(name):
  """(params, state) after the N steps before the checkpoint."""
  tx, n = _tx(name), BY_NAME[name][1]
  return _train(tx, PARAMS, tx.init(PARAMS), 0, n)


@pytest.mark.parametrize("name", BY_NAME)
def test_resumed_training_is_bit_identical(tmp_path, name):
  tx, (_, n, m) = _tx(name), BY_NAME[name]
  p_full, s_full = _train(tx, PARAMS, tx.init(PARAMS), 0, n + m)
  p_half, s_half = _first_steps(name)
  p_back, s_back = _save_restore(tmp_path, p_half, s_half, tx)
  assert jax.tree.structure(s_back) == jax.tree.structure(s_half)
  p_res, s_res = _train(tx, p_back, s_back, n, m)
  for a, b in zip(jax.tree.leaves((p_full, s_full)),
                  jax.tree.leaves((p_res, s_res))):
    assert np.asarray(a).dtype == np.asarray(b).dtype
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_swats_case_really_switched_before_the_checkpoint():
  _, state = _first_steps("swats_after_switch")
  assert bool(state.switched)
  assert int(state.switch_step) <= BY_NAME["swats_after_switch"][1]


def test_lookahead_case_is_mid_cycle():
  _, state = _first_steps("lookahead_mid_cycle")
  assert int(state.steps_since_sync) != 0
