"""Second order: Newton's quadratic convergence and its modification where
the Hessian is indefinite, BFGS, Newton-CG, Levenberg-Marquardt and the
``minimize`` / ``least_squares`` drivers (their evaluation counts), and the
errors that teach. The comparison with scipy is in
test_second_order_scipy.py."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def logistic(w):
  """Strictly convex: L2-regularised logistic regression on fixed data."""
  x = jnp.asarray(np.random.default_rng(0).normal(size=(20, 3)))
  y = jnp.where(x @ jnp.array([1.0, -2.0, 0.5]) > 0, 1.0, -1.0)
  return jnp.mean(jnp.logaddexp(0.0, -y * (x @ w))) + 0.05 * jnp.sum(w * w)


def saddle(w):
  """x^2 - y^2 + y^4 / 4: a saddle at 0, minima at (0, +-sqrt 2)."""
  return w[0] ** 2 - w[1] ** 2 + w[1] ** 4 / 4


def _trajectory(tx, f, w, steps):
  """The params after each of ``steps`` updates (``w`` first) and the
  last state; traceable (a ``lax.scan``)."""
  def step(carry, _):
    w, state = carry
    value, grad = jax.value_and_grad(f)(w)
    updates, state = tx.update(grad, state, w, value=value, grad=grad,
                               value_fn=f)
    w = gradtx.apply_updates(w, updates)
    return (w, state), w

  (_, state), ws = jax.lax.scan(step, (w, tx.init(w)), length=steps)
  return jnp.concatenate([w[None], ws]), state


def _tree_objective(p):
  a = jnp.arange(1.0, 7.0).reshape(2, 3)
  return jnp.sum(a * (p["w"] - 1.0) ** 2) + jnp.sum((p["b"] + 2.0) ** 4)


@functools.cache
def newton_solves():
  """The Newton and Newton-CG solves and steps the tests below check, in
  one compiled program (a solve costs about a second to compile on its
  own, much less next to others of its kind)."""
  @jax.jit
  def run():
    out = {}
    out["logistic_min"] = gradtx.minimize(logistic, jnp.zeros(3),
                                          gradtx.newton(), gtol=1e-14).params
    out["logistic_path"], _ = _trajectory(
        gradtx.newton(), logistic, jnp.array([2.0, 2.0, -2.0]), 6)
    w0 = jnp.array([1.0, 0.1])
    h = jax.hessian(saddle)(w0)
    out["saddle_hessian_eigenvalues"] = jnp.linalg.eigvalsh(h)
    out["saddle_plain_newton"] = w0 - jnp.linalg.solve(h, jax.grad(saddle)(w0))
    for name, tx in [("newton", gradtx.newton()),
                     ("newton_cg", gradtx.newton_cg())]:
      out[f"saddle_{name}_path"], out[f"saddle_{name}_state"] = _trajectory(
          tx, saddle, w0, 1)
      out[f"saddle_{name}"] = gradtx.minimize(saddle, w0, tx, gtol=1e-10)
    out["tree_newton_cg"] = gradtx.minimize(
        _tree_objective, {"w": jnp.zeros((2, 3)), "b": jnp.zeros(2)},
        gradtx.newton_cg(), gtol=1e-9)
    return out

  return run()


def test_newton_converges_quadratically_on_a_strictly_convex_problem():
  w_star = newton_solves()["logistic_min"]
  ws = newton_solves()["logistic_path"]
  errors = [float(jnp.linalg.norm(w - w_star)) for w in ws]
  # The error squares at each step: e_{k+1} <= C e_k^2 with one C, until
  # it reaches rounding.
  pairs = [(a, b) for a, b in zip(errors, errors[1:]) if a > 1e-5]
  assert len(pairs) >= 3, errors
  ratios = [b / a ** 2 for a, b in pairs]
  assert max(ratios) < 2.0, (errors, ratios)
  # Quadratic, not linear: the error falls by more each step.
  falls = [b / a for a, b in pairs]
  assert all(x > y for x, y in zip(falls, falls[1:])), falls
  assert errors[-1] < 1e-9, errors


def test_newton_descends_where_the_hessian_is_indefinite():
  runs = newton_solves()
  w0 = jnp.array([1.0, 0.1])
  assert float(runs["saddle_hessian_eigenvalues"][0]) < 0
  # Plain Newton, H^-1 g, heads for the saddle; the modified step descends.
  assert float(jnp.linalg.norm(runs["saddle_plain_newton"])) < 0.01
  ws, state = runs["saddle_newton_path"], runs["saddle_newton_state"]
  assert float(state[0].min_eigenvalue) < 0
  assert float(saddle(ws[1])) < float(saddle(w0))
  result = runs["saddle_newton"]
  np.testing.assert_allclose(np.asarray(result.params), [0.0, np.sqrt(2)],
                             atol=1e-10)
  assert float(result.value) == pytest.approx(-1.0, abs=1e-14)


def test_newton_damping_shortens_the_step():
  w = jnp.array([1.0, 1.0])
  f = lambda w: w[0] ** 2 + 10 * w[1] ** 2

  @jax.jit
  def steps(w):
    g = jax.grad(f)(w)
    return [gradtx.scale_by_newton(damping=d).update(
        g, gradtx.scale_by_newton().init(w), w, value_fn=f)[0]
            for d in (0.0, 2.0)]

  undamped, damped = steps(w)
  np.testing.assert_allclose(np.asarray(undamped), [1.0, 1.0])
  np.testing.assert_allclose(np.asarray(damped), [2 / 4, 20 / 22])


def test_newton_cg_follows_negative_curvature_downhill():
  runs = newton_solves()
  w0 = jnp.array([1.0, 0.1])
  ws = runs["saddle_newton_cg_path"]
  assert float(saddle(ws[1])) < float(saddle(w0))
  result = runs["saddle_newton_cg"]
  np.testing.assert_allclose(np.asarray(result.params), [0.0, np.sqrt(2)],
                             atol=1e-9)


def test_newton_cg_is_matrix_free_on_a_params_tree():
  result = newton_solves()["tree_newton_cg"]
  np.testing.assert_allclose(np.asarray(result.params["w"]), 1.0, atol=1e-9)
  np.testing.assert_allclose(np.asarray(result.params["b"]), -2.0,
                             atol=1e-3)
  assert int(result.num_hvp_evals) > 0
  assert int(result.num_hess_evals) == 0


QUADRATIC = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])


def exponential_fit(w):
  t = jnp.linspace(0.0, 2.0, 8)
  return w["a"] * jnp.exp(w["k"] * t) - 3.0 * jnp.exp(-0.5 * t)


def _counted(f, calls):
  """``f``, appending to ``calls`` each time it runs."""
  def counted(w):
    jax.debug.callback(lambda: calls.append(1))
    return f(w)
  return counted


def _normal_equations_residuals(w):
  t = jnp.linspace(0.0, 1.0, 6)
  return w[0] * jnp.exp(w[1] * t) + w[2] * t - jnp.cos(t)


def _diverging_residuals(w):
  """(w^2 - 1, 0.1 w): from w = 0.05 the full Gauss-Newton step lands near
  w = 10."""
  return jnp.stack([w[0] ** 2 - 1.0, 0.1 * w[0]])


@functools.cache
def quasi_newton_and_least_squares_solves():
  """The BFGS, Levenberg-Marquardt and Gauss-Newton solves and steps the
  tests below check, in one compiled program; ``calls`` counts the
  evaluations of each counted objective."""
  calls = {"bfgs": [], "levenberg_marquardt": [], "dense": [], "cg": []}

  @jax.jit
  def run():
    out = {}
    f = lambda w: 0.5 * w @ (QUADRATIC @ w) - jnp.sum(w)
    out["bfgs_quadratic"] = gradtx.minimize(f, jnp.zeros(3), gradtx.bfgs(),
                                            gtol=1e-12)
    quartic = lambda w: jnp.sum((w - 1.0) ** 4 + (w - 1.0) ** 2)
    out["bfgs_counted"] = gradtx.minimize(
        _counted(quartic, calls["bfgs"]), jnp.zeros(3), gradtx.bfgs(),
        gtol=1e-10)
    w0 = {"a": jnp.asarray(1.0), "k": jnp.asarray(0.3)}
    out["levenberg_marquardt"] = gradtx.least_squares(
        _counted(exponential_fit, calls["levenberg_marquardt"]), w0,
        gradtx.levenberg_marquardt())
    for scale in (1.0, 1000.0):
      r = lambda w, scale=scale: exponential_fit({"a": w["a"] * scale,
                                                  "k": w["k"]})
      out[f"levenberg_marquardt_scale_{scale:g}"] = gradtx.least_squares(
          r, {"a": jnp.asarray(1.0 / scale), "k": jnp.asarray(0.3)},
          gradtx.levenberg_marquardt())
    w = jnp.array([1.0, -0.3, 0.2])
    for solver in ("dense", "cg"):
      out[f"gauss_newton_{solver}"] = gradtx.least_squares(
          _counted(exponential_fit, calls[solver]), w0,
          gradtx.gauss_newton(solver=solver))
      tx = gradtx.gauss_newton(solver=solver)
      out[f"gauss_newton_{solver}_step"] = tx.update(
          w, tx.init(w), w, residual_fn=_normal_equations_residuals)
    w = jnp.array([0.05])
    tx = gradtx.gauss_newton()
    out["gauss_newton_guarded_step"] = tx.update(
        w, tx.init(w), w, residual_fn=_diverging_residuals)
    out["gauss_newton_guarded"] = gradtx.least_squares(
        _diverging_residuals, w, gradtx.gauss_newton())
    return out

  out = run()
  jax.effects_barrier()
  return out, {k: len(v) for k, v in calls.items()}


def test_bfgs_inverse_hessian_matches_the_quadratic():
  result = quasi_newton_and_least_squares_solves()[0]["bfgs_quadratic"]
  np.testing.assert_allclose(np.asarray(result.params),
                             np.linalg.solve(np.asarray(QUADRATIC),
                                             np.ones(3)),
                             atol=1e-11)
  # After the steps that explored every direction, H is A^-1 (on a
  # quadratic, BFGS with exact-enough line searches recovers it).
  h = result.state[0].inv_hessian
  np.testing.assert_allclose(np.asarray(h @ QUADRATIC), np.eye(3), atol=5e-2)


def test_minimize_counts_match_the_evaluations_made():
  out, calls = quasi_newton_and_least_squares_solves()
  result = out["bfgs_counted"]
  assert bool(result.converged)
  assert int(result.num_fun_evals) == int(result.num_grad_evals) == calls[
      "bfgs"]
  assert int(result.num_steps) < int(result.num_fun_evals)
  assert float(result.grad_norm) <= 1e-10


def test_minimize_without_a_line_search_evaluates_each_step():
  f = lambda w: jnp.sum((w - 3.0) ** 2)
  result = gradtx.minimize(f, jnp.zeros(2), gradtx.sgd(0.25), max_steps=50,
                           gtol=1e-12)
  assert bool(result.converged)
  assert int(result.num_fun_evals) == int(result.num_steps) + 1


def test_levenberg_marquardt_fits_and_counts():
  out, calls = quasi_newton_and_least_squares_solves()
  result = out["levenberg_marquardt"]
  assert bool(result.converged)
  np.testing.assert_allclose(float(result.params["a"]), 3.0, rtol=1e-9)
  np.testing.assert_allclose(float(result.params["k"]), -0.5, rtol=1e-9)
  assert float(result.value) < 1e-20
  # Each Jacobian evaluation runs the residual function once too.
  assert int(result.num_fun_evals) + int(result.num_jac_evals) == calls[
      "levenberg_marquardt"]


def test_levenberg_marquardt_is_scale_invariant():
  """Marquardt's scaling: rescaling a parameter rescales its iterates."""
  out, _ = quasi_newton_and_least_squares_solves()
  one = out["levenberg_marquardt_scale_1"]
  thousand = out["levenberg_marquardt_scale_1000"]
  assert int(one.num_fun_evals) == int(thousand.num_fun_evals)
  np.testing.assert_allclose(float(thousand.params["a"]) * 1000.0,
                             float(one.params["a"]), rtol=1e-8)


