"""Schedules: values against independent formulas, optax and PyTorch.

Each schedule is checked at step 0, at every boundary (and the steps around
it) and at the end, against a plain-Python transcription written here; the
ones optax has are also checked against optax, and the two new ones against
``torch.optim.lr_scheduler`` over several cycles.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import common
import gradtx


def around(*points):
  return sorted({max(0, p + d) for p in points for d in (-1, 0, 1)})


# (id, gradtx schedule, reference k -> value, steps, optax schedule or None)
CASES = [
    ("constant", gradtx.constant_schedule(0.3), lambda k: 0.3, [0, 7, 10**6],
     optax.constant_schedule(0.3)),
    ("linear_warmup", gradtx.linear_schedule(0.0, 1.0, 10, 5),
     lambda k: min(max(k - 5, 0), 10) / 10, around(0, 5, 15, 40),
     optax.linear_schedule(0.0, 1.0, 10, 5)),
    ("polynomial", gradtx.polynomial_schedule(2.0, 0.5, 3, 20),
     lambda k: 1.5 * (1 - min(k, 20) / 20) ** 3 + 0.5, around(0, 10, 20),
     optax.polynomial_schedule(2.0, 0.5, 3, 20)),
    ("step_decay", gradtx.piecewise_constant_schedule(0.1, {10: 0.5, 30: 0.1}),
     lambda k: 0.1 * (0.5 if k >= 10 else 1) * (0.1 if k >= 30 else 1),
     around(0, 10, 30, 100),
     optax.piecewise_constant_schedule(0.1, {10: 0.5, 30: 0.1})),
    ("exponential", gradtx.exponential_decay(1.0, 10, 0.5, 5),
     lambda k: 0.5 ** (max(k - 5, 0) / 10), around(0, 5, 15, 25, 105),
     optax.exponential_decay(1.0, 10, 0.5, 5)),
    ("exponential_staircase_floor",
     gradtx.exponential_decay(1.0, 10, 0.5, staircase=True, end_value=0.2),
     lambda k: max(0.5 ** (k // 10), 0.2), around(0, 10, 20, 30),
     optax.exponential_decay(1.0, 10, 0.5, staircase=True, end_value=0.2)),
    ("inverse_time", gradtx.inverse_time_decay(0.5, 2.0, 10),
     lambda k: 0.5 / (1 + 2.0 * k / 10), around(0, 10, 1000), None),
    ("inverse_time_staircase",
     gradtx.inverse_time_decay(0.5, 1.0, 10, staircase=True),
     lambda k: 0.5 / (1 + k // 10), around(0, 10, 20), None),
    ("inverse_sqrt", gradtx.inverse_sqrt_decay(1.0, timescale=4),
     lambda k: 1 / math.sqrt(1 + k / 4), around(0, 4, 400), None),
    ("inverse_sqrt_warmup", gradtx.inverse_sqrt_decay(1.0, warmup_steps=10),
     lambda k: k / 10 if k < 10 else math.sqrt(10 / k), around(0, 10, 1000),
     None),
    ("cosine", gradtx.cosine_decay_schedule(1.0, 20, alpha=0.1),
     lambda k: 0.9 * 0.5 * (1 + math.cos(math.pi * min(k, 20) / 20)) + 0.1,
     around(0, 10, 20, 50), optax.cosine_decay_schedule(1.0, 20, alpha=0.1)),
    ("warmup_cosine", gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 10, 30,
                                                          0.1),
     lambda k: k / 10 if k < 10 else 0.1 + 0.9 * 0.5 * (
         1 + math.cos(math.pi * min(k - 10, 20) / 20)),
     around(0, 10, 20, 30, 60),
     optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 30, 0.1)),
    ("warmup_exponential",
     gradtx.warmup_exponential_decay_schedule(0.0, 1.0, 10, 5, 0.5),
     lambda k: k / 10 if k < 10 else 0.5 ** ((k - 10) / 5),
     around(0, 10, 15, 40),
     optax.warmup_exponential_decay_schedule(0.0, 1.0, 10, 5, 0.5)),
    ("join", gradtx.join_schedules([gradtx.constant_schedule(1.0),
                                    gradtx.linear_schedule(1.0, 0.0, 10)],
                                   [5]),
     lambda k: 1.0 if k < 5 else 1 - min(k - 5, 10) / 10, around(0, 5, 15),
     optax.join_schedules([optax.constant_schedule(1.0),
                           optax.linear_schedule(1.0, 0.0, 10)], [5])),
    ("sgdr", gradtx.sgdr_schedule(
        [dict(init_value=0.0, peak_value=1.0, warmup_steps=2,
              decay_steps=10)] * 3),
     lambda k: (lambda j: j / 2 if j < 2 else 0.5 * (
         1 + math.cos(math.pi * (j - 2) / 8)))(k % 10 if k < 30 else 10),
     around(0, 2, 10, 12, 20, 30),
     optax.sgdr_schedule([dict(init_value=0.0, peak_value=1.0,
                               warmup_steps=2, decay_steps=10)] * 3)),
    ("linear_onecycle", gradtx.linear_onecycle_schedule(100, 1.0),
     lambda k: np.interp(k, [0, 30, 85, 100],
                         [1 / 25, 1.0, 1 / 25, 1 / 25 / 1e4]),
     around(0, 15, 30, 60, 85, 100, 150),
     optax.linear_onecycle_schedule(100, 1.0)),
    ("cosine_onecycle", gradtx.cosine_onecycle_schedule(100, 1.0),
     lambda k: (lambda a, b, p: b + (a - b) * (math.cos(math.pi * p) + 1) / 2)(
         *((1 / 25, 1.0, k / 30) if k < 30 else
           (1.0, 1 / 25 / 1e4, min((k - 30) / 70, 1.0)))),
     around(0, 15, 30, 65, 100), optax.cosine_onecycle_schedule(100, 1.0)),
]


@functools.cache
def _jitted_values():
  """Per case: the schedule's values jitted at each of its steps (an int32
  count, mapped over the steps), from one jitted program for all cases.
  No schedule branches with lax.cond, so the mapped steps run the scalar
  step's operations."""
  def run(steps):
    return [jax.vmap(sched)(ks)
            for (_, sched, _, _, _), ks in zip(CASES, steps)]
  return jax.device_get(jax.jit(run)(
      [np.asarray(case[3], np.int32) for case in CASES]))


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0] for c in CASES])
def test_schedule_values(i):
  _, sched, ref, steps, other = CASES[i]
  jitted = _jitted_values()[i]
  for n, k in enumerate(steps):
    expected = float(ref(k))
    np.testing.assert_allclose(float(sched(k)), expected, rtol=1e-9,
                               atol=1e-15, err_msg=f"step {k}")
    np.testing.assert_allclose(float(jitted[n]), expected,
                               rtol=1e-9, atol=1e-15, err_msg=f"jit step {k}")
    if other is not None:
      np.testing.assert_allclose(float(sched(k)), float(other(k)),
                                 rtol=1e-12, atol=1e-15,
                                 err_msg=f"optax step {k}")


