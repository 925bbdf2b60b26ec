"""Training a Flax nnx model through ``nnx.Optimizer`` with ``gradtx.adamw``.

    python examples/flax_nnx.py --steps 200
"""

import argparse

import jax
import jax.numpy as jnp
from flax import nnx

import gradtx


class MLP(nnx.Module):

  def __init__(self, rngs):
    self.l1 = nnx.Linear(1, 32, rngs=rngs)
    self.l2 = nnx.Linear(32, 1, rngs=rngs)

  def __call__(self, x):
    return self.l2(jnp.tanh(self.l1(x)))


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--steps", type=int, default=200)
  args = ap.parse_args(argv)
  x = jnp.linspace(-2.0, 2.0, 64)[:, None]
  y = jnp.sin(2.0 * x)
  model = MLP(nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, gradtx.adamw(1e-2, weight_decay=1e-4),
                            wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer):
    loss, grads = nnx.value_and_grad(
        lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  first = None
  for step in range(args.steps):
    loss = float(train_step(model, optimizer))
    first = loss if first is None else first
  print(f"loss {first:.4f} -> {loss:.4f} after {args.steps} steps")
  return first, loss


if __name__ == "__main__":
  main()
