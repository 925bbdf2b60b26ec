"""A state saved by optax restores into gradtx, and the reverse.

For every optimizer and transform both libraries have, wrappers included:
train ``K`` steps with one library, move its state leaf for leaf into the
other library's ``init`` template (the leaves must agree in number, order,
shape and dtype), train ``N`` more steps with both, and check that the
params (and the states) agree to 1e-9 in float64. A few cases go through an
orbax checkpoint on disk.

Steps run eagerly on a tiny tree (``registry.tree_params``); the gradient is a function of the params,
so a wrong restored moment changes every later step.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from registry import tree_params

K, N = 3, 3
# Two leaves of one shape, the tree of the registry-driven tests: each
# eager op compiles once for both leaves, and once for all those files.
PARAMS = tree_params(jnp.float64)
MASK = {"w": True, "b": False}
KEY = jax.random.key(3)


def _grad(params, i):
  return jax.tree.map(lambda p: jnp.sin(3.0 * p + i) + 0.1 * (i + 1), params)


def _lr_sched(count):
  return 0.05 / (1.0 + 0.5 * count)


def _both(name, *args, **kwargs):
  """(optax's, gradtx's) of the same name, built with the same arguments."""
  return (lambda: getattr(optax, name)(*args, **kwargs),
          lambda: getattr(gradtx, name)(*args, **kwargs))


def _inject(name, **kw):
  return (lambda: optax.inject_hyperparams(getattr(optax, name))(**kw),
          lambda: gradtx.inject_hyperparams(getattr(gradtx, name))(**kw))


# name: (optax builder, gradtx builder, params form). Every form of a state
# (flags that add or drop a leaf) is a case of its own.
CASES = {
    "scale_by_adam": _both("scale_by_adam"),
    "scale_by_adam_nesterov": _both("scale_by_adam", nesterov=True),
    "scale_by_rms": _both("scale_by_rms"),
    "scale_by_rms_bias_correction": _both("scale_by_rms",
                                          bias_correction=True),
    "scale_by_rss": _both("scale_by_rss"),
    "scale_by_stddev": _both("scale_by_stddev"),
    "scale_by_stddev_bias_correction": _both(
        "scale_by_stddev", eps_in_sqrt=True, bias_correction=True),
    "scale_by_adadelta": _both("scale_by_adadelta"),
    "scale_by_adamax": _both("scale_by_adamax"),
    "trace": _both("trace", 0.9),
    "trace_nesterov": _both("trace", 0.9, nesterov=True),
    "ema": _both("ema", 0.9),
    "adam": _both("adam", 0.05),
    "adamw": _both("adamw", 0.05, weight_decay=1e-2),
    "nadam": _both("nadam", 0.05),
    "nadamw": _both("nadamw", 0.05, weight_decay=1e-2),
    "adamax": _both("adamax", 0.05),
    "amsgrad": _both("amsgrad", 0.05),
    "radam": _both("radam", 0.05),
    "rmsprop": _both("rmsprop", 0.05),
    "rmsprop_centered_momentum": _both("rmsprop", 0.05, centered=True,
                                       momentum=0.9),
    "adagrad": _both("adagrad", 0.05),
    "adadelta": _both("adadelta", 0.5),
    "sgd": _both("sgd", 0.05),
    "sgd_nesterov": _both("sgd", 0.05, momentum=0.9, nesterov=True),
    "noisy_sgd": _both("noisy_sgd", 0.05, key=KEY),
    "multisteps": (
        lambda: optax.MultiSteps(optax.adam(0.05), 2,
                                 accumulator_dtype=jnp.float64
                                 ).gradient_transformation(),
        lambda: gradtx.MultiSteps(gradtx.adam(0.05),
                                  2).gradient_transformation()),
    "multisteps_skip_not_finite": (
        lambda: optax.MultiSteps(
            optax.adam(0.05), 2, should_skip_update_fn=optax.skip_not_finite,
            accumulator_dtype=jnp.float64).gradient_transformation(),
        lambda: gradtx.MultiSteps(
            gradtx.adam(0.05), 2,
            should_skip_update_fn=gradtx.skip_not_finite
        ).gradient_transformation()),
    "masked": (lambda: optax.masked(optax.adam(0.05), MASK),
               lambda: gradtx.masked(gradtx.adam(0.05), MASK)),
    "freeze": (lambda: optax.chain(optax.freeze(MASK), optax.adam(0.05)),
               lambda: gradtx.chain(gradtx.freeze(MASK), gradtx.adam(0.05))),
    "inject_hyperparams": _inject("adam", learning_rate=0.05, b1=0.8),
    "inject_hyperparams_schedule": _inject("adam", learning_rate=_lr_sched,
                                           b2=0.99),
    "inject_hyperparams_adamw": _inject("adamw", learning_rate=_lr_sched,
                                        weight_decay=1e-2),
    "lookahead": (lambda: optax.lookahead(optax.adam(0.05), 2, 0.5),
                  lambda: gradtx.lookahead(gradtx.adam(0.05), 2, 0.5)),
    "lookahead_reset": (
        lambda: optax.lookahead(optax.sgd(0.05, momentum=0.9), 2, 0.5, True),
        lambda: gradtx.lookahead(fast_optimizer=gradtx.sgd(0.05, 0.9),
                                 sync_period=2, slow_step_size=0.5,
                                 reset_state=True)),
    "apply_if_finite": (lambda: optax.apply_if_finite(optax.adam(0.05), 2),
                        lambda: gradtx.apply_if_finite(gradtx.adam(0.05), 2)),
}
LOOKAHEAD = {"lookahead", "lookahead_reset"}
LIBS = {"optax": (0, optax.apply_updates), "gradtx": (1, gradtx.apply_updates)}


def _params(name, lib):
  if name not in LOOKAHEAD:
    return PARAMS
  cls = optax.LookaheadParams if lib == "optax" else gradtx.LookaheadParams
  return cls.init_synced(PARAMS)


def _fast(params):
  return params.fast if hasattr(params, "fast") else params


def _run(tx, apply, state, params, start, n):
  for i in range(start, start + n):
    updates, state = tx.update(_grad(_fast(params), i), state, params)
    params = apply(params, updates)
  return state, params


def _describe(leaf):
  return (np.shape(leaf), jnp.asarray(leaf).dtype)


def _move(state, template):
  """``state``'s leaves, in order, in ``template``'s tree (what restoring a
  checkpoint into another library's ``init`` template does)."""
  leaves = jax.tree.leaves(state)
  slots, treedef = jax.tree.flatten(template)
  assert [_describe(x) for x in leaves] == [_describe(x) for x in slots]
  return jax.tree.unflatten(treedef, leaves)


def _values(tree):
  return [np.asarray(jax.random.key_data(x) if jnp.issubdtype(
      x.dtype, jax.dtypes.prng_key) else x) for x in jax.tree.leaves(tree)]


def _assert_close(a, b):
  for x, y in zip(_values(a), _values(b), strict=True):
    np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)


