"""lookahead, ranger and swats against float64 transcriptions.

The lookahead trajectories take 25 steps: five or more syncs at every
sync period tested.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import common
from common import PARAMS

GRADS = common.GRADS[:25]
trajectory = functools.partial(common.trajectory, grads=GRADS)

# --- lookahead: Zhang et al. (2019), Algorithm 1 ------------------------------


def lookahead_sgd_reference(grads, params, lr, momentum, k, alpha, reset):
  """Algorithm 1 with SGD+momentum as A, fast weights reset to the slow ones."""
  theta = [np.asarray(x, np.float64) for x in jax.tree.leaves(params)]
  phi = [x.copy() for x in theta]
  v = [np.zeros_like(x) for x in theta]
  out = []
  for t, g in enumerate(grads, start=1):
    g = [np.asarray(x) for x in jax.tree.leaves(g)]
    v = [momentum * vi + gi for vi, gi in zip(v, g)]
    theta = [th - lr * vi for th, vi in zip(theta, v)]
    if t % k == 0:
      phi = [ph + alpha * (th - ph) for ph, th in zip(phi, theta)]
      theta = [ph.copy() for ph in phi]
      if reset:
        v = [np.zeros_like(x) for x in v]
    out.append(theta)
  return out


@pytest.mark.parametrize("k,alpha,reset", [(5, 0.5, False), (3, 0.8, True),
                                           (1, 0.3, False)])
def test_lookahead_sgd_matches_algorithm_1(k, alpha, reset):
  tx = gradtx.lookahead(gradtx.sgd(1e-2, momentum=0.9), sync_period=k,
                        slow_step_size=alpha, reset_state=reset)
  ours = [jax.tree.leaves(p) for _, p in trajectory(tx)]
  ref = lookahead_sgd_reference(GRADS, PARAMS, 1e-2, 0.9, k, alpha, reset)
  for step, (a, b) in enumerate(zip(ours, ref), start=1):
    for x, y in zip(a, b):
      np.testing.assert_allclose(np.asarray(x), y, rtol=1e-12, atol=1e-15,
                                 err_msg=f"step {step}")


def test_lookahead_params_are_the_slow_weights_after_a_sync():
  tx = gradtx.lookahead(gradtx.adam(1e-2), sync_period=4)
  params, state = PARAMS, tx.init(PARAMS)
  for g in GRADS[:8]:
    u, state = tx.update(g, state, params)
    params = gradtx.apply_updates(params, u)
  for p, s in zip(jax.tree.leaves(params), jax.tree.leaves(state.slow)):
    np.testing.assert_allclose(p, s, rtol=1e-15, atol=1e-15)


def test_lookahead_with_adam_trains_flax_params_unchanged():
  flax_linen = pytest.importorskip("flax.linen")
  from flax.core import freeze

  model = flax_linen.Dense(4)
  x = jnp.linspace(-1, 1, 24).reshape(6, 4)
  y = jnp.sin(x)
  params = freeze(model.init(jax.random.key(0), x))
  loss = lambda p: jnp.mean((model.apply(p, x) - y) ** 2)
  tx = gradtx.lookahead(gradtx.adam(3e-2), sync_period=5)
  state = tx.init(params)

  @jax.jit
  def step(p, s):
    u, s = tx.update(jax.grad(loss)(p), s, p)
    return gradtx.apply_updates(p, u), s

  start = float(loss(params))
  for _ in range(100):
    params, state = step(params, state)
  assert type(params).__name__ == "FrozenDict"
  assert float(loss(params)) < 0.2 * start


def test_ranger_is_lookahead_over_radam_with_its_defaults():
  ours = trajectory(gradtx.ranger(1e-2))
  ref = trajectory(gradtx.lookahead(
      gradtx.radam(1e-2, b1=0.95, b2=0.999, eps=1e-5), sync_period=6,
      slow_step_size=0.5))
  for (u1, p1), (u2, p2) in zip(ours, ref):
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
      assert np.array_equal(a, b)


def test_lookahead_validation():
  with pytest.raises(ValueError, match="lookahead: sync_period"):
    gradtx.lookahead(gradtx.sgd(0.1), sync_period=0)
  with pytest.raises(ValueError, match="lookahead: slow_step_size"):
    gradtx.lookahead(gradtx.sgd(0.1), slow_step_size=1.5)
  tx = gradtx.lookahead(gradtx.sgd(0.1))
  with pytest.raises(ValueError, match="lookahead: this transform needs"):
    tx.update(PARAMS, tx.init(PARAMS))


# --- swats: Keskar & Socher (2017), Algorithm 1 -------------------------------

A = jnp.logspace(0.0, 1.0, 12)  # an ill-conditioned quadratic, 0.5 w'Aw
LR, EPS = 1e-3, 1e-7


def _noisy_grads(steps, seed=0):
  """(steps, 12) NumPy draws: one eager jax.random.normal per step would
  dispatch (and first compile) a sampler 600 times, and a JAX array would
  be split into its rows by one more compiled program."""
  rng = np.random.default_rng(seed)
  return rng.standard_normal((steps,) + A.shape)


def _run_swats(tx, w, noise):
  state = tx.init(w)
  ws, us, gs, states = [], [], [], []
  step = jax.jit(lambda w, s, n: tx.update(A * w + n, s))
  for n in noise:
    u, state = step(w, state, n)
    gs.append(np.asarray(A * w + n))
    w = w + u
    us.append(np.asarray(u))
    states.append(state)
  return us, gs, states


def test_swats_switches_and_follows_adam_then_sgd():
  noise = _noisy_grads(600)
  us, gs, states = _run_swats(gradtx.swats(LR, eps=EPS), jnp.ones(12), noise)
  last = states[-1]
  assert bool(last.switched), "SWATS never switched on the quadratic"
  k_switch = int(last.switch_step)
  assert 1 < k_switch < 600
  rate = float(last.sgd_lr)
  assert rate > 0
  b1, b2 = 0.9, 0.999
  # Independent transcription: Adam's steps until the switch (inclusive).
  m = np.zeros(12)
  a = np.zeros(12)
  lam = 0.0
  for k in range(1, k_switch + 1):
    g = gs[k - 1]
    m = b1 * m + (1 - b1) * g
    a = b2 * a + (1 - b2) * g * g
    p = -LR * np.sqrt(1 - b2 ** k) / (1 - b1 ** k) * m / (np.sqrt(a) + EPS)
    np.testing.assert_allclose(us[k - 1], p, rtol=1e-10, err_msg=f"step {k}")
    gamma = p @ p / (-p @ g)
    lam = b2 * lam + (1 - b2) * gamma
    crossed = abs(lam / (1 - b2 ** k) - gamma) < EPS
    assert (crossed and k > 1) == (k == k_switch), f"switch rule at step {k}"
  np.testing.assert_allclose(rate, lam / (1 - b2 ** k_switch), rtol=1e-10)
  assert int(states[k_switch - 2].switch_step) == 0
  # Then SGD with momentum at the exposed rate, v starting from zero.
  v = np.zeros(12)
  for k in range(k_switch + 1, 601):
    v = b1 * v + gs[k - 1]
    np.testing.assert_allclose(us[k - 1], -(1 - b1) * rate * v, rtol=1e-10,
                               err_msg=f"step {k}")


@pytest.mark.parametrize("rule", [{}, {"switch_rtol": 0.05,
                                       "min_adam_steps": 30}])
def test_swats_per_leaf_switches_each_leaf_on_its_own(rule):
  noise = jnp.asarray(_noisy_grads(600, seed=1))
  tx = gradtx.swats(LR, eps=EPS, per_leaf=True, **rule)
  solo = gradtx.swats(LR, eps=EPS, **rule)
  slices = {"a": slice(0, 6), "b": slice(6, 12)}

  def run(noise):
    """The per-leaf run on both leaves, and a global SWATS run on each
    leaf alone, all 600 steps in one jitted program."""
    def body(carry, n):
      w, s = carry
      u, s = tx.update({k: A[sl] * w[k] + n[sl] for k, sl in slices.items()},
                       s)
      return (gradtx.apply_updates(w, u), s), None

    w0 = {"a": jnp.ones(6), "b": jnp.ones(6)}
    (w, state), _ = jax.lax.scan(body, (w0, tx.init(w0)), noise)
    alone = {}
    for name, sl in slices.items():
      def solo_body(carry, n, sl=sl):
        w1, s1 = carry
        u1, s1 = solo.update(A[sl] * w1 + n[sl], s1)
        return (w1 + u1, s1), None
      alone[name] = jax.lax.scan(solo_body, (jnp.ones(6), solo.init(
          jnp.ones(6))), noise)[0]
    return w, state, alone

  w, state, alone = jax.jit(run)(noise)
  assert jax.tree.structure(state.switched) == jax.tree.structure(w)
  assert any(map(bool, jax.tree.leaves(state.switched))), "none switched"
  # Each leaf's state is exactly that of a global SWATS run on that leaf.
  for name, (w1, s1) in alone.items():
    assert bool(s1.switched) == bool(state.switched[name])
    assert int(s1.switch_step) == int(state.switch_step[name])
    np.testing.assert_allclose(w1, w[name], rtol=1e-10)


def test_swats_state_exposes_the_switch_for_logging():
  state = gradtx.swats(1e-3).init({"w": jnp.ones(3)})
  assert state.switched.dtype == jnp.bool_ and state.switch_step.dtype == \
      jnp.int32
  assert state.sgd_lr.shape == ()


# The switching rule on a 20-dimensional noisy quadratic, 0.5 w'Dw with the
# curvatures spread over a decade and N(0, sigma^2) noise on each gradient.
D20 = jnp.logspace(0.0, 1.0, 20)


def _swats_on_quadratic(tx, steps, sigma, seed=0):
  """Losses after each step, and the last state, from one jitted scan."""
  # The noise is an argument, not a constant of the program: runs of the
  # same transform share one compilation.
  noise = sigma * np.random.default_rng(seed).standard_normal((steps, 20))

  def step(carry, n):
    w, s = carry
    u, s = tx.update(D20 * w + n, s)
    w = w + u
    return (w, s), 0.5 * jnp.sum(D20 * w * w)

  w0 = jnp.ones(20)
  (_, state), losses = jax.jit(lambda noise: jax.lax.scan(
      step, (w0, tx.init(w0)), noise))(noise)
  return np.asarray(losses), state


@pytest.mark.parametrize("lr", [1e-2, 1e-3])
@pytest.mark.parametrize("sigma", [0.0, 0.1])
def test_swats_papers_rule_never_switches_on_a_20d_quadratic(lr, sigma):
  _, state = _swats_on_quadratic(gradtx.swats(lr), 3000, sigma)
  assert not bool(state.switched)


def test_swats_papers_rule_with_a_larger_eps_switches_at_once():
  # Adam's first steps are all alike, so gamma_k barely moves: a tolerance
  # above that tiny gap fires within a few steps, at a rate (about lr/4)
  # fit only for the start: SGD then needs 1/rate steps per e-fold.
  _, state = _swats_on_quadratic(gradtx.swats(1e-3, eps=1e-6), 50, 0.1)
  assert 2 <= int(state.switch_step) <= 10
  assert float(state.sgd_lr) < 1e-3


def test_swats_relative_rule_switches_after_adams_start_and_keeps_descending():
  steps, sigma, lr = 3000, 0.1, 1e-2
  tx = gradtx.swats(lr, switch_rtol=0.05, min_adam_steps=100)
  losses, state = _swats_on_quadratic(tx, steps, sigma)
  k = int(state.switch_step)
  assert bool(state.switched)
  # Not at the first allowed step: the relative test waits while the
  # projected rate is still growing with Adam's progress.
  assert 120 < k < 600, k
  rate = float(state.sgd_lr)
  assert 0 < rate < 2 / float(D20.max()), "SGD must be stable on D"
  before = losses[k - 20:k].mean()
  after = [losses[a:a + 500].mean() for a in range(k, steps - 499, 500)]
  assert after[0] < before and after[-1] < after[0], (before, after)
  # And SGD ends below the noise floor Adam alone stays on.
  adam_losses, _ = _swats_on_quadratic(gradtx.adam(lr), steps, sigma)
  assert losses[-500:].mean() < 0.5 * adam_losses[-500:].mean()


def test_swats_relative_rule_matches_its_formula_step_by_step():
  # The relative test, transcribed in float64: the switch comes exactly at
  # the first k >= min_adam_steps with |cand - gamma| < rtol * cand.
  noise = _noisy_grads(600)
  rtol, kmin = 0.05, 30
  us, gs, states = _run_swats(
      gradtx.swats(LR, eps=EPS, switch_rtol=rtol, min_adam_steps=kmin),
      jnp.ones(12), noise)
  b1, b2 = 0.9, 0.999
  m, a, lam, k_switch = np.zeros(12), np.zeros(12), 0.0, None
  for k in range(1, 601):
    g = gs[k - 1]
    m = b1 * m + (1 - b1) * g
    a = b2 * a + (1 - b2) * g * g
    p = -LR * np.sqrt(1 - b2 ** k) / (1 - b1 ** k) * m / (np.sqrt(a) + EPS)
    gamma = p @ p / (-p @ g)
    lam = b2 * lam + (1 - b2) * gamma
    cand = lam / (1 - b2 ** k)
    if k >= kmin and abs(cand - gamma) < rtol * cand:
      k_switch = k
      break
  assert k_switch is not None and k_switch >= kmin
  assert int(states[-1].switch_step) == k_switch
  np.testing.assert_allclose(float(states[-1].sgd_lr), cand, rtol=1e-10)


@pytest.mark.parametrize("kw,match", [
    (dict(switch_rtol=0.0), "switch_rtol must be in"),
    (dict(switch_rtol=1.5), "switch_rtol must be in"),
    (dict(min_adam_steps=1), "min_adam_steps must be an int >= 2"),
    (dict(min_adam_steps=10.0), "min_adam_steps must be an int >= 2")])
def test_swats_switch_rule_validation(kw, match):
  with pytest.raises(ValueError, match=match):
    gradtx.swats(1e-3, **kw)


# --- lookahead in optax's form: LookaheadParams(fast, slow) -------------------


@pytest.mark.parametrize("reset", [False, True])
@pytest.mark.parametrize("own_class", [False, True],
                         ids=["optax_params", "gradtx_params"])
def test_lookahead_params_form_equals_optax(own_class, reset):
  """optax's signature and LookaheadParams (optax's class or gradtx's): the
  same params and the same state as optax's lookahead, leaf for leaf."""
  import optax
  theirs = optax.lookahead(optax.adam(0.1), 3, 0.5, reset)
  ours = gradtx.lookahead(fast_optimizer=gradtx.adam(0.1), sync_period=3,
                          slow_step_size=0.5, reset_state=reset)
  cls = gradtx.LookaheadParams if own_class else optax.LookaheadParams
  po = optax.LookaheadParams.init_synced(PARAMS)
  pg = cls.init_synced(PARAMS)
  so, sg = theirs.init(po), ours.init(pg)
  paths = lambda t: [jax.tree_util.keystr(k) for k, _ in
                     jax.tree_util.tree_flatten_with_path(t)[0]]
  assert paths(sg) == paths(so)
  step = jax.jit(ours.update)
  for g in GRADS[:7]:
    uo, so = theirs.update(g, so, po)
    po = optax.apply_updates(po, uo)
    ug, sg = step(g, sg, pg)
    assert type(ug) is cls
    pg = gradtx.apply_updates(pg, ug)
    for a, b in zip(jax.tree.leaves((pg, sg)), jax.tree.leaves((po, so))):
      np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-15)


def test_lookahead_takes_optimizer_as_another_name():
  a = gradtx.lookahead(optimizer=gradtx.sgd(0.1), sync_period=2)
  b = gradtx.lookahead(gradtx.sgd(0.1), 2)
  for x, y in zip(trajectory(a), trajectory(b)):
    np.testing.assert_array_equal(x[1]["w"], y[1]["w"])
  with pytest.raises(TypeError, match="pass the inner optimizer once"):
    gradtx.lookahead(gradtx.sgd(0.1), optimizer=gradtx.sgd(0.1))


def test_lookahead_refuses_a_change_of_params_form():
  tx = gradtx.lookahead(gradtx.sgd(0.1), 2)
  state = tx.init(PARAMS)
  with pytest.raises(ValueError, match="built by init\\(\\) on plain params"):
    tx.update(GRADS[0], state, gradtx.LookaheadParams.init_synced(PARAMS))
