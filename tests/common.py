"""Data and helpers shared by the per-step reference tests."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from registry import objective_kwargs

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
  state, out = tx.init(params), []
  for g in grads:
    kw = objective_kwargs(spec, params, g) if spec else {}
    updates, state = tx.update(g, state, params, **kw)
    params = apply_updates(params, updates)
    out.append((updates, state, params))
  return out


def python_prints(code):
  """What ``python -c code`` prints, stripped, run in a fresh interpreter
  (for what a module imports, which this process has imported already)."""
  return subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, check=True).stdout.strip()


def trajectory(tx, grads=GRADS, params=PARAMS, spec=None):
  """(updates, params) after each step (see :func:`steps`)."""
  return [(u, p) for u, _, p in steps(tx, grads, params, spec)]


def assert_close(a, b, rtol=1e-9):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol,
                               atol=0)
