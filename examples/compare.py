"""Trains one small MLP with several gradtx optimizers and prints a table.

The task is a synthetic two-moons-like classification problem generated
here (no download). Every optimizer starts from the same weights and sees
the same batches; each training loop is one jitted ``lax.scan``.

    python examples/compare.py --steps 300
    python examples/compare.py --optimizers adam nadam
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

import gradtx

OPTIMIZERS = {
    "sgd+momentum": lambda: gradtx.sgd(0.05, momentum=0.9),
    "nesterov": lambda: gradtx.sgd(0.05, momentum=0.9, nesterov=True),
    "adagrad": lambda: gradtx.adagrad(0.05),
    "rmsprop": lambda: gradtx.rmsprop(3e-3),
    "adadelta": lambda: gradtx.adadelta(),
    "adam": lambda: gradtx.adam(3e-3),
    "adamw": lambda: gradtx.adamw(3e-3, weight_decay=1e-2),
    "nadam": lambda: gradtx.nadam(3e-3),
    "adamax": lambda: gradtx.adamax(3e-3),
}


def make_data(key, n):
  k1, k2, k3 = jax.random.split(key, 3)
  t = jax.random.uniform(k1, (n,), minval=0.0, maxval=jnp.pi)
  label = jax.random.bernoulli(k2, 0.5, (n,))
  x = jnp.where(label[:, None],
                jnp.stack([1 - jnp.cos(t), 0.5 - jnp.sin(t)], 1),
                jnp.stack([jnp.cos(t), jnp.sin(t)], 1))
  x = x + 0.1 * jax.random.normal(k3, x.shape)
  return x, label.astype(jnp.int32)


def init_mlp(key, sizes=(2, 64, 64, 2)):
  params = []
  for k, (m, n) in zip(jax.random.split(key, len(sizes) - 1),
                       zip(sizes[:-1], sizes[1:])):
    params.append({"w": jax.random.normal(k, (m, n)) / jnp.sqrt(m),
                   "b": jnp.zeros(n)})
  return params


def logits_fn(params, x):
  for layer in params[:-1]:
    x = jnp.tanh(x @ layer["w"] + layer["b"][None, :])
  return x @ params[-1]["w"] + params[-1]["b"][None, :]


def loss_fn(params, x, y):
  logp = jax.nn.log_softmax(logits_fn(params, x))
  return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def train(tx, params, xs, ys):
  def step(carry, batch):
    p, s = carry
    loss, g = jax.value_and_grad(loss_fn)(p, *batch)
    u, s = tx.update(g, s, p)
    return (gradtx.apply_updates(p, u), s), loss

  (params, _), losses = jax.lax.scan(step, (params, tx.init(params)),
                                     (xs, ys))
  return params, losses


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--steps", type=int, default=300)
  ap.add_argument("--batch", type=int, default=64)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--optimizers", nargs="+", metavar="NAME",
                  default=list(OPTIMIZERS),
                  help=f"which of {', '.join(OPTIMIZERS)} to train, in this "
                  "order (default: all)")
  args = ap.parse_args(argv)
  if args.steps < 1 or args.batch < 1:
    ap.error("--steps and --batch must be positive")
  unknown = [n for n in args.optimizers if n not in OPTIMIZERS]
  if unknown:
    ap.error(f"unknown optimizer {', '.join(unknown)}; choose from "
             f"{', '.join(OPTIMIZERS)}")

  key = jax.random.key(args.seed)
  kd, kt, kp = jax.random.split(key, 3)
  x, y = make_data(kd, args.steps * args.batch)
  xs = x.reshape(args.steps, args.batch, 2)
  ys = y.reshape(args.steps, args.batch)
  x_test, y_test = make_data(kt, 2000)
  params0 = init_mlp(kp)

  print(f"{'optimizer':14s} {'final loss':>10s} {'test acc':>9s} "
        f"{'time (s)':>9s}")
  for name in args.optimizers:
    make = OPTIMIZERS[name]
    start = time.perf_counter()
    params, losses = jax.jit(train, static_argnums=0)(make(), params0, xs, ys)
    losses.block_until_ready()
    elapsed = time.perf_counter() - start
    acc = jnp.mean(jnp.argmax(logits_fn(params, x_test), 1) == y_test)
    tail = float(jnp.mean(losses[-max(1, args.steps // 10):]))
    print(f"{name:14s} {tail:10.4f} {float(acc):9.3f} {elapsed:9.2f}")


if __name__ == "__main__":
  main()
