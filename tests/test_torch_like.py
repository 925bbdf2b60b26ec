"""gradtx.torch_like against torch.optim, step for step.

Every preset, with its main options, runs 100 steps in torch.optim and in
gradtx from the same float32 params. Each framework computes the gradient
from its *own* current params (a separable quadratic plus a fixed noise
sequence), so the trajectories only stay together if every step agrees: an
error in one step changes all the gradients after it. At every step each
param must agree to 1e-6 relative (see RTOL), with x64 on (the suite's
setting: float32 params, float64 scalars, as torch's Python-float scalars)
and off (JAX's default: float32 throughout).

The gradtx side runs every trajectory in a single jitted function per x64
mode, one ``lax.scan`` whose step steps every preset: one compilation for
all presets and options keeps this file fast, and the scan checks that
each state keeps its structure and dtypes from step to step (a step that
would recompile on the second call fails to scan).
torch's side is its single-tensor loop (``foreach=False``, the path torch
takes on CPU anyway).
"""

from __future__ import annotations

import functools
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import common  # noqa: E402
import gradtx  # noqa: E402
from gradtx import torch_like as tl  # noqa: E402
from gradtx._src import numerics as num  # noqa: E402

STEPS = 100
SHAPES = {"w": (4, 3), "b": (5,)}
NAMES = ["Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "RAdam",
         "RMSprop", "Rprop", "SGD"]

_rng = np.random.default_rng(20240607)
P0 = {k: _rng.normal(size=s) for k, s in SHAPES.items()}
# Curvatures spread over two decades, so some entries move fast and some
# slowly; targets and noise of the order of the params.
H = {k: 10.0 ** _rng.uniform(-1, 1, size=s) for k, s in SHAPES.items()}
C = {k: _rng.normal(size=s) for k, s in SHAPES.items()}
NOISE = {k: 0.3 * _rng.normal(size=(STEPS,) + s) for k, s in SHAPES.items()}

# Per entry at every step: |gradtx - torch| <= RTOL * (|torch| + 1). The two
# sides round differently inside a step (torch's lerp_ and addcdiv_, its
# second rounding of the params in NAdam, against gradtx's fused
# expressions), and those last-bit differences feed back through the
# gradient. An entry passing near 0 carries the absolute rounding error of
# the O(1) quantities around it, hence the "+ 1". The largest error seen is
# 7.2e-7 (NAdam, which rounds the params twice per step).
RTOL = 1e-6

# (torch name, keyword arguments).
CASES = [
    ("SGD", {}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3,
             "weight_decay": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True,
             "weight_decay": 0.1, "maximize": True}),
    ("SGD", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-3,
              "amsgrad": True}),
    ("Adam", {"lr": 0.02, "weight_decay": 0.1, "maximize": True}),
    ("Adam", {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True,
              "decoupled_weight_decay": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True,
               "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"lr": 1e-3, "alpha": 0.9, "eps": 1e-3, "momentum": 0.9}),
    ("RMSprop", {"lr": 1e-3, "weight_decay": 0.1, "momentum": 0.5,
                 "centered": True, "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.5, "eps": 1e-3,
                 "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.95, "weight_decay": 0.1,
                  "maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1,
               "decoupled_weight_decay": True, "maximize": True}),
    ("RAdam", {}),
    # eps large enough that its placement (before the bias correction, see
    # scale_by_radam) shows well beyond the tolerance.
    ("RAdam", {"lr": 0.01, "betas": (0.9, 0.99), "eps": 1e-2}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1,
               "decoupled_weight_decay": True, "maximize": True}),
    ("Rprop", {}),
    ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-4, 0.2),
               "maximize": True}),
    # lr above the largest step size: torch clamps it on the first step.
    ("Rprop", {"lr": 1.0, "step_sizes": (1e-3, 0.5)}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-2,
                "weight_decay": 0.1, "maximize": True}),
]

def _case_id(name, kwargs):
  return "-".join([name] + [f"{k}={v}" for k, v in kwargs.items()])


