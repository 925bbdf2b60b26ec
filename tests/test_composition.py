"""The contract's composition rules: one forwarding rule for extra arguments
(``call_update``) and the Adam moment hand-off through wrappers and nesting.

Each wrapped form is compared per step with its flat form (relative 1e-9 in
float64) on a small tree over a few steps.
"""

import jax
import jax.numpy as jnp
import optax
import pytest

import gradtx
from common import GRADS, PARAMS, assert_close, trajectory

LR = 1e-2
STEPS = 8  # RAdam's rectification switches on at step 6 with b2 = 0.999.


def _assert_same_run(wrapped, flat, steps=STEPS):
  ours, theirs = trajectory(wrapped, GRADS[:steps]), trajectory(
      flat, GRADS[:steps])
  for step, ((u, p), (v, q)) in enumerate(zip(ours, theirs)):
    assert jax.tree.structure(u) == jax.tree.structure(v), step
    assert_close(u, v)
    assert_close(p, q)


def _sgd_tail():
  return (gradtx.add_decayed_weights(1e-2), gradtx.scale(-LR))


@pytest.mark.parametrize("wrapped,flat", [
    (lambda: gradtx.chain(gradtx.inject_hyperparams(gradtx.scale_by_adam)(
        b1=0.8), gradtx.amsgrad_max(), *_sgd_tail()),
     lambda: gradtx.chain(gradtx.scale_by_adam(b1=0.8), gradtx.amsgrad_max(),
                          *_sgd_tail())),
    (lambda: gradtx.chain(gradtx.chain(gradtx.scale_by_adam()),
                          gradtx.rectify(), *_sgd_tail()),
     lambda: gradtx.chain(gradtx.scale_by_adam(), gradtx.rectify(),
                          *_sgd_tail())),
    (lambda: gradtx.chain(gradtx.scale_by_adam(),
                          gradtx.chain(gradtx.amsgrad_max(), gradtx.rectify()),
                          *_sgd_tail()),
     lambda: gradtx.chain(gradtx.scale_by_adam(), gradtx.amsgrad_max(),
                          gradtx.rectify(), *_sgd_tail())),
    (lambda: gradtx.named_chain(
        ("adam", gradtx.scale_by_adam()),
        ("bound", gradtx.inject_hyperparams(gradtx.bound_lr)(LR))),
     lambda: gradtx.chain(gradtx.scale_by_adam(), gradtx.bound_lr(LR))),
], ids=["inject_emitter", "nested_emitter", "nested_relays",
        "named_inject_consumer"])
def test_wrapped_hand_off_equals_the_flat_chain(wrapped, flat):
  _assert_same_run(wrapped(), flat())


def test_nested_chains_keep_three_buffers_per_parameter():
  tx = gradtx.chain(gradtx.scale_by_adam(),
                    gradtx.chain(gradtx.amsgrad_max(), gradtx.rectify()),
                    gradtx.bound_lr(LR))
  n = len(jax.tree.leaves(PARAMS))
  # count, then mu, nu and nu_max: one of each per parameter.
  assert len(jax.tree.leaves(tx.init(PARAMS))) == 1 + 3 * n


def test_chains_take_the_hand_off_type_of_their_ends():
  adam, ams = gradtx.scale_by_adam(), gradtx.amsgrad_max()
  assert isinstance(gradtx.chain(adam), gradtx.MomentEmitter)
  assert isinstance(gradtx.chain(ams, gradtx.rectify()), gradtx.MomentRelay)
  assert isinstance(gradtx.chain(ams, gradtx.bound_lr(LR)),
                    gradtx.MomentConsumer)
  assert not isinstance(gradtx.chain(ams, gradtx.bound_lr(LR)),
                        gradtx.MomentEmitter)
  assert not isinstance(gradtx.chain(adam, gradtx.scale(-LR)),
                        (gradtx.MomentEmitter, gradtx.MomentConsumer))
  assert isinstance(gradtx.inject_hyperparams(gradtx.rectify)(),
                    gradtx.MomentRelay)


@pytest.mark.parametrize("name,kw", [
    ("amsgrad", {}), ("radam", {}), ("adabound", {"final_lr": 0.05})])
def test_inject_hyperparams_of_a_hybrid_equals_the_plain_optimizer(name, kw):
  factory = getattr(gradtx, name)
  _assert_same_run(gradtx.inject_hyperparams(factory)(LR, **kw),
                   factory(LR, **kw))


def _hybrid():
  return gradtx.chain(gradtx.scale_by_adam(), gradtx.amsgrad_max(),
                      gradtx.rectify(), gradtx.bound_lr(LR))


def test_masked_hybrid_chain_updates_only_the_masked_leaves():
  mask = {"w": True, "b": False, "s": True}
  tx = gradtx.masked(_hybrid(), mask)
  sub = {k: v for k, v in PARAMS.items() if mask[k]}
  ref = trajectory(_hybrid(), [{k: g[k] for k in sub} for g in GRADS[:STEPS]],
                   sub)
  for (u, _), (v, _), g in zip(trajectory(tx, GRADS[:STEPS]), ref,
                               GRADS[:STEPS]):
    assert_close({k: u[k] for k in sub}, v)
    assert_close(u["b"], g["b"])  # masked out: passed through


