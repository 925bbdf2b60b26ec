"""Every kind of bad input in docs/robustness.md, and what gradtx does with it.

Each row of the table in ``docs/robustness.md`` names the test that backs
it; :func:`test_every_row_names_an_existing_test` checks that each named
test exists and that every test here is named by a row, so the table and
the tests cannot drift apart. Error tests pin the message: the transform,
the key path, what was expected and what came.
"""

import ast
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "robustness.md"

# float32 leaves of one shape, as in test_numerics: a test session compiles
# each eager primitive once for both files.
F32 = jnp.float32
PARAMS = {"w": jnp.ones((3, 2), F32), "b": jnp.zeros((3, 2), F32)}


def _grads(**change):
  g = {"w": jnp.full((3, 2), 0.5, F32), "b": jnp.ones((3, 2), F32)}
  g.update(change)
  return g


def _step(tx, grads, params=PARAMS):
  return tx.update(grads, tx.init(params), params)


# --------------------------------------------------------------------------
# The table and the tests name each other.


def _rows():
  """(bad input, test reference) for every row of the table."""
  rows = []
  for line in DOC.read_text().splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if not line.startswith("|") or len(cells) < 4 or not cells[0].isdigit():
      continue
    refs = re.findall(r"`((?:test_\w+\.py::)?test_\w+)`", cells[-1])
    rows.append((cells[1], refs))
  return rows


def _test_names(path):
  tree = ast.parse(path.read_text())
  return {n.name for n in tree.body
          if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_row_names_an_existing_test():
  rows = _rows()
  assert len(rows) >= 30, f"only {len(rows)} rows in {DOC.name}"
  named = set()
  for bad, refs in rows:
    assert refs, f"the row {bad!r} names no test"
    for ref in refs:
      file, _, name = ref.rpartition("::")
      path = pathlib.Path(__file__).parent / (file or "test_bad_inputs.py")
      assert name in _test_names(path), f"{ref} (row {bad!r}) does not exist"
      if not file:
        named.add(name)
  unnamed = _test_names(pathlib.Path(__file__)) - named - {
      "test_every_row_names_an_existing_test"}
  assert not unnamed, f"tests that no row of {DOC.name} names: {unnamed}"


# --------------------------------------------------------------------------
# Tree structure


def test_missing_key():
  tx = gradtx.adam(1e-3)
  with pytest.raises(ValueError, match=r"(?s)scale_by_adam: the updates do "
                     r"not match the optimizer state.*in the state but not "
                     r"in the updates: \['b'\]"):
    tx.update({"w": jnp.ones((3, 2), F32)}, tx.init(PARAMS))


def test_extra_key():
  tx = gradtx.rmsprop(1e-3)
  with pytest.raises(ValueError, match=r"(?s)scale_by_rms: .*in the updates "
                     r"but not in the state: \['c'\]"):
    tx.update(_grads(c=jnp.ones(2, F32)), tx.init(PARAMS))


@pytest.mark.parametrize("params,grads", [
    ((jnp.ones(2),), [jnp.ones(2)]),
    ({"a": jnp.ones(2)}, [jnp.ones(2)]),
], ids=["tuple_vs_list", "dict_vs_list"])
def test_different_container_type(params, grads):
  tx = gradtx.adam(1e-3)
  with pytest.raises(ValueError, match=r"(?s)scale_by_adam: the updates do "
                     r"not match the optimizer state"):
    tx.update(grads, tx.init(params))


def test_wrong_shape():
  tx = gradtx.adam(1e-3)
  with pytest.raises(ValueError, match=r"scale_by_adam: shape mismatch at "
                     r"\['b'\]: the update has shape \(4,\) but state tree "
                     r"#1 holds \(3, 2\)"):
    tx.update(_grads(b=jnp.ones(4, F32)), tx.init(PARAMS))


@pytest.mark.parametrize("shape", [(3, 1), (1, 2), (2,), ()])
def test_broadcastable_shape_is_not_broadcast(shape):
  # With rank promotion allowed, jnp would broadcast any of these against
  # the (3, 2) state; gradtx refuses before any arithmetic.
  tx = gradtx.sgd(0.1, momentum=0.9)
  with jax.numpy_rank_promotion("allow"):
    with pytest.raises(ValueError, match=r"trace: shape mismatch at "
                       r"\['b'\]: the update has shape " + re.escape(
                           str(shape))):
      tx.update(_grads(b=jnp.ones(shape, F32)), tx.init(PARAMS))


@pytest.mark.parametrize("empty", [{}, (), []])
def test_empty_tree(empty):
  tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-3))
  updates, state = tx.update(empty, tx.init(empty), empty)
  assert updates == empty
  assert int(state[1][0].count) == 1


