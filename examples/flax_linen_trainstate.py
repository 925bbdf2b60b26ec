"""Flax linen with ``TrainState``: gradtx's optimizer is a drop-in ``tx``.

A learning-rate schedule with warm-up and cosine decay, gradient clipping
and AdamW, as one chain.

    python examples/flax_linen_trainstate.py --steps 200
"""

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.training import train_state

import gradtx


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--steps", type=int, default=200)
  args = ap.parse_args(argv)
  model = nn.Sequential([nn.Dense(32), nn.tanh, nn.Dense(1)])
  x = jnp.linspace(-2.0, 2.0, 64)[:, None]
  y = jnp.sin(2.0 * x)
  schedule = gradtx.warmup_cosine_decay_schedule(
      0.0, 1e-2, warmup_steps=max(1, args.steps // 10),
      decay_steps=max(2, args.steps))
  tx = gradtx.chain(gradtx.clip_by_global_norm(1.0),
                    gradtx.adamw(schedule, weight_decay=1e-4))
  state = train_state.TrainState.create(
      apply_fn=model.apply, params=model.init(jax.random.key(0), x), tx=tx)

  @jax.jit
  def train_step(state):
    def loss_fn(params):
      return jnp.mean((state.apply_fn(params, x) - y) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss

  losses = []
  for _ in range(args.steps):
    state, loss = train_step(state)
    losses.append(float(loss))
  print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f} after {args.steps} steps")
  return losses[0], losses[-1]


if __name__ == "__main__":
  main()
