"""Registry-driven properties of every optimizer's step.

For each entry of ``registry.SPECS``: ``jax.jit`` equals eager; the second
jitted call does not recompile; ``update`` keeps the state's tree
structure, shapes and dtypes; updates keep the params' dtype (float32,
bfloat16, float64). Convergence is in test_convergence. Entries flagged ``needs_objective`` (line searches) are also given the
objective the gradients come from, as ``value``, ``grad`` and ``value_fn``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from registry import BY_NAME, SPECS

IDS = [s.name for s in SPECS]


# The residuals whose sum(r**2) / 2 is each objective of test_convergence
# (up to a factor 2 for Rosenbrock, which leaves its minimiser alone), and
# of ``_wavy`` below, for the least-squares entries (``needs_residuals``).
RESIDUALS = {
    "quadratic": lambda p: {"x": jnp.sqrt(jnp.array([1.0, 10.0])) * p["x"],
                            "y": jnp.sqrt(jnp.array([3.0, 0.5, 2.0]))
                            * p["y"]},
    "rosenbrock": lambda p: jnp.stack([1 - p["x"][0],
                                       10 * (p["x"][1] - p["x"][0] ** 2)]),
    "_wavy": lambda p, step: jax.tree.map(lambda x: jnp.sin(3.0 * x + step),
                                          p),
}


def _objective(spec, f, p, g, **data):
  """What a line search reads from update(): the objective ``f`` (whose
  gradient at ``p`` is ``g``), its value and the data it takes; or, for a
  least-squares entry, ``f``'s residual function and the data."""
  if spec.needs_residuals:
    return dict(residual_fn=RESIDUALS[f.__name__], **data)
  if spec.needs_outputs:
    return dict(output_fn=RESIDUALS[f.__name__], **data)
  if not spec.needs_objective:
    return {}
  return dict(value=f(p, **data), grad=g, value_fn=f, **data)


def _params(dtype):
  return {"w": jnp.linspace(-1.0, 1.0, 12, dtype=dtype).reshape(3, 4),
          "b": jnp.array([0.5, -0.25, 2.0], dtype=dtype)}


def _grads(params, i):
  return jax.tree.map(lambda p: (jnp.sin(3.0 * p + i) * 2.0).astype(p.dtype),
                      params)


def _wavy(params, step):
  """The objective whose gradient is ``_grads(params, step)``."""
  return sum(jnp.sum(-2.0 / 3.0 * jnp.cos(3.0 * p + step))
             for p in jax.tree.leaves(params))


def _update_fn(spec, tx):
  """``update(grads, state, params, step)``, given the objective if needed."""
  def update(g, s, p, i):
    return tx.update(g, s, p, **_objective(spec, _wavy, p, g, step=i))
  return update


STEPS = 4


def _run(tx, params, step_fn):
  """(updates, state, params) after each of STEPS steps from ``params``."""
  state, out = tx.init(params), []
  for i in range(STEPS):
    updates, state = step_fn(_grads(params, i), state, params, i)
    params = gradtx.apply_updates(params, updates)
    out.append((updates, state, params))
  return out


@functools.cache
def _eager_steps(name, dtype):
  """The eager run of entry ``name`` in ``dtype``, shared by the jit ==
  eager test (float64) and the state test."""
  spec = BY_NAME[name]
  tx = spec.make(1e-2)
  return _run(tx, _params(dtype), _update_fn(spec, tx))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_jit_equals_eager_and_compiles_once(spec):
  tx = spec.make(1e-2)
  params = _params(jnp.float64)
  traces = []
  update = _update_fn(spec, tx)

  def step(g, s, p, i):
    traces.append(1)
    return update(g, s, p, i)

  _, eager_s, eager_p = _eager_steps(spec.name, jnp.float64)[-1]
  # The state is donated, as a training step does: init must not hand
  # the same buffer to two state leaves.
  _, jit_s, jit_p = _run(tx, params, jax.jit(step, donate_argnums=1))[-1]
  assert len(traces) == 1, f"{spec.name}: the jitted step was traced " \
      f"{len(traces)} times in {STEPS} calls"
  for a, b in zip(jax.tree.leaves(eager_p) + jax.tree.leaves(eager_s),
                  jax.tree.leaves(jit_p) + jax.tree.leaves(jit_s)):
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
      a, b = jax.random.key_data(a), jax.random.key_data(b)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10,
                               atol=1e-14)


def _signature(tree):
  return (jax.tree.structure(tree),
          [(x.shape, x.dtype) for x in jax.tree.leaves(tree)])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_state_stable_and_dtype_kept(spec, dtype):
  tx = spec.make(1e-2)
  before = _signature(tx.init(_params(dtype)))
  if (spec.eager_recompiles or spec.eager_costly) and dtype != jnp.float64:
    # Eager in float64 (shared with the jit == eager test); jitted here,
    # which gives the same signatures and dtypes by construction.
    run = _run(tx, _params(dtype), jax.jit(_update_fn(spec, tx)))
  else:
    run = _eager_steps(spec.name, dtype)
  for updates, state, params in run:
    assert _signature(state) == before, f"{spec.name}: state changed shape"
    for u, p in zip(jax.tree.leaves(updates), jax.tree.leaves(params)):
      assert u.dtype == p.dtype, f"{spec.name}: {u.dtype} update for {p.dtype}"
      assert u.shape == p.shape
      assert bool(jnp.all(jnp.isfinite(u)))


@pytest.mark.parametrize("spec", [s for s in SPECS if s.needs_params],
                         ids=[s.name for s in SPECS if s.needs_params])
def test_params_required_says_so(spec):
  tx = spec.make(1e-2)
  params = _params(jnp.float32)
  with pytest.raises(ValueError, match="needs the current params"):
    tx.update(params, tx.init(params))


def test_eager_vmap_of_an_update_compiles_nothing_after_the_first_call():
  """leafwise jits its per-leaf function only while a program is staged
  (jit, scan); under an eager vmap that jit would compile anew every call,
  since the per-leaf function is a new closure at each update."""
  compiles = []
  jax.monitoring.register_event_duration_secs_listener(
      lambda event, _, **kw: compiles.append(event)
      if event == "/jax/core/compile/backend_compile_duration" else None)
  # Leaves of one shape: each op compiles once for all of them, on the
  # first call.
  params = {f"l{i}": jnp.ones((2,)) for i in range(3)}
  tx = gradtx.adam(0.1)
  state = tx.init(params)
  batched = jax.vmap(lambda g: tx.update(g, state, params)[0])
  grads = jax.tree.map(lambda p: jnp.ones((3,) + p.shape), params)
  batched(grads)
  before = len(compiles)
  batched(grads)
  assert len(compiles) == before
