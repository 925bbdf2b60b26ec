"""MultiSteps (gradient accumulation) and apply_if_finite.

The wrappers are imported from their modules so that these tests exercise
gradtx._src.accumulation and gradtx._src.conditionality whatever
gradtx/__init__.py exports.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from common import GRADS, PARAMS
from gradtx._src.accumulation import MultiSteps, MultiStepsState
from gradtx._src.conditionality import ApplyIfFiniteState, apply_if_finite

K = 3  # odd, so Welford's running mean divides by a number that is inexact
# common.PARAMS["s"] is weakly typed; after one apply_updates it is not, and
# a jitted step would compile twice for that reason alone.
P0 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), PARAMS)

INNERS = {"adam": lambda: gradtx.adam(1e-2),
          "sgd_momentum": lambda: gradtx.sgd(1e-2, momentum=0.9)}


def _bits_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert jax.tree.structure(a) == jax.tree.structure(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and x.shape == y.shape
    assert np.array_equal(x, y), (x, y)


def _close(a, b, rtol=1e-12):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol,
                               atol=0)


def _avals(tree):
  return [(x.shape, x.dtype, jax.typeof(x).weak_type)
          for x in jax.tree.leaves(tree)]


def _trajectory(tx, grads, params=P0, jit=True):
  step = jax.jit(tx.update) if jit else tx.update
  state, out = tx.init(params), []
  for g in grads:
    updates, state = step(g, state, params)
    params = gradtx.apply_updates(params, updates)
    out.append((updates, params))
  return out


def _all_zero(tree):
  return all(not np.any(np.asarray(x)) for x in jax.tree.leaves(tree))


def _counting(inner, calls):
  """``inner`` whose update bumps ``calls[0]`` each time it *executes*."""

  def bump(_):
    calls[0] += 1

  def update_fn(updates, state, params=None, **extra_args):
    jax.debug.callback(bump, jnp.zeros([]))
    return inner.update(updates, state, params, **extra_args)

  return gradtx.GradientTransformation(inner.init, update_fn)


def _nonfinite(grads, value):
  """``grads`` with one entry of ``w`` (only) replaced by ``value``."""
  return {**grads, "w": grads["w"].at[1, 2].set(value)}


# --- MultiSteps: numbers ----------------------------------------------------


@pytest.mark.parametrize("use_mean", [True, False], ids=["mean", "sum"])
@pytest.mark.parametrize("name", list(INNERS))
def test_k_steps_equal_one_inner_step_on_their_mean(name, use_mean):
  ms, inner = MultiSteps(INNERS[name](), K, use_mean), INNERS[name]()
  step = jax.jit(ms.update)
  s, s_ref, p, p_ref = ms.init(P0), inner.init(P0), P0, P0
  for c in range(3):
    chunk = GRADS[c * K:(c + 1) * K]
    for i, g in enumerate(chunk):
      u, s = step(g, s, p)
      p = gradtx.apply_updates(p, u)
      if i < K - 1:
        assert _all_zero(u), f"cycle {c}: mini-step {i} moved the params"
        assert not bool(ms.has_updated(s))
        assert int(s.mini_step) == i + 1
    assert bool(ms.has_updated(s)) and int(s.mini_step) == 0
    assert int(s.gradient_step) == c + 1
    total = jax.tree.map(lambda *gs: sum(gs), *chunk)
    agg = jax.tree.map(lambda x: x / K, total) if use_mean else total
    u_ref, s_ref = inner.update(agg, s_ref, p_ref)
    p_ref = gradtx.apply_updates(p_ref, u_ref)
    assert not _all_zero(u)
    _close(u, u_ref)
    _close(s.inner_opt_state, s_ref)
    _close(p, p_ref)
    assert _all_zero(s.acc_grads)  # reset for the next cycle


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "eager"])
def test_k_equal_one_is_the_inner_optimizer(jit):
  ours = _trajectory(MultiSteps(gradtx.adam(1e-2), 1)
                     .gradient_transformation(), GRADS[:5], jit=jit)
  ref = _trajectory(gradtx.adam(1e-2), GRADS[:5], jit=jit)
  _close(ours, ref, rtol=1e-15)


@pytest.mark.parametrize("every_k", [K, lambda n: jnp.where(n < 2, 2, 3)],
                         ids=["int", "schedule"])
def test_matches_optax_multisteps(every_k):
  # With a float64 accumulator optax does the same arithmetic; its default
  # float32 accumulator would only agree to float32 precision.
  ours = _trajectory(MultiSteps(gradtx.adam(1e-2), every_k)
                     .gradient_transformation(), GRADS[:14])
  theirs = _trajectory(optax.MultiSteps(optax.adam(1e-2), every_k,
                                        accumulator_dtype=jnp.float64)
                       .gradient_transformation(), GRADS[:14])
  # k = 2, 2, then 3: inner steps after mini-steps 2, 4, 7, 10, 13.
  assert [n + 1 for n, (u, _) in enumerate(ours) if not _all_zero(u)] == (
      [2, 4, 7, 10, 13] if callable(every_k) else [3, 6, 9, 12])
  for (u1, p1), (u2, p2) in zip(ours, theirs):
    _close(u1, u2)
    _close(p1, p2)


def test_schedule_reads_the_gradient_step_and_compiles_once():
  traces = []
  # k = 2 for the first inner step, then 3: mini-steps 2, 5, 8 update.
  ms = MultiSteps(gradtx.sgd(0.1), lambda n: jnp.where(n < 1, 2, 3))

  def counted(g, s, p):
    traces.append(1)
    return ms.update(g, s, p)

  step = jax.jit(counted)
  s = ms.init(P0)
  updated = []
  for g in GRADS[:9]:
    _, s = step(g, s, P0)
    updated.append(bool(ms.has_updated(s)))
  assert updated == [False, True, False, False, True, False, False, True,
                     False]
  assert len(traces) == 1


def test_jit_compiles_once_across_many_steps():
  traces = []
  ms = MultiSteps(gradtx.adam(1e-2), K)

  def counted(g, s, p):
    traces.append(1)
    return ms.update(g, s, p)

  step = jax.jit(counted)
  s, p = ms.init(P0), P0
  for g in GRADS[:4 * K + 1]:
    u, s = step(g, s, p)
    p = gradtx.apply_updates(p, u)
  assert len(traces) == 1
  assert int(s.gradient_step) == 4 and int(s.mini_step) == 1
  assert _avals(s) == _avals(ms.init(P0))


def test_inner_update_runs_only_on_the_kth_mini_step():
  calls = [0]
  ms = MultiSteps(_counting(gradtx.sgd(0.1), calls), K)
  step = jax.jit(ms.update)
  s = ms.init(P0)
  for n, g in enumerate(GRADS[:2 * K + 1]):
    _, s = step(g, s, P0)
    jax.effects_barrier()
    assert calls[0] == (n + 1) // K, f"after mini-step {n}"


# --- MultiSteps: state ------------------------------------------------------


def test_state_holds_exactly_one_accumulator():
  params = {"w": jnp.ones((5, 3)), "b": jnp.ones(7), "v": jnp.ones((2, 2))}
  shapes = {x.shape for x in jax.tree.leaves(params)}
  inner = gradtx.adam(1e-2)
  ms = MultiSteps(inner, 4)
  # Shapes only: traced, not run.
  _, s = jax.eval_shape(lambda p: ms.update(jax.tree.map(jnp.ones_like, p),
                                            ms.init(p), p), params)

  def param_shaped(tree):
    return sum(x.shape in shapes for x in jax.tree.leaves(tree))

  assert MultiStepsState._fields == ("mini_step", "gradient_step",
                                     "inner_opt_state", "acc_grads",
                                     "skip_state")
  assert s.skip_state == ()
  assert isinstance(s, MultiStepsState)
  inner_state = jax.eval_shape(inner.init, params)
  n_params = len(jax.tree.leaves(params))
  assert param_shaped(s) - param_shaped(inner_state) == n_params
  assert param_shaped(s.acc_grads) == n_params
  assert (sum(x.size for x in jax.tree.leaves(s))
          - sum(x.size for x in jax.tree.leaves(inner_state))
          == sum(x.size for x in jax.tree.leaves(params)) + 2)


def test_resuming_mid_accumulation_is_bit_identical():
  # The configuration of test_k_steps_equal_one_inner_step_on_their_mean
  # (adam, mean): the same jitted step, compiled once.
  ms = MultiSteps(gradtx.adam(1e-2), K, True)
  step = jax.jit(ms.update)
  s, p = ms.init(P0), P0
  saved = None
  for n, g in enumerate(GRADS[:11]):
    u, s = step(g, s, p)
    p = gradtx.apply_updates(p, u)
    if n == 4:  # five mini-steps: one inner step done, two of K folded in
      saved = jax.device_get((p, s))
  full = (p, s)
  p2, s2 = saved
  assert isinstance(s2.mini_step, np.ndarray) and int(s2.mini_step) == 2
  assert not _all_zero(s2.acc_grads)
  # A fresh wrapper and a fresh jit, as after a restart.
  ms2 = MultiSteps(gradtx.adam(1e-2), K, True)
  step2 = jax.jit(ms2.update)
  for g in GRADS[5:11]:
    u, s2 = step2(g, s2, p2)
    p2 = gradtx.apply_updates(p2, u)
  _bits_equal((p2, s2), full)


def test_accumulator_dtype():
  params = {"w": jnp.ones(4, jnp.bfloat16)}
  grads = [{"w": jnp.asarray(GRADS[n]["b"].tolist() + [0.1],
                             jnp.bfloat16)} for n in range(6)]
  ms = MultiSteps(gradtx.sgd(0.1), K, accumulator_dtype=jnp.float32)
  assert ms.init(params).acc_grads["w"].dtype == jnp.float32
  ours = _trajectory(ms.gradient_transformation(), grads, params)
  # optax accumulates in float32 by default.
  theirs = _trajectory(optax.MultiSteps(optax.sgd(0.1), K)
                      .gradient_transformation(), grads, params)
  for (u1, p1), (u2, p2) in zip(ours, theirs):
    assert u1["w"].dtype == jnp.bfloat16 and p1["w"].dtype == jnp.bfloat16
    _bits_equal((u1, p1), (u2, p2))
  default = MultiSteps(gradtx.sgd(0.1), K).init(params)
  assert default.acc_grads["w"].dtype == jnp.bfloat16


def test_extra_args_reach_an_inner_update_that_accepts_them():
  seen = []

  def update_fn(updates, state, params=None, **extra_args):
    seen.append(sorted(extra_args))
    return jax.tree.map(lambda u: u * extra_args["scale"], updates), state

  takes = gradtx.GradientTransformation(lambda p: gradtx.EmptyState(),
                                        update_fn)
  refuses = gradtx.GradientTransformation(
      lambda p: gradtx.EmptyState(), lambda u, s, p=None: (u, s))
  g = {"w": jnp.array([1.0, 2.0])}
  ms = MultiSteps(takes, 2)
  s = ms.init(g)
  _, s = ms.update(g, s, scale=3.0)
  u, s = ms.update(g, s, scale=3.0)
  np.testing.assert_array_equal(u["w"], [3.0, 6.0])
  assert seen and all(k == ["scale"] for k in seen)
  ms = MultiSteps(refuses, 2)
  s = ms.init(g)
  for _ in range(2):
    u, s = ms.update(g, s, scale=3.0)
  np.testing.assert_array_equal(u["w"], [1.0, 2.0])


# --- MultiSteps: validation -------------------------------------------------


@pytest.mark.parametrize("bad", [0, -2, 2.0, 2.5, "3", True, None,
                                 jnp.array(2)])
def test_multisteps_refuses_a_bad_k(bad):
  with pytest.raises(ValueError, match=r"MultiSteps: every_k_schedule must "
                     r"be an int >= 1.*got every_k_schedule="):
    MultiSteps(gradtx.sgd(0.1), bad)


def test_multisteps_accepts_numpy_ints_and_refuses_other_bad_arguments():
  assert int(MultiSteps(gradtx.sgd(0.1), np.int64(2)).init(P0)
             .mini_step) == 0
  with pytest.raises(TypeError, match="MultiSteps: opt is .*not a gradient"):
    MultiSteps(gradtx.adam, 2)
  with pytest.raises(ValueError, match="MultiSteps: use_grad_mean must be"):
    MultiSteps(gradtx.sgd(0.1), 2, use_grad_mean="yes")
  with pytest.raises(ValueError, match="MultiSteps: accumulator_dtype must "
                     "be a floating"):
    MultiSteps(gradtx.sgd(0.1), 2, accumulator_dtype=jnp.int32)


# --- apply_if_finite --------------------------------------------------------


@pytest.mark.parametrize("bad_value", [jnp.nan, jnp.inf, -jnp.inf],
                         ids=["nan", "inf", "-inf"])
def test_a_bad_step_changes_nothing_and_the_next_proceeds_as_if_unseen(
    bad_value):
  tx = apply_if_finite(gradtx.adam(1e-2), max_consecutive_errors=3)
  step = jax.jit(tx.update)
  s, p = tx.init(P0), P0
  for g in GRADS[:6]:
    u, s = step(g, s, p)
    p = gradtx.apply_updates(p, u)
  clean_p, clean_inner = p, s.inner_state
  s, p = tx.init(P0), P0
  seq = GRADS[:3] + [_nonfinite(GRADS[3], bad_value)] + GRADS[3:6]
  for n, g in enumerate(seq):
    p_before, s_before = p, s
    u, s = step(g, s, p)
    p = gradtx.apply_updates(p, u)
    if n == 3:
      assert _all_zero(u)
      _bits_equal(p, p_before)
      _bits_equal(s.inner_state, s_before.inner_state)
      assert int(s.notfinite_count) == 1 and not bool(s.last_finite)
    else:
      assert not _all_zero(u) and bool(s.last_finite)
  _bits_equal(p, clean_p)
  _bits_equal(s.inner_state, clean_inner)
  assert int(s.total_notfinite) == 1 and int(s.notfinite_count) == 0


def test_counters():
  tx = apply_if_finite(gradtx.sgd(0.1), max_consecutive_errors=5)
  step = jax.jit(tx.update)
  s = tx.init(P0)
  assert isinstance(s, ApplyIfFiniteState)
  bad = [False, True, True, False, True, False, False, True, True, True]
  got = []
  for n, b in enumerate(bad):
    g = _nonfinite(GRADS[n], jnp.nan) if b else GRADS[n]
    _, s = step(g, s, P0)
    got.append((int(s.notfinite_count), bool(s.last_finite),
                int(s.total_notfinite)))
  assert got == [(0, True, 0), (1, False, 1), (2, False, 2), (0, True, 2),
                 (1, False, 3), (0, True, 3), (0, True, 3), (1, False, 4),
                 (2, False, 5), (3, False, 6)]
  for x in (s.notfinite_count, s.total_notfinite):
    assert x.dtype == jnp.int32 and x.shape == ()


@pytest.mark.parametrize("max_errors", [0, 2])
def test_after_max_consecutive_errors_the_update_is_applied(max_errors):
  tx = apply_if_finite(gradtx.sgd(0.1, momentum=0.9), max_errors)
  s = tx.init(P0)
  nan = jax.tree.map(lambda g: jnp.full_like(g, jnp.nan), GRADS[0])
  applied = []
  for _ in range(max_errors + 2):
    inner_before = s.inner_state
    u, s = tx.update(nan, s)
    went_through = bool(np.isnan(np.asarray(u["b"])).all())
    assert went_through == bool(
        np.isnan(np.asarray(s.inner_state[0].trace["b"])).all())
    if not went_through:
      _bits_equal(s.inner_state, inner_before)
    applied.append(went_through)
  assert applied == [False] * max_errors + [True, True]
  assert int(s.total_notfinite) == max_errors + 2


def test_matches_optax_apply_if_finite():
  pattern = [0, 1, 0, 1, 1, 1, 0, 0, 1]  # three bad in a row > 2: applied
  grads = [_nonfinite(g, jnp.inf) if b else g
           for g, b in zip(GRADS, pattern)]
  tx = apply_if_finite(gradtx.sgd(0.1, momentum=0.9), 2)
  ref = optax.apply_if_finite(optax.sgd(0.1, momentum=0.9), 2)
  step, ref_step = jax.jit(tx.update), jax.jit(ref.update)
  s, r = tx.init(P0), ref.init(P0)
  for g in grads:
    u, s = step(g, s, P0)
    v, r = ref_step(g, r, P0)
    _close(u, v)  # equal_nan: the applied bad step is non-finite in both
    for f in ("notfinite_count", "last_finite", "total_notfinite"):
      assert np.array_equal(getattr(s, f), getattr(r, f)), f


def test_apply_if_finite_compiles_once_and_skips_the_inner_computation():
  traces, calls = [], [0]
  tx = apply_if_finite(_counting(gradtx.adam(1e-2), calls), 3)

  def counted(g, s, p):
    traces.append(1)
    return tx.update(g, s, p)

  step = jax.jit(counted)
  s, p = tx.init(P0), P0
  for n, g in enumerate(GRADS[:8]):
    g = _nonfinite(g, jnp.nan) if n % 3 == 1 else g
    u, s = step(g, s, p)
    p = gradtx.apply_updates(p, u)
  jax.effects_barrier()
  assert len(traces) == 1
  assert calls[0] == 8 - 3  # n = 1, 4, 7 were skipped
  assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(p))


def test_apply_if_finite_forwards_extra_args():
  def update_fn(updates, state, params=None, **extra_args):
    return jax.tree.map(lambda u: u * extra_args["scale"], updates), state

  tx = apply_if_finite(gradtx.GradientTransformation(
      lambda p: gradtx.EmptyState(), update_fn), 1)
  g = {"w": jnp.array([1.0, 2.0])}
  u, _ = tx.update(g, tx.init(g), scale=2.0)
  np.testing.assert_array_equal(u["w"], [2.0, 4.0])
  plain = apply_if_finite(gradtx.GradientTransformation(
      lambda p: gradtx.EmptyState(), lambda u, s, p=None: (u, s)), 1)
  u, _ = plain.update(g, plain.init(g), scale=2.0)
  np.testing.assert_array_equal(u["w"], [1.0, 2.0])


@pytest.mark.parametrize("bad", [-1, 1.5, 2.0, True, "3", None])
def test_apply_if_finite_refuses_a_bad_max_consecutive_errors(bad):
  with pytest.raises(ValueError, match=r"apply_if_finite: "
                     r"max_consecutive_errors must be an int >= 0.*got "
                     r"max_consecutive_errors="):
    apply_if_finite(gradtx.sgd(0.1), bad)


def test_apply_if_finite_refuses_a_non_transform():
  with pytest.raises(TypeError, match="apply_if_finite: inner is .*not a "
                     "gradient transformation"):
    apply_if_finite(gradtx.sgd, 3)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("skip", ["not_finite", "large"])
def test_should_skip_update_fn_matches_optax(skip, jit):
  """optax's own skip functions and gradtx's, in either wrapper: the same
  updates and the same state, leaf for leaf, skip_state included."""
  import functools
  from gradtx._src.accumulation import skip_large_updates, skip_not_finite
  fns = {"not_finite": (optax.skip_not_finite, skip_not_finite),
         "large": (functools.partial(optax.skip_large_updates,
                                     max_squared_norm=50.0),
                   functools.partial(skip_large_updates,
                                     max_squared_norm=50.0))}[skip]
  params = {"a": jnp.array([1.0, -2.0, 3.0])}
  grads = [{"a": jnp.array([1.0, 2.0, -1.0]) * (i % 3 + 1)}
           for i in range(7)]
  grads[2] = {"a": jnp.array([jnp.nan, 1.0, 1.0])}
  grads[4] = {"a": jnp.array([9.0, 1.0, 1.0])}
  theirs = optax.MultiSteps(optax.adam(0.1), 2, should_skip_update_fn=fns[0],
                            accumulator_dtype=jnp.float64)
  for ours in (MultiSteps(gradtx.adam(0.1), 2, should_skip_update_fn=fns[0]),
               MultiSteps(gradtx.adam(0.1), 2, True, fns[1])):
    so, sg = theirs.init(params), ours.init(params)
    uo_f, ug_f = ((jax.jit(theirs.update), jax.jit(ours.update)) if jit
                  else (theirs.update, ours.update))
    for g in grads:
      uo, so = uo_f(g, so, params)
      ug, sg = ug_f(g, sg, params)
      np.testing.assert_allclose(ug["a"], uo["a"], rtol=1e-12)
      assert ([(x.shape, x.dtype) for x in jax.tree.leaves(sg)]
              == [(x.shape, x.dtype) for x in jax.tree.leaves(so)])
      for x, y in zip(jax.tree.leaves(sg), jax.tree.leaves(so)):
        np.testing.assert_allclose(x, y, rtol=1e-12)
    assert bool(jnp.all(jnp.isfinite(sg.acc_grads["a"])))


def test_should_skip_update_fn_must_return_a_bool_scalar():
  ms = MultiSteps(gradtx.sgd(0.1), 2,
                  should_skip_update_fn=lambda u, s, p: (jnp.zeros(2), ()))
  s = ms.init({"a": jnp.ones(2)})
  with pytest.raises(ValueError, match="must return a bool scalar"):
    ms.update({"a": jnp.ones(2)}, s)
  with pytest.raises(ValueError, match="should_skip_update_fn must be a"):
    MultiSteps(gradtx.sgd(0.1), 2, should_skip_update_fn=3)