EAGER = [(name, sched) for name, sched, *_ in CASES] + [
    (f"cyclic_{mode}", gradtx.cyclic_schedule(0.1, 1.0, 4, mode, gamma))
    for mode, gamma in (("triangular", 1.0), ("triangular2", 1.0),
                        ("exp_range", 0.9))]


@pytest.mark.parametrize("name,sched", EAGER, ids=[n for n, _ in EAGER])
def test_eager_calls_compile_nothing_new_for_each_count(name, sched):
  """A schedule called eagerly with step after step (an int32 count, as an
  optimizer's state holds it) reuses its programs: the count must not be
  fixed in one, as ``gamma ** count`` fixes it in ``lax.integer_pow``."""
  for k in range(3):
    sched(jnp.asarray(k, jnp.int32))
  with common.CountCompiles() as compiles:
    for k in range(3, 9):
      sched(jnp.asarray(k, jnp.int32))
  assert compiles.count == 0, f"{name}: {compiles.count} compiles in 6 calls"


# --- the two new schedules against PyTorch ----------------------------------



def _torch_values(make_scheduler, steps):
  param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
  opt = torch.optim.SGD([param], lr=1.0, momentum=0.9)
  sched = make_scheduler(opt)
  out = []
  for _ in range(steps):
    out.append(opt.param_groups[0]["lr"])
    opt.step()
    sched.step()
  return np.array(out)


