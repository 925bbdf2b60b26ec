"""Every registered optimizer converges.

For each entry of ``registry.SPECS`` flagged ``converges``: the loss on an
ill-conditioned quadratic after 500 steps, and on Rosenbrock after the
entry's ``rosenbrock_steps``, each run as one ``lax.scan``. All entries run
in one jitted program: XLA compiles one program holding every entry's runs
in far less time than one program per entry. Line searches are given the
objective, least-squares entries its residuals.
"""

import functools

import jax
import jax.numpy as jnp
import pytest

import gradtx
from registry import SPECS

CONVERGING = [s for s in SPECS if s.converges]


def quadratic(p):
  return 0.5 * (jnp.sum(jnp.array([1.0, 10.0]) * p["x"] ** 2)
                + jnp.sum(jnp.array([3.0, 0.5, 2.0]) * p["y"] ** 2))


def rosenbrock(p):
  x = p["x"]
  return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


# The residuals whose sum(r**2) / 2 is each objective (up to a factor 2 for
# Rosenbrock, which leaves its minimiser alone), for the least-squares
# entries (``needs_residuals``) and the natural gradient (``needs_outputs``).
RESIDUALS = {
    "quadratic": lambda p: {"x": jnp.sqrt(jnp.array([1.0, 10.0])) * p["x"],
                            "y": jnp.sqrt(jnp.array([3.0, 0.5, 2.0]))
                            * p["y"]},
    "rosenbrock": lambda p: jnp.stack([1 - p["x"][0],
                                       10 * (p["x"][1] - p["x"][0] ** 2)]),
}


def _objective(spec, f, p, g):
  """What update() reads besides the gradient ``g`` of ``f`` at ``p``: the
  objective and its value (a line search), or ``f``'s residual function."""
  if spec.needs_residuals:
    return dict(residual_fn=RESIDUALS[f.__name__])
  if spec.needs_outputs:
    return dict(output_fn=RESIDUALS[f.__name__])
  if not spec.needs_objective:
    return {}
  return dict(value=f(p), grad=g, value_fn=f)


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
def _final_losses():
  """{name: (quadratic loss, Rosenbrock loss)} at the end of both runs of
  every entry, from one jitted program, and {name: the error} of the
  entries whose runs could not be traced (each entry's test raises its
  own)."""
  errors = {}

  def all_runs():
    out = {}
    for spec in CONVERGING:
      try:
        out[spec.name] = (
            _minimise(spec, spec.make(spec.lr_quadratic), quadratic, Q0, 500),
            _minimise(spec, spec.make(spec.lr_rosenbrock), rosenbrock, R0,
                      spec.rosenbrock_steps))
      except Exception as e:  # pylint: disable=broad-except
        errors[spec.name] = e
    return out

  return jax.jit(all_runs)(), errors


def _losses(spec):
  losses, errors = _final_losses()
  if spec.name in errors:
    raise errors[spec.name]
  return losses[spec.name]


@pytest.mark.parametrize("spec", CONVERGING, ids=[s.name for s in CONVERGING])
def test_converges_on_quadratic(spec):
  loss = _losses(spec)[0]
  assert float(quadratic(Q0)) == 7.5
  assert float(loss) < 1e-3, f"{spec.name}: quadratic loss {float(loss)}"


@pytest.mark.parametrize("spec", CONVERGING, ids=[s.name for s in CONVERGING])
def test_converges_on_rosenbrock(spec):
  loss = _losses(spec)[1]
  assert float(loss) < spec.rosenbrock_tol, (
      f"{spec.name}: Rosenbrock loss {float(loss)} (start 24.2)")
