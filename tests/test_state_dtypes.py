"""Adam's moments stored in a narrower dtype (mu_dtype, nu_dtype)."""

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax

import gradtx

STEPS = 20
LR, B1, B2, EPS = 1e-2, 0.9, 0.999, 1e-8
RNG = np.random.default_rng(0)
P0 = RNG.normal(size=(7, 3)).astype(np.float32)
GRADS = [(RNG.normal(size=(7, 3)) * 10.0 ** RNG.integers(-3, 3)).astype(
    np.float32) for _ in range(STEPS)]


def _bf16(x):
  return np.asarray(x, np.float64).astype(ml_dtypes.bfloat16).astype(
      np.float64)


def _gradtx_updates(tx):
  state, out = tx.init(jnp.asarray(P0)), []
  for g in GRADS:
    u, state = tx.update(jnp.asarray(g), state)
    out.append(np.asarray(u, np.float64))
  return out, state


def test_bfloat16_nu_is_v_rounded_at_every_step():
  """A float64 transcription: the stored second moment v_t is rounded to
  bfloat16 after every step, and the step reads it as stored."""
  got, state = _gradtx_updates(gradtx.adam(LR, nu_dtype=jnp.bfloat16))
  assert state[0].nu.dtype == jnp.bfloat16
  assert state[0].mu.dtype == jnp.float32
  m = np.zeros(P0.shape)
  v = np.zeros(P0.shape)
  for t, (g, u) in enumerate(zip(GRADS, got), start=1):
    g = g.astype(np.float64)
    m = B1 * m + (1 - B1) * g
    v = _bf16(B2 * v + (1 - B2) * g * g)
    want = -LR * (m / (1 - B1 ** t)) / (np.sqrt(v / (1 - B2 ** t)) + EPS)
    np.testing.assert_allclose(u, want, rtol=2e-5, err_msg=f"step {t}")


def test_bfloat16_mu_matches_optax():
  got, state = _gradtx_updates(gradtx.adam(LR, mu_dtype=jnp.bfloat16))
  assert state[0].mu.dtype == jnp.bfloat16
  tx = optax.adam(LR, mu_dtype=jnp.bfloat16)
  s = tx.init(jnp.asarray(P0))
  for t, (g, u) in enumerate(zip(GRADS, got), start=1):
    want, s = tx.update(jnp.asarray(g), s)
    np.testing.assert_allclose(u, np.asarray(want, np.float64), rtol=2e-5,
                               err_msg=f"step {t}")


def test_narrow_state_halves_the_bytes():
  p = {"w": jnp.zeros((64, 32), jnp.float32), "b": jnp.zeros(32, jnp.float32)}
  wide = gradtx.adam(LR).init(p)
  narrow = gradtx.adam(LR, mu_dtype=jnp.bfloat16,
                       nu_dtype=jnp.bfloat16).init(p)

  def nbytes(state):
    return sum(x.nbytes for x in (*state[0].mu.values(),
                                  *state[0].nu.values()))

  assert nbytes(narrow) * 2 == nbytes(wide)
