"""Writes the evaluations table of docs/second-order.md: gradtx against scipy.

Every number in the table comes from running this script:

    python docs/make_second_order_table.py            # rewrites the table
    python docs/make_second_order_table.py --print    # prints it only
    python docs/make_second_order_table.py --figure   # also the figure

``tests/test_second_order_scipy.py`` imports it, runs the same solves and
asserts on them. The problems are Moré, Garbow & Hillstrom's (ACM TOMS 7,
1981), written as residuals ``r``; the scalar methods minimise
``f = sum(r**2)`` (their convention), the least-squares ones
``sum(r**2) / 2`` (scipy's cost), in float64 from the standard starting
points.

* ``bfgs``: ``gradtx.minimize(f, x0, gradtx.bfgs(), gtol=GTOL)`` against
  ``scipy.optimize.minimize(f, x0, jac=True, method="BFGS",
  options={"gtol": SCIPY_GTOL})``: both stop when the largest gradient
  entry is at most their tolerance, gradtx's 100 times tighter (so that its
  final value is as low as scipy's, not lower or higher by luck).
* ``newton_cg``: ``gradtx.newton_cg()`` against ``method="Newton-CG"`` with
  ``hessp`` (scipy stops on the step size, ``xtol``; gradtx on ``GTOL``).
* ``levenberg_marquardt``: ``gradtx.least_squares(r, x0,
  gradtx.levenberg_marquardt())`` against ``scipy.optimize.least_squares(r,
  x0, jac=J, method="lm")``, both with MINPACK's stopping tests and scipy's
  defaults (``ftol = xtol = gtol = 1e-8``).
* ``gauss_newton``: ``gradtx.least_squares(r, x0, gradtx.gauss_newton())``
  against the same scipy ``method="lm"`` solve (scipy has no pure
  Gauss-Newton; its Levenberg-Marquardt is the method a user would reach
  for instead).

Evaluations: scipy's are ``nfev + njev (+ nhev)`` as scipy reports them
(each call of the function, of the gradient or Jacobian and of ``hessp``
counts one); gradtx's are ``num_fun_evals + num_grad_evals (+
num_hvp_evals)`` (``num_jac_evals`` for least squares) as
``gradtx.minimize`` and ``gradtx.least_squares`` count them, and a
``jax.debug.callback`` inside the objective checks the function count.
"""

from __future__ import annotations

import argparse
import functools
import math
import pathlib
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import gradtx  # noqa: E402

GTOL = 1e-10
SCIPY_GTOL = 1e-8
MAXITER = 2000
DOC = pathlib.Path(__file__).resolve().parent / "second-order.md"
FIGURE = pathlib.Path(__file__).resolve().parent / "second-order.png"
BEGIN = "<!-- table: begin -->"
END = "<!-- table: end -->"


def rosenbrock_ext(x):
  """Extended Rosenbrock (MGH 21): pairs (x[2i], x[2i+1])."""
  x1, x2 = x[0::2], x[1::2]
  return jnp.concatenate([10.0 * (x2 - x1 ** 2), 1.0 - x1])


def beale(x):
  y = jnp.array([1.5, 2.25, 2.625])
  i = jnp.arange(1.0, 4.0)
  return y - x[0] * (1.0 - x[1] ** i)


def powell_singular(x):
  return jnp.stack([x[0] + 10.0 * x[1], math.sqrt(5.0) * (x[2] - x[3]),
                    (x[1] - 2.0 * x[2]) ** 2,
                    math.sqrt(10.0) * (x[0] - x[3]) ** 2])


def wood(x):
  return jnp.stack([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0],
                    math.sqrt(90.0) * (x[3] - x[2] ** 2), 1.0 - x[2],
                    math.sqrt(10.0) * (x[1] + x[3] - 2.0),
                    (x[1] - x[3]) / math.sqrt(10.0)])


def helical_valley(x):
  theta = (jnp.where(x[0] > 0, 0.0, 0.5)
           + jnp.arctan(x[1] / x[0]) / (2.0 * math.pi))
  return jnp.stack([10.0 * (x[2] - 10.0 * theta),
                    10.0 * (jnp.sqrt(x[0] ** 2 + x[1] ** 2) - 1.0), x[2]])