def _sign(kwargs):
  # With maximize=True the quadratic is turned upside down (its curvature
  # negated), so that gradient ascent converges.
  return -1.0 if kwargs.get("maximize") else 1.0


def _torch_run(name, kwargs, scheduler=None):
  """The float32 params after each of STEPS torch.optim steps."""
  sign = _sign(kwargs)
  params = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float32))
            for k, v in P0.items()}
  opt = getattr(torch.optim, name)(list(params.values()), **kwargs,
                                   foreach=False)
  sched = scheduler(opt) if scheduler else None
  as_t = lambda t: {k: torch.tensor(v, dtype=torch.float32)
                    for k, v in t.items()}
  h = {k: sign * v for k, v in as_t(H).items()}
  c, n = as_t(C), as_t(NOISE)
  out = {k: np.empty((STEPS,) + s, np.float32) for k, s in SHAPES.items()}
  for t in range(STEPS):
    with torch.no_grad():
      for k, p in params.items():
        p.grad = h[k] * (p - c[k]) + n[k][t]
    opt.step()
    if sched is not None:
      sched.step()
    for k, p in params.items():
      out[k][t] = p.detach().numpy()
  return out


# An LR scheduler stepped after every optimizer step is a schedule of the
# step count: step t (from 0) uses lr(t), also inside AdamW's decoupled
# decay and Adagrad's lr / (1 + t * lr_decay).
SCHEDULED = [("AdamW", {"lr": 0.05, "weight_decay": 0.1}),
             ("Adagrad", {"lr": 0.3, "lr_decay": 0.01}),
             ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.2})]
GAMMA = 0.97  # torch.optim.lr_scheduler.ExponentialLR(opt, GAMMA)


def _transforms(x64):
  """{label: (transform, sign)} for every gradtx trajectory of this file."""
  txs = {("case", i): (getattr(tl, name)(**kw), _sign(kw))
         for i, (name, kw) in enumerate(CASES)}
  if x64:
    for j, (name, kw) in enumerate(SCHEDULED):
      lr = lambda t, lr=kw["lr"]: lr * GAMMA ** t
      txs[("scheduled", j)] = (getattr(tl, name)(**{**kw, "lr": lr}), 1.0)
    # gradtx.radam's rule, to show that the RAdam cases tell it apart.
    txs["optax_style_radam"] = (gradtx.chain(
        gradtx.scale_by_adam(0.9, 0.99, 1e-2), gradtx.rectify(5.0),
        gradtx.scale_by_learning_rate(0.01)), 1.0)
  return txs


@functools.cache
def _trajectories(x64):
  """{label: float32 trajectory}, all from one jitted function.

  One compilation for everything costs half as much as one per preset on
  CPU, which keeps this file's runtime down.
  """
  with jax.enable_x64(x64):
    labels, txs = zip(*_transforms(x64).items())
    # Explicit dtypes: with x64 a bare jnp.asarray of float64 data stays
    # float64.
    cast = lambda t: {k: jnp.asarray(v, jnp.float32)
                      for k, v in t.items()}
    h, c, noise = cast(H), cast(C), cast(NOISE)

    def trajectories(p0):
      # One scan whose step is every transform's step: one loop for XLA
      # to compile instead of one per transform.
      def body(carry, n):
        new = []
        for (tx, sign), (params, state) in zip(txs, carry):
          grads = jax.tree.map(
              lambda p, h, c, n, sign=sign: sign * h * (p - c) + n,
              params, h, c, n)
          updates, state = tx.update(grads, state, params)
          new.append((gradtx.apply_updates(params, updates), state))
        return new, [params for params, _ in new]

      start = [(p0, tx.init(p0)) for tx, _ in txs]
      return jax.lax.scan(body, start, noise)[1]

    out = jax.jit(trajectories)(cast(P0))
  for v in jax.tree.leaves(out):
    assert v.dtype == jnp.float32
  return dict(zip(labels, jax.tree.map(np.asarray, out)))


