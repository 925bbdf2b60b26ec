"""vSGD (Schaul, Zhang & LeCun 2013): per step against a float64 NumPy
transcription of the paper's Algorithm 1 with the slow-start
initialisation, and against plain SGD on an ill-conditioned noisy
quadratic."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

# A separable objective: its Hessian is diagonal, so Hutchinson's probe
# z * Hz = z^2 * diag(H) is the diagonal exactly (z = +-1), and the
# reference can use the true curvature a + 3 b w^2.
A = np.array([0.5, 2.0, 30.0, 400.0])
B = np.array([0.0, 1.0, 0.5, 0.0])


def f(w):
  return jnp.sum(0.5 * A * w ** 2 + 0.25 * B * w ** 4)


def grad_np(w):
  return A * w + B * w ** 3


def curvature_np(w):
  return A + 3 * B * w ** 2


def vsgd_reference(w0, noise, n0, c):
  """Algorithm 1 of the paper ("vSGD-l"), transcribed from its formulas:
  per parameter i,

      g_bar <- (1 - 1/tau) g_bar + g / tau
      v_bar <- (1 - 1/tau) v_bar + g^2 / tau
      h_bar <- (1 - 1/tau) h_bar + |h| / tau
      eta   <- g_bar^2 / (h_bar v_bar)
      tau   <- (1 - g_bar^2 / v_bar) tau + 1
      w     <- w - eta g

  after the slow start: the first n0 samples give the means of g, g^2 and
  |h| (no step), v_bar and h_bar are multiplied by C, and tau = n0."""
  w = np.array(w0, np.float64)
  out = []
  gs, vs, hs = [], [], []
  g_bar = v_bar = h_bar = tau = None
  for t, e in enumerate(noise):
    g = grad_np(w) + e
    h = np.abs(curvature_np(w))
    if t < n0:
      gs.append(g), vs.append(g * g), hs.append(h)
      if t == n0 - 1:
        g_bar = np.mean(gs, axis=0)
        v_bar = c * np.mean(vs, axis=0)
        h_bar = c * np.mean(hs, axis=0)
        tau = np.full_like(w, float(n0))
      out.append(w.copy())
      continue
    g_bar = (1 - 1 / tau) * g_bar + g / tau
    v_bar = (1 - 1 / tau) * v_bar + g * g / tau
    h_bar = (1 - 1 / tau) * h_bar + h / tau
    eta = g_bar ** 2 / (h_bar * v_bar)
    tau = (1 - g_bar ** 2 / v_bar) * tau + 1
    w = w - eta * g
    out.append(w.copy())
  return np.array(out)


def run(tx, w0, noise, objective=f):
  """Each step feeds the gradient of ``objective`` plus the step's noise;
  the curvature is estimated from ``objective`` itself (value_fn).
  Traceable: the params after each step and the last state."""
  def step(carry, e):
    w, state = carry
    g = jax.grad(objective)(w) + e
    u, state = tx.update(g, state, w, value_fn=objective)
    w = gradtx.apply_updates(w, u)
    return (w, state), w

  (_, state), ws = jax.lax.scan(step, (w0, tx.init(w0)), noise)
  return ws, state


PAPER_CASES = [(2, 2.0), (3, 2.0), (5, 4.0)]
W0 = np.array([1.0, -0.8, 0.5, 0.1])


def _noise(n0):
  return np.random.default_rng(n0).normal(scale=0.3, size=(60, 4))


@functools.cache
def paper_case_runs():
  """run() of vsgd for each (n0, C) of PAPER_CASES, in one compiled
  program, as NumPy arrays."""
  return dict(zip(PAPER_CASES, jax.device_get(jax.jit(lambda: [
      run(gradtx.vsgd(key=0, init_samples=n0, slow_start=c),
          jnp.asarray(W0), jnp.asarray(_noise(n0)))
      for n0, c in PAPER_CASES])())))


# With n0 = 1 and C = 1 the first averages are the first sample itself,
# g_bar^2 / v_bar = 1 and tau stays near 1, where 1 - g_bar^2 / v_bar
# cancels: the recursion then amplifies rounding, and two correct
# implementations part after some 30 steps. The slow start (C > 1) is what
# the paper prescribes, and keeps it well conditioned.
@pytest.mark.parametrize("n0,c", PAPER_CASES)
def test_each_step_matches_the_papers_algorithm(n0, c):
  ours, state = paper_case_runs()[n0, c]
  reference = vsgd_reference(W0, _noise(n0), n0, c)
  np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-13)
  # The warm-up steps moved nothing; then the params did move.
  np.testing.assert_array_equal(ours[:n0], W0[None].repeat(n0, 0))
  assert np.abs(ours[-1]).max() < 0.2, ours[-1]
  # The memory adapted: it grew where noise dominates the gradient.
  tau = np.asarray(state[0].tau)
  assert tau.max() > 3.0 and tau.min() >= 1.0, tau


def test_default_slow_start_is_a_tenth_of_the_size():
  """C = max(1, d / 10) = 4 with 40 params. Without noise and n0 = 2, the
  first step after the warm-up averages the C-fold overestimates with one
  sample at weight 1/2: eta = 1 / (h ((C + 1) / 2)^2)."""
  w0 = jnp.ones(40)
  g = jnp.ones(40)
  h = lambda w: 0.5 * jnp.sum(w ** 2)   # curvature 1

  def first_steps(tx):
    """The updates of the two warm-up calls and of the next one."""
    state, out = tx.init(w0), []
    for _ in range(3):
      u, state = tx.update(g, state, w0, value_fn=h)
      out.append(u)
    return out

  (*warm, default), (*warm_one, one) = jax.jit(lambda: [
      first_steps(gradtx.scale_by_vsgd(key=0, init_samples=2)),
      first_steps(gradtx.scale_by_vsgd(key=0, init_samples=2,
                                       slow_start=1.0))])()
  for u in warm + warm_one:
    np.testing.assert_array_equal(np.asarray(u), 0.0)   # warming up
  np.testing.assert_allclose(np.asarray(one), 1.0, rtol=1e-12)
  np.testing.assert_allclose(np.asarray(default), 1 / 2.5 ** 2, rtol=1e-12)


def test_beats_sgd_on_an_ill_conditioned_noisy_quadratic():
  """Curvatures 1 to 1e3 and gradient noise: SGD's rate is capped by the
  largest curvature, so the flat directions barely move; vSGD's rate per
  parameter is about 1/h_i, annealed as the noise takes over."""
  a = np.logspace(0.0, 3.0, 6)
  quad = lambda w: 0.5 * jnp.sum(jnp.asarray(a) * w ** 2)
  rng = np.random.default_rng(0)
  steps = 300
  noise = jnp.asarray(rng.normal(scale=0.1, size=(steps, 6)), jnp.float32)
  w0 = jnp.ones(6)

  def final_loss(tx):
    return quad(run(tx, w0, noise, quad)[0][-1])

  # SGD at its best rate on a grid below the stability limit 2 / h_max
  # (one program: the rate is an argument, mapped over the grid).
  rates = np.array([0.1, 0.3, 1.0, 1.9]) / a[-1]
  sgd, ours = jax.jit(lambda rates: (
      jax.vmap(lambda lr: final_loss(gradtx.sgd(lr)))(rates),
      final_loss(gradtx.vsgd(key=0))))(rates)
  sgd, ours = float(np.min(sgd)), float(ours)
  assert sgd > 0.1, sgd               # the flattest direction is still far
  assert ours < 0.05 * sgd, (ours, sgd)


def test_gauss_newton_curvature_and_a_model_tree():
  """estimator='gauss_newton' with residual outputs: the rate of each
  param is 1 / diag(J^T J) without noise, over a tree of params."""
  scales = {"a": jnp.array([1.0, 3.0]), "b": jnp.array(10.0)}
  r = lambda p: {"a": scales["a"] * (p["a"] - 1.0),
                 "b": scales["b"] * (p["b"] + 2.0)}
  loss = lambda p: 0.5 * sum(jnp.sum(x ** 2) for x in jax.tree.leaves(r(p)))
  tx = gradtx.vsgd(key=1, estimator="gauss_newton", loss="squared",
                   init_samples=1, slow_start=1.0)

  @jax.jit
  def two_steps(p):
    state = tx.init(p)
    for _ in range(2):
      u, state = tx.update(jax.grad(loss)(p), state, p, output_fn=r)
      p = gradtx.apply_updates(p, u)
    return p

  p = two_steps({"a": jnp.zeros(2), "b": jnp.asarray(0.0)})
  np.testing.assert_allclose(np.asarray(p["a"]), [1.0, 1.0], rtol=1e-6)
  np.testing.assert_allclose(float(p["b"]), -2.0, rtol=1e-6)


@pytest.mark.parametrize("bad,match", [
    (lambda: gradtx.vsgd(), "explicit PRNG key"),
    (lambda: gradtx.vsgd(key=0, estimator="bbprop"), "estimator must be"),
    (lambda: gradtx.vsgd(key=0, estimator="gauss_newton"),
     "needs the loss of the outputs"),
    (lambda: gradtx.vsgd(key=0, loss="squared"), "read by estimator="),
    (lambda: gradtx.vsgd(key=0, init_samples=0), "init_samples"),
    (lambda: gradtx.vsgd(key=0, slow_start=0.5), "slow_start"),
    (lambda: gradtx.vsgd(key=0, learning_rate=-1.0), "learning_rate"),
])
def test_bad_arguments_teach(bad, match):
  with pytest.raises(ValueError, match=match):
    bad()


def test_update_without_the_objective_says_what_to_pass():
  tx = gradtx.vsgd(key=0)
  w = jnp.ones(2)
  with pytest.raises(TypeError, match="value_fn"):
    tx.update(w, tx.init(w), w)
  tx = gradtx.vsgd(key=0, estimator="gauss_newton", loss="squared")
  with pytest.raises(TypeError, match="output_fn"):
    tx.update(w, tx.init(w), w)
