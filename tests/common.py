"""Data and helpers shared by the per-step reference tests."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from registry import eager_update, run_steps

STEPS = 50


def grad_sequence(seed=0, steps=STEPS):
  rng = np.random.default_rng(seed)
  shapes = {"w": (4, 3), "b": (3,), "s": ()}
  out = []
  for _ in range(steps):
    g = {}
    for k, shape in shapes.items():
      mag = 10.0 ** rng.uniform(-3.0, np.log10(30.0), size=shape)
      sign = rng.choice([-1.0, 1.0], size=shape)
      g[k] = jnp.asarray(sign * mag, dtype=jnp.float64)
    out.append(g)
  return out


GRADS = grad_sequence()
PARAMS = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(4, 3),
          "b": jnp.array([0.5, -0.25, 2.0]), "s": jnp.asarray(0.3)}


def steps(tx, grads, params, spec=None, apply_updates=optax.apply_updates):
  """(updates, state, params) after each eager step; a line search
  (``spec`` flagged ``needs_objective``) gets the local model whose
  gradient is ``g``."""
  update = eager_update(spec, tx) if spec else tx.update
  return run_steps(tx, update, params, grads, apply_updates)


def python_prints(code):
  """What ``python -c code`` prints, stripped, run in a fresh interpreter
  (for what a module imports, which this process has imported already)."""
  return subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, check=True).stdout.strip()


def trajectory(tx, grads=GRADS, params=PARAMS, spec=None):
  """(updates, params) after each step (see :func:`steps`)."""
  return [(u, p) for u, _, p in steps(tx, grads, params, spec)]


def jit_trajectories(txs, grads=GRADS, params=PARAMS):
  """What :func:`trajectory` returns for each of ``txs``, all from one
  jitted program: one ``lax.scan`` per transform over the stacked
  gradients, each state made by ``init`` outside it (its hyperparameters
  concrete, as in a training loop). For long runs (hundreds of steps) one
  compilation costs less than as many eager steps, each of which
  dispatches every op; for short ones it does not (a scan of an adaptive
  optimizer in float64 takes about 0.15 s to compile). Eager updates are
  tested in test_properties and test_determinism."""
  stacked = jax.tree.map(lambda *g: np.stack(g), *grads)
  states = [tx.init(params) for tx in txs]

  def run(params, states, stacked):
    out = []
    for tx, state in zip(txs, states):
      def body(carry, g, tx=tx):
        p, s = carry
        u, s = tx.update(g, s, p)
        p = optax.apply_updates(p, u)
        return (p, s), (u, p)
      out.append(jax.lax.scan(body, (params, state), stacked)[1])
    return out

  out = jax.device_get(jax.jit(run)(params, states, stacked))
  return [[jax.tree.map(lambda x, t=t: x[t], traj) for t in range(len(grads))]
          for traj in out]


def assert_close(a, b, rtol=1e-9):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol,
                               atol=0)


def assert_trajectories_close(ours, theirs, rtol=1e-9):
  """:func:`assert_close` at every step of two trajectories (lists of
  trees), all steps at once; the first step that differs is reported."""
  assert len(ours) == len(theirs)
  a_leaves = zip(*[jax.tree.leaves(step) for step in ours])
  b_leaves = zip(*[jax.tree.leaves(step) for step in theirs])
  for n, (a, b) in enumerate(zip(a_leaves, b_leaves)):
    a, b = np.stack([np.asarray(x) for x in a]), np.stack(
        [np.asarray(y) for y in b])
    assert_steps_close(a, b, rtol, 0, f"step {{step}}, leaf {n}")


def assert_steps_close(ours, theirs, rtol, atol, err_msg):
  """Two arrays stacked over steps (steps first) agree at every step: all
  steps are compared at once, and the first that differs is reported with
  ``err_msg.format(step=its number from 1)``."""
  close = np.isclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)
  for t in np.flatnonzero(~close.reshape(len(ours), -1).all(axis=1))[:1]:
    np.testing.assert_allclose(ours[t], theirs[t], rtol=rtol, atol=atol,
                               err_msg=err_msg.format(step=t + 1))


def arg_types(tree):
  """What jax.jit keys its compiled programs on, but for where the arrays
  live: the tree structure and each leaf's type (shape, dtype, weak
  type)."""
  return (jax.tree.structure(tree),
          tuple(jax.typeof(x) for x in jax.tree.leaves(tree)))


class CountCompiles:
  """Counts XLA compiles while active: ``with CountCompiles() as c: ...``,
  then ``c.count``."""

  def __enter__(self):
    self.count = 0
    jax.monitoring.register_event_duration_secs_listener(self._heard)
    return self

  def __exit__(self, *exc):
    jax.monitoring.unregister_event_duration_listener(self._heard)

  def _heard(self, event, _, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
      self.count += 1
