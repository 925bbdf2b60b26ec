"""amsgrad_max, rectify and bound_lr, and the optimizers built from them.

References: optax 0.2.8 (amsgrad, radam; relative 1e-9 in float64 over 25
steps), the AdaBound authors' code (adabound, amsbound; relative 1e-6 over
200 steps, transcribed below in float64 NumPy, run in one jitted program),
and float64 transcriptions of the papers' algorithms (25 steps). The eager
runs take 25 steps: RAdam's switch to the rectified update comes at step 6,
and a wrong formula shows from the first steps.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import common
from common import (PARAMS, assert_close, assert_trajectories_close,
                    grad_sequence, jit_trajectories)

LR = 1e-2
GRADS = common.GRADS[:25]


def trajectory(tx, grads=GRADS, params=PARAMS):
  return common.trajectory(tx, grads, params)


def _leaves(tree):
  return [np.asarray(x, dtype=np.float64) for x in jax.tree.leaves(tree)]


def _numpy_run(step_fn, grads, params, steps=None):
  """Runs a per-leaf NumPy reference: step_fn(p, g, state, t) -> p."""
  ps = _leaves(params)
  states = [dict() for _ in ps]
  out = []
  for t, g in enumerate(grads[:steps], start=1):
    ps = [step_fn(p, gi, st, t) for p, gi, st in zip(ps, _leaves(g), states)]
    out.append([p.copy() for p in ps])
  return out


def _params_only(traj):
  return [_leaves(p) for _, p in traj]


def _assert_runs_close(ours, ref, rtol):
  for step, (a, b) in enumerate(zip(ours, ref)):
    for x, y in zip(a, b):
      np.testing.assert_allclose(x, y, rtol=rtol, atol=0,
                                 err_msg=f"step {step + 1}")


# --- optax equality ---------------------------------------------------------

AMSGRAD_OPTS = [{}, {"b1": 0.5, "b2": 0.95, "eps_root": 1e-8},
                {"bias_correction_mu": False},
                {"bias_correction_nu": False},
                {"bias_correction_mu": False, "bias_correction_nu": False}]


def _amsgrad_txs(kw):
  prim = {k: v for k, v in kw.items() if k.startswith("bias")}
  adam = {k: v for k, v in kw.items() if not k.startswith("bias")}
  chained = gradtx.chain(gradtx.scale_by_adam(**adam),
                         gradtx.amsgrad_max(**prim),
                         gradtx.scale_by_learning_rate(LR))
  return chained, gradtx.amsgrad(LR, **kw), optax.amsgrad(LR, **kw)


RADAM_OPTS = [{}, {"b1": 0.8, "b2": 0.99, "eps": 1e-6}, {"threshold": 4.5},
              {"nesterov": True}, {"eps_root": 1e-9, "threshold": 6.0}]


def _radam_txs(kw):
  adam = {k: v for k, v in kw.items() if k != "threshold"}
  chained = gradtx.chain(gradtx.scale_by_adam(**adam),
                         gradtx.rectify(kw.get("threshold", 5.0)),
                         gradtx.scale_by_learning_rate(LR))
  return chained, gradtx.radam(LR, **kw), optax.radam(LR, **kw)


@pytest.mark.parametrize("kw", AMSGRAD_OPTS, ids=str)
def test_amsgrad_chain_and_alias_match_optax(kw):
  chained, alias, ref = _amsgrad_txs(kw)
  ref = trajectory(ref)
  for tx in (chained, alias):
    assert_trajectories_close(trajectory(tx), ref)


@pytest.mark.parametrize("kw", RADAM_OPTS, ids=str)
def test_radam_chain_and_alias_match_optax(kw):
  chained, alias, ref = _radam_txs(kw)
  ref = trajectory(ref)
  for tx in (chained, alias):
    assert_trajectories_close(trajectory(tx), ref)


def test_radam_has_an_unadapted_phase_then_switches():
  """With b2=0.999, rho_t first reaches 5 at t = 6: steps 1-5 are momentum."""
  tx = gradtx.radam(1.0)
  state = tx.init(PARAMS)
  for t, g in enumerate(GRADS[:8], start=1):
    u, state = tx.update(g, state)
    m_hat = state[0].mu["w"] / (1 - 0.9 ** t)
    if t <= 5:
      np.testing.assert_allclose(u["w"], -m_hat, rtol=1e-12)
    else:
      assert not np.allclose(u["w"], -m_hat, rtol=1e-3)


# --- the AdaBound authors' code, transcribed --------------------------------


def adabound_reference(lr_fn, final_lr=0.1, gamma=1e-3, b1=0.9, b2=0.999,
                       eps=1e-8, weight_decay=0.0, amsbound=False):
  """Luolc/AdaBound ``AdaBound.step`` for one tensor, in float64 NumPy.

  ``lr_fn(t - 1)`` plays ``group['lr']`` at step t (a scheduler stepping
  before each update); ``lr_fn(0)`` is ``base_lr``.
  """
  base_lr = lr_fn(0)

  def step(p, grad, s, t):
    if not s:
      s.update(exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p),
               max_exp_avg_sq=np.zeros_like(p))
    if weight_decay != 0:
      grad = grad + weight_decay * p
    s["exp_avg"] = b1 * s["exp_avg"] + (1 - b1) * grad
    s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1 - b2) * grad * grad
    if amsbound:
      s["max_exp_avg_sq"] = np.maximum(s["max_exp_avg_sq"], s["exp_avg_sq"])
      denom = np.sqrt(s["max_exp_avg_sq"]) + eps
    else:
      denom = np.sqrt(s["exp_avg_sq"]) + eps
    lr = lr_fn(t - 1)
    step_size = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    final = final_lr * lr / base_lr
    lower = final * (1 - 1 / (gamma * t + 1))
    upper = final * (1 + 1 / (gamma * t))
    return p - np.clip(step_size / denom, lower, upper) * s["exp_avg"]

  return step


def step_decay(count):
  """PyTorch StepLR(step_size=50, gamma=0.1) on 1e-3, as a gradtx schedule."""
  return 1e-3 * 0.1 ** (count // 50)


LONG_GRADS = grad_sequence(seed=1, steps=200)
BOUND_CASES = [
    ("constant", 1e-3, {}),
    ("constant_fast_bounds", 1e-2, {"gamma": 0.05, "final_lr": 0.03}),
    ("step_decay", step_decay, {}),
    ("weight_decay", 1e-3, {"weight_decay": 5e-3}),
]


@functools.cache
def _adabound_runs():
  """{(case index, amsbound): params after each step}, one jitted program."""
  keys = [(i, ams) for i in range(len(BOUND_CASES)) for ams in (False, True)]
  txs = [(gradtx.amsbound if ams else gradtx.adabound)(BOUND_CASES[i][1],
                                                        **BOUND_CASES[i][2])
         for i, ams in keys]
  runs = jit_trajectories(txs, LONG_GRADS, PARAMS)
  return {key: _params_only(run) for key, run in zip(keys, runs)}


@pytest.mark.parametrize("amsbound", [False, True], ids=["adabound",
                                                         "amsbound"])
@pytest.mark.parametrize("i", range(len(BOUND_CASES)),
                         ids=[c[0] for c in BOUND_CASES])
def test_adabound_matches_authors_code(i, amsbound):
  _, lr, kw = BOUND_CASES[i]
  lr_fn = lr if callable(lr) else (lambda c, lr=lr: lr)
  ours = _adabound_runs()[(i, amsbound)]
  ref = _numpy_run(adabound_reference(lr_fn, amsbound=amsbound, **kw),
                   LONG_GRADS, PARAMS)
  assert len(ours) == len(ref) == 200
  _assert_runs_close(ours, ref, rtol=1e-6)


def test_adabound_bounds_bite():
  """The clip is active: with tight bounds the step is final_lr * m_t."""
  tx = gradtx.adabound(1e-3, final_lr=0.05, gamma=10.0)
  state = tx.init(PARAMS)
  for t, g in enumerate(GRADS[:3], start=1):
    u, state = tx.update(g, state, PARAMS)
  m = state[1].mu["w"]
  lower, upper = 0.05 * (1 - 1 / (10.0 * 3 + 1)), 0.05 * (1 + 1 / (10.0 * 3))
  ratio = np.asarray(-u["w"] / m)
  assert np.all((ratio >= lower - 1e-15) & (ratio <= upper + 1e-15))
  assert np.any(np.isclose(ratio, lower)) or np.any(np.isclose(ratio, upper))


# --- float64 transcriptions of the papers -----------------------------------


def amsgrad_paper(lr, b1=0.9, b2=0.999, eps=1e-8):
  """Reddi et al. (2018), Algorithm 2 (no bias correction), eps added."""

  def step(p, g, s, t):
    if not s:
      s.update(m=np.zeros_like(p), v=np.zeros_like(p), v_hat=np.zeros_like(p))
    s["m"] = b1 * s["m"] + (1 - b1) * g
    s["v"] = b2 * s["v"] + (1 - b2) * g * g
    s["v_hat"] = np.maximum(s["v_hat"], s["v"])
    return p - lr * s["m"] / (np.sqrt(s["v_hat"]) + eps)

  return step


def radam_paper(lr, b1=0.9, b2=0.999):
  """Liu et al. (2020), Algorithm 2: no eps; adaptive when rho_t > 4."""
  rho_inf = 2 / (1 - b2) - 1

  def step(p, g, s, t):
    if not s:
      s.update(m=np.zeros_like(p), v=np.zeros_like(p))
    s["m"] = b1 * s["m"] + (1 - b1) * g
    s["v"] = b2 * s["v"] + (1 - b2) * g * g
    m_hat = s["m"] / (1 - b1 ** t)
    rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if rho > 4:
      l = np.sqrt((1 - b2 ** t) / s["v"])
      r = np.sqrt((rho - 4) * (rho - 2) * rho_inf
                  / ((rho_inf - 4) * (rho_inf - 2) * rho))
      return p - lr * r * m_hat * l
    return p - lr * m_hat

  return step


def adam_bias_corrected_amsgrad(lr, b1=0.9, b2=0.999, eps=1e-8):
  """The form gradtx.amsgrad uses by default: max of the corrected v_hat."""

  def step(p, g, s, t):
    if not s:
      s.update(m=np.zeros_like(p), v=np.zeros_like(p), vmax=np.zeros_like(p))
    s["m"] = b1 * s["m"] + (1 - b1) * g
    s["v"] = b2 * s["v"] + (1 - b2) * g * g
    s["vmax"] = np.maximum(s["vmax"], s["v"] / (1 - b2 ** t))
    return p - lr * (s["m"] / (1 - b1 ** t)) / (np.sqrt(s["vmax"]) + eps)

  return step


PAPER_CASES = [
    ("amsgrad_reddi", lambda: gradtx.amsgrad(
        LR, bias_correction_mu=False, bias_correction_nu=False),
     amsgrad_paper(LR)),
    ("amsgrad_corrected", lambda: gradtx.amsgrad(LR),
     adam_bias_corrected_amsgrad(LR)),
    ("radam_liu", lambda: gradtx.radam(LR, eps=0.0, threshold=4.0),
     radam_paper(LR)),
    ("adabound_luo", lambda: gradtx.adabound(LR, final_lr=0.05),
     adabound_reference(lambda c: LR, final_lr=0.05)),
    ("amsbound_luo", lambda: gradtx.amsbound(LR, final_lr=0.05),
     adabound_reference(lambda c: LR, final_lr=0.05, amsbound=True)),
]


@pytest.mark.parametrize("make,ref", [c[1:] for c in PAPER_CASES],
                         ids=[c[0] for c in PAPER_CASES])
def test_matches_paper_transcription(make, ref):
  _assert_runs_close(_params_only(trajectory(make())),
                     _numpy_run(ref, GRADS, PARAMS), rtol=1e-9)


# --- composition ------------------------------------------------------------


def _per_param_buffers(state, params):
  shapes = {x.shape for x in jax.tree.leaves(params)}
  n_leaves = len(jax.tree.leaves(params))
  big = [x for x in jax.tree.leaves(state) if x.shape in shapes]
  return len(big) / n_leaves


def test_hybrid_chain_runs_descends_and_holds_three_buffers():
  tx = gradtx.chain(gradtx.scale_by_adam(), gradtx.amsgrad_max(),
                    gradtx.rectify(), gradtx.bound_lr(0.05, final_lr=0.05))
  params = {"x": jnp.array([1.0, -2.0, 0.5]), "y": jnp.array([[3.0, 1.0]])}

  def loss(p):
    return jnp.sum(jnp.array([1.0, 10.0, 100.0]) * p["x"] ** 2) + jnp.sum(
        p["y"] ** 2)

  state = tx.init(params)
  assert _per_param_buffers(state, params) == 3
  start = float(loss(params))
  step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p))
  for _ in range(300):
    u, state = step(params, state)
    params = gradtx.apply_updates(params, u)
  assert float(loss(params)) < 1e-3 * start
  assert _per_param_buffers(state, params) == 3


def test_amsgrad_keeps_three_buffers_like_optax():
  params = {"w": jnp.ones((3, 2))}
  assert _per_param_buffers(gradtx.amsgrad(LR).init(params), params) == 3
  assert _per_param_buffers(optax.amsgrad(LR).init(params), params) == 3


def test_modifiers_compose_in_sequence_with_other_transforms():
  """A decoupled decay and an optax transform may follow the adaptive group."""
  tx = gradtx.chain(gradtx.scale_by_adam(), gradtx.amsgrad_max(),
                    gradtx.rectify(), gradtx.add_decayed_weights(1e-2),
                    optax.scale(-LR))
  ours = trajectory(tx, GRADS[:3])
  # Steps 1-3 are RAdam's un-adapted phase: the update is m_hat + wd * p.
  theirs = trajectory(optax.chain(optax.scale_by_radam(),
                                  optax.add_decayed_weights(1e-2),
                                  optax.scale(-LR)), GRADS[:3])
  for a, b in zip(ours, theirs):
    assert_close(a, b)


def test_chain_that_starts_with_a_modifier_needs_moments():
  # Built without error: it may be the member right after scale_by_adam.
  tx = gradtx.chain(gradtx.amsgrad_max(), gradtx.scale(-LR))
  with pytest.raises(TypeError, match=r"chain: amsgrad_max \(#0\) reads the "
                     r"moment estimates .* but it comes first"):
    tx.update(GRADS[0], tx.init(PARAMS))


@pytest.mark.parametrize("build,match", [
    (lambda: gradtx.chain(gradtx.scale_by_rms(), gradtx.rectify()),
     "does not provide them"),
    (lambda: gradtx.chain(gradtx.scale_by_adam(), gradtx.bound_lr(1e-3),
                          gradtx.rectify()), "does not provide them"),
    (lambda: gradtx.chain(gradtx.scale_by_adam(), optax.identity(),
                          gradtx.amsgrad_max()), "does not provide them"),
])
def test_misplaced_modifier_is_refused_when_the_chain_is_built(build, match):
  with pytest.raises(ValueError, match=match):
    build()


def test_rectify_refuses_a_threshold_where_r_is_undefined():
  with pytest.raises(ValueError, match="rectify: threshold"):
    gradtx.rectify(3.0)
  with pytest.raises(ValueError, match="rectify: threshold"):
    gradtx.radam(1e-3, threshold=2.0)


def test_modifier_outside_a_gradtx_chain_says_where_it_belongs():
  tx = optax.chain(gradtx.scale_by_adam(), gradtx.rectify())
  state = tx.init(PARAMS)
  with pytest.raises(TypeError, match="optax.chain cannot carry the hand-off; "
                     "inside it, pass that whole gradtx.chain as one member"):
    tx.update(GRADS[0], state)