def _handover(name, src, dst, transfer=_move):
  (i_src, apply_src), (i_dst, apply_dst) = LIBS[src], LIBS[dst]
  tx_src, tx_dst = CASES[name][i_src](), CASES[name][i_dst]()
  p_src0, p_dst0 = _params(name, src), _params(name, dst)
  state, params = _run(tx_src, apply_src, tx_src.init(p_src0), p_src0, 0, K)
  moved = transfer(state, tx_dst.init(p_dst0))
  p_moved = type(p_dst0)(*params) if name in LOOKAHEAD else params
  want_state, want = _run(tx_src, apply_src, state, params, K, N)
  got_state, got = _run(tx_dst, apply_dst, moved, p_moved, K, N)
  _assert_close(got, want)
  _assert_close(got_state, want_state)


@pytest.mark.parametrize("direction", [("optax", "gradtx"),
                                       ("gradtx", "optax")],
                         ids=["optax_to_gradtx", "gradtx_to_optax"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_state_hands_over_leaf_for_leaf(name, direction):
  _handover(name, *direction)


def test_rprop_state_hands_over():
  """Rprop's states agree leaf for leaf and hold the same step sizes; the
  updates differ by design (optax applies the step of t - 1, gradtx the
  step of t), so only the states are compared after the hand-over."""
  # A tree on which the two libraries' steps flip no gradient sign
  # differently over the N steps, so that the step sizes stay equal.
  params = {"w": jnp.array([[0.5, -1.0], [2.0, 0.25]]), "b": jnp.array(-0.7)}
  theirs, ours = optax.rprop(0.05), gradtx.rprop(0.05)
  st, p = _run(theirs, optax.apply_updates, theirs.init(params), params, 0, K)
  so = _move(st, ours.init(params))
  st, _ = _run(theirs, optax.apply_updates, st, p, K, N)
  so, _ = _run(ours, gradtx.apply_updates, so, p, K, N)
  _assert_close(so, st)


def _orbax_transfer(tmp_path, state, template):
  """Through an orbax checkpoint: saved by the source library, read back
  with the source's own layout, then moved into the other's template."""
  ocp = pytest.importorskip("orbax.checkpoint")
  path = tmp_path / "state"
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(path, state)
    ckpt.wait_until_finished()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    restored = ckpt.restore(path, abstract)
  return _move(restored, template)


@pytest.mark.parametrize("direction", [("optax", "gradtx"),
                                       ("gradtx", "optax")],
                         ids=["optax_to_gradtx", "gradtx_to_optax"])
@pytest.mark.parametrize("name", ["adam", "amsgrad", "inject_hyperparams",
                                  "multisteps"])
def test_state_hands_over_through_an_orbax_checkpoint(name, direction,
                                                      tmp_path):
  _handover(name, *direction,
            transfer=functools.partial(_orbax_transfer, tmp_path))
