"""Lookahead and SWATS in a training loop, with what they expose for logging.

Lookahead keeps its slow weights in the state (no special params type);
SWATS reports when it switched from Adam to SGD and at which rate. It uses
the relative switching test (``switch_rtol``) after a tenth of the run:
the paper's absolute test with eps = 1e-9 either fires in the first steps
or never on a problem like this one.

    python examples/lookahead_swats.py --steps 600
"""

import argparse

import jax
import jax.numpy as jnp

import gradtx


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--steps", type=int, default=600)
  args = ap.parse_args(argv)
  if args.steps < 1:
    ap.error("--steps must be at least 1")
  scales = jnp.logspace(0.0, 1.0, 12)  # an ill-conditioned quadratic

  def grad(w, key):
    return scales * w + jax.random.normal(key, w.shape)

  results = {}
  for name, tx in [("lookahead(adam)", gradtx.lookahead(gradtx.adam(1e-2),
                                                         sync_period=6)),
                   ("swats", gradtx.swats(
                       1e-2, switch_rtol=0.05,
                       min_adam_steps=max(2, args.steps // 10)))]:
    w = jnp.ones(12)
    state = tx.init(w)
    # The step picks its noise key from all of them: iterating over a JAX
    # array would split it into one array per step first.
    keys = jax.random.split(jax.random.key(0), args.steps)
    step = jax.jit(lambda w, s, k: tx.update(grad(w, keys[k]), s, w))
    for k in range(args.steps):
      updates, state = step(w, state, k)
      w = gradtx.apply_updates(w, updates)
    results[name] = float(0.5 * jnp.sum(scales * w ** 2))
    line = f"{name:16s} final loss {results[name]:.4f}"
    if name == "swats":
      line += (f"  switched={bool(state.switched)} at step "
               f"{int(state.switch_step)}, SGD lr {float(state.sgd_lr):.3g}")
    else:
      line += f"  slow-weight norm {float(jnp.linalg.norm(state.slow)):.4f}"
    print(line)
  return results


if __name__ == "__main__":
  main()