CYCLIC_STEPS = 9 * 25 + 3


@pytest.mark.parametrize("mode,gamma", [("triangular", 1.0),
                                        ("triangular2", 1.0),
                                        ("exp_range", 0.995)])
@pytest.mark.parametrize("step_size", [1, 7, 25])
def test_cyclic_equals_torch_cycliclr(mode, gamma, step_size):
  steps = 9 * step_size + 3  # four and a half cycles
  ref = _torch_values(lambda opt: torch.optim.lr_scheduler.CyclicLR(
      opt, base_lr=0.01, max_lr=0.4, step_size_up=step_size, mode=mode,
      gamma=gamma), steps)
  # Evaluated on the longest case's steps, so that every case runs the
  # same eager operations (one compilation each for all), then cut.
  ours = np.asarray(jax.vmap(gradtx.cyclic_schedule(
      0.01, 0.4, step_size, mode, gamma))(jnp.arange(CYCLIC_STEPS)))[:steps]
  np.testing.assert_allclose(ours, ref, rtol=1e-6)


@pytest.mark.parametrize("t0,mult,eta_min", [(10, 1, 0.0), (5, 2, 0.01),
                                              (3, 3, 0.1)])
def test_cosine_warm_restarts_equals_torch(t0, mult, eta_min):
  steps = 150
  ref = _torch_values(
      lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
          opt, T_0=t0, T_mult=mult, eta_min=eta_min), steps)
  ours = np.asarray(jax.vmap(gradtx.cosine_warm_restarts_schedule(
      1.0, t0, mult, eta_min))(jnp.arange(steps)))
  np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-12)


# --- large int32 steps ------------------------------------------------------

BIG = 2 ** 24 + 3  # float32 cannot represent every integer past 2**24


def test_cyclic_is_exact_beyond_2_pow_24_in_float32():
  with jax.enable_x64(False):
    s = jax.jit(gradtx.cyclic_schedule(0.0, 1.0, step_size=7))
    for k in range(BIG, BIG + 14):
      pos = k % 14
      expected = 1 - abs(pos - 7) / 7
      assert abs(float(s(jnp.int32(k))) - expected) < 1e-6, k


def test_warm_restarts_are_exact_beyond_2_pow_24_in_float32():
  with jax.enable_x64(False):
    s = jax.jit(gradtx.cosine_warm_restarts_schedule(1.0, 3, 1))
    for k in range(BIG, BIG + 6):
      expected = (1 + math.cos(math.pi * (k % 3) / 3)) / 2
      assert abs(float(s(jnp.int32(k))) - expected) < 1e-6, k
    grow = jax.jit(gradtx.cosine_warm_restarts_schedule(1.0, 1, 2))
    start = 2 ** 24 - 1  # a restart boundary: 1 + 2 + ... + 2**23
    assert abs(float(grow(jnp.int32(start))) - 1.0) < 1e-6
    assert float(grow(jnp.int32(2 ** 31 - 1))) >= 0.0


@functools.cache
def _float32_values_at_large_steps():
  """Per case: its values at BIG and 2**31 - 1, jitted in float32, all
  from one program."""
  with jax.enable_x64(False):
    steps = np.asarray([BIG, 2 ** 31 - 1], np.int32)
    return jax.device_get(jax.jit(lambda steps: [
        jax.vmap(sched)(steps) for _, sched, *_ in CASES])(steps))


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0] for c in CASES])
def test_every_schedule_is_finite_at_large_int32_steps(i):
  for k, v in zip((BIG, 2 ** 31 - 1), _float32_values_at_large_steps()[i]):
    assert v.dtype == np.float32 and np.isfinite(v), k