def freudenstein_roth(x):
  return jnp.stack([-13.0 + x[0] + ((5.0 - x[1]) * x[1] - 2.0) * x[1],
                    -29.0 + x[0] + ((x[1] + 1.0) * x[1] - 14.0) * x[1]])


PROBLEMS = [
    ("Rosenbrock", rosenbrock_ext, [-1.2, 1.0]),
    ("extended Rosenbrock, n=10", rosenbrock_ext, [-1.2, 1.0] * 5),
    ("Beale", beale, [1.0, 1.0]),
    ("Powell singular", powell_singular, [3.0, -1.0, 0.0, 1.0]),
    ("Wood", wood, [-3.0, -1.0, -3.0, -1.0]),
    ("helical valley", helical_valley, [-1.0, 0.0, 0.0]),
    ("Freudenstein-Roth", freudenstein_roth, [0.5, -2.0]),
]

METHODS = ("bfgs", "newton_cg", "levenberg_marquardt", "gauss_newton")
LEAST_SQUARES = ("levenberg_marquardt", "gauss_newton")


def objective(residuals):
  return lambda x: jnp.sum(residuals(x) ** 2)


def _gradtx_case(method, residuals, tx=None):
  """The solve of one table cell, to be traced inside a jitted program, and
  how to read its counts: ``(solve, read)``, ``solve(x0) -> result`` and
  ``read(result) -> dict``."""
  calls = {"fun": 0}

  def bump():
    calls["fun"] += 1

  if method in LEAST_SQUARES:
    if tx is None:
      tx = (gradtx.levenberg_marquardt() if method == "levenberg_marquardt"
            else gradtx.gauss_newton())

    def counted(x):
      jax.debug.callback(bump)
      return residuals(x)

    def solve(x0):
      return gradtx.least_squares(counted, x0, tx, max_steps=MAXITER)

    def read(res):
      # Each Jacobian evaluation runs the residual function once too.
      assert calls["fun"] == int(res.num_fun_evals) + int(res.num_jac_evals)
      return dict(value=2.0 * float(res.value), steps=int(res.num_steps),
                  evals=int(res.num_fun_evals) + int(res.num_jac_evals),
                  fun=int(res.num_fun_evals), grad=0,
                  hvp=int(res.num_jac_evals), converged=bool(res.converged),
                  x=np.asarray(res.params))
  else:
    if tx is None:
      tx = gradtx.bfgs() if method == "bfgs" else gradtx.newton_cg()
    f = objective(residuals)

    def counted(x):
      jax.debug.callback(bump)
      return f(x)

    def solve(x0):
      return gradtx.minimize(counted, x0, tx, max_steps=MAXITER, gtol=GTOL)

    def read(res):
      # The callback also fires inside each Hessian-vector product (its
      # forward pass runs f), which counts as the product only.
      assert calls["fun"] == int(res.num_fun_evals) + int(res.num_hvp_evals)
      return dict(value=float(res.value), steps=int(res.num_steps),
                  evals=(int(res.num_fun_evals) + int(res.num_grad_evals)
                         + int(res.num_hvp_evals)),
                  fun=int(res.num_fun_evals), grad=int(res.num_grad_evals),
                  hvp=int(res.num_hvp_evals), converged=bool(res.converged),
                  x=np.asarray(res.params))
  return solve, read


def gradtx_solves(cases):
  """The solves of ``cases`` (``(method, residuals, x0)`` triples), all in
  one jitted program: each solve is its own ``lax.while_loop`` and gives
  what it gives alone, and XLA compiles the lot in about half the time it
  takes to compile them one by one. A list of dicts of the counts and the
  value."""
  x0s = [jnp.asarray(x0, jnp.float64) for _, _, x0 in cases]
  parts = [_gradtx_case(method, residuals) for method, residuals, _ in cases]
  results = jax.jit(lambda xs: [solve(x) for (solve, _), x in
                                zip(parts, xs)])(x0s)
  jax.effects_barrier()
  return [read(res) for (_, read), res in zip(parts, results)]


