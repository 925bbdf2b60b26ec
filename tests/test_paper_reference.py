"""Every named optimizer against a float64 NumPy transcription of its paper.

Each ``ref_*`` function below is a plain loop over steps that transcribes the
update rule as the cited paper (or, where the library follows optax's form,
the documented form) writes it. The references use NumPy only; they do not
call gradtx or optax. ``ref_noisy_sgd`` uses ``jax.random`` for the draws
themselves, since the test pins the exact samples.

All references are elementwise, so the harness runs a reference on each leaf
of a small pytree separately and compares, after every one of ``STEPS``
steps, both the update the library returned and the params, at relative
tolerance 1e-9 and absolute tolerance 0.

The gradients span magnitudes 1e-3 to 30, change every step, have a per-entry
sign bias (so some entries keep their sign for many steps and others flip
often, which exercises Rprop's growth, shrink and clipping) and contain a few
exact zeros (one entry is zero for the first 10 steps, so Adagrad sees
``G == 0``).

``test_harness_catches_mutants`` checks that the comparison fails for
plausible bugs: a bias correction off by one step, Nadam's look-ahead power
off by one, optax 0.2.8's Rprop lag and Adadelta ascent, coupled instead of
decoupled weight decay, ``eps`` inside instead of outside the root.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import common
import gradtx

STEPS = 50
# A dict pytree; jax flattens dicts in sorted key order: a, b, c.
SHAPES = {"a": (4, 3), "b": (7,), "c": (2, 1, 3)}
RTOL = 1e-9


# --------------------------------------------------------------------------
# Inputs


def make_params(seed: int = 1) -> dict:
  rng = np.random.default_rng(seed)
  return {k: rng.choice([-1.0, 1.0], s) * rng.uniform(2.0, 5.0, s)
          for k, s in SHAPES.items()}


def make_grads(seed: int = 0, steps: int = STEPS) -> list:
  """``steps`` gradient trees, entries ``sign * 10**U(-3, log10(30))``."""
  rng = np.random.default_rng(seed)
  p_pos = {k: rng.uniform(0.05, 0.95, s) for k, s in SHAPES.items()}
  out = []
  for t in range(steps):
    g = {}
    for k, s in SHAPES.items():
      sign = np.where(rng.uniform(size=s) < p_pos[k], 1.0, -1.0)
      x = sign * 10.0 ** rng.uniform(-3.0, np.log10(30.0), s)
      x[rng.uniform(size=s) < 0.04] = 0.0
      g[k] = x
    if t < 10:
      g["b"][0] = 0.0
    out.append(g)
  return out


# --------------------------------------------------------------------------
# References. Each takes the initial params ``theta`` of one leaf and the
# list of that leaf's gradients, and returns [(theta_t, delta_t)] for
# t = 1..T, where delta_t is the change applied at step t. No defaults: the
# test table spells out every hyperparameter, which also pins the library's
# defaults.


def ref_sgd(theta, grads, *, lr, momentum, nesterov):
  # Robbins & Monro (1951); heavy ball: Polyak (1964); Nesterov in the form
  # of Sutskever et al. (ICML 2013), as torch.optim.SGD with dampening=0:
  #   v_t = beta v_{t-1} + g_t;  theta_t = theta_{t-1} - lr * v_t
  #   (Nesterov: theta_t = theta_{t-1} - lr * (g_t + beta v_t)).
  v = np.zeros_like(theta)
  out = []
  for g in grads:
    v = momentum * v + g
    d = -lr * (g + momentum * v if nesterov else v)
    theta = theta + d
    out.append((theta, d))
  return out


def ref_sgdw(theta, grads, *, lr, momentum, nesterov, wd):
  # Loshchilov & Hutter, "Decoupled weight decay regularization" (ICLR 2019),
  # Algorithm 1 (SGDW) with the decay scaled by the learning rate:
  #   v_t = beta v_{t-1} + g_t;  theta_t = theta_{t-1} - lr (v_t + wd theta_{t-1})
  # The decay never enters v.
  v = np.zeros_like(theta)
  out = []
  for g in grads:
    v = momentum * v + g
    d = -lr * ((g + momentum * v if nesterov else v) + wd * theta)
    theta = theta + d
    out.append((theta, d))
  return out


def ref_adagrad(theta, grads, *, lr, G0, eps, eps_in_sqrt):
  # Duchi, Hazan & Singer, JMLR 2011 (diagonal form):
  #   G_t = G_{t-1} + g_t^2
  #   paper / PyTorch:  theta_t = theta_{t-1} - lr g_t / (sqrt(G_t) + eps)
  #   optax:            theta_t = theta_{t-1} - lr g_t / sqrt(G_t + eps),
  #                     and 0 where G_t == 0.
  G = np.full_like(theta, G0)
  out = []
  for g in grads:
    G = G + g ** 2
    if eps_in_sqrt:
      safe = np.where(G > 0, G + eps, 1.0)
      step = np.where(G > 0, g / np.sqrt(safe), 0.0)
    else:
      step = g / (np.sqrt(G) + eps)
    d = -lr * step
    theta = theta + d
    out.append((theta, d))
  return out


def ref_adadelta(theta, grads, *, lr, rho, eps, wd):
  # Zeiler, "ADADELTA: an adaptive learning rate method" (2012), Algorithm 1:
  #   E[g2]_t = rho E[g2]_{t-1} + (1 - rho) g_t^2
  #   dx_t    = -sqrt(E[dx2]_{t-1} + eps) / sqrt(E[g2]_t + eps) * g_t
  #   E[dx2]_t = rho E[dx2]_{t-1} + (1 - rho) dx_t^2
  #   theta_t = theta_{t-1} + dx_t        (lr = 1 is the paper's method;
  #                                        torch.optim.Adadelta scales dx by lr)
  # wd adds L2 to the gradient (g <- g + wd theta), as PyTorch does.
  Eg = np.zeros_like(theta)
  Edx = np.zeros_like(theta)
  out = []
  for g in grads:
    g = g + wd * theta
    Eg = rho * Eg + (1 - rho) * g ** 2
    dx = -np.sqrt(Edx + eps) / np.sqrt(Eg + eps) * g
    Edx = rho * Edx + (1 - rho) * dx ** 2
    d = lr * dx
    theta = theta + d
    out.append((theta, d))
  return out


def ref_rmsprop(theta, grads, *, lr, decay, eps, centered, momentum, nesterov,
                eps_in_sqrt, bias_correction):
  # Hinton, Neural Networks for ML, Lecture 6e (2012):
  #   n_t = rho n_{t-1} + (1 - rho) g_t^2;  step = lr g_t / sqrt(n_t + eps)
  # Centered: Graves, "Generating sequences with RNNs" (2013), eqs. 38-41:
  #   gbar_t = rho gbar_{t-1} + (1 - rho) g_t
  #   Delta_t = beta Delta_{t-1} - lr g_t / sqrt(n_t - gbar_t^2 + eps)
  #   theta_t = theta_{t-1} + Delta_t
  # i.e. momentum is applied to the already lr-scaled step (optax's order;
  # gradtx.rmsprop chains scale_by_rms, scale_by_learning_rate, trace).
  # Nesterov: theta_t = theta_{t-1} + (step_t + beta Delta_t).
  n = np.zeros_like(theta)
  gbar = np.zeros_like(theta)
  vel = np.zeros_like(theta)
  out = []
  for t, g in enumerate(grads, start=1):
    n = decay * n + (1 - decay) * g ** 2
    gbar = decay * gbar + (1 - decay) * g
    n_hat, gbar_hat = n, gbar
    if bias_correction:
      n_hat, gbar_hat = n / (1 - decay ** t), gbar / (1 - decay ** t)
    var = n_hat - gbar_hat ** 2 if centered else n_hat
    scaled = g / np.sqrt(var + eps) if eps_in_sqrt else g / (np.sqrt(var) + eps)
    step = -lr * scaled
    vel = momentum * vel + step
    d = step + momentum * vel if nesterov else vel
    theta = theta + d
    out.append((theta, d))
  return out


def ref_rprop(theta, grads, *, lr, eta_minus, eta_plus, min_step, max_step):
  # Riedmiller & Braun, "A direct adaptive method for faster backpropagation
  # learning: the RPROP algorithm" (ICNN 1993); the iRprop- variant of Igel &
  # Huesken, "Improving the Rprop learning algorithm" (NC 2000), Fig. 2:
  #   if g_{t-1} g_t > 0: s = min(s eta+, s_max)
  #   if g_{t-1} g_t < 0: s = max(s eta-, s_min); g_t = 0
  #   theta_t = theta_{t-1} - sign(g_t) s;   g_{t-1} <- g_t
  # Step t applies the update from g_t (as torch.optim.Rprop).
  s = np.full_like(theta, lr)
  g_prev = np.zeros_like(theta)
  out = []
  for g in grads:
    prod = g_prev * g
    s = np.where(prod > 0, np.minimum(s * eta_plus, max_step),
                 np.where(prod < 0, np.maximum(s * eta_minus, min_step), s))
    g = np.where(prod < 0, 0.0, g)
    d = -np.sign(g) * s
    theta = theta + d
    g_prev = g
    out.append((theta, d))
  return out


def ref_adam(theta, grads, *, lr, b1, b2, eps, eps_root, wd, nadam):
  # Kingma & Ba, "Adam: a method for stochastic optimization" (ICLR 2015),
  # Algorithm 1:
  #   m_t = b1 m_{t-1} + (1 - b1) g_t;  v_t = b2 v_{t-1} + (1 - b2) g_t^2
  #   mhat_t = m_t / (1 - b1^t);  vhat_t = v_t / (1 - b2^t)
  #   theta_t = theta_{t-1} - lr mhat_t / (sqrt(vhat_t + eps_root) + eps)
  # AdamW (Loshchilov & Hutter, ICLR 2019, Algorithm 2), decay scaled by lr:
  #   theta_t = theta_{t-1} - lr (mhat_t / (...) + wd theta_{t-1})
  # Nadam (Dozat, ICLR workshop 2016) in its look-ahead form (optax's):
  #   mbar_t = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g_t / (1 - b1^t)
  m = np.zeros_like(theta)
  v = np.zeros_like(theta)
  out = []
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    if nadam:
      mhat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
    else:
      mhat = m / (1 - b1 ** t)
    vhat = v / (1 - b2 ** t)
    d = -lr * (mhat / (np.sqrt(vhat + eps_root) + eps) + wd * theta)
    theta = theta + d
    out.append((theta, d))
  return out


def ref_adamax(theta, grads, *, lr, b1, b2, eps):
  # Kingma & Ba (ICLR 2015), Algorithm 2 (AdaMax):
  #   m_t = b1 m_{t-1} + (1 - b1) g_t;  u_t = max(b2 u_{t-1}, |g_t|)
  #   theta_t = theta_{t-1} - (lr / (1 - b1^t)) m_t / u_t
  # with eps inside the max (optax, torch.optim.Adamax) so u_t > 0.
  m = np.zeros_like(theta)
  u = np.zeros_like(theta)
  out = []
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    u = np.maximum(b2 * u, np.abs(g) + eps)
    d = -(lr / (1 - b1 ** t)) * m / u
    theta = theta + d
    out.append((theta, d))
  return out


# --------------------------------------------------------------------------
# Harness


def run_library(tx, params0: dict, grads: list) -> list:
  """[(params_t, updates_t)] as NumPy trees, eagerly, for t = 1..T."""
  params = {k: jnp.asarray(v) for k, v in params0.items()}
  state = tx.init(params)
  out = []
  for g in grads:
    updates, state = tx.update({k: jnp.asarray(v) for k, v in g.items()},
                               state, params)
    params = gradtx.apply_updates(params, updates)
    out.append(({k: np.asarray(v) for k, v in params.items()},
                {k: np.asarray(v) for k, v in updates.items()}))
  return out


def run_reference(ref, params0: dict, grads: list) -> list:
  """Runs the elementwise reference on each leaf: [(params_t, deltas_t)]."""
  per_leaf = {k: ref(params0[k], [g[k] for g in grads]) for k in params0}
  return [({k: per_leaf[k][t][0] for k in params0},
           {k: per_leaf[k][t][1] for k in params0})
          for t in range(len(grads))]


def assert_same_trajectory(lib: list, ref: list) -> None:
  """Per step and leaf: updates, then params, equal at rtol=1e-9, atol=0.
  All steps are compared at once; the first step that differs is reported."""
  assert len(lib) == len(ref)
  for k in ref[0][0]:
    assert all(p[k].dtype == np.float64 for p, _ in lib), k
    for what, i in (("update", 1), ("params", 0)):
      ours = np.stack([step[i][k] for step in lib])
      theirs = np.stack([step[i][k] for step in ref])
      common.assert_steps_close(ours, theirs, RTOL, 0,
                                f"{what} at step {{step}}, leaf {k!r}")


# --------------------------------------------------------------------------
# The table: (gradtx optimizer, reference with every hyperparameter spelled).

P = functools.partial

SGD0 = dict(momentum=0.0, nesterov=False)
RMS0 = dict(decay=0.9, eps=1e-8, centered=False, momentum=0.0, nesterov=False,
            eps_in_sqrt=True, bias_correction=False)
ADAM0 = dict(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, wd=0.0, nadam=False)
RPROP0 = dict(eta_minus=0.5, eta_plus=1.2, min_step=1e-6, max_step=50.0)

CASES = [
    # SGD
    pytest.param(gradtx.sgd(0.01), P(ref_sgd, lr=0.01, **SGD0), id="sgd"),
    pytest.param(gradtx.sgd(0.01, momentum=0.9),
                 P(ref_sgd, lr=0.01, momentum=0.9, nesterov=False),
                 id="sgd-momentum"),
    pytest.param(gradtx.sgd(0.01, momentum=0.9, nesterov=True),
                 P(ref_sgd, lr=0.01, momentum=0.9, nesterov=True),
                 id="sgd-nesterov"),
    # SGDW
    pytest.param(gradtx.sgdw(0.01, momentum=0.9),
                 P(ref_sgdw, lr=0.01, momentum=0.9, nesterov=False, wd=1e-4),
                 id="sgdw-default-decay"),
    pytest.param(gradtx.sgdw(0.01, momentum=0.9, weight_decay=0.05),
                 P(ref_sgdw, lr=0.01, momentum=0.9, nesterov=False, wd=0.05),
                 id="sgdw-momentum"),
    pytest.param(gradtx.sgdw(0.01, weight_decay=0.05),
                 P(ref_sgdw, lr=0.01, momentum=0.0, nesterov=False, wd=0.05),
                 id="sgdw-plain"),
    pytest.param(gradtx.sgdw(0.01, 0.9, nesterov=True, weight_decay=0.05),
                 P(ref_sgdw, lr=0.01, momentum=0.9, nesterov=True, wd=0.05),
                 id="sgdw-nesterov"),
    # Adagrad
    pytest.param(gradtx.adagrad(0.1),
                 P(ref_adagrad, lr=0.1, G0=0.1, eps=1e-7, eps_in_sqrt=True),
                 id="adagrad-optax-default"),
    pytest.param(gradtx.adagrad(0.1, initial_accumulator_value=0.0,
                                eps=0.0),
                 P(ref_adagrad, lr=0.1, G0=0.0, eps=0.0, eps_in_sqrt=True),
                 id="adagrad-zero-where-G-is-0"),
    pytest.param(gradtx.adagrad(0.1, initial_accumulator_value=0.0,
                                eps=1e-10, eps_in_sqrt=False),
                 P(ref_adagrad, lr=0.1, G0=0.0, eps=1e-10, eps_in_sqrt=False),
                 id="adagrad-paper"),
    # Adadelta
    pytest.param(gradtx.adadelta(),
                 P(ref_adadelta, lr=1.0, rho=0.9, eps=1e-6, wd=0.0),
                 id="adadelta-paper-no-lr"),
    pytest.param(gradtx.adadelta(0.5, rho=0.95, eps=1e-5),
                 P(ref_adadelta, lr=0.5, rho=0.95, eps=1e-5, wd=0.0),
                 id="adadelta-lr"),
    pytest.param(gradtx.adadelta(0.5, weight_decay=0.1),
                 P(ref_adadelta, lr=0.5, rho=0.9, eps=1e-6, wd=0.1),
                 id="adadelta-l2"),
    # RMSProp
    pytest.param(gradtx.rmsprop(0.01), P(ref_rmsprop, lr=0.01, **RMS0),
                 id="rmsprop"),
    pytest.param(gradtx.rmsprop(0.01, centered=True),
                 P(ref_rmsprop, lr=0.01, **{**RMS0, "centered": True}),
                 id="rmsprop-centered"),
    pytest.param(gradtx.rmsprop(0.01, momentum=0.9),
                 P(ref_rmsprop, lr=0.01, **{**RMS0, "momentum": 0.9}),
                 id="rmsprop-momentum"),
    pytest.param(gradtx.rmsprop(0.01, centered=True, momentum=0.9,
                                nesterov=True),
                 P(ref_rmsprop, lr=0.01, **{**RMS0, "centered": True,
                                            "momentum": 0.9,
                                            "nesterov": True}),
                 id="rmsprop-centered-nesterov"),
    pytest.param(gradtx.rmsprop(0.01, decay=0.99, eps=1e-6,
                                eps_in_sqrt=False, bias_correction=True),
                 P(ref_rmsprop, lr=0.01, **{**RMS0, "decay": 0.99,
                                            "eps": 1e-6,
                                            "eps_in_sqrt": False,
                                            "bias_correction": True}),
                 id="rmsprop-eps-outside-bias-corrected"),
    # Rprop
    pytest.param(gradtx.rprop(0.01), P(ref_rprop, lr=0.01, **RPROP0),
                 id="rprop"),
    pytest.param(gradtx.rprop(0.01, eta_minus=0.4, eta_plus=1.5,
                              min_step_size=2e-3, max_step_size=0.03),
                 P(ref_rprop, lr=0.01, eta_minus=0.4, eta_plus=1.5,
                   min_step=2e-3, max_step=0.03),
                 id="rprop-clipped"),
    # Adam family
    pytest.param(gradtx.adam(0.05), P(ref_adam, lr=0.05, **ADAM0),
                 id="adam"),
    pytest.param(gradtx.adam(0.05, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-6),
                 P(ref_adam, lr=0.05, **{**ADAM0, "b1": 0.8, "b2": 0.99,
                                         "eps": 1e-6, "eps_root": 1e-6}),
                 id="adam-eps-root"),
    pytest.param(gradtx.adamw(0.05), P(ref_adam, lr=0.05,
                                       **{**ADAM0, "wd": 1e-4}),
                 id="adamw-default-decay"),
    pytest.param(gradtx.adamw(0.05, weight_decay=0.05),
                 P(ref_adam, lr=0.05, **{**ADAM0, "wd": 0.05}),
                 id="adamw"),
    pytest.param(gradtx.adamax(0.02),
                 P(ref_adamax, lr=0.02, b1=0.9, b2=0.999, eps=1e-8),
                 id="adamax"),
    pytest.param(gradtx.nadam(0.05),
                 P(ref_adam, lr=0.05, **{**ADAM0, "nadam": True}),
                 id="nadam"),
    pytest.param(gradtx.nadam(0.05, b1=0.8, eps_root=1e-6),
                 P(ref_adam, lr=0.05, **{**ADAM0, "nadam": True, "b1": 0.8,
                                         "eps_root": 1e-6}),
                 id="nadam-eps-root"),
    pytest.param(gradtx.nadamw(0.05, weight_decay=0.05),
                 P(ref_adam, lr=0.05, **{**ADAM0, "nadam": True,
                                         "wd": 0.05}),
                 id="nadamw"),
]


@pytest.fixture(scope="module")
def inputs():
  return make_params(), make_grads()


BY_ID = {case.id: case.values for case in CASES}


@functools.cache
def library_run(case_id):
  """``run_library`` of the optimizer of case ``case_id`` on the inputs,
  shared by its test and the mutant tests that reuse its optimizer."""
  return run_library(BY_ID[case_id][0], make_params(), make_grads())


@pytest.mark.parametrize("case_id", BY_ID)
def test_matches_paper_reference(case_id, inputs):
  params0, grads = inputs
  assert_same_trajectory(library_run(case_id),
                         run_reference(BY_ID[case_id][1], params0, grads))


def test_adamw_mask_decays_only_selected_leaves(inputs):
  params0, grads = inputs
  tx = gradtx.adamw(0.05, weight_decay=0.05,
                    mask=lambda p: {k: k != "b" for k in p})
  decayed = P(ref_adam, lr=0.05, **{**ADAM0, "wd": 0.05})
  plain = P(ref_adam, lr=0.05, **ADAM0)
  ref = {k: (plain if k == "b" else decayed)(params0[k],
                                             [g[k] for g in grads])
         for k in params0}
  expected = [({k: ref[k][t][0] for k in ref}, {k: ref[k][t][1] for k in ref})
              for t in range(STEPS)]
  assert_same_trajectory(run_library(tx, params0, grads), expected)


# --------------------------------------------------------------------------
# Mutants: the harness must reject each of these plausible bugs.


def mutant_adam_bias_off_by_one(theta, grads, *, lr):
  # Bias correction with t + 1 instead of t.
  b1, b2, eps = 0.9, 0.999, 1e-8
  m, v, out = np.zeros_like(theta), np.zeros_like(theta), []
  for t, g in enumerate(grads, start=2):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    d = -lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    theta = theta + d
    out.append((theta, d))
  return out


def mutant_nadam_no_lookahead_power(theta, grads, *, lr):
  # Nadam with 1 - b1^t in the look-ahead term instead of 1 - b1^(t+1).
  b1, b2, eps = 0.9, 0.999, 1e-8
  m, v, out = np.zeros_like(theta), np.zeros_like(theta), []
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    mbar = b1 * m / (1 - b1 ** t) + (1 - b1) * g / (1 - b1 ** t)
    d = -lr * mbar / (np.sqrt(v / (1 - b2 ** t)) + eps)
    theta = theta + d
    out.append((theta, d))
  return out


def mutant_lagged(ref):
  # optax 0.2.8's Rprop: step t applies the update computed at step t - 1.
  def run(theta, grads, **kw):
    deltas = [np.zeros_like(theta)] + [d for _, d in ref(theta, grads, **kw)]
    thetas = theta + np.cumsum(deltas[:len(grads)], axis=0)
    return list(zip(thetas, deltas[:len(grads)]))
  return run


def mutant_ascent(ref):
  # optax 0.2.8's adadelta(learning_rate=None): the step has the wrong sign.
  def run(theta, grads, **kw):
    deltas = [-d for _, d in ref(theta, grads, **kw)]
    return list(zip(theta + np.cumsum(deltas, axis=0), deltas))
  return run


def mutant_sgdw_coupled(theta, grads, *, lr):
  # SGD with L2: the decay goes through the momentum buffer.
  v, out = np.zeros_like(theta), []
  for g in grads:
    v = 0.9 * v + g + 0.05 * theta
    d = -lr * v
    theta = theta + d
    out.append((theta, d))
  return out


# (the case whose optimizer the mutant imitates, mutant)
MUTANTS = [
    pytest.param("adam", P(mutant_adam_bias_off_by_one, lr=0.05),
                 id="adam-bias-correction-off-by-one"),
    pytest.param("adam",
                 P(ref_adam, lr=0.05, **{**ADAM0, "eps": 0.0,
                                         "eps_root": 1e-8}),
                 id="adam-eps-inside-root"),
    pytest.param("nadam",
                 P(mutant_nadam_no_lookahead_power, lr=0.05),
                 id="nadam-lookahead-power"),
    pytest.param("nadam", P(ref_adam, lr=0.05, **ADAM0),
                 id="nadam-is-not-adam"),
    pytest.param("rprop",
                 P(mutant_lagged(ref_rprop), lr=0.01, **RPROP0),
                 id="rprop-lagged-like-optax"),
    pytest.param("adadelta-paper-no-lr",
                 P(mutant_ascent(ref_adadelta), lr=1.0, rho=0.9, eps=1e-6,
                   wd=0.0),
                 id="adadelta-ascent-like-optax"),
    pytest.param("adagrad-optax-default",
                 P(ref_adagrad, lr=0.1, G0=0.0, eps=1e-7, eps_in_sqrt=True),
                 id="adagrad-wrong-G0"),
    pytest.param("sgdw-momentum",
                 P(mutant_sgdw_coupled, lr=0.01), id="sgdw-coupled-decay"),
    pytest.param("adamw",
                 P(ref_adam, lr=0.05, **{**ADAM0, "wd": 0.05 / 0.05}),
                 id="adamw-decay-not-scaled-by-lr"),
    pytest.param("adamw-default-decay",
                 P(ref_adam, lr=0.05, **ADAM0), id="adamw-default-decay-0"),
    pytest.param("rmsprop-momentum",
                 P(ref_rmsprop, lr=0.01, **{**RMS0, "momentum": 0.9,
                                            "nesterov": True}),
                 id="rmsprop-heavy-ball-vs-nesterov"),
]


@pytest.mark.parametrize("case_id, mutant", MUTANTS)
def test_harness_catches_mutants(case_id, mutant, inputs):
  params0, grads = inputs
  with pytest.raises(AssertionError):
    assert_same_trajectory(library_run(case_id),
                           run_reference(mutant, params0, grads))


# --------------------------------------------------------------------------
# Adadelta must descend (optax 0.2.8's learning_rate=None form ascends).


@pytest.mark.parametrize("lr", [None, 0.5])
def test_adadelta_descends_quadratic(lr):
  curv = 10.0 ** np.linspace(-1, 1, 8)
  target = np.linspace(-1.0, 1.0, 8)
  loss = lambda th: 0.5 * np.sum(curv * (th - target) ** 2)  # noqa: E731
  grad = lambda th: curv * (th - target)  # noqa: E731
  theta = target + 3.0
  tx = gradtx.adadelta(lr)
  state = tx.init(jnp.asarray(theta))
  losses = [loss(theta)]
  for _ in range(300):
    g = grad(theta)
    u, state = tx.update(jnp.asarray(g), state, jnp.asarray(theta))
    u = np.asarray(u)
    assert np.dot(u, g) < 0, "adadelta step is not a descent direction"
    theta = theta + u
    losses.append(loss(theta))
  losses = np.asarray(losses)
  # The early steps are small (about sqrt(eps) / rms(g) each, the paper's
  # slow start) but every one lowers the loss, and it keeps going down.
  assert np.all(np.diff(losses) < 0)
  assert losses[-1] < 0.7 * losses[0], losses[-1] / losses[0]


# --------------------------------------------------------------------------
# Noisy SGD (Neelakantan et al., "Adding gradient noise improves learning for
# very deep networks", 2015): theta_t = theta_{t-1} - lr (g_t + N(0, s_t^2)),
# s_t^2 = eta / (1 + t)^gamma for t = 0, 1, ...


def ref_noisy_sgd(params0: dict, grads: list, *, lr, eta, gamma, key,
                  first_t=0) -> list:
  """The draws: each step splits the key into (next key, sample key), then
  splits the sample key into one key per leaf, in jax's (sorted) leaf order.
  ``first_t`` is the paper's t at the first step (0); only the mutant test
  changes it."""
  names = sorted(params0)
  theta = dict(params0)
  out = []
  for t, g in enumerate(grads, start=first_t):
    key, sample_key = jax.random.split(key)
    leaf_keys = jax.random.split(sample_key, len(names))
    std = np.sqrt(eta / (1 + t) ** gamma)
    deltas = {}
    for k, lk in zip(names, leaf_keys):
      z = np.asarray(jax.random.normal(lk, g[k].shape, jnp.float64))
      deltas[k] = -lr * (g[k] + std * z)
      theta[k] = theta[k] + deltas[k]
    out.append((dict(theta), deltas))
  return out


@pytest.mark.parametrize("eta, gamma", [(0.01, 0.55), (0.3, 1.0)])
def test_noisy_sgd_matches_reference(eta, gamma, inputs):
  params0, grads = inputs
  tx = gradtx.noisy_sgd(0.01, eta=eta, gamma=gamma, key=jax.random.key(7))
  ref = ref_noisy_sgd(params0, grads, lr=0.01, eta=eta, gamma=gamma,
                      key=jax.random.key(7))
  assert_same_trajectory(run_library(tx, params0, grads), ref)


def test_noisy_sgd_reference_is_sensitive(inputs):
  # A variance schedule one step late (t = 1, 2, ... in eta / (1 + t)^gamma)
  # and a different key must both be caught.
  params0, grads = inputs
  lib = run_library(gradtx.noisy_sgd(0.01, eta=0.3, gamma=0.55,
                                     key=jax.random.key(7)), params0, grads)
  for key, first_t in [(jax.random.key(8), 0), (jax.random.key(7), 1)]:
    with pytest.raises(AssertionError):
      assert_same_trajectory(lib, ref_noisy_sgd(
          params0, grads, lr=0.01, eta=0.3, gamma=0.55, key=key,
          first_t=first_t))


def test_noisy_sgd_noise_std_anneals():
  """On a zero gradient the update is -lr * noise; its sample standard
  deviation over 10,000 entries must follow sqrt(eta / (1 + t)^gamma)."""
  eta, gamma, steps = 0.5, 0.55, 100
  zeros = {"w": jnp.zeros((100, 100))}
  tx = gradtx.noisy_sgd(1.0, eta=eta, gamma=gamma, key=jax.random.key(3))
  state = tx.init(zeros)
  n = zeros["w"].size
  stds, prev = [], None
  for t in range(steps):
    u, state = tx.update(zeros, state, zeros)
    x = -np.asarray(u["w"]).ravel()
    expected = np.sqrt(eta / (1 + t) ** gamma)
    assert abs(x.mean()) < 5 * expected / np.sqrt(n)
    if prev is not None:  # fresh draws every step
      assert abs(np.corrcoef(prev, x)[0, 1]) < 5 / np.sqrt(n)
    prev = x
    stds.append(x.std())
  stds = np.asarray(stds)
  expected = np.sqrt(eta / (1 + np.arange(steps)) ** gamma)
  # Sample std of n normals has relative sd ~ 1/sqrt(2n) = 0.7%.
  np.testing.assert_allclose(stds, expected, rtol=0.04)
  slope, intercept = np.polyfit(np.log1p(np.arange(steps)), np.log(stds ** 2),
                                1)
  assert abs(slope + gamma) < 0.02, slope
  assert abs(np.exp(intercept) - eta) < 0.05 * eta, np.exp(intercept)
