"""Writes docs/lbfgs.md: gradtx.lbfgs against scipy's L-BFGS-B.

Every number in docs/lbfgs.md comes from running this script:

    python docs/make_lbfgs_table.py            # rewrites docs/lbfgs.md
    python docs/make_lbfgs_table.py --print    # prints the table only

``tests/test_lbfgs.py`` imports it and runs the same solves (and asserts on
them). Each problem is solved in float64 by

* gradtx: ``gradtx.lbfgs()`` with its defaults (memory 10, zoom line search
  for the strong Wolfe conditions), the whole loop one ``jax.lax.while_loop``
  under ``jax.jit``, the value and gradient reused from the line search
  through ``gradtx.value_and_grad_from_state``;
* scipy: ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` with
  ``maxcor=10`` and ``ftol=0``,

both stopping when the largest gradient entry is at most
``GTOL / sqrt(n)`` (so that the gradient's 2-norm is at most ``GTOL``).
Evaluations are counted where they happen: a ``jax.debug.callback`` inside
the objective for gradtx (one count per evaluation of the objective and its
gradient), a counter in the Python function for scipy.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import pathlib
from typing import Any, Callable

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import gradtx  # noqa: E402

GTOL = 1e-6
MAXITER = 2000
DOC = pathlib.Path(__file__).resolve().parent / "lbfgs.md"


@dataclasses.dataclass
class Problem:
  name: str
  description: str
  fun: Callable[[Any], jax.Array]   # params (a pytree) -> scalar
  x0: Any


def rosenbrock(x):
  return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def quadratic(n=100, cond=1e4, seed=0):
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.standard_normal((n, n)))
  a = jnp.asarray((q * np.logspace(0.0, math.log10(cond), n)) @ q.T)
  x_star = jnp.asarray(rng.standard_normal(n))
  return lambda x: 0.5 * (x - x_star) @ (a @ (x - x_star))


def digits_logistic(l2=1e-3):
  from sklearn.datasets import load_digits
  data = load_digits()
  x = jnp.asarray(data.data / 16.0)
  y = jnp.asarray(data.target)

  def fun(p):
    logits = x @ p["w"] + p["b"][None, :]
    logp = jax.nn.log_softmax(logits)
    nll = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
    return nll + 0.5 * l2 * jnp.sum(p["w"] ** 2)

  x0 = {"w": jnp.zeros((64, 10)), "b": jnp.zeros(10)}
  return fun, x0


def problems() -> list[Problem]:
  fun, x0 = digits_logistic()
  return [
      Problem("rosenbrock_2d", "Rosenbrock, n=2, from (-1.2, 1)", rosenbrock,
              jnp.array([-1.2, 1.0])),
      Problem("rosenbrock_10d", "Rosenbrock, n=10, from 0", rosenbrock,
              jnp.zeros(10)),
      Problem("quadratic_1e4", "convex quadratic, n=100, condition 1e4",
              quadratic(), jnp.zeros(100)),
      Problem("digits_logreg", "digits, 10-class logistic regression, "
              "L2 1e-3, n=650", fun, x0),
  ]


def _size(x0) -> int:
  return sum(int(np.size(leaf)) for leaf in jax.tree.leaves(x0))


def _max_abs(tree) -> jax.Array:
  return jnp.max(jnp.stack([jnp.max(jnp.abs(leaf))
                            for leaf in jax.tree.leaves(tree)]))


def _gradtx_case(fun, gtol):
  """``(solve, read)``: ``solve(x0, maxiter)``, traceable, minimises ``fun``
  with ``gradtx.lbfgs()`` in one ``lax.while_loop``; ``read`` turns its
  outputs into a dict: x, value, iterations, evaluations (counted by a
  callback inside ``fun``), evaluations_from_info (1 + the line searches'
  counts) and traces (how often the solve was traced)."""
  tx = gradtx.lbfgs()
  counter = {"evals": 0, "traces": 0}

  def bump():
    counter["evals"] += 1

  def counted(p):
    jax.debug.callback(bump)
    return fun(p)

  value_and_grad = gradtx.value_and_grad_from_state(counted)

  def solve(x0, maxiter):
    counter["traces"] += 1

    def cond(carry):
      _, _, k, gmax, _ = carry
      return (k < maxiter) & (gmax > gtol)

    def body(carry):
      x, state, k, _, evals = carry
      value, grad = value_and_grad(x, state=state)
      updates, state = tx.update(grad, state, x, value=value, grad=grad,
                                 value_fn=counted)
      x = gradtx.apply_updates(x, updates)
      search = state[-1]
      return (x, state, k + 1, _max_abs(search.grad),
              evals + search.info.num_linesearch_steps)

    carry = (x0, tx.init(x0), jnp.zeros([], jnp.int32),
             jnp.asarray(jnp.inf, jnp.float64), jnp.ones([], jnp.int32))
    x, state, k, _, evals = jax.lax.while_loop(cond, body, carry)
    return x, state[-1].value, k, evals

  def read(out):
    x, value, k, evals = out
    return {"x": x, "value": float(value), "iterations": int(k),
            "evaluations": counter["evals"],
            "evaluations_from_info": int(evals), "traces": counter["traces"]}

  return solve, read


def gradtx_solves(cases, maxiter=MAXITER):
  """The solves of ``cases`` (``(fun, x0, gtol)`` triples) in one jitted
  program (one compilation, which takes less than compiling them one by
  one); a list of the dicts of :func:`_gradtx_case`'s ``read``."""
  parts = [_gradtx_case(fun, gtol) for fun, _, gtol in cases]
  outs = jax.jit(lambda x0s, maxiter: [
      solve(x0, maxiter) for (solve, _), x0 in zip(parts, x0s)])(
          [x0 for _, x0, _ in cases], maxiter)
  jax.effects_barrier()
  return [read(out) for (_, read), out in zip(parts, outs)]