@pytest.mark.parametrize("make", [gradtx.scale_by_newton,
                                  gradtx.scale_by_newton_cg])
def test_newton_needs_the_objective(make):
  tx = make()
  w = jnp.ones(2)
  with pytest.raises(TypeError, match="update needs the objective.*value_fn"):
    tx.update(w, tx.init(w), w)


def test_levenberg_marquardt_needs_residuals():
  tx = gradtx.levenberg_marquardt()
  w = jnp.ones(2)
  with pytest.raises(TypeError, match="needs the residual function"):
    tx.update(w, tx.init(w), w)


def test_least_squares_refuses_a_scalar_optimizer():
  with pytest.raises(TypeError, match="least-squares transform"):
    gradtx.least_squares(lambda w: w, jnp.ones(2), gradtx.bfgs())


@pytest.mark.parametrize("bad,match", [
    (lambda: gradtx.scale_by_newton(damping=-1.0), "damping"),
    (lambda: gradtx.scale_by_newton_cg(forcing=1.0), "forcing"),
    (lambda: gradtx.scale_by_newton_cg(max_cg_steps=0), "max_cg_steps"),
    (lambda: gradtx.levenberg_marquardt(radius_factor=0.0), "radius_factor"),
    (lambda: gradtx.bfgs(linesearch=3), "linesearch"),
    (lambda: gradtx.minimize(3, jnp.ones(2), gradtx.bfgs()), "fun"),
])
def test_bad_arguments_say_which(bad, match):
  with pytest.raises((TypeError, ValueError), match=match):
    bad()


