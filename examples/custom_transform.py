"""Writing your own transform and chaining it with gradtx's.

``scale_by_sign`` (signSGD, Bernstein et al. 2018) keeps no state; a
``clip_to_median`` style transform would keep one. Both follow the contract:
``init(params) -> state`` and ``update(updates, state, params=None,
**extra_args) -> (updates, state)``.

    python examples/custom_transform.py
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

import gradtx


def scale_by_sign() -> gradtx.GradientTransformation:
  """u <- sign(u): signSGD's direction."""
  return gradtx.stateless_with_tree_map(lambda u, _: jnp.sign(u))


class CountState(NamedTuple):
  count: jax.Array


def warmup_scale(steps: int) -> gradtx.GradientTransformation:
  """Multiplies the updates by min(1, (t + 1) / steps): a linear warm-up."""

  def init(params):
    del params
    return CountState(count=jnp.zeros([], jnp.int32))

  def update(updates, state, params=None, **extra_args):
    del params, extra_args
    factor = jnp.minimum(1.0, (state.count + 1) / steps)
    updates = jax.tree.map(lambda u: u * factor.astype(u.dtype), updates)
    return updates, CountState(count=gradtx.safe_increment(state.count))

  return gradtx.GradientTransformation(init, update)


def main(argv=None):
  del argv
  tx = gradtx.chain(scale_by_sign(), warmup_scale(10),
                    gradtx.scale_by_learning_rate(0.05))
  params = {"w": jnp.array([1.0, -2.0, 3.0])}
  loss = lambda p: jnp.sum(p["w"] ** 2)
  state = tx.init(params)
  for _ in range(100):
    updates, state = tx.update(jax.grad(loss)(params), state)
    params = gradtx.apply_updates(params, updates)
  print("signSGD with warm-up ->", params["w"])
  return params


if __name__ == "__main__":
  main()