def gradtx_solve(method, residuals, x0, tx=None, trace=False):
  """One solve; a dict of the counts, the value and (with ``trace``) the
  objective after each step."""
  x0 = jnp.asarray(x0, jnp.float64)
  solve, read = _gradtx_case(method, residuals, tx)
  res = jax.jit(solve)(x0)
  jax.effects_barrier()
  out = read(res)
  if trace:
    out["trace"] = trace_values(method, residuals, x0,
                                tx if tx is not None else _default_tx(method))
  return out


def _default_tx(method):
  return {"bfgs": gradtx.bfgs, "newton_cg": gradtx.newton_cg,
          "levenberg_marquardt": gradtx.levenberg_marquardt,
          "gauss_newton": gradtx.gauss_newton}[method]()


def trace_values(method, residuals, x0, tx, steps=60):
  """The objective after each of the first ``steps`` steps (eager)."""
  values = []
  if method in LEAST_SQUARES:
    x, state = x0, tx.init(x0)
    f = lambda x: 0.5 * float(jnp.sum(residuals(x) ** 2))
    values.append(f(x))
    for _ in range(steps):
      u, state = tx.update(x, state, x, residual_fn=residuals)
      if bool(state.info.stalled):
        break
      x = gradtx.apply_updates(x, u)
      values.append(f(x))
    return values
  f = objective(residuals)
  x, state = x0, tx.init(x0)
  value_and_grad = gradtx.value_and_grad_from_state(f)
  step = jax.jit(lambda x, s: _step(tx, f, value_and_grad, x, s))
  values.append(float(f(x)))
  for _ in range(steps):
    x, state, gmax = step(x, state)
    values.append(float(f(x)))
    if float(gmax) <= GTOL:
      break
  return values


def _step(tx, f, value_and_grad, x, state):
  value, grad = value_and_grad(x, state=state)
  u, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=f)
  x = gradtx.apply_updates(x, u)
  return x, state, jnp.max(jnp.abs(jax.grad(f)(x)))


@functools.cache
def _evaluations(residuals):
  """What scipy's callbacks read of ``residuals`` at ``x``: its cost
  ``f = sum(r**2)``, the gradient, the Hessian-vector product with ``v``,
  the residuals and their Jacobian, all from one jitted function (one
  compilation per problem instead of one per callback)."""
  f = objective(residuals)

  @jax.jit
  def evaluate(x, v):
    value, grad = jax.value_and_grad(f)(x)
    return dict(value=value, grad=grad,
                hvp=jax.jvp(jax.grad(f), (x,), (v,))[1],
                residuals=residuals(x), jac=jax.jacfwd(residuals)(x))

  def read(x, v=None):
    x = np.asarray(x, np.float64)
    return {k: np.asarray(a) for k, a in evaluate(
        x, np.zeros_like(x) if v is None else np.asarray(v, np.float64),
    ).items()}

  return read


def scipy_solve(method, residuals, x0):
  import scipy.optimize as so
  x0 = np.asarray(x0, np.float64)
  evaluate = _evaluations(residuals)
  if method in LEAST_SQUARES:
    # scipy has no pure Gauss-Newton: gauss_newton is compared with its
    # Levenberg-Marquardt (MINPACK), the method that safeguards it there.
    res = so.least_squares(lambda x: evaluate(x)["residuals"], x0,
                           jac=lambda x: evaluate(x)["jac"], method="lm")
    return dict(value=2.0 * float(res.cost), evals=res.nfev + (res.njev or 0),
                fun=res.nfev, grad=0, hvp=res.njev or 0, steps=None,
                x=res.x)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if method == "bfgs":
      def value_and_grad(x):
        e = evaluate(x)
        return float(e["value"]), e["grad"]

      res = so.minimize(value_and_grad, x0, jac=True, method="BFGS",
                        options={"gtol": SCIPY_GTOL, "maxiter": MAXITER})
    else:
      res = so.minimize(lambda x: float(evaluate(x)["value"]), x0,
                        jac=lambda x: evaluate(x)["grad"],
                        hessp=lambda x, p: evaluate(x, p)["hvp"],
                        method="Newton-CG", options={"maxiter": MAXITER})
  nhev = getattr(res, "nhev", 0) or 0
  njev = getattr(res, "njev", 0) or 0
  return dict(value=float(res.fun), evals=res.nfev + njev + nhev,
              fun=res.nfev, grad=njev, hvp=nhev, steps=res.nit, x=res.x)