def test_zero_size_leaves():
  params = {"a": jnp.ones((0, 3), F32), "b": jnp.ones((3, 2), F32)}
  tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-3))
  updates, _ = _step(tx, params, params)
  assert updates["a"].shape == (0, 3)
  assert bool(jnp.all(jnp.isfinite(updates["b"])))


def test_none_leaves_for_none_params():
  tx = gradtx.adamw(1e-3)
  params = {"a": jnp.ones((3, 2), F32), "frozen": None}
  updates, state = _step(tx, params, params)
  assert updates["frozen"] is None and state[0].mu["frozen"] is None


def test_none_update_for_a_param_with_state():
  tx = gradtx.adam(1e-3)
  with pytest.raises(ValueError, match=r"scale_by_adam: the update at "
                     r"\['b'\] is None but state tree #1 holds an array of "
                     r"shape \(3, 2\) and dtype float32 there; a None update "
                     r"would drop that state"):
    tx.update(_grads(b=None), tx.init(PARAMS))


def test_none_update_skips_weight_decay():
  tx = gradtx.add_decayed_weights(0.1)
  updates, _ = tx.update(_grads(b=None), tx.init(PARAMS), PARAMS)
  assert updates["b"] is None
  np.testing.assert_allclose(updates["w"], 0.5 + 0.1)


# --------------------------------------------------------------------------
# Leaf types


@pytest.mark.parametrize("make", [lambda: gradtx.sgd(0.1),
                                  lambda: gradtx.adam(1e-3)])
def test_integer_gradients(make):
  tx = make()
  with pytest.raises(TypeError, match=r"the update at \['b'\] has dtype "
                     r"int32; gradients must be floating or complex"):
    tx.update(_grads(b=jnp.ones((3, 2), jnp.int32)), tx.init(PARAMS))


def test_boolean_gradients():
  tx = gradtx.adam(1e-3)
  with pytest.raises(TypeError, match=r"scale_by_adam: the update at "
                     r"\['b'\] has dtype bool; gradients must be floating"):
    tx.update(_grads(b=jnp.ones((3, 2), bool)), tx.init(PARAMS))


def test_python_scalar_gradients():
  tx = gradtx.adam(1e-3)
  params = {"s": jnp.asarray(0.3, F32)}
  with pytest.raises(TypeError, match=r"scale_by_adam: the update at "
                     r"\['s'\] is a float \(0.5\), not an array; .*"
                     r"jnp.asarray"):
    tx.update({"s": 0.5}, tx.init(params))


def test_python_scalar_params():
  tx = gradtx.adam(0.1)
  params = {"s": 0.3}
  state = tx.init(params)
  assert state[0].mu["s"].dtype == jnp.float64
  assert not state[0].mu["s"].weak_type
  updates, _ = tx.update({"s": jnp.asarray(1.0)}, state, params)
  new = gradtx.apply_updates(params, updates)
  np.testing.assert_allclose(new["s"], 0.3 - 0.1, rtol=1e-6)


@pytest.mark.parametrize("leaf,what", [("abc", r"a str \('abc'\)"),
                                       (object, r"a type")])
def test_non_array_gradient_leaves(leaf, what):
  tx = gradtx.sgd(0.1, momentum=0.9)
  with pytest.raises(TypeError, match=r"trace: the update at \['b'\] is "
                     + what + r".*, not an array"):
    tx.update(_grads(b=leaf), tx.init(PARAMS))