@functools.cache
def _torch_case(i):
  return _torch_run(*CASES[i])


def _assert_trajectories_agree(label, got, want):
  for k, shape in SHAPES.items():
    assert got[k].shape == want[k].shape == (STEPS, *shape), label
    # All steps at once; the first step that differs is reported.
    common.assert_steps_close(got[k], want[k], RTOL, RTOL,
                              f"{label}: param {k!r} differs at step {{step}}")


def _params():
  out = []
  for x64 in (True, False):
    for i, (name, kwargs) in enumerate(CASES):
      out.append(pytest.param(
          i, x64,
          id=f"{_case_id(name, kwargs)}-{'x64' if x64 else 'no_x64'}"))
  return out


@pytest.mark.parametrize("i, x64", _params())
def test_matches_torch_step_for_step(i, x64):
  name, kwargs = CASES[i]
  want = _torch_case(i)
  moved = max(np.max(np.abs(want[k][-1] - P0[k])) for k in SHAPES)
  assert moved > 1e-3, f"{name}({kwargs}): the params barely moved"
  _assert_trajectories_agree(f"{name}({kwargs}) with x64={x64}",
                             _trajectories(x64)[("case", i)], want)


def test_every_preset_is_tested():
  assert {name for name, _ in CASES} == set(NAMES)


def test_radam_variant_is_distinguished():
  # gradtx.radam's rule (eps after the bias correction, switch at >= 5)
  # leaves torch's trajectory by far more than the tolerance: the
  # comparison above would catch a preset built that way.
  i = CASES.index(("RAdam", {"lr": 0.01, "betas": (0.9, 0.99),
                             "eps": 1e-2}))
  got = _trajectories(True)["optax_style_radam"]
  assert np.max(np.abs(got["w"] - _torch_case(i)["w"])) > 100 * RTOL


@pytest.mark.parametrize("j", range(len(SCHEDULED)),
                         ids=[name for name, _ in SCHEDULED])
def test_lr_schedule_matches_torch_lr_scheduler(j):
  name, kwargs = SCHEDULED[j]
  want = _torch_run(name, kwargs, scheduler=lambda opt:
                    torch.optim.lr_scheduler.ExponentialLR(opt, GAMMA))
  _assert_trajectories_agree(f"{name}({kwargs}) with ExponentialLR",
                             _trajectories(True)[("scheduled", j)], want)


# --------------------------------------------------------------------------
# The step scalars and torch's rounding of the decoupled decay.


def test_step_scalars_are_float32_accurate():
  # 1 - b**t and RAdam's rho_t, in float32, against double precision
  # (torch's), from the first step to long after the bias has decayed.
  t64 = np.unique(np.geomspace(1, 1e6, 300).round())
  betas = (0.5, 0.9, 0.99, 0.999, 0.9999)
  with jax.enable_x64(False):
    got = jax.jit(lambda t: [(num.one_minus_pow(b, t), num.radam_rho(b, t))
                             for b in betas])(jnp.asarray(t64, jnp.float32))
  for b, (one_minus, (rho_inf, rho)) in zip(betas, got):
    assert one_minus.dtype == rho.dtype == jnp.float32
    want = -np.expm1(t64 * np.log(b))
    np.testing.assert_allclose(one_minus, want, rtol=5e-7)
    want = rho_inf - 2 * t64 * b ** t64 / want
    np.testing.assert_allclose(rho, want, rtol=5e-7, atol=1e-5)
    # The step where the rectified update starts is torch's.
    assert np.array_equal(rho > 5, want > 5)


@pytest.mark.parametrize("dtype, lr, wd", [
    ("float32", 1e-3, 1e-2), ("float32", 0.02, 0.3), ("float64", 1e-3, 1e-2)])