def run(methods=METHODS):
  cases = [(method, name, residuals, x0) for method in methods
           for name, residuals, x0 in PROBLEMS]
  ours = gradtx_solves([(m, r, x0) for m, _, r, x0 in cases])
  scipys = {}   # gauss_newton is set against the levenberg_marquardt solve
  rows = []
  for (method, name, residuals, x0), o in zip(cases, ours):
    key = ("lm" if method in LEAST_SQUARES else method, name)
    if key not in scipys:
      scipys[key] = scipy_solve(method, residuals, x0)
    theirs = scipys[key]
    rows.append(dict(method=method, problem=name, n=len(x0), ours=o,
                     scipy=theirs, ratio=o["evals"] / theirs["evals"]))
  return rows


def geometric_means(rows):
  out = {}
  for method in {r["method"] for r in rows}:
    ratios = [r["ratio"] for r in rows if r["method"] == method]
    out[method] = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
  return out


def _counts(d, method):
  if method in LEAST_SQUARES:
    return f'{d["fun"]} + {d["hvp"]}'
  if method == "bfgs":
    return f'{d["fun"]} + {d["grad"]}'
  return f'{d["fun"]} + {d["grad"]} + {d["hvp"]}'


def table(rows):
  import scipy
  lines = [
      "| method | problem | n | gradtx evaluations | scipy evaluations "
      "| ratio | gradtx f | scipy f |",
      "|---|---|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    o, s = r["ours"], r["scipy"]
    lines.append(
        f'| `{r["method"]}` | {r["problem"]} | {r["n"]} | '
        f'{o["evals"]} ({_counts(o, r["method"])}) | '
        f'{s["evals"]} ({_counts(s, r["method"])}) | {r["ratio"]:.2f} | '
        f'{o["value"]:.12g} | {s["value"]:.12g} |')
  lines.append("")
  means = geometric_means(rows)
  lines.append("Geometric mean of the ratios: " + ", ".join(
      f"`{m}` {means[m]:.2f}" for m in METHODS if m in means) + ".")
  lines.append("")
  lines.append(f"Produced with jax {jax.__version__} on "
               f"{jax.default_backend()}, scipy {scipy.__version__}.")
  return "\n".join(lines)


def figure(path=FIGURE):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6.4, 4.0))
  residuals, x0 = rosenbrock_ext, [-1.2, 1.0]
  f = objective(residuals)
  for label, tx, method in [
      ("newton", gradtx.newton(), "newton"),
      ("newton_cg", gradtx.newton_cg(), "newton_cg"),
      ("bfgs", gradtx.bfgs(), "bfgs"),
      ("lbfgs", gradtx.lbfgs(), "lbfgs"),
      ("levenberg_marquardt", gradtx.levenberg_marquardt(),
       "levenberg_marquardt"),
      ("gauss_newton", gradtx.gauss_newton(), "gauss_newton")]:
    values = trace_values(method, residuals, jnp.asarray(x0), tx)
    if method in LEAST_SQUARES:
      values = [2 * v for v in values]
    ax.semilogy(range(len(values)), np.maximum(values, 1e-32), marker=".",
                label=label)
  del f
  ax.set_xlabel("step")
  ax.set_ylabel("f(w) (Rosenbrock, from (-1.2, 1))")
  ax.set_ylim(1e-32, 1e2)
  ax.grid(True, which="major", alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--print", action="store_true")
  parser.add_argument("--figure", action="store_true")
  args = parser.parse_args()
  text = table(run())
  if args.print:
    print(text)
  else:
    doc = DOC.read_text()
    head, rest = doc.split(BEGIN)
    _, tail = rest.split(END)
    DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
  if args.figure:
    figure()


if __name__ == "__main__":
  main()