def test_non_array_param_leaves():
  with pytest.raises(TypeError, match=r"gradtx init: the param at "
                     r"\['name'\] is a str \('layer1'\); params must be "
                     r"numeric arrays"):
    gradtx.adam(1e-3).init({"w": jnp.ones(2, F32), "name": "layer1"})


@pytest.mark.parametrize("leaf,dtype", [
    (np.array([["a", "b"]] * 3), "<U1"),
    (np.array([[object()] * 2] * 3), "object")])
def test_string_and_object_arrays(leaf, dtype):
  tx = gradtx.adam(1e-3)
  with pytest.raises(TypeError, match=r"scale_by_adam: the update at "
                     r"\['b'\] has dtype " + re.escape(dtype)):
    tx.update(_grads(b=leaf), tx.init(PARAMS))
  with pytest.raises(TypeError):
    jnp.asarray(leaf)  # JAX itself refuses to build such an array


def test_numpy_gradients_are_accepted():
  tx = gradtx.adam(1e-3)
  ours, _ = tx.update(jax.tree.map(np.asarray, _grads()), tx.init(PARAMS))
  ref, _ = tx.update(_grads(), tx.init(PARAMS))
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
    assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("param_dtype,grad_dtype", [
    (jnp.float64, jnp.float32), (jnp.float32, jnp.float64),
    (jnp.float32, jnp.bfloat16)])
def test_gradients_in_another_float_dtype(param_dtype, grad_dtype):
  params = jax.tree.map(lambda x: x.astype(param_dtype), PARAMS)
  grads = jax.tree.map(lambda x: x.astype(grad_dtype), _grads())
  tx = gradtx.adam(1e-2)
  updates, _ = tx.update(grads, tx.init(params), params)
  promoted = jnp.promote_types(param_dtype, grad_dtype)
  assert all(u.dtype == promoted for u in jax.tree.leaves(updates))
  new = gradtx.apply_updates(params, updates)
  assert all(p.dtype == param_dtype for p in jax.tree.leaves(new))


def test_mixed_dtypes_across_leaves():
  params = {"a": jnp.ones((3, 2), F32), "b": jnp.ones((3, 2), jnp.bfloat16),
            "c": jnp.ones((3, 2), jnp.complex128)}
  tx = gradtx.adam(1e-2)
  updates, state = tx.update(params, tx.init(params), params)
  for k, p in params.items():
    assert updates[k].dtype == p.dtype and state[0].mu[k].dtype == p.dtype


def test_complex_update_for_real_param():
  with pytest.raises(TypeError, match=r"apply_updates: the update at "
                     r"\['b'\] is complex \(complex64\) but the param is "
                     r"float32; adding it would drop the imaginary part"):
    gradtx.apply_updates(PARAMS, {"w": PARAMS["w"],
                                  "b": PARAMS["b"] * jnp.complex64(1j)})


# --------------------------------------------------------------------------
# Hyperparameters (checked when the optimizer is built)


@pytest.mark.parametrize("make,name", [
    (gradtx.sgd, "sgd"), (gradtx.adam, "adam"), (gradtx.adamw, "adamw"),
    (gradtx.rmsprop, "rmsprop"), (gradtx.swats, "swats"),
    (gradtx.rprop, "scale_by_rprop"), (gradtx.adabound, "bound_lr")])
def test_negative_learning_rate(make, name):
  with pytest.raises(ValueError, match=rf"{name}: learning_rate must be in "
                     r"\[0, inf\), got learning_rate=-0.1. gradtx negates "
                     r"the step itself"):
    make(-0.1)


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), jnp.inf])
def test_non_finite_learning_rate(lr):
  with pytest.raises(ValueError, match=r"adam: learning_rate must be in "
                     r"\[0, inf\), got learning_rate="):
    gradtx.adam(lr)


@pytest.mark.parametrize("lr,what", [
    ("0.1", "a str"), (jnp.ones(3), r"an array of shape \(3,\)"),
    (True, "a bool"), (1 + 2j, "a complex")])
def test_learning_rate_of_wrong_type(lr, what):
  with pytest.raises(ValueError, match=r"adam: learning_rate must be a real "
                     r"number \(or a schedule\), got learning_rate=.*" + what):
    gradtx.adam(lr)


