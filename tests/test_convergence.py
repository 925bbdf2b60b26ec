"""Every registered optimizer converges.

For each entry of ``registry.SPECS`` flagged ``converges``: the loss on an
ill-conditioned quadratic after 500 steps, and on Rosenbrock after the
entry's ``rosenbrock_steps``, each run as one ``lax.scan`` in one jitted
program per entry. Line searches and least-squares entries are given the
objective (or its residuals) as test_properties gives it.
"""

import functools

import jax
import jax.numpy as jnp
import pytest

import gradtx
from registry import BY_NAME, SPECS
from test_properties import _objective

CONVERGING = [s for s in SPECS if s.converges]


def quadratic(p):
  return 0.5 * (jnp.sum(jnp.array([1.0, 10.0]) * p["x"] ** 2)
                + jnp.sum(jnp.array([3.0, 0.5, 2.0]) * p["y"] ** 2))


def rosenbrock(p):
  x = p["x"]
  return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


Q0 = {"x": jnp.array([1.0, 1.0]), "y": jnp.array([1.0, -1.0, 0.5])}
R0 = {"x": jnp.array([-1.2, 1.0])}


def _minimise(spec, tx, f, p0, steps):
  def step(carry, _):
    p, s = carry
    g = jax.grad(f)(p)
    u, s = tx.update(g, s, p, **_objective(spec, f, p, g))
    return (gradtx.apply_updates(p, u), s), None

  (p, _), _ = jax.lax.scan(step, (p0, tx.init(p0)), None, length=steps)
  return f(p)


@functools.cache
def _final_losses(name):
  """(quadratic loss, Rosenbrock loss) at the end of both runs of entry
  ``name``, from one jitted program: one compilation instead of two."""
  spec = BY_NAME[name]
  return jax.jit(lambda: (
      _minimise(spec, spec.make(spec.lr_quadratic), quadratic, Q0, 500),
      _minimise(spec, spec.make(spec.lr_rosenbrock), rosenbrock, R0,
                spec.rosenbrock_steps)))()


@pytest.mark.parametrize("spec", CONVERGING, ids=[s.name for s in CONVERGING])
def test_converges_on_quadratic(spec):
  loss = _final_losses(spec.name)[0]
  assert float(quadratic(Q0)) == 7.5
  assert float(loss) < 1e-3, f"{spec.name}: quadratic loss {float(loss)}"


@pytest.mark.parametrize("spec", CONVERGING, ids=[s.name for s in CONVERGING])
def test_converges_on_rosenbrock(spec):
  loss = _final_losses(spec.name)[1]
  assert float(loss) < spec.rosenbrock_tol, (
      f"{spec.name}: Rosenbrock loss {float(loss)} (start 24.2)")