def test_decoupled_decay_rounds_like_torch(dtype, lr, wd):
  # torch: param.mul_(1 - lr * wd) with the factor rounded to the precision
  # it multiplies in; gradtx: params + updates. 1000 decay steps.
  steps = 1000
  p = np.random.default_rng(0).normal(size=1000).astype(dtype)
  want = torch.tensor(p)
  for _ in range(steps):
    want.mul_(1 - lr * wd)
  want = want.numpy()

  def decay(tx):
    def body(_, params):
      updates, _ = tx.update(jnp.zeros_like(params), tx.init(params), params)
      return gradtx.apply_updates(params, updates)
    return lambda p: jax.lax.fori_loop(0, steps, body, p)

  lr_tx = gradtx.scale_by_learning_rate(lr)
  rounded = decay(gradtx.chain(tl.add_decoupled_weight_decay(lr, wd), lr_tx))
  exact = decay(gradtx.chain(gradtx.add_decayed_weights(wd), lr_tx))
  got, plain = map(np.asarray, jax.jit(lambda p: (rounded(p), exact(p)))(
      jnp.asarray(p)))
  err = np.max(np.abs(got - want) / np.abs(want))
  plain_err = np.max(np.abs(plain - want) / np.abs(want))
  assert err <= 20 * np.finfo(dtype).eps, (err, plain_err)
  if dtype == "float32" and lr * wd <= 1e-5:
    # Without torch's rounding the decay drifts from torch's (by 1.4e-5
    # for AdamW's defaults).
    assert plain_err > 5 * err, (err, plain_err)


def _inject(name, kwargs):
  # Rprop's lr (its initial step size) must stay a number.
  static = ("lr",) if name == "Rprop" else ()
  return gradtx.inject_hyperparams(getattr(tl, name), static)(**kwargs)


INJECTED = [(name, {}) for name in NAMES] + [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3,
             "weight_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("NAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True})]


@pytest.mark.parametrize("name, kwargs", INJECTED,
                         ids=[_case_id(n, kw) for n, kw in INJECTED])
def test_inject_hyperparams_builds_one_chain(name, kwargs):
  # gradtx.inject_hyperparams passes every numeric argument as an array,
  # concrete in init and traced in a jitted update, 0 included: both must
  # build the same chain (eval_shape traces the update, as jit does).
  tx = _inject(name, kwargs)
  params = {k: jnp.asarray(v, jnp.float32) for k, v in P0.items()}
  state = tx.init(params)
  _, new_state = jax.eval_shape(tx.update, params, state, params)
  assert (jax.tree.structure(new_state) == jax.tree.structure(state))


def test_inject_hyperparams_gives_the_same_numbers():
  # With traced hyperparameters (the formulas' plain forms, see
  # test_new_primitives_take_schedules) the steps equal the plain preset's.
  params = {k: jnp.asarray(v, jnp.float64) for k, v in P0.items()}
  noise = {k: jnp.asarray(v[:5], jnp.float64) for k, v in NOISE.items()}
  cases = INJECTED[-3:]
  txs = [(_inject(n, kw), getattr(tl, n)(**kw)) for n, kw in cases]

  def run(tx, state):
    def body(state, g):
      updates, state = tx.update(g, state, params)
      return state, updates
    return jax.lax.scan(body, state, noise)[1]

  # init outside jit (its hyperparameters concrete), update inside (traced).
  states = [(a.init(params), b.init(params)) for a, b in txs]
  got = jax.jit(lambda states: [
      (run(a, sa), run(b, sb)) for (a, b), (sa, sb) in zip(txs, states)])(
          states)
  for (name, kwargs), (injected, plain) in zip(cases, got):
    for a, b in zip(jax.tree.leaves(injected), jax.tree.leaves(plain)):
      np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15,
                                 err_msg=f"{name}({kwargs})")


# --------------------------------------------------------------------------
# Signatures: torch's names, order, kinds and defaults, params left out.


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_torch(name):
  ours = inspect.signature(getattr(tl, name)).parameters
  theirs = dict(inspect.signature(getattr(torch.optim, name)).parameters)
  theirs.pop("params")
  assert list(ours) == list(theirs)
  for arg, p in theirs.items():
    assert ours[arg].kind == p.kind, arg
    assert ours[arg].default == p.default, arg
    assert type(ours[arg].default) is type(p.default), arg