@pytest.mark.parametrize("make", [gradtx.sgd, gradtx.adam, gradtx.rprop,
                                  gradtx.swats])
def test_learning_rate_none(make):
  with pytest.raises(ValueError, match=r": learning_rate is None; pass a "
                     r"step size such as 1e-3"):
    make(None)


@pytest.mark.parametrize("build,arg,value", [
    (lambda v: gradtx.adam(1e-3, b1=v), "b1", 1.0),
    (lambda v: gradtx.adam(1e-3, b2=v), "b2", -0.1),
    (lambda v: gradtx.sgd(1e-3, momentum=v), "momentum", 1.5),
    (lambda v: gradtx.rmsprop(1e-3, decay=v), "decay", 1.0),
    (lambda v: gradtx.ema_params(v), "decay", 2.0)])
def test_decay_out_of_range(build, arg, value):
  with pytest.raises(ValueError, match=rf"{arg} must be in \[0, 1\), got "
                     rf"{arg}={value}. {arg} is the weight of the past"):
    build(value)


@pytest.mark.parametrize("build,match", [
    (lambda: gradtx.adam(1e-3, eps=-1e-8), r"scale_by_adam: eps must be in "
     r"\[0, inf\], got eps=-1e-08"),
    (lambda: gradtx.adamw(1e-3, weight_decay=jnp.ones(3)),
     r"weight_decay must be a real number .*an array of shape \(3,\)"),
    (lambda: gradtx.clip(-1.0), r"clip: max_delta must be in \[0, inf\]")])
def test_negative_eps_and_weight_decay(build, match):
  with pytest.raises(ValueError, match=match):
    build()


def test_inputs_optax_accepts_are_accepted():
  # optax takes these (its fromage builds a negative decay), so a drop-in
  # must too; each gives optax's update.
  p, g = jnp.array([1.0, -2.0]), jnp.array([0.5, 0.25])
  for make in [lambda lib: lib.add_decayed_weights(-0.1),
               lambda lib: lib.trace(decay=1.0)]:
    ours, theirs = make(gradtx), make(optax)
    u1, s1 = ours.update(g, ours.init(p), p)
    u2, s2 = theirs.update(g, theirs.init(p), p)
    u1, _ = ours.update(g, s1, p)
    u2, _ = theirs.update(g, s2, p)
    np.testing.assert_allclose(u1, u2, rtol=1e-12)


def test_trace_decay_must_still_be_nonnegative():
  with pytest.raises(ValueError, match=r"trace: decay must be in \[0, inf\], "
                     r"got decay=-0.5. decay is the weight of the previous"):
    gradtx.trace(decay=-0.5)


def test_rectify_threshold_below_four():
  with pytest.raises(ValueError, match=r"rectify: threshold must be in "
                     r"\[4, inf\], got threshold=3.0. r_t is only defined"):
    gradtx.rectify(3.0)


def test_bound_lr_schedule_zero_at_start():
  with pytest.raises(ValueError, match=r"bound_lr: the learning-rate "
                     r"schedule is 0 at step 0"):
    gradtx.bound_lr(lambda count: 1e-3 * count)


def test_rprop_schedule():
  with pytest.raises(ValueError, match=r"scale_by_rprop: learning_rate is "
                     r"Rprop's initial step size, a number, got the "
                     r"schedule"):
    gradtx.rprop(lambda count: 0.1)


@pytest.mark.parametrize("dtype,match", [
    (jnp.int32, "must be a floating or complex dtype, got mu_dtype="),
    ("foo", r"must be a dtype such as jnp.bfloat16 or 'float32', got "
     r"mu_dtype='foo'")])
def test_bad_dtype_arguments(dtype, match):
  with pytest.raises(ValueError, match="scale_by_adam: mu_dtype " + match):
    gradtx.adam(1e-3, mu_dtype=dtype)


@pytest.mark.parametrize("key,match", [
    (None, "pass an explicit PRNG key"),
    (jax.random.PRNGKey(0), "A raw uint32 key from jax.random.PRNGKey can be "
     "wrapped with jax.random.wrap_key_data"),
    (jax.random.split(jax.random.key(0), 2), "got an array of keys of shape "
     r"\(2,\)")])
