"""Training an Equinox model with ``gradtx.adabound``.

Equinox models are pytrees whose leaves mix arrays and non-arrays
(activation functions, static fields). The usual Equinox pattern applies
unchanged: ``eqx.filter(model, eqx.is_array)`` gives the trainable arrays,
the optimizer state is built on that tree, and ``eqx.apply_updates`` puts the
updates back (``None`` leaves stay untouched).

    python examples/equinox_mlp.py --steps 300
"""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp

import gradtx


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--steps", type=int, default=300)
  ap.add_argument("--lr", type=float, default=1e-2)
  args = ap.parse_args(argv)
  if args.steps < 1:
    ap.error("--steps must be at least 1")

  x = jnp.linspace(-2.0, 2.0, 64)[:, None]
  y = jnp.sin(2.0 * x)
  model = eqx.nn.MLP(in_size=1, out_size=1, width_size=32, depth=2,
                     activation=jnp.tanh, key=jax.random.key(0))
  # AdaBound: Adam early, SGD at final_lr late (Luo et al., ICLR 2019).
  optimizer = gradtx.adabound(args.lr, final_lr=0.1)
  opt_state = optimizer.init(eqx.filter(model, eqx.is_array))

  def loss_fn(model):
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)

  @eqx.filter_jit
  def train_step(model, opt_state):
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
    updates, opt_state = optimizer.update(
        grads, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, updates), opt_state, loss

  first = None
  for _ in range(args.steps):
    model, opt_state, loss = train_step(model, opt_state)
    first = float(loss) if first is None else first
  last = float(loss_fn(model))
  print(f"loss {first:.4f} -> {last:.4f} after {args.steps} steps")
  return first, last


if __name__ == "__main__":
  main()
