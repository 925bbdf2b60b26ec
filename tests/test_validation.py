"""Construction-time validation of hyperparameters.

Every invalid *concrete* hyperparameter raises ``ValueError`` when the
transform is built, and the message starts with ``"<function>: <argument>"``.
The function named is the one that checks the argument: for the named
optimizers that is often the primitive they delegate to (``adam(b1=1.5)``
reports ``scale_by_adam: b1 ...``, ``adamw(weight_decay=-1)`` reports
``add_decayed_weights: weight_decay ...``). Schedules (callables) and traced
values are not checked: their value is only known when the step runs.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

NAN = float("nan")
KEY = jax.random.key(0)
LR = 1e-2


def _check(build, fn, arg, value=None, *, show_value=True):
  """Asserts ``build()`` raises ValueError naming ``fn`` and ``arg``."""
  with pytest.raises(ValueError, match=rf"^{re.escape(fn)}: .*\b{arg}\b"
                     ) as info:
    build()
  msg = str(info.value)
  if show_value:
    # The message names the offending value as ``arg=<repr>``.
    assert f"{arg}={value!r}" in msg, msg


# --------------------------------------------------------------------------
# b1 / b2


ADAM_LIKE = {
    # name: (factory taking b1/b2 keywords, function named in the message)
    "adam": (lambda **kw: gradtx.adam(LR, **kw), "scale_by_adam"),
    "adamw": (lambda **kw: gradtx.adamw(LR, **kw), "scale_by_adam"),
    "nadam": (lambda **kw: gradtx.nadam(LR, **kw), "scale_by_adam"),
    "nadamw": (lambda **kw: gradtx.nadamw(LR, **kw), "scale_by_adam"),
    "adamax": (lambda **kw: gradtx.adamax(LR, **kw), "scale_by_adamax"),
    "scale_by_adam": (gradtx.scale_by_adam, "scale_by_adam"),
    "scale_by_adamax": (gradtx.scale_by_adamax, "scale_by_adamax"),
}
BAD_DECAYS = [1.5, -0.1, 1.0, NAN, np.float64(1.0), -1]


@pytest.mark.parametrize("name", sorted(ADAM_LIKE))
@pytest.mark.parametrize("arg", ["b1", "b2"])
@pytest.mark.parametrize("value", BAD_DECAYS, ids=repr)
def test_bad_beta(name, arg, value):
  make, fn = ADAM_LIKE[name]
  _check(lambda: make(**{arg: value}), fn, arg, value)
  with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
    make(**{arg: value})


@pytest.mark.parametrize("name", sorted(ADAM_LIKE))
def test_beta_as_concrete_array_is_checked(name):
  make, fn = ADAM_LIKE[name]
  with pytest.raises(ValueError, match=rf"^{fn}: b1\b"):
    make(b1=jnp.asarray(1.5))
  with pytest.raises(ValueError, match=rf"^{fn}: b2\b"):
    make(b2=np.array(-0.5))


@pytest.mark.parametrize("name", sorted(ADAM_LIKE))
def test_beta_boundary_values_are_accepted(name):
  make, _ = ADAM_LIKE[name]
  make(b1=0.0, b2=0.0)
  make(b1=0, b2=0.999999)


# --------------------------------------------------------------------------
# learning_rate


NAMED = {
    # name: (factory taking the learning rate, function named in the message)
    "sgd": (lambda lr: gradtx.sgd(lr), "sgd"),
    "sgdw": (lambda lr: gradtx.sgdw(lr), "sgdw"),
    "adagrad": (lambda lr: gradtx.adagrad(lr), "adagrad"),
    # adadelta's learning rate is checked by the primitive it delegates to.
    "adadelta": (lambda lr: gradtx.adadelta(lr), "scale_by_learning_rate"),
    "rmsprop": (lambda lr: gradtx.rmsprop(lr), "rmsprop"),
    # rprop's learning rate is the initial step size of scale_by_rprop.
    "rprop": (lambda lr: gradtx.rprop(lr), "scale_by_rprop"),
    "adam": (lambda lr: gradtx.adam(lr), "adam"),
    "adamw": (lambda lr: gradtx.adamw(lr), "adamw"),
    "adamax": (lambda lr: gradtx.adamax(lr), "adamax"),
    "nadam": (lambda lr: gradtx.nadam(lr), "nadam"),
    "nadamw": (lambda lr: gradtx.nadamw(lr), "nadamw"),
    "noisy_sgd": (lambda lr: gradtx.noisy_sgd(lr, key=KEY), "noisy_sgd"),
    "scale_by_learning_rate": (gradtx.scale_by_learning_rate,
                               "scale_by_learning_rate"),
}


@pytest.mark.parametrize("name", sorted(NAMED))
@pytest.mark.parametrize("value", [-1e-3, -1, NAN, np.float32(-0.5)],
                         ids=repr)
def test_bad_learning_rate(name, value):
  make, fn = NAMED[name]
  _check(lambda: make(value), fn, "learning_rate", value)


@pytest.mark.parametrize("name", sorted(NAMED))
def test_learning_rate_concrete_array_is_checked(name):
  make, fn = NAMED[name]
  with pytest.raises(ValueError, match=rf"^{fn}: learning_rate\b"):
    make(jnp.asarray(-0.1))


@pytest.mark.parametrize("name", sorted(NAMED))
def test_zero_learning_rate_is_accepted(name):
  make, _ = NAMED[name]
  make(0.0)
  make(0)


def test_learning_rate_message_explains_the_sign():
  with pytest.raises(ValueError, match="positive step size"):
    gradtx.sgd(-0.1)


# --------------------------------------------------------------------------
# eps / eps_root


EPS_CASES = [
    ("adam", lambda **kw: gradtx.adam(LR, **kw), "scale_by_adam", "eps"),
    ("adam", lambda **kw: gradtx.adam(LR, **kw), "scale_by_adam", "eps_root"),
    ("adamw", lambda **kw: gradtx.adamw(LR, **kw), "scale_by_adam", "eps"),
    ("adamw", lambda **kw: gradtx.adamw(LR, **kw), "scale_by_adam",
     "eps_root"),
    ("nadam", lambda **kw: gradtx.nadam(LR, **kw), "scale_by_adam", "eps"),
    ("nadamw", lambda **kw: gradtx.nadamw(LR, **kw), "scale_by_adam",
     "eps_root"),
    ("adamax", lambda **kw: gradtx.adamax(LR, **kw), "scale_by_adamax", "eps"),
    ("adagrad", lambda **kw: gradtx.adagrad(LR, **kw), "scale_by_rss", "eps"),
    ("adadelta", lambda **kw: gradtx.adadelta(LR, **kw), "scale_by_adadelta",
     "eps"),
    ("rmsprop", lambda **kw: gradtx.rmsprop(LR, **kw), "scale_by_rms", "eps"),
    ("rmsprop_centered",
     lambda **kw: gradtx.rmsprop(LR, centered=True, **kw), "scale_by_stddev",
     "eps"),
    ("scale_by_adam", gradtx.scale_by_adam, "scale_by_adam", "eps"),
    ("scale_by_adam", gradtx.scale_by_adam, "scale_by_adam", "eps_root"),
    ("scale_by_rss", gradtx.scale_by_rss, "scale_by_rss", "eps"),
    ("scale_by_rms", gradtx.scale_by_rms, "scale_by_rms", "eps"),
    ("scale_by_stddev", gradtx.scale_by_stddev, "scale_by_stddev", "eps"),
    ("scale_by_adadelta", gradtx.scale_by_adadelta, "scale_by_adadelta",
     "eps"),
]


@pytest.mark.parametrize("name,make,fn,arg", EPS_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in EPS_CASES])
@pytest.mark.parametrize("value", [-1e-8, NAN], ids=repr)
def test_bad_eps(name, make, fn, arg, value):
  del name
  _check(lambda: make(**{arg: value}), fn, arg, value)


@pytest.mark.parametrize("name,make,fn,arg", EPS_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in EPS_CASES])
def test_zero_eps_is_accepted(name, make, fn, arg):
  del name, fn
  make(**{arg: 0.0})


# --------------------------------------------------------------------------
# momentum, nesterov


MOMENTUM = {
    "sgd": lambda **kw: gradtx.sgd(LR, **kw),
    "sgdw": lambda **kw: gradtx.sgdw(LR, **kw),
    "rmsprop": lambda **kw: gradtx.rmsprop(LR, **kw),
}


@pytest.mark.parametrize("name", sorted(MOMENTUM))
@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, NAN], ids=repr)
def test_bad_momentum(name, value):
  _check(lambda: MOMENTUM[name](momentum=value), name, "momentum", value)
  with pytest.raises(ValueError, match=r"\[0, 1\)"):
    MOMENTUM[name](momentum=value, nesterov=True)


@pytest.mark.parametrize("name", sorted(MOMENTUM))
def test_momentum_boundaries_accepted(name):
  MOMENTUM[name](momentum=0.0)
  MOMENTUM[name](momentum=0.99, nesterov=True)


@pytest.mark.parametrize("name", sorted(MOMENTUM))
def test_nesterov_without_momentum(name):
  with pytest.raises(ValueError,
                     match=rf"^{name}: nesterov=True needs a momentum"):
    MOMENTUM[name](nesterov=True)


# --------------------------------------------------------------------------
# decay / rho


DECAY_CASES = [
    ("rmsprop", lambda v: gradtx.rmsprop(LR, decay=v), "scale_by_rms",
     "decay"),
    ("rmsprop_centered", lambda v: gradtx.rmsprop(LR, decay=v, centered=True),
     "scale_by_stddev", "decay"),
    ("ema", lambda v: gradtx.ema(v), "ema", "decay"),
    ("scale_by_rms", lambda v: gradtx.scale_by_rms(v), "scale_by_rms",
     "decay"),
    ("scale_by_stddev", lambda v: gradtx.scale_by_stddev(v),
     "scale_by_stddev", "decay"),
    ("adadelta", lambda v: gradtx.adadelta(LR, rho=v), "scale_by_adadelta",
     "rho"),
    ("adadelta_no_lr", lambda v: gradtx.adadelta(rho=v), "scale_by_adadelta",
     "rho"),
    ("scale_by_adadelta", lambda v: gradtx.scale_by_adadelta(rho=v),
     "scale_by_adadelta", "rho"),
]


@pytest.mark.parametrize("name,make,fn,arg", DECAY_CASES,
                         ids=[c[0] for c in DECAY_CASES])
@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, NAN], ids=repr)
def test_bad_decay(name, make, fn, arg, value):
  del name
  _check(lambda: make(value), fn, arg, value)


@pytest.mark.parametrize("name,make,fn,arg", DECAY_CASES,
                         ids=[c[0] for c in DECAY_CASES])
def test_decay_boundaries_accepted(name, make, fn, arg):
  del name, fn, arg
  make(0.0)
  make(0.999)


# --------------------------------------------------------------------------
# weight_decay, initial accumulators


WD_CASES = [
    ("adamw", lambda v: gradtx.adamw(LR, weight_decay=v)),
    ("adamw_masked", lambda v: gradtx.adamw(LR, weight_decay=v,
                                            mask={"w": True})),
    ("nadamw", lambda v: gradtx.nadamw(LR, weight_decay=v)),
    ("sgdw", lambda v: gradtx.sgdw(LR, weight_decay=v)),
    ("adadelta", lambda v: gradtx.adadelta(LR, weight_decay=v)),
    ("add_decayed_weights", lambda v: gradtx.add_decayed_weights(v)),
]


@pytest.mark.parametrize("name,make", WD_CASES, ids=[c[0] for c in WD_CASES])
@pytest.mark.parametrize("value", [NAN], ids=repr)
def test_bad_weight_decay(name, make, value):
  del name
  _check(lambda: make(value), "add_decayed_weights", "weight_decay", value)


@pytest.mark.parametrize(
    "make,fn,arg",
    [(lambda v: gradtx.adagrad(LR, initial_accumulator_value=v),
      "scale_by_rss", "initial_accumulator_value"),
     (lambda v: gradtx.scale_by_rss(initial_accumulator_value=v),
      "scale_by_rss", "initial_accumulator_value"),
     (lambda v: gradtx.rmsprop(LR, initial_scale=v), "scale_by_rms",
      "initial_scale"),
     (lambda v: gradtx.rmsprop(LR, initial_scale=v, centered=True),
      "scale_by_stddev", "initial_scale")],
    ids=["adagrad", "scale_by_rss", "rmsprop", "rmsprop_centered"])
def test_bad_initial_accumulator(make, fn, arg):
  _check(lambda: make(-0.1), fn, arg, -0.1)
  make(0.0)


# --------------------------------------------------------------------------
# rprop


RPROP = {
    "rprop": lambda **kw: gradtx.rprop(LR, **kw),
    "scale_by_rprop": lambda **kw: gradtx.scale_by_rprop(LR, **kw),
}


@pytest.mark.parametrize("name", sorted(RPROP))
@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, -0.5, NAN], ids=repr)
def test_rprop_bad_eta_minus(name, value):
  _check(lambda: RPROP[name](eta_minus=value), "scale_by_rprop", "eta_minus",
         value)


@pytest.mark.parametrize("name", sorted(RPROP))
@pytest.mark.parametrize("value", [0.999, 0.5, -1.0, NAN], ids=repr)
def test_rprop_bad_eta_plus(name, value):
  _check(lambda: RPROP[name](eta_plus=value), "scale_by_rprop", "eta_plus",
         value)


@pytest.mark.parametrize("name", sorted(RPROP))
def test_rprop_step_size_bounds(name):
  make = RPROP[name]
  with pytest.raises(ValueError, match=r"^scale_by_rprop: max_step_size must "
                     r"be >= min_step_size.*min_step_size=1\.0.*"
                     r"max_step_size=0\.5"):
    make(min_step_size=1.0, max_step_size=0.5)
  _check(lambda: make(min_step_size=-1e-6), "scale_by_rprop",
         "min_step_size", -1e-6)
  _check(lambda: make(max_step_size=-1.0), "scale_by_rprop",
         "max_step_size", -1.0)


@pytest.mark.parametrize("name", sorted(RPROP))
def test_rprop_boundaries_accepted(name):
  make = RPROP[name]
  make(eta_minus=0.999, eta_plus=1.0)
  make(min_step_size=0.5, max_step_size=0.5)
  make(min_step_size=0.0)


# --------------------------------------------------------------------------
# clipping


@pytest.mark.parametrize("value", [-1.0, -1, NAN], ids=repr)
def test_clip_bad_max_delta(value):
  _check(lambda: gradtx.clip(value), "clip", "max_delta", value)


@pytest.mark.parametrize("value", [-1.0, -1, NAN], ids=repr)
def test_clip_by_global_norm_bad_max_norm(value):
  _check(lambda: gradtx.clip_by_global_norm(value), "clip_by_global_norm",
         "max_norm", value)


def test_clip_zero_accepted():
  gradtx.clip(0.0)
  gradtx.clip_by_global_norm(0.0)


# --------------------------------------------------------------------------
# noise


NOISE = {
    "add_noise": lambda **kw: gradtx.add_noise(**{"eta": 0.01, "gamma": 0.55,
                                                  **kw}),
    "noisy_sgd": lambda **kw: gradtx.noisy_sgd(LR, **kw),
}


@pytest.mark.parametrize("name", sorted(NOISE))
def test_noise_needs_a_key(name):
  with pytest.raises(ValueError, match=r"^add_noise: pass an explicit PRNG "
                     r"key.*key="):
    NOISE[name]()
  with pytest.raises(ValueError, match=r"^add_noise: .*key"):
    NOISE[name](key=None)


@pytest.mark.parametrize("name", sorted(NOISE))
@pytest.mark.parametrize(
    "bad_key", ["abc", 1.5, True, jax.random.PRNGKey(0), np.zeros(2)],
    ids=["str", "float", "bool", "raw_uint32_key", "ndarray"])
def test_noise_bad_key_type(name, bad_key):
  with pytest.raises(ValueError, match=r"^add_noise: key must be a typed "
                     r"PRNG key"):
    NOISE[name](key=bad_key)


@pytest.mark.parametrize("name", sorted(NOISE))
def test_noise_good_keys_accepted(name):
  NOISE[name](key=KEY)
  NOISE[name](key=0)
  NOISE[name](key=jax.random.wrap_key_data(jax.random.PRNGKey(1)))


@pytest.mark.parametrize("name", sorted(NOISE))
@pytest.mark.parametrize("arg", ["eta", "gamma"])
def test_noise_bad_eta_gamma(name, arg):
  _check(lambda: NOISE[name](key=KEY, **{arg: -0.01}), "add_noise", arg,
         -0.01)


# --------------------------------------------------------------------------
# dtypes


DTYPE_CASES = [
    ("adam", lambda **kw: gradtx.adam(LR, **kw), "scale_by_adam", "mu_dtype"),
    ("adam", lambda **kw: gradtx.adam(LR, **kw), "scale_by_adam", "nu_dtype"),
    ("adamw", lambda **kw: gradtx.adamw(LR, **kw), "scale_by_adam",
     "mu_dtype"),
    ("nadam", lambda **kw: gradtx.nadam(LR, **kw), "scale_by_adam",
     "mu_dtype"),
    ("nadamw", lambda **kw: gradtx.nadamw(LR, **kw), "scale_by_adam",
     "nu_dtype"),
    ("scale_by_adam", gradtx.scale_by_adam, "scale_by_adam", "mu_dtype"),
    ("sgd", lambda **kw: gradtx.sgd(LR, momentum=0.9, **kw), "trace",
     "accumulator_dtype"),
    ("trace", lambda **kw: gradtx.trace(0.9, **kw), "trace",
     "accumulator_dtype"),
    ("ema", lambda **kw: gradtx.ema(0.9, **kw), "ema", "accumulator_dtype"),
]


@pytest.mark.parametrize("name,make,fn,arg", DTYPE_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in DTYPE_CASES])
@pytest.mark.parametrize("value", ["int32", jnp.int8, "bool", "notadtype",
                                   [1]], ids=repr)
def test_bad_dtype(name, make, fn, arg, value):
  del name
  _check(lambda: make(**{arg: value}), fn, arg, value)


@pytest.mark.parametrize("name,make,fn,arg", DTYPE_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in DTYPE_CASES])
def test_good_dtypes_accepted(name, make, fn, arg):
  del name, fn
  for value in ["float32", jnp.bfloat16, np.float64, None]:
    make(**{arg: value})


# --------------------------------------------------------------------------
# schedules and traced values pass through


def test_schedules_are_not_checked():
  gradtx.adam(lambda c: -1.0)
  gradtx.sgd(lambda c: -1.0, momentum=0.9)
  gradtx.adamw(LR, weight_decay=lambda c: -1.0)
  gradtx.add_noise(lambda c: -1.0, 0.55, key=KEY)
  gradtx.scale_by_learning_rate(lambda c: -1.0)


def test_negative_schedule_runs():
  # The schedule's value is the user's business: a negative learning rate
  # from a schedule ascends instead of raising.
  tx = gradtx.adam(lambda c: -1.0)
  p = jnp.array([1.0, -2.0])
  u, _ = tx.update(jnp.array([0.5, 0.5]), tx.init(p), p)
  np.testing.assert_allclose(u, [1.0, 1.0], rtol=1e-6)


def test_traced_learning_rate_builds_inside_jit():
  params = {"w": jnp.array([1.0, -2.0, 3.0])}
  grads = {"w": jnp.array([0.5, -0.25, 1.0])}

  def step(lr):
    tx = gradtx.adam(lr)
    u, s = tx.update(grads, tx.init(params), params)
    return u, s

  got_u, got_s = jax.jit(step)(1e-2)
  want_u, want_s = step(1e-2)
  np.testing.assert_allclose(got_u["w"], want_u["w"], rtol=1e-12)
  np.testing.assert_allclose(got_u["w"], -1e-2 * jnp.sign(grads["w"]),
                             rtol=1e-6)
  assert int(got_s[0].count) == int(want_s[0].count) == 1


def test_traced_invalid_value_is_not_checked():
  # A traced value is only known at run time, so even a bad one constructs.
  p = jnp.array([1.0, -2.0])
  g = jnp.array([0.5, 0.5])

  def step(lr, b1, wd, eps):
    tx = gradtx.adamw(lr, b1=b1, weight_decay=wd, eps=eps)
    return tx.update(g, tx.init(p), p)[0]

  out = jax.jit(step)(-1e-2, 0.9, 1e-2, 1e-8)
  assert out.shape == (2,) and bool(jnp.all(jnp.isfinite(out)))
  jax.jit(step)(1e-2, 1.5, -1.0, -1.0)  # builds and runs, no ValueError


@pytest.mark.parametrize("name", sorted(NAMED))
def test_every_named_optimizer_builds_with_traced_lr(name):
  make, _ = NAMED[name]
  p = jnp.array([1.0, -2.0])
  g = jnp.array([0.5, -0.5])

  def step(lr):
    tx = make(lr)
    return tx.update(g, tx.init(p), p)[0]

  got = jax.jit(step)(1e-2)
  want = jax.jit(lambda: step(1e-2))()  # built from the concrete value
  np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
  assert bool(jnp.all(got != 0))


def test_traced_hyperparameters_of_primitives_build_inside_jit():
  p = jnp.array([1.0, -2.0])
  g = jnp.array([0.5, -0.5])

  @jax.jit
  def step(b, e):
    txs = [gradtx.scale_by_adam(b, b, e, e), gradtx.scale_by_rms(b, e),
           gradtx.trace(b), gradtx.ema(b), gradtx.clip(e),
           gradtx.clip_by_global_norm(e), gradtx.scale_by_adadelta(b, e),
           gradtx.scale_by_rprop(e, min_step_size=e, max_step_size=e)]
    return [tx.update(g, tx.init(p), p)[0] for tx in txs]

  for out in step(0.9, 1e-3):
    assert bool(jnp.all(jnp.isfinite(out)))


# --------------------------------------------------------------------------
# chain construction


@pytest.mark.parametrize("factory", [gradtx.adam, gradtx.sgd, optax.adam],
                         ids=["gradtx.adam", "gradtx.sgd", "optax.adam"])
def test_chain_rejects_a_factory(factory):
  with pytest.raises(TypeError, match=r"^chain: member #0 .*not a gradient "
                     r"transformation.*Did you pass a factory such as "
                     r"gradtx\.adam instead of gradtx\.adam\(1e-3\)\?"):
    gradtx.chain(factory)


def test_chain_names_the_bad_member():
  with pytest.raises(TypeError, match=r"^chain: member #1 "):
    gradtx.chain(gradtx.clip(1.0), gradtx.adam, gradtx.scale(-1.0))
  with pytest.raises(TypeError, match=r"^chain: member #0 is None"):
    gradtx.chain(None)


def test_named_chain_rejects_a_factory():
  with pytest.raises(TypeError, match=r"^named_chain: member 'opt' .*"
                     r"gradtx\.adam\(1e-3\)"):
    gradtx.named_chain(("clip", gradtx.clip(1.0)), ("opt", gradtx.adam))


def test_named_chain_rejects_duplicate_names():
  with pytest.raises(ValueError, match=r"^named_chain: names must be unique"):
    gradtx.named_chain(("a", gradtx.clip(1.0)), ("a", gradtx.sgd(0.1)))


def test_message_is_a_full_sentence():
  with pytest.raises(ValueError) as info:
    gradtx.adam(LR, b1=1.5)
  msg = str(info.value)
  assert msg.startswith("scale_by_adam: b1 must be in [0, 1), got b1=1.5.")
  assert "0.9" in msg  # says what a usual value is


# --- non-numbers and non-finite values are refused at construction ---------


@pytest.mark.parametrize("bad", [float("inf"), "0.1", 1j,
                                 jnp.array([1e-3, 2e-3])],
                         ids=["inf", "str", "complex", "vector"])
def test_learning_rate_must_be_a_finite_real_scalar(bad):
  with pytest.raises(ValueError, match=r"^sgd: .*learning_rate"):
    gradtx.sgd(bad)


def test_b1_array_of_several_entries_is_refused():
  with pytest.raises(ValueError, match=r"scale_by_adam: b1 .*shape \(1,\)"):
    gradtx.adam(1e-3, b1=jnp.array([1.5]))


def test_rprop_refuses_a_schedule_for_its_initial_step_size():
  with pytest.raises(ValueError, match="scale_by_rprop: learning_rate is"):
    gradtx.rprop(lambda c: 0.1)


@pytest.mark.parametrize("seed", [np.int64(3), np.int32(3), jnp.asarray(3)],
                         ids=["np.int64", "np.int32", "0-d jax int"])
def test_integer_seeds_of_any_kind_are_accepted(seed):
  tx = gradtx.add_noise(0.1, 0.55, key=seed)
  state = tx.init(jnp.ones(2))
  ref = gradtx.add_noise(0.1, 0.55, key=3).init(jnp.ones(2))
  assert np.array_equal(jax.random.key_data(state.rng_key),
                        jax.random.key_data(ref.rng_key))


def test_traced_integer_seed_works_inside_jit():
  out = jax.jit(lambda s: gradtx.noisy_sgd(0.1, key=s).update(
      jnp.zeros(2), gradtx.noisy_sgd(0.1, key=s).init(jnp.ones(2)))[0])(3)
  assert out.shape == (2,) and bool(jnp.all(out != 0))


def test_a_batch_of_keys_is_refused():
  with pytest.raises(ValueError, match=r"add_noise: key must be a single"):
    gradtx.add_noise(0.1, 0.55, key=jax.random.split(jax.random.key(0), 3))