def test_hessian_diag_preconditioning_beats_sgd_when_ill_conditioned():
  """Curvatures 1 to 1e4 on nearly independent coordinates: SGD's rate is
  capped by the largest, the diagonal estimate rescales each."""
  a = np.logspace(0.0, 4.0, 8)
  coupling = 0.05 * np.outer(np.sqrt(a), np.sqrt(a)) * (1 - np.eye(8))
  h = np.diag(a) + coupling / 8
  f = lambda w: 0.5 * w @ (jnp.asarray(h) @ w)
  w0 = jnp.ones(8)

  def run(tx, steps=100):
    def step(carry, _):
      w, state = carry
      u, state = tx.update(jax.grad(f)(w), state, w, value_fn=f)
      return (gradtx.apply_updates(w, u), state), None

    (w, _), _ = jax.lax.scan(step, (w0, tx.init(w0)), length=steps)
    return f(w)

  sgd, diag = jax.jit(lambda: (
      run(gradtx.sgd(1.0 / float(np.linalg.eigvalsh(h)[-1]))),
      run(gradtx.chain(gradtx.scale_by_hessian_diag(key=0),
                       gradtx.scale(-0.5)))))()
  sgd, diag = float(sgd), float(diag)
  assert sgd > 1e-2, sgd          # the flat directions barely move
  assert diag < 1e-8 * sgd, (diag, sgd)