# --- bad arguments ----------------------------------------------------------


@pytest.mark.parametrize("build,match", [
    (lambda: gradtx.cyclic_schedule(0.1, 1.0, 0), "step_size"),
    (lambda: gradtx.cyclic_schedule(1.0, 0.1, 5), "max_value"),
    (lambda: gradtx.cyclic_schedule(0.1, 1.0, 5, mode="sine"), "mode"),
    (lambda: gradtx.cyclic_schedule(0.1, 1.0, 5, gamma=1.5), "gamma"),
    (lambda: gradtx.cyclic_schedule(0.1, 1.0, 2.5), "step_size"),
    (lambda: gradtx.cosine_warm_restarts_schedule(1.0, 0), "first_period"),
    (lambda: gradtx.cosine_warm_restarts_schedule(1.0, 5, 0), "period_mult"),
    (lambda: gradtx.cosine_warm_restarts_schedule(0.1, 5, 1, 1.0),
     "min_value"),
    (lambda: gradtx.cosine_decay_schedule(1.0, 0), "decay_steps"),
    (lambda: gradtx.exponential_decay(1.0, 10, -0.5), "decay_rate"),
    (lambda: gradtx.linear_schedule(0.0, 1.0, 3, -1), "transition_begin"),
    (lambda: gradtx.piecewise_constant_schedule(1.0, {5: -0.5}),
     "boundaries_and_scales"),
    (lambda: gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10),
     "decay_steps"),
    (lambda: gradtx.linear_onecycle_schedule(0, 1.0), "transition_steps"),
    (lambda: gradtx.linear_onecycle_schedule(100, 1.0, 0.5, 0.4),
     "pct_final"),
    (lambda: gradtx.join_schedules([gradtx.constant_schedule(1.0)], [3]),
     "one more schedule"),
    (lambda: gradtx.inverse_time_decay(1.0, transition_steps=0),
     "transition_steps"),
    (lambda: gradtx.sgdr_schedule([]), "cosine_kwargs"),
])
def test_bad_arguments_name_the_argument(build, match):
  with pytest.raises(ValueError, match=match):
    build()


# optax's fallbacks: these arguments give the constant init_value there, and a
# drop-in must accept them the same way.
@pytest.mark.parametrize("name, args", [
    ("polynomial_schedule", (2.0, 0.5, 1, -1)),
    ("polynomial_schedule", (2.0, 0.5, 1, 0)),
    ("linear_schedule", (2.0, 0.5, -3)),
    ("exponential_decay", (2.0, 0, 0.5)),
    ("exponential_decay", (2.0, -1, 0.5)),
    ("exponential_decay", (2.0, 2, 0.0)),
])
def test_optax_constant_fallbacks(name, args):
  ours, theirs = getattr(gradtx, name)(*args), getattr(optax, name)(*args)
  for k in (0, 1, 3, 100):
    assert float(ours(k)) == float(theirs(k)) == 2.0


def test_exponential_decay_rate_zero_is_init_at_step_zero():
  assert float(gradtx.exponential_decay(1.0, 2, decay_rate=0.0)(0)) == 1.0


@pytest.mark.parametrize("x64", [False, True])
def test_python_int_counts_past_int32_do_not_overflow(x64):
  with jax.enable_x64(x64):
    pairs = [
        (gradtx.cosine_decay_schedule(1000., decay_steps=10**10),
         optax.cosine_decay_schedule(1000., decay_steps=10**10), 10**9),
        (gradtx.exponential_decay(1.0, 10**9, 0.5),
         optax.exponential_decay(1.0, 10**9, 0.5), 2**31 + 5),
        (gradtx.exponential_decay(1.0, 10**9, 0.5, staircase=True),
         optax.exponential_decay(1.0, 10**9, 0.5, staircase=True), 3 * 10**9),
    ]
    for ours, theirs, k in pairs:
      np.testing.assert_allclose(float(ours(k)), float(theirs(k)), rtol=1e-6)
