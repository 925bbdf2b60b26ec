"""Param groups with ``gradtx.partition``: a different optimizer per label.

The "backbone" trains slowly with AdamW, the "head" fast with SGD, and the
biases get no weight decay. Labels come from a function of the params.

    python examples/param_groups.py
"""

import jax
import jax.numpy as jnp

import gradtx


def labels(params):
  return {"backbone": {"w": "backbone", "b": "no_decay"},
          "head": {"w": "head", "b": "head"}}


def main(argv=None):
  del argv
  key = jax.random.key(0)
  params = {"backbone": {"w": jax.random.normal(key, (4, 8)),
                         "b": jnp.zeros(8)},
            "head": {"w": jnp.zeros((8, 1)), "b": jnp.zeros(1)}}
  tx = gradtx.partition({
      "backbone": gradtx.adamw(1e-3, weight_decay=1e-2),
      "no_decay": gradtx.adam(1e-3),
      "head": gradtx.sgd(1e-1, momentum=0.9),
  }, labels)
  x = jax.random.normal(jax.random.key(1), (32, 4))
  y = jnp.sum(x, axis=1, keepdims=True)

  def loss(p):
    h = jnp.tanh(x @ p["backbone"]["w"] + p["backbone"]["b"][None, :])
    return jnp.mean((h @ p["head"]["w"] + p["head"]["b"][None, :] - y) ** 2)

  state = tx.init(params)
  step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p))
  first = float(loss(params))
  for _ in range(200):
    updates, state = step(params, state)
    params = gradtx.apply_updates(params, updates)
  print(f"loss {first:.4f} -> {float(loss(params)):.4f}")
  return first, float(loss(params))


if __name__ == "__main__":
  main()