def test_partition_with_a_hybrid_chain_equals_each_part_alone():
  labels = {"w": "adaptive", "b": "sgd", "s": "adaptive"}
  tx = gradtx.partition({"adaptive": _hybrid(), "sgd": gradtx.sgd(LR)},
                        labels)
  parts = {name: {k for k, v in labels.items() if v == name}
           for name in ("adaptive", "sgd")}
  refs = {name: trajectory(tx_, [{k: g[k] for k in parts[name]}
                                 for g in GRADS[:STEPS]],
                           {k: PARAMS[k] for k in parts[name]})
          for name, tx_ in (("adaptive", _hybrid()), ("sgd", gradtx.sgd(LR)))}
  for step, (u, _) in enumerate(trajectory(tx, GRADS[:STEPS])):
    for name, keys in parts.items():
      assert_close({k: u[k] for k in keys}, refs[name][step][0])


def test_a_modifier_inside_optax_chain_says_what_to_do():
  tx = optax.chain(gradtx.scale_by_adam(), gradtx.amsgrad_max(),
                   optax.scale(-LR))
  with pytest.raises(TypeError, match=r"amsgrad_max: expected the moment "
                     r"estimates .* optax.chain cannot carry the hand-off; "
                     r"inside it, pass that whole gradtx.chain as one "
                     r"member"):
    tx.update(GRADS[0], tx.init(PARAMS), PARAMS)
  # ... and doing so matches the gradtx chain.
  inner = gradtx.chain(gradtx.scale_by_adam(), gradtx.amsgrad_max())
  _assert_same_run(optax.chain(inner, optax.scale(-LR)),
                   gradtx.chain(gradtx.scale_by_adam(), gradtx.amsgrad_max(),
                                gradtx.scale(-LR)))


def test_an_emitter_outside_a_gradtx_chain_returns_plain_updates():
  _assert_same_run(optax.chain(gradtx.scale_by_adam(), optax.scale(-LR)),
                   optax.adam(LR))


# --- the one forwarding rule ------------------------------------------------

def _recording(seen, extra_kw):
  """A transform that records the extra arguments it is given."""
  if extra_kw:
    def update(updates, state, params=None, **extra_args):
      seen.append(dict(extra_args))
      return updates, state
  else:
    def update(updates, state, params=None):
      seen.append("called")
      return updates, state
  return optax.GradientTransformation(lambda p: optax.EmptyState(), update)


@pytest.mark.parametrize("wrap", [
    lambda tx: gradtx.chain(tx),
    lambda tx: gradtx.named_chain(("x", tx)),
    lambda tx: gradtx.masked(tx, jax.tree.map(lambda _: True, PARAMS)),
    lambda tx: gradtx.partition({"a": tx}, jax.tree.map(lambda _: "a",
                                                         PARAMS)),
    lambda tx: gradtx.MultiSteps(tx, 1),
    lambda tx: gradtx.apply_if_finite(tx, 2),
    lambda tx: gradtx.flatten(tx),
    lambda tx: gradtx.lookahead(tx, 2, 0.5),
    lambda tx: gradtx.inject_hyperparams(lambda: tx)(),
], ids=["chain", "named_chain", "masked", "partition", "MultiSteps",
        "apply_if_finite", "flatten", "lookahead", "inject_hyperparams"])
@pytest.mark.parametrize("extra_kw", [True, False], ids=["kwargs", "plain"])
def test_every_wrapper_forwards_extra_args_by_one_rule(wrap, extra_kw):
  seen = []
  tx = wrap(_recording(seen, extra_kw))
  tx.update(GRADS[0], tx.init(PARAMS), PARAMS, value=jnp.asarray(1.0))
  assert seen, "the inner transform was not called"
  assert seen[-1] == ({"value": 1.0} if extra_kw else "called")


def test_call_update_rule():
  seen = []
  tx = _recording(seen, extra_kw=False)
  gradtx.call_update(tx, GRADS[0], tx.init(PARAMS), PARAMS, value=1.0)
  assert seen == ["called"]
  assert gradtx.takes_extra_args(gradtx.with_extra_args_support(tx))
  assert not gradtx.takes_extra_args(tx)


def test_injected_consumer_without_params_reads_the_dtype_of_the_moments():
  params = {"a": jnp.ones(3, jnp.float32)}
  tx = gradtx.chain(gradtx.scale_by_adam(),
                    gradtx.inject_hyperparams(gradtx.rectify)(),
                    gradtx.scale(-LR))
  updates, state = tx.update(params, tx.init(params))
  assert state[1].hyperparams["threshold"].dtype == jnp.float32
  assert updates["a"].dtype == jnp.float32