def test_module_does_not_import_torch():
  code = ("import sys, gradtx.torch_like as tl; tl.Adam(); "
          "print('torch' in sys.modules, 'optax' in sys.modules)")
  assert common.python_prints(code) == "False False"


def test_public_names_are_documented():
  for name in tl.__all__:
    doc = getattr(tl, name).__doc__
    assert doc and len(doc.strip()) > 20, name


def test_update_without_params_when_no_weight_decay():
  params = {"w": jnp.ones(3, jnp.float32)}
  for name in NAMES:
    kwargs = {"weight_decay": 0} if name == "AdamW" else {}
    tx = getattr(tl, name)(**kwargs)
    jax.eval_shape(tx.update, params, tx.init(params))  # traced, not run
  with pytest.raises(ValueError, match=r"^torch_like\.add_decoupled_weight_"
                     r"decay: .*update\(updates, state, params\)"):
    tx = tl.AdamW()
    jax.eval_shape(tx.update, params, tx.init(params))


# --------------------------------------------------------------------------
# Validation


def _raises(build, fn, arg, shown=None):
  with pytest.raises(ValueError,
                     match=rf"^torch_like\.{fn}: .*{re.escape(arg)}") as info:
    build()
  if shown is not None:
    assert shown in str(info.value), str(info.value)
  return str(info.value)


TORCH_ONLY = {"foreach": True, "fused": True, "capturable": True,
              "differentiable": True}


@pytest.mark.parametrize("name", NAMES)
def test_torch_only_flags_need_their_defaults(name):
  params = inspect.signature(getattr(tl, name)).parameters
  flags = [f for f in TORCH_ONLY if f in params]
  assert flags
  make = getattr(tl, name)
  make(**{f: params[f].default for f in flags})  # the defaults are fine
  for flag in flags:
    bad = [TORCH_ONLY[flag]] + ([False] if params[flag].default is None
                                else [])
    for value in bad:
      msg = _raises(functools.partial(make, **{flag: value}), name, flag,
                    f"{flag}={value!r}")
      assert "does not apply in JAX" in msg


BAD = [
    ("SGD", {"lr": -0.1}, "lr", "lr=-0.1"),
    ("SGD", {"momentum": -0.5}, "momentum", "momentum=-0.5"),
    ("SGD", {"momentum": 1.0}, "momentum", "momentum=1.0"),
    ("SGD", {"momentum": 0.9, "dampening": 1.0}, "dampening",
     "dampening=1.0"),
    ("SGD", {"weight_decay": -1e-4}, "weight_decay", "weight_decay=-0.0001"),
    ("SGD", {"momentum": 0.9, "dampening": lambda t: 0.1}, "dampening",
     None),
    ("SGD", {"nesterov": True}, "nesterov", "momentum=0"),
    ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
     "nesterov", "dampening=0.1"),
    ("SGD", {"maximize": "yes"}, "maximize", "maximize='yes'"),
    ("Adam", {"betas": (1.0, 0.999)}, "betas[0]", "betas[0]=1.0"),
    ("Adam", {"betas": (0.9, -0.1)}, "betas[1]", "betas[1]=-0.1"),
    ("Adam", {"betas": 0.9}, "betas", "betas=0.9"),
    ("Adam", {"eps": -1e-8}, "eps", "eps=-1e-08"),
    ("Adam", {"amsgrad": None}, "amsgrad", "amsgrad=None"),
    ("AdamW", {"weight_decay": -0.01}, "weight_decay", None),
    ("AdamW", {"lr": float("nan")}, "lr", "lr=nan"),
    ("AdamW", {"lr": None}, "lr", None),
    ("RMSprop", {"alpha": 1.5}, "alpha", "alpha=1.5"),
    ("RMSprop", {"momentum": -0.1}, "momentum", "momentum=-0.1"),
    ("RMSprop", {"centered": 1}, "centered", "centered=1"),
    ("Adagrad", {"lr_decay": -1.0}, "lr_decay", "lr_decay=-1.0"),
    ("Adagrad", {"initial_accumulator_value": -0.1},
     "initial_accumulator_value", "initial_accumulator_value=-0.1"),
    ("Adadelta", {"rho": 1.0}, "rho", "rho=1.0"),
    ("NAdam", {"momentum_decay": -4e-3}, "momentum_decay",
     "momentum_decay=-0.004"),
    ("NAdam", {"betas": (0.9, 0.999, 0.1)}, "betas", None),
    ("RAdam", {"decoupled_weight_decay": 1}, "decoupled_weight_decay", None),
    ("RAdam", {"eps": "1e-8"}, "eps", None),
    ("Rprop", {"etas": (1.0, 1.2)}, "etas[0]", "etas[0]=1.0"),
    ("Rprop", {"etas": (0.5, 1.0)}, "etas[1]", "etas[1]=1.0"),
    ("Rprop", {"step_sizes": (1.0, 0.1)}, "step_sizes", None),
    ("Rprop", {"step_sizes": (-1e-6, 50)}, "step_sizes[0]", None),
    ("Rprop", {"lr": gradtx.constant_schedule(0.1)}, "lr", None),
    ("Adamax", {"betas": (0.9, 1.0)}, "betas[1]", "betas[1]=1.0"),
]


