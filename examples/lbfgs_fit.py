"""Full-batch L-BFGS on scikit-learn's digits: logistic regression and an MLP.

Each fit is one jitted ``jax.lax.while_loop``: ``gradtx.lbfgs()`` with its
zoom line search (strong Wolfe conditions), the value and gradient of the
accepted point reused through ``gradtx.value_and_grad_from_state``, so most
steps cost one evaluation of the loss and its gradient. The data set ships
with scikit-learn (no download).

    python examples/lbfgs_fit.py --steps 200
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import gradtx


def load_data(seed=0):
  from sklearn.datasets import load_digits
  data = load_digits()
  x = (data.data / 16.0).astype(np.float32)
  y = data.target.astype(np.int32)
  perm = np.random.default_rng(seed).permutation(len(y))
  cut = int(0.8 * len(y))
  train, test = perm[:cut], perm[cut:]
  return (jnp.asarray(x[train]), jnp.asarray(y[train]),
          jnp.asarray(x[test]), jnp.asarray(y[test]))


def linear(params, x):
  return x @ params["w"] + params["b"][None, :]


def mlp(params, x):
  h = jnp.tanh(x @ params["w1"] + params["b1"][None, :])
  return h @ params["w2"] + params["b2"][None, :]


def init_linear(rng):
  del rng
  return {"w": np.zeros((64, 10), np.float32), "b": np.zeros(10, np.float32)}


def init_mlp(rng, hidden=32):
  return {"w1": (rng.standard_normal((64, hidden)) / 8.0).astype(np.float32),
          "b1": np.zeros(hidden, np.float32),
          "w2": (rng.standard_normal((hidden, 10))
                 / np.sqrt(hidden)).astype(np.float32),
          "b2": np.zeros(10, np.float32)}


def make_loss(model, x, y, l2):
  def loss(params):
    logp = jax.nn.log_softmax(model(params, x))
    nll = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
    weights = [v for k, v in params.items() if k.startswith("w")]
    return nll + 0.5 * l2 * sum(jnp.sum(w * w) for w in weights)
  return loss


def fit(loss, params, steps, gtol=1e-5):
  """L-BFGS until ``steps`` steps or a gradient norm below ``gtol``.

  Returns the params, the steps taken and the evaluations of ``loss`` and
  its gradient (the first one included).
  """
  tx = gradtx.lbfgs()
  value_and_grad = gradtx.value_and_grad_from_state(loss)

  @jax.jit
  def run(params):
    def cond(carry):
      _, state, k, _ = carry
      gnorm = gradtx.tree_global_norm(state[-1].grad)
      return (k < steps) & ((k == 0) | (gnorm > gtol))

    def body(carry):
      params, state, k, evals = carry
      value, grad = value_and_grad(params, state=state)
      updates, state = tx.update(grad, state, params, value=value,
                                 grad=grad, value_fn=loss)
      evals = evals + state[-1].info.num_linesearch_steps
      return gradtx.apply_updates(params, updates), state, k + 1, evals

    carry = (params, tx.init(params), jnp.zeros([], jnp.int32),
             jnp.ones([], jnp.int32))
    params, _, k, evals = jax.lax.while_loop(cond, body, carry)
    return params, k, evals

  params, k, evals = run(params)
  return params, int(k), int(evals)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--steps", type=int, default=50,
                  help="the most L-BFGS steps per model (default 50)")
  args = ap.parse_args(argv)
  if args.steps < 1:
    ap.error("--steps must be at least 1")
  x, y, x_test, y_test = load_data()
  results = {}
  for name, model, init, l2 in [("logistic regression", linear, init_linear,
                                 1e-3),
                                ("MLP 64-32-10", mlp, init_mlp, 1e-4)]:
    loss = make_loss(model, x, y, l2)

    @jax.jit
    def summary(params, model=model, loss=loss):
      value, grad = jax.value_and_grad(loss)(params)
      hits = jnp.argmax(model(params, x_test), -1) == y_test
      return value, gradtx.tree_global_norm(grad), jnp.mean(hits)

    params = jax.tree.map(jnp.asarray, init(np.random.default_rng(0)))
    first = float(summary(params)[0])
    start = time.perf_counter()
    params, steps, evals = fit(loss, params, args.steps)
    seconds = time.perf_counter() - start
    last, gnorm, accuracy = map(float, summary(params))
    print(f"{name:20s} loss {first:.4f} -> {last:.4f}  |grad| {gnorm:.1e}  "
          f"steps {steps:4d}  evaluations {evals:4d}  "
          f"test accuracy {accuracy:.3f}  ({seconds:.1f}s with compile)")
    results[name] = {"first": first, "last": last, "steps": steps,
                     "evaluations": evals, "accuracy": accuracy}
  return results


if __name__ == "__main__":
  main()
