"""Natural gradient against Adam: a Flax MLP classifier on scikit-learn's
digits, mini-batches of 128, both run until the test accuracy reaches a
target; prints how many steps each took.

``gradtx.natural_gradient`` preconditions each mini-batch gradient by the
damped Fisher matrix of the model's predictive distribution on that batch,
applied through Jacobian-vector products of the logits (``output_fn``) and
inverted by ten conjugate-gradient iterations. The data set ships with
scikit-learn (no download).

    python examples/natural_gradient_digits.py --target 0.95
"""

from __future__ import annotations

import argparse
import time

import flax.linen as nn
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


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.tanh(nn.Dense(64)(x))
    return nn.Dense(10)(x)


def cross_entropy(logits, labels):
  logp = jax.nn.log_softmax(logits)
  return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def train(name, tx, data, target, max_steps, batch=128, seed=0):
  """Steps until the test accuracy reaches ``target`` (None if never)."""
  x_train, y_train, x_test, y_test = data
  model = MLP()
  params = model.init(jax.random.key(seed), x_train[:1])
  state = tx.init(params)

  @jax.jit
  def step(params, state, xb, yb):
    def logits_fn(p):
      return model.apply(p, xb)
    loss, grads = jax.value_and_grad(
        lambda p: cross_entropy(logits_fn(p), yb))(params)
    # natural_gradient reads the logits through output_fn; Adam ignores it.
    updates, state = tx.update(grads, state, params, output_fn=logits_fn)
    return gradtx.apply_updates(params, updates), state, loss

  @jax.jit
  def accuracy(params):
    return jnp.mean(jnp.argmax(model.apply(params, x_test), -1) == y_test)

  rng = np.random.default_rng(seed)
  start = time.perf_counter()
  losses = []
  for k in range(1, max_steps + 1):
    idx = rng.choice(len(y_train), batch, replace=False)
    params, state, loss = step(params, state, x_train[idx], y_train[idx])
    losses.append(float(loss))
    acc = float(accuracy(params))
    if acc >= target:
      print(f"{name:>17}: test accuracy {acc:.3f} after {k} steps "
            f"({time.perf_counter() - start:.1f} s)")
      return k, losses
  print(f"{name:>17}: test accuracy {acc:.3f}, target {target} not reached "
        f"in {max_steps} steps")
  return None, losses


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--target", type=float, default=0.95)
  parser.add_argument("--max-steps", type=int, default=2000)
  args = parser.parse_args(argv)
  data = load_data()
  results = {}
  for name, tx in [
      ("natural_gradient", gradtx.natural_gradient(1.0, damping=0.1)),
      ("adam", gradtx.adam(1e-2)),
  ]:
    results[name] = train(name, tx, data, args.target, args.max_steps)
  return results


if __name__ == "__main__":
  main()