@pytest.mark.parametrize("case", BAD, ids=lambda c: f"{c[0]}-{c[2]}")
def test_bad_arguments(case):
  name, kwargs, arg, shown = case
  _raises(lambda: getattr(tl, name)(**kwargs), name, arg, shown)


@pytest.mark.parametrize("build, fn, arg", [
    (lambda: tl.scale_by_nadam(momentum_decay=-1.0), "scale_by_nadam",
     "momentum_decay"),
    (lambda: tl.scale_by_nadam(b1=1.0), "scale_by_nadam", "b1"),
    (lambda: tl.scale_by_radam(b2=1.5), "scale_by_radam", "b2"),
    (lambda: tl.scale_by_radam(eps=-1.0), "scale_by_radam", "eps"),
    (lambda: tl.add_decoupled_weight_decay(1e-3, -0.1),
     "add_decoupled_weight_decay", "weight_decay"),
    (lambda: tl.add_decoupled_weight_decay(-1e-3, 0.1),
     "add_decoupled_weight_decay", "learning_rate"),
])
def test_new_primitives_validate(build, fn, arg):
  _raises(build, fn, arg)


def test_new_primitives_take_schedules():
  # Schedules and traced hyperparameters take the plain formulas for the
  # step scalars; the numbers agree with the constant ones.
  const = lambda v: lambda count: jnp.asarray(v)
  pairs = [
      (tl.scale_by_nadam(0.9, 0.999, 1e-8, 4e-3),
       tl.scale_by_nadam(const(0.9), const(0.999), 1e-8, const(4e-3))),
      (tl.scale_by_radam(0.9, 0.999), tl.scale_by_radam(const(0.9),
                                                        const(0.999))),
      (gradtx.chain(tl.add_decoupled_weight_decay(1e-3, 0.1),
                    gradtx.scale_by_learning_rate(1e-3)),
       gradtx.chain(tl.add_decoupled_weight_decay(const(1e-3), 0.1),
                    gradtx.scale_by_learning_rate(const(1e-3)))),
  ]
  params = jnp.asarray(P0["w"], jnp.float32)
  grads = jnp.asarray(NOISE["w"][:8], jnp.float32)

  def run(tx):
    def body(state, g):
      updates, state = tx.update(g, state, params)
      return state, updates
    return jax.lax.scan(body, tx.init(params), grads)[1]

  got = jax.jit(lambda: [(run(a), run(b)) for a, b in pairs])()
  for ua, ub in got:
    np.testing.assert_allclose(ua, ub, rtol=1e-6, atol=1e-12)
