"""Checks gradtx under jax.sharding on 8 virtual CPU devices (a 4x2 mesh).

Run by tests/test_sharding.py in a subprocess, since the device count must
be set before jax is imported:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python sharding_check.py

For every optimizer of tests/registry.py and both kinds of mesh axes:

* ``init``, run eagerly or under ``jax.jit`` (inside ``jax.set_mesh``),
  gives every state buffer its param's sharding, and both give the same
  numbers;
* a jitted training step on sharded params and state returns updates and a
  new state with the params' shardings, and compiles once;
* its numbers equal the same steps run on one device.

Prints one ``OK <mode> <name>`` line per optimizer and mode checked, and
exits non-zero with every mismatch listed if anything fails.
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradtx  # noqa: E402
from registry import SPECS, leaf_arrays, objective_kwargs  # noqa: E402

# Distinct shapes, so a state buffer's shape names the param it belongs to.
LAYOUT = {"w": ((8, 4), P("data", "model")), "b": ((6,), P("model"))}
STEPS = 3


def _values():
  out = {}
  for i, (k, (shape, _)) in enumerate(sorted(LAYOUT.items())):
    n = int(np.prod(shape))
    out[k] = jnp.asarray(np.linspace(-1.0, 1.0, n).reshape(shape) + 0.1 * i)
  return out


def _grads(params, i):
  return jax.tree.map(lambda p: jnp.sin(3.0 * p + i) * (1 + i % 2), params)


def _place(tree, mesh):
  return {k: jax.device_put(v, NamedSharding(mesh, LAYOUT[k][1]))
          for k, v in tree.items()}


def _sharding_errors(tree, params, what):
  by_shape = {p.shape: p.sharding for p in params.values()}
  errors = []
  for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
    if not isinstance(x, jax.Array) or x.ndim == 0:
      continue  # counters, keys and flags are scalars
    want = by_shape.get(x.shape)
    if want is None and x.shape[1:] in by_shape:
      # A stack of per-step copies of a param (L-BFGS's history): sharded
      # as the param along the trailing axes, not along the stack.
      inner = by_shape[x.shape[1:]]
      want = NamedSharding(inner.mesh, P(None, *inner.spec))
    if want is None:
      # Per-step scalars (L-BFGS's rho history) belong to no param.
      if not x.sharding.is_fully_replicated:
        errors.append(f"{what} {jax.tree_util.keystr(path)}: belongs to no "
                      f"param and should be replicated, is {x.sharding}")
      continue
    if not x.sharding.is_equivalent_to(want, x.ndim):
      errors.append(f"{what} {jax.tree_util.keystr(path)}: "
                    f"{getattr(x.sharding, 'spec', x.sharding)}, want "
                    f"{want.spec}")
  return errors


COMPILES = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, _, **kw: COMPILES.append(event)
    if event == "/jax/core/compile/backend_compile_duration" else None)


def _train(txs, params, states, step):
  """``STEPS`` jitted steps of every optimizer at once.

  Returns the (updates, states) of each step and the number of XLA compiles
  made by the steps after the first (0 unless a state changed sharding).
  """
  history, recompiles = [], 0
  params = [params] * len(txs)
  for i in range(STEPS):
    grads = _grads(params[0], i)
    before = len(COMPILES)
    updates, states = step(params, states, grads)
    jax.block_until_ready(updates)
    recompiles += (len(COMPILES) - before) if i else 0
    params = [gradtx.apply_updates(p, u) for p, u in zip(params, updates)]
    history.append((updates, states))
  return history, recompiles


def _step_fn(txs):
  def step(params, states, grads):
    out = [tx.update(grads, s, p, **objective_kwargs(spec, p, grads))
           for spec, tx, s, p in zip(SPECS, txs, states, params)]
    return [u for u, _ in out], [s for _, s in out]
  return jax.jit(step)


def main():
  assert jax.device_count() == 8, (
      f"needs 8 devices, got {jax.device_count()}: set XLA_FLAGS="
      f"--xla_force_host_platform_device_count=8 before jax is imported")
  txs = [s.make(1e-2) for s in SPECS]
  values = _values()
  # The single-device reference.
  ref, _ = _train(txs, values, [tx.init(values) for tx in txs],
                  _step_fn(txs))
  errors = []
  for axis_type in (AxisType.Explicit, AxisType.Auto):
    mode = axis_type.name.lower()
    mesh = jax.make_mesh((4, 2), ("data", "model"),
                         axis_types=(axis_type, axis_type))
    params = _place(values, mesh)
    with jax.set_mesh(mesh):
      eager = [tx.init(params) for tx in txs]
      jitted = jax.jit(lambda p: [tx.init(p) for tx in txs])(params)
      # Train from one init in each mode: both must serve the step.
      start = jitted if axis_type == AxisType.Explicit else eager
      history, recompiles = _train(txs, params, start, _step_fn(txs))
    if recompiles:
      errors.append(f"{mode}: the sharded step compiled again "
                    f"{recompiles} times after its first call")
    for k, spec in enumerate(SPECS):
      mine = (_sharding_errors(eager[k], params, "eager init")
              + _sharding_errors(jitted[k], params, "jit init"))
      for a, b in zip(leaf_arrays(jitted[k]), leaf_arrays(eager[k])):
        if not np.array_equal(a, b):
          mine.append("jit init differs from eager init")
          break
      for i, ((u, s), (u_ref, s_ref)) in enumerate(zip(history, ref)):
        mine += _sharding_errors((u[k], s[k]), params, f"step {i}")
        for a, b in zip(leaf_arrays((u[k], s[k])),
                        leaf_arrays((u_ref[k], s_ref[k]))):
          if a.dtype != b.dtype or not np.allclose(a, b, rtol=1e-12,
                                                   atol=1e-15):
            mine.append(f"step {i}: differs from the single-device run by "
                        f"{np.max(np.abs(a - b))}")
            break
      if mine:
        errors += [f"{mode} {spec.name}: {e}" for e in mine]
      else:
        print(f"OK {mode} {spec.name}")
  if errors:
    print("\n".join(errors))
    sys.exit(1)


if __name__ == "__main__":
  main()