def _flat_value_and_grad(fun, x0):
  """``fun`` and its gradient on the flattened params, jitted: what scipy
  calls, and what measures the gradient norm at both answers."""
  from jax.flatten_util import ravel_pytree
  flat0, unravel = ravel_pytree(x0)
  value_and_grad = jax.jit(jax.value_and_grad(lambda v: fun(unravel(v))))
  return flat0, unravel, value_and_grad


def scipy_solve(fun, x0, gtol, maxiter=MAXITER, flat=None):
  """scipy.optimize.minimize(method="L-BFGS-B") on the flattened params;
  ``flat``: :func:`_flat_value_and_grad`'s triple, if made already."""
  from scipy.optimize import minimize

  flat0, unravel, value_and_grad = flat or _flat_value_and_grad(fun, x0)
  counter = {"evals": 0}

  def f(v):
    counter["evals"] += 1
    value, grad = value_and_grad(jnp.asarray(v))
    return float(value), np.asarray(grad, np.float64)

  try:   # OpenBLAS threads spinning against XLA's can cost 10x here.
    from threadpoolctl import threadpool_limits
    one_thread = threadpool_limits(1)
  except ImportError:
    one_thread = contextlib.nullcontext()
  with one_thread:
    res = minimize(f, np.asarray(flat0, np.float64), jac=True,
                   method="L-BFGS-B",
                   options={"maxcor": 10, "ftol": 0.0, "gtol": gtol,
                            "maxiter": maxiter, "maxfun": 10 * maxiter})
  return {"x": unravel(jnp.asarray(res.x)), "value": float(res.fun),
          "iterations": int(res.nit), "evaluations": counter["evals"],
          "nfev": int(res.nfev), "message": str(res.message)}


def _gtol(problem: Problem) -> float:
  return GTOL / math.sqrt(_size(problem.x0))


def _finish(problem: Problem, ours: dict) -> dict:
  """scipy's solve of ``problem`` next to ``ours``, with the gradient norms
  at both answers."""
  from jax.flatten_util import ravel_pytree
  gtol = _gtol(problem)
  flat = _flat_value_and_grad(problem.fun, problem.x0)
  value_and_grad = flat[2]
  ref = scipy_solve(problem.fun, problem.x0, gtol, flat=flat)
  for result in (ours, ref):
    grad = value_and_grad(ravel_pytree(result["x"])[0])[1]
    result["grad_norm"] = float(np.linalg.norm(np.asarray(grad)))
  return {"problem": problem, "n": _size(problem.x0), "gtol": gtol,
          "gradtx": ours, "scipy": ref}


def compare_all(problems: list[Problem]) -> list[dict]:
  """Both solves of each of ``problems``, with the gradient norms at their
  answers; gradtx's solves all in one jitted program."""
  ours = gradtx_solves([(p.fun, p.x0, _gtol(p)) for p in problems])
  return [_finish(p, o) for p, o in zip(problems, ours)]