def test_noise_key(key, match):
  with pytest.raises(ValueError, match="add_noise: .*" + match):
    gradtx.noisy_sgd(1e-3, key=key)


@pytest.mark.parametrize("kwargs,match", [
    ({"sync_period": 0}, "sync_period must be an int >= 1, got "
     "sync_period=0"),
    ({"sync_period": 2.5}, "sync_period must be an int >= 1"),
    ({"slow_step_size": 1.5}, r"slow_step_size must be in \[0, 1\]")])
def test_lookahead_arguments(kwargs, match):
  with pytest.raises(ValueError, match="lookahead: " + match):
    gradtx.lookahead(gradtx.sgd(0.1), **kwargs)


@pytest.mark.parametrize("k", [0, -1, 2.5, "2", True, None])
def test_bad_every_k_schedule(k):
  with pytest.raises(ValueError, match=r"MultiSteps: every_k_schedule must "
                     r"be an int >= 1 \(the number of mini-steps per inner "
                     r"step\)"):
    gradtx.MultiSteps(gradtx.sgd(0.1), every_k_schedule=k)


@pytest.mark.parametrize("n", [-1, 1.5, "3", True])
def test_bad_max_consecutive_errors(n):
  with pytest.raises(ValueError, match=r"apply_if_finite: "
                     r"max_consecutive_errors must be an int >= 0"):
    gradtx.apply_if_finite(gradtx.sgd(0.1), n)


# --------------------------------------------------------------------------
# Schedules (checked when the step is traced)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("build", [
    lambda s: gradtx.sgd(s), lambda s: gradtx.adam(1e-3, b1=s),
    lambda s: gradtx.adamw(1e-3, weight_decay=s)],
    ids=["learning_rate", "b1", "weight_decay"])
def test_schedule_returning_an_array(build, jit):
  tx = build(lambda count: jnp.full((2,), 0.5, F32))
  step = jax.jit(tx.update) if jit else tx.update
  with jax.numpy_rank_promotion("allow"):
    with pytest.raises(ValueError, match=r"gradtx: the schedule .*<lambda> "
                       r"returned an array of shape \(2,\) and dtype "
                       r"float32; a schedule must return a real scalar"):
      step(_grads(), tx.init(PARAMS), PARAMS)


@pytest.mark.parametrize("value,what", [("0.1", r"a str \('0.1'\)"),
                                        (None, r"a NoneType \(None\)")])
def test_schedule_returning_a_non_number(value, what):
  tx = gradtx.sgd(lambda count: value)
  with pytest.raises(ValueError, match=r"gradtx: the schedule .* returned "
                     + what):
    tx.update(_grads(), tx.init(PARAMS))


def test_schedule_values_are_not_checked_at_run_time():
  # A schedule's value is traced: gradtx cannot check it, so a NaN (or a
  # negative rate) goes through into the updates.
  tx = gradtx.sgd(lambda count: jnp.where(count > 0, jnp.nan, 0.1))
  step = jax.jit(tx.update)
  u, state = step(_grads(), tx.init(PARAMS))
  assert bool(jnp.all(jnp.isfinite(u["w"])))
  u, _ = step(_grads(), state)
  assert bool(jnp.all(jnp.isnan(u["w"])))


# --------------------------------------------------------------------------
# Calling mistakes


@pytest.mark.parametrize("make,name", [
    (lambda: gradtx.adamw(1e-3), "add_decayed_weights"),
    (lambda: gradtx.sgdw(1e-3), "add_decayed_weights"),
    (lambda: gradtx.lookahead(gradtx.sgd(0.1)), "lookahead"),
    (lambda: gradtx.ema_params(0.9), "ema_params")])
def test_params_omitted(make, name):
  tx = make()
  with pytest.raises(ValueError, match=rf"{name}: this transform needs the "
                     r"current params; call update\(updates, state, "
                     r"params\)"):
    tx.update(_grads(), tx.init(PARAMS))


