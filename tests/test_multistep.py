"""MultiSteps (gradient accumulation) and apply_if_finite."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from common import GRADS, PARAMS, trajectory

K = 4


def _same(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb)
  return all(np.array_equal(np.asarray(x), np.asarray(y))
             for x, y in zip(la, lb))


@pytest.mark.parametrize("make", [lambda: gradtx.adam(1e-2),
                                  lambda: gradtx.sgd(1e-2, momentum=0.9)],
                         ids=["adam", "sgd_momentum"])
def test_k_steps_equal_one_inner_step_on_their_mean(make):
  ms = gradtx.MultiSteps(make(), K)
  inner = make()
  step = jax.jit(ms.update)
  s, s_ref, p = ms.init(PARAMS), inner.init(PARAMS), PARAMS
  for c in range(3):
    chunk = GRADS[c * K:(c + 1) * K]
    for i, g in enumerate(chunk):
      u, s = step(g, s, p)
      if i < K - 1:
        assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(u))
        assert not bool(ms.has_updated(s))
    assert bool(ms.has_updated(s))
    mean = jax.tree.map(lambda *gs: sum(gs) / K, *chunk)
    u_ref, s_ref = inner.update(mean, s_ref, p)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(u_ref)):
      np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    p = gradtx.apply_updates(p, u)
  assert int(s.gradient_step) == 3 and int(s.mini_step) == 0


def test_matches_optax_multisteps():
  # optax.MultiSteps keeps its accumulator in float32 unless told otherwise
  # (accumulator_dtype), so in float64 the two agree to float32 precision.
  ours = trajectory(gradtx.MultiSteps(gradtx.adam(1e-2), 3)
                    .gradient_transformation(), GRADS[:12])
  theirs = trajectory(optax.MultiSteps(optax.adam(1e-2), 3)
                      .gradient_transformation(), GRADS[:12])
  for (u1, p1), (u2, p2) in zip(ours, theirs):
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
      np.testing.assert_allclose(a, b, rtol=1e-6)


def test_holds_a_single_accumulator():
  params = {"w": jnp.ones((5, 3)), "b": jnp.ones(7)}
  inner = gradtx.adam(1e-2)
  count = lambda t: sum(x.size for x in jax.tree.leaves(t))
  extra = count(gradtx.MultiSteps(inner, 4).init(params)) - count(
      inner.init(params))
  assert extra == count(params) + 2  # one copy of the params + two counters


def test_resumes_mid_accumulation_bit_for_bit():
  ms = gradtx.MultiSteps(gradtx.adam(1e-2), K)
  step = jax.jit(ms.update)
  s, p = ms.init(PARAMS), PARAMS
  states = []
  for g in GRADS[:10]:
    u, s = step(g, s, p)
    p = gradtx.apply_updates(p, u)
    states.append((p, s))
  p_mid, s_mid = jax.device_get(states[5])  # mid-accumulation: 6 % 4 != 0
  assert int(s_mid.mini_step) == 2
  p2, s2 = jax.tree.map(jnp.asarray, (p_mid, s_mid))
  for g in GRADS[6:10]:
    u, s2 = step(g, s2, p2)
    p2 = gradtx.apply_updates(p2, u)
  assert _same((p2, s2), states[-1])


def test_schedule_for_k_and_no_recompilation():
  ms = gradtx.MultiSteps(gradtx.sgd(0.1), lambda n: jnp.where(n < 1, 2, 3))
  traces = []

  def counted(g, s, p):
    traces.append(1)
    return ms.update(g, s, p)

  step = jax.jit(counted)
  s = ms.init(PARAMS)
  updated = []
  for g in GRADS[:8]:
    _, s = step(g, s, PARAMS)
    updated.append(bool(ms.has_updated(s)))
  assert updated == [False, True, False, False, True, False, False, True]
  assert len(traces) == 1


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_multisteps_validation(bad):
  with pytest.raises(ValueError, match="MultiSteps: every_k_schedule"):
    gradtx.MultiSteps(gradtx.sgd(0.1), bad)


# --- apply_if_finite --------------------------------------------------------


@pytest.mark.parametrize("bad_value", [jnp.nan, jnp.inf, -jnp.inf])
def test_a_bad_step_changes_nothing_and_the_next_proceeds_as_if_unseen(
    bad_value):
  tx = gradtx.apply_if_finite(gradtx.adam(1e-2), max_consecutive_errors=3)
  step = jax.jit(tx.update)
  s, p = tx.init(PARAMS), PARAMS
  for g in GRADS[:6]:  # the same steps without the bad one, same jit
    u, s = step(g, s, p)
    p = gradtx.apply_updates(p, u)
  clean_p = p
  s, p = tx.init(PARAMS), PARAMS
  seq = GRADS[:3] + [jax.tree.map(lambda g: g.at[..., 0].set(bad_value)
                                  if g.ndim else bad_value + 0 * g,
                                  GRADS[3])] + GRADS[3:6]
  for i, g in enumerate(seq):
    s_before, p_before = s, p
    u, s = step(g, s, p)
    p = gradtx.apply_updates(p, u)
    if i == 3:
      assert _same(p, p_before)
      assert _same(s.inner_state, s_before.inner_state)
      assert int(s.notfinite_count) == 1 and not bool(s.last_finite)
  assert _same(p, clean_p)
  assert int(s.total_notfinite) == 1 and int(s.notfinite_count) == 0


def test_after_too_many_bad_steps_the_update_is_applied():
  tx = gradtx.apply_if_finite(gradtx.sgd(0.1), max_consecutive_errors=2)
  s = tx.init(PARAMS)
  nan = jax.tree.map(lambda g: jnp.full_like(g, jnp.nan), GRADS[0])
  applied = []
  for _ in range(4):
    u, s = tx.update(nan, s)
    applied.append(bool(np.isnan(np.asarray(u["b"])).any()))
  assert applied == [False, False, True, True]
  assert int(s.total_notfinite) == 4


def test_apply_if_finite_validation():
  with pytest.raises(ValueError, match="apply_if_finite: max_consecutive"):
    gradtx.apply_if_finite(gradtx.sgd(0.1), -1)