def table(rows: list[dict]) -> str:
  """Two tables, so that each fits the page: the counts, then where each
  solve ended."""
  lines = [
      "| problem | n | gradtx iterations | gradtx evaluations | scipy "
      "iterations | scipy evaluations | ratio |",
      "|---|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    a, b = r["gradtx"], r["scipy"]
    lines.append(
        f"| {r['problem'].description} | {r['n']} | {a['iterations']} | "
        f"{a['evaluations']} | {b['iterations']} | {b['evaluations']} | "
        f"{a['evaluations'] / b['evaluations']:.2f} |")
  lines += [
      "",
      "| problem | gradtx f | scipy f | gradtx \\|g\\| | scipy \\|g\\| |",
      "|---|---:|---:|---:|---:|"]
  for r in rows:
    a, b = r["gradtx"], r["scipy"]
    lines.append(
        f"| {r['problem'].description} | {a['value']:.12g} | "
        f"{b['value']:.12g} | {a['grad_norm']:.1e} | {b['grad_norm']:.1e} |")
  return "\n".join(lines)


HEADER = """\
# L-BFGS: gradtx against scipy

<!-- Generated by docs/make_lbfgs_table.py; do not edit by hand. -->

`gradtx.lbfgs()` is `chain(scale_by_lbfgs(), scale(-1),
scale_by_zoom_linesearch(...))`: the two-loop recursion over the last
`memory_size` curvature pairs, then a line search for the strong Wolfe
conditions. The line search needs the objective, so `update` takes `value`,
`grad` and `value_fn`; `gradtx.value_and_grad_from_state` hands back the
value and gradient the line search computed at the point it accepted. A
whole deterministic solve compiles once:

```python
import gradtx, jax, jax.numpy as jnp

def f(w):   # Rosenbrock
  return jnp.sum(100.0 * (w[1:] - w[:-1] ** 2) ** 2 + (1.0 - w[:-1]) ** 2)

tx = gradtx.lbfgs()
value_and_grad = gradtx.value_and_grad_from_state(f)

@jax.jit
def solve(w, maxiter):
  def step(carry):
    w, state, k = carry
    # Evaluates f at the first step only; then reuses the line search's.
    value, grad = value_and_grad(w, state=state)
    updates, state = tx.update(grad, state, w, value=value, grad=grad,
                               value_fn=f)
    return gradtx.apply_updates(w, updates), state, k + 1

  def running(carry):
    _, state, k = carry
    gnorm = gradtx.tree_global_norm(state[-1].grad)   # 0 before step 1
    return (k == 0) | ((k < maxiter) & (gnorm > 1e-6))

  return jax.lax.while_loop(running, step, (w, tx.init(w), 0))

w, state, steps = solve(jnp.zeros(10), 500)   # one compilation, any maxiter
```

[`examples/lbfgs_fit.py`](examples/lbfgs_fit.md) fits logistic regression and a small MLP on
scikit-learn's digits the same way. The line searches are
`gradtx.scale_by_zoom_linesearch` (Nocedal & Wright, Algorithms 3.5-3.6)
and `gradtx.scale_by_backtracking_linesearch` (Armijo); pass either as
`lbfgs(linesearch=...)`.

## Function evaluations against scipy

`gradtx.lbfgs()` (memory 10, the zoom line search for the strong Wolfe
conditions, first trial step 1) against
`scipy.optimize.minimize(method="L-BFGS-B")` (memory 10, `ftol=0`), both in
float64 from the same start, both stopping when the largest gradient entry
is at most `{gtol_formula}` (so the gradient's 2-norm is at most {gtol:g}).

* **evaluations** counts evaluations of the objective and its gradient
  together (one call of `value_and_grad` in gradtx, of `fun` with
  `jac=True` in scipy), the first one at the start included; gradtx's are
  counted by a `jax.debug.callback` inside the objective while the whole
  solve runs as one `jax.lax.while_loop` under `jax.jit`.
* **iterations** are steps taken (line searches); **ratio** is gradtx's
  evaluations over scipy's.
* **f** and **\\|g\\|** are the objective and the gradient's 2-norm at the
  point each returned.

gradtx reuses the value and gradient of the point its line search accepted
(`gradtx.value_and_grad_from_state`), so a step whose first trial is
accepted costs one evaluation, as in scipy.

"""

FOOTER = """

The problems (all in `docs/make_lbfgs_table.py`):

* Rosenbrock: `sum(100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2)`, minimum 0 at
  all ones.
* The quadratic: `(x - x*)^T A (x - x*) / 2` with
  `A = Q diag(logspace(0, 4, 100)) Q^T`, `Q` a random orthogonal matrix and
  `x*` a random normal vector (seed 0); minimum 0 at `x*`.
* Digits: multinomial logistic regression on scikit-learn's 8x8 digits
  (1797 images, pixels scaled to [0, 1]), weights `(64, 10)` and biases
  `(10,)` as a dict of arrays, mean cross-entropy plus `1e-3/2 ||W||^2`.

Regenerate with `python docs/make_lbfgs_table.py`; [`tests/test_lbfgs.py`](https://github.com/gradtx/gradtx/blob/main/tests/test_lbfgs.py)
runs the same solves and checks that gradtx reaches scipy's minimum with a
gradient norm below 1e-6 and at most twice scipy's evaluations.
"""


def document(rows: list[dict]) -> str:
  head = HEADER.format(gtol_formula="1e-6 / sqrt(n)", gtol=GTOL)
  versions = (f"Produced with jax {jax.__version__} on "
              f"{jax.devices()[0].platform}, scipy "
              f"{__import__('scipy').__version__}.")
  return head + table(rows) + "\n\n" + versions + FOOTER


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--print", action="store_true",
                  help="print the table instead of writing docs/lbfgs.md")
  args = ap.parse_args(argv)
  rows = compare_all(problems())
  if args.print:
    print(table(rows))
  else:
    DOC.write_text(document(rows))
    print(f"wrote {DOC}")
  return rows


if __name__ == "__main__":
  main()