@pytest.mark.parametrize("params,match", [
    ({"w": PARAMS["w"]}, r"(?s)add_decayed_weights: the updates do not "
     r"match the params.*in the updates but not in the params: \['b'\]"),
    ({"w": PARAMS["w"], "b": jnp.ones(2, F32)}, r"add_decayed_weights: shape "
     r"mismatch at \['b'\]: the update has shape \(3, 2\) but the param "
     r"has \(2,\)")], ids=["keys", "shape"])
def test_mismatched_params_tree(params, match):
  tx = gradtx.adamw(1e-3, weight_decay=0.1)
  with pytest.raises(ValueError, match=match):
    tx.update(_grads(), tx.init(PARAMS), params)


@pytest.mark.parametrize("make,name", [
    (lambda: gradtx.partition({"a": gradtx.adam(1e-3)}, lambda p: jax.tree.map(
        lambda _: "a", p)), "partition"),
    (lambda: gradtx.masked(gradtx.adam(1e-3), lambda p: jax.tree.map(
        lambda _: True, p)), "masked")])
def test_mismatched_params_tree_in_a_wrapper(make, name):
  # Found by test_hypothesis: labels or a mask computed from the updates
  # were mapped over params with another key set, and jax's own tree error
  # came out instead of ours.
  tx = make()
  with pytest.raises(ValueError, match=rf"(?s){name}: the updates do not "
                     r"match the params.*in the updates but not in the "
                     r"params: \['c'\]"):
    tx.update(_grads(c=jnp.ones(2, F32)), tx.init(PARAMS), PARAMS)


@pytest.mark.parametrize("other,match", [
    (lambda: gradtx.sgd(0.1, momentum=0.9), r"chain: scale_by_adam \(#0\) "
     r"cannot read its state, a TraceState .*Was the state built by this "
     r"optimizer's init\(\)\?"),
    (lambda: gradtx.amsgrad(1e-3), r"chain: the state holds 3 member states "
     r"but the chain has 2 members")], ids=["same_length", "other_length"])
def test_state_of_another_optimizer(other, match):
  with pytest.raises(ValueError, match=match):
    gradtx.adam(1e-3).update(_grads(), other().init(PARAMS))


def test_params_passed_as_state():
  tx = gradtx.adam(1e-3)
  with pytest.raises(ValueError, match=r"chain: the state must be the tuple "
                     r"of 2 member states that init\(\) returned, got a "
                     r"dict. Did you pass the params where the state goes\?"):
    tx.update(_grads(), PARAMS, tx.init(PARAMS))


@pytest.mark.parametrize("build", [
    lambda: gradtx.chain(gradtx.adam),
    lambda: gradtx.MultiSteps(gradtx.adam, 2),
    lambda: gradtx.apply_if_finite(gradtx.adam, 2),
    lambda: gradtx.partition({"a": gradtx.adam}, "a")])
def test_factory_instead_of_transform(build):
  with pytest.raises(TypeError, match=r"<function adam at .*>, not a "
                     r"gradient transformation"):
    build()


def test_moment_consumer_first_in_a_chain_given_plain_updates():
  tx = gradtx.chain(gradtx.rectify())
  with pytest.raises(TypeError, match=r"chain: rectify \(#0\) reads the "
                     r"moment estimates of the transform before it, but it "
                     r"comes first and the chain was given plain updates"):
    tx.update(_grads(), tx.init(PARAMS))


@pytest.mark.parametrize("build,match", [
    (lambda: gradtx.chain(gradtx.trace(0.9), gradtx.amsgrad_max()),
     r"chain: amsgrad_max \(#1\) reads the moment estimates of the transform "
     r"before it, but trace \(#0\) does not provide them")])
def test_moment_consumer_out_of_place(build, match):
  with pytest.raises(ValueError, match=match):
    build()


def test_consumer_given_plain_updates():
  tx = gradtx.bound_lr(1e-3)
  with pytest.raises(TypeError, match=r"bound_lr: expected the moment "
                     r"estimates handed over by scale_by_adam, got plain "
                     r"updates \(dict\)"):
    tx.update(_grads(), tx.init(PARAMS))