def test_natural_gradient_example_beats_adam_in_steps(capsys):
  pytest.importorskip("sklearn")
  pytest.importorskip("flax")
  import importlib.util
  import pathlib
  path = (pathlib.Path(__file__).resolve().parents[1] / "examples"
          / "natural_gradient_digits.py")
  spec = importlib.util.spec_from_file_location("natural_gradient_digits",
                                                path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  results = module.main(["--target", "0.9", "--max-steps", "200"])
  natural, adam = results["natural_gradient"][0], results["adam"][0]
  assert natural is not None and adam is not None, capsys.readouterr().out
  assert natural < adam, (natural, adam)


def test_gauss_newton_fits_and_counts_both_solvers():
  out, calls = quasi_newton_and_least_squares_solves()
  for solver in ("dense", "cg"):
    result = out[f"gauss_newton_{solver}"]
    assert bool(result.converged), solver
    np.testing.assert_allclose(float(result.params["a"]), 3.0, rtol=1e-9)
    np.testing.assert_allclose(float(result.params["k"]), -0.5, rtol=1e-9)
    # One linearisation (or Jacobian) per step runs r once, and r once
    # per line-search trial.
    assert int(result.num_fun_evals) + int(result.num_jac_evals) == calls[
        solver], solver


def test_gauss_newton_step_solves_the_normal_equations():
  """The step is alpha d with J^T J d = -J^T r (dense, and by CG, exact in
  n iterations) and alpha from the line search, which decreases the
  cost."""
  t = np.linspace(0.0, 1.0, 6)
  w = np.array([1.0, -0.3, 0.2])
  r = w[0] * np.exp(w[1] * t) + w[2] * t - np.cos(t)
  jac = np.stack([np.exp(w[1] * t), w[0] * t * np.exp(w[1] * t), t], axis=1)
  d = np.linalg.solve(jac.T @ jac, -jac.T @ r)
  out, _ = quasi_newton_and_least_squares_solves()
  for solver in ("dense", "cg"):
    u, state = out[f"gauss_newton_{solver}_step"]
    alpha = float(state.step_size)
    assert 0.0 < alpha <= 1.0
    np.testing.assert_allclose(np.asarray(u) / alpha, d, rtol=1e-8,
                               err_msg=solver)
    assert int(state.num_cg_steps) == (3 if solver == "cg" else 0)
    assert float(state.step_cost) < float(state.cost)


def test_gauss_newton_line_search_guards_a_diverging_step():
  """r(w) = (w^2 - 1, 0.1 w): from w = 0.05 the full Gauss-Newton step
  lands near w = 10, where the cost is far higher. The line search cuts it
  back to a decrease; the undamped iteration does not decrease."""
  r = lambda w: np.array([w[0] ** 2 - 1.0, 0.1 * w[0]])
  cost = lambda w: 0.5 * float(np.sum(r(w) ** 2))
  w = np.array([0.05])
  jac = np.array([[2 * w[0]], [0.1]])
  full = w - np.linalg.lstsq(jac, r(w), rcond=None)[0]
  assert cost(full) > 10 * cost(w)
  out, _ = quasi_newton_and_least_squares_solves()
  u, state = out["gauss_newton_guarded_step"]
  assert 0 < float(state.step_size) < 0.5
  assert cost(w + np.asarray(u)) < cost(w)
  assert int(state.info.num_fun_evals) > 1
  result = out["gauss_newton_guarded"]
  np.testing.assert_allclose(np.asarray(result.params), [0.995], atol=5e-3)


@pytest.mark.parametrize("bad,match", [
    (lambda: gradtx.gauss_newton(solver="qr"), "solver must be"),
    (lambda: gradtx.gauss_newton(max_cg_steps=0), "max_cg_steps"),
    (lambda: gradtx.gauss_newton(cg_tol=1.0), "cg_tol"),
    (lambda: gradtx.gauss_newton(max_trials=0), "max_trials"),
    (lambda: gradtx.scale_by_hessian_diag(key=0, estimator="gnm"),
     "estimator must be"),
    (lambda: gradtx.scale_by_hessian_diag(key=0, estimator="gauss_newton"),
     "needs the loss of the outputs"),
    (lambda: gradtx.scale_by_hessian_diag(key=0, estimator="gauss_newton",
                                          loss="hinge"), "loss must be one"),
    (lambda: gradtx.scale_by_hessian_diag(key=0, loss="squared"),
     "read by estimator='gauss_newton' only"),
    (lambda: gradtx.scale_by_hessian_diag(key=0, num_samples=0),
     "num_samples"),
])
def test_gauss_newton_arguments_say_which(bad, match):
  with pytest.raises(ValueError, match=match):
    bad()


def test_gauss_newton_needs_residuals():
  tx = gradtx.gauss_newton()
  w = jnp.ones(2)
  with pytest.raises(TypeError, match="needs the residual function"):
    tx.update(w, tx.init(w), w)


def _ggn_diag_mean(tx_kwargs, params, output_fn, samples, per_update=2):
  """The mean of the estimator's D over ``samples`` independent probes:
  ``samples / per_update`` updates from independent keys (vmapped), each
  the mean of ``per_update`` probes (b2 = 0 and a gradient of ones: the
  update is 1 / |D|). Traceable."""
  tx = gradtx.scale_by_hessian_diag(b2=0.0, eps=1e-30,
                                    num_samples=per_update, **tx_kwargs)
  ones = jax.tree.map(jnp.ones_like, params)
  state = tx.init(params)

  def estimate(key):
    u, _ = tx.update(ones, state._replace(rng_key=key), params,
                     output_fn=output_fn)
    return jax.tree.map(lambda x: 1 / x, u)

  keys = jax.random.split(state.rng_key, samples // per_update)
  return jax.tree.map(lambda d: jnp.mean(d, axis=0),
                      jax.vmap(estimate)(keys))


@functools.cache
def ggn_diagonals():
  """For the two tests below, in one compiled program: the exact diagonal
  of each model's Gauss-Newton matrix and the mean of 4000 probes of the
  estimator."""
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(7, 3)))
  params = {"w": jnp.array([0.3, -0.2, 0.5]), "c": jnp.asarray(0.1)}
  out = lambda p: jnp.tanh(x @ p["w"] + p["c"])
  rng = np.random.default_rng(2)
  x5 = jnp.asarray(rng.normal(size=(5, 3)))
  w = jnp.asarray(rng.normal(size=(3, 4)))
  logits = lambda w: x5 @ w

  @jax.jit
  def run():
    # Squared error: diag(J^T J), J the Jacobian of the outputs.
    jac = jax.jacrev(out)(params)
    squared = {k: jnp.sum(v.reshape(7, -1) ** 2, axis=0).reshape(
        jnp.shape(params[k])) for k, v in jac.items()}
    # Softmax cross-entropy: diag(J^T (diag p - p p^T) J) / B.
    p = jax.nn.softmax(logits(w))
    jac = jax.jacrev(logits)(w)          # (5, 4, 3, 4)
    h = jax.vmap(lambda pi: jnp.diag(pi) - jnp.outer(pi, pi))(p)
    fisher = jnp.einsum("bkij,bkl,blij->ij", jac, h, jac) / 5
    return {
        "squared": (squared, _ggn_diag_mean(
            dict(key=3, estimator="gauss_newton", loss="squared"), params,
            out, 4000)),
        "softmax_cross_entropy": (fisher, _ggn_diag_mean(
            dict(key=4, estimator="gauss_newton",
                 loss="softmax_cross_entropy"), w, logits, 4000))}

  return run()


def test_gauss_newton_diagonal_is_unbiased_for_squared_error():
  exact, est = ggn_diagonals()["squared"]
  for k in exact:
    np.testing.assert_allclose(np.asarray(est[k]), np.asarray(exact[k]),
                               rtol=0.06, err_msg=k)


def test_gauss_newton_diagonal_samples_the_fisher_of_a_classifier():
  """Softmax cross-entropy: labels drawn from the model's predictions give
  E[(J^T z)^2] = diag(J^T (diag p - p p^T) J) / B, the Fisher's diagonal."""
  ggn, est = ggn_diagonals()["softmax_cross_entropy"]
  np.testing.assert_allclose(np.asarray(est), np.asarray(ggn), rtol=0.08)