def test_named_chain_duplicate_names():
  with pytest.raises(ValueError, match=r"named_chain: names must be unique, "
                     r"got \['a', 'a'\]"):
    gradtx.named_chain(("a", gradtx.sgd(0.1)), ("a", gradtx.sgd(0.2)))


def test_multisteps_wrong_state():
  ms = gradtx.MultiSteps(gradtx.sgd(0.1), 2)
  with pytest.raises(TypeError, match=r"MultiSteps: state must be the "
                     r"MultiStepsState built by this MultiSteps' init\(\), "
                     r"got a tuple"):
    ms.update(_grads(), gradtx.sgd(0.1).init(PARAMS))


def test_abstract_params():
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                          PARAMS)
  tx = gradtx.adamw(1e-3)
  shapes = jax.eval_shape(tx.init, abstract)
  assert shapes[0].mu["w"].shape == (3, 2)
  state = tx.init(abstract)  # eagerly: real zeros of those shapes
  assert state[0].nu["b"].shape == (3, 2) and not bool(state[0].nu["b"].any())


# --------------------------------------------------------------------------
# Masks and param groups


# masked and freeze read a mask the same way.
MASK_BUILDERS = pytest.mark.parametrize("build", [
    lambda m: gradtx.masked(gradtx.adam(1e-3), m),
    lambda m: gradtx.freeze(m)], ids=["masked", "freeze"])


@MASK_BUILDERS
def test_mask_missing_a_param(build):
  tx = build({"w": True})
  with pytest.raises(ValueError, match=r"(masked|freeze): no entry for the "
                     r"param at \['b'\]. Give a value for every param, or "
                     r"for one of its parent keys; the spec has entries for "
                     r"\[\"\['w'\]\"\]"):
    _step(tx, _grads())


@MASK_BUILDERS
def test_mask_with_an_unknown_key(build):
  tx = build({"w": True, "b": False, "bias": True})
  with pytest.raises(ValueError, match=r"(masked|freeze): the spec has "
                     r"entries for \[\"\['bias'\]\"\], which match no param"):
    _step(tx, _grads())


@MASK_BUILDERS
def test_traced_mask(build):
  tx = build(lambda p: jax.tree.map(lambda x: jnp.any(x > 0), p))
  with pytest.raises(TypeError, match=r"(masked|freeze): the mask at "
                     r"\['b'\] is a traced value. A mask decides which params "
                     r"have state"):
    jax.jit(lambda g, p: tx.update(g, tx.init(p), p))(_grads(), PARAMS)


def test_partition_unknown_label():
  tx = gradtx.partition({"a": gradtx.sgd(0.1), "b": gradtx.adam(1e-3)},
                        {"w": "a", "b": "c"})
  with pytest.raises(ValueError, match=r"partition: the params carry labels "
                     r"\['c'\] that have no transform; transforms has "
                     r"\['a', 'b'\]"):
    tx.init(PARAMS)


def test_partition_labels_missing_a_param():
  tx = gradtx.partition({"a": gradtx.sgd(0.1)}, {"w": "a"})
  with pytest.raises(ValueError, match=r"partition: no entry for the param "
                     r"at \['b'\]"):
    tx.init(PARAMS)


def test_partition_unused_transform():
  tx = gradtx.partition({"a": gradtx.sgd(0.1), "unused": gradtx.adam(1e-3)},
                        "a")
  updates, state = _step(tx, _grads())
  np.testing.assert_allclose(updates["w"], -0.05)
  adam_state = state.inner_states["unused"].inner_state[0]
  assert jax.tree.leaves(adam_state.mu) == []


@pytest.mark.parametrize("transforms,err,match", [
    ({}, ValueError, "partition: transforms is empty"),
    ({"a": 0.1}, TypeError, r"partition: transforms\['a'\] is 0.1, not a "
     r"gradient transformation")])
def test_partition_bad_transforms(transforms, err, match):
  with pytest.raises(err, match=match):
    gradtx.partition(transforms, "a")


def test_inject_unknown_static_arg():
  with pytest.raises(ValueError, match=r"inject_hyperparams: static_args "
                     r"\['nesterov_'\] are not parameters of adam"):
    gradtx.inject_hyperparams(gradtx.adam, static_args="nesterov_")
