"""Composition: :func:`chain`, :func:`named_chain` and :func:`partition`.

A chain runs its members in order, feeding each one's updates to the next, and
keeps their states in a tuple (or a dict for :func:`named_chain`).
:func:`partition` gives each group of params (by label) a transform of its
own.

Chains carry the Adam moment hand-off of the contract (``gradtx/_src/base.py``):
a member is asked, through the extra argument ``emit_moments=True``, for its
:class:`~gradtx.AdamMoments` record exactly when the member after it is a
:class:`~gradtx.MomentConsumer`. A chain is itself a consumer if its first
member is one and an emitter if its last member is one, so chains nest.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, NamedTuple, Sequence
from typing import Union

import jax

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import validation as V
from gradtx._src.masking import masked, spec_tree


def _label(tx: Any) -> str:
  fn = getattr(tx, "update", None)
  return getattr(fn, "gradtx_name", None) or getattr(fn, "__qualname__", "?")


def _plan(fn_name: str, txs: Sequence[Any], names: Sequence[str]) -> list:
  """Per member: emit moments for the next member?"""
  for i, tx in enumerate(txs):
    V.check_transform(fn_name, f"member {names[i]}", tx)
  plan = []
  for i, tx in enumerate(txs):
    nxt = txs[i + 1] if i + 1 < len(txs) else None
    wants = isinstance(nxt, base.MomentConsumer)
    if wants and not isinstance(tx, base.MomentEmitter):
      raise ValueError(
          f"{fn_name}: {_label(nxt)} ({names[i + 1]}) reads the moment "
          f"estimates of the transform before it, but {_label(tx)} "
          f"({names[i]}) does not provide them. Put it right after "
          f"scale_by_adam or after another of amsgrad_max, rectify, "
          f"bound_lr (a gradtx.chain or inject_hyperparams of those works "
          f"too; other wrappers do not hand moments on).")
    plan.append(wants)
  return plan


def _run(fn_name, names, txs, plan, states, updates, params, extra_args):
  # The hand-off request is for this chain's last member only; the members
  # before it are asked according to the plan.
  emit_last = bool(extra_args.pop(base.EMIT_MOMENTS, False))
  if (txs and isinstance(txs[0], base.MomentConsumer)
      and not isinstance(updates, base.AdamMoments)):
    raise TypeError(
        f"{fn_name}: {_label(txs[0])} ({names[0]}) reads the moment "
        f"estimates of the transform before it, but it comes first and the "
        f"chain was given plain updates. Put it right after scale_by_adam, "
        f"e.g. chain(scale_by_adam(), {_label(txs[0])}(), ...); a chain that "
        f"starts with it works only as the member right after one that "
        f"hands over moments.")
  new_states = []
  for i, (tx, wants, state) in enumerate(zip(txs, plan, states)):
    emit = emit_last if i == len(txs) - 1 else wants
    kwargs = dict(extra_args, **{base.EMIT_MOMENTS: True}) if emit \
        else extra_args
    try:
      updates, state = base.call_update(tx, updates, state, params, **kwargs)
    except AttributeError as e:
      # A member reading a field its state lacks: the state is another
      # optimizer's (same number of members, other types).
      if f"'{type(state).__name__}' object has no attribute" not in str(e):
        raise
      raise ValueError(
          f"{fn_name}: {_label(tx)} ({names[i]}) cannot read its state, a "
          f"{type(state).__name__} ({e}). Was the state built by this "
          f"optimizer's init()? A state from another optimizer cannot be "
          f"reused; call init(params) on this one.") from None
    new_states.append(state)
  return updates, new_states


def _chain_type(txs: Sequence[Any]) -> type:
  if not txs:
    return base.GradientTransformationExtraArgs
  return base.moment_role(isinstance(txs[0], base.MomentConsumer),
                          isinstance(txs[-1], base.MomentEmitter))


def _check_state(fn_name: str, state: Any, kind: type, n: int) -> None:
  ok = isinstance(state, (tuple, list) if kind is tuple else kind)
  if not ok:
    hint = (" Did you pass the params where the state goes? The call is "
            "update(updates, state, params)." if isinstance(state, dict)
            and kind is tuple else "")
    raise ValueError(
        f"{fn_name}: the state must be the {kind.__name__} of {n} member "
        f"states that init() returned, got a {type(state).__name__}.{hint}")


def _chained(fn_name: str, txs: tuple, labels: list, kind: type,
             pack: Callable[[list], Any], members: Callable[[Any], Sequence],
             ) -> base.GradientTransformation:
  """A chain of ``txs`` whose state is ``pack(member states)``, a ``kind``;
  ``members(state)`` checks a state and returns its member states in
  order."""
  plan = _plan(fn_name, txs, labels)

  def init_fn(params):
    return pack([tx.init(params) for tx in txs])

  def update_fn(updates, state, params=None, **extra_args):
    _check_state(fn_name, state, kind, len(txs))
    updates, new_states = _run(fn_name, labels, txs, plan, members(state),
                               updates, params, extra_args)
    return updates, pack(new_states)

  return _chain_type(txs)(init_fn, update_fn)


def chain(*transforms: base.GradientTransformation,
          ) -> base.GradientTransformation:
  """Applies ``transforms`` in order; the state is the tuple of their states.

  Any object with ``init`` and ``update`` works as a member, optax transforms
  included. Extra keyword arguments given to ``update`` are forwarded to the
  members by :func:`gradtx.call_update`'s rule. A chain that starts with a
  moment consumer (``amsgrad_max``, ...) is one, and one that ends with an
  emitter (``scale_by_adam``, ...) is one, so adaptive groups nest.

  Args:
    *transforms: the members, applied in the order given; each one's
      output updates are the next one's input.

  Returns:
    A :class:`GradientTransformation` whose state is the tuple of the
      members' states, in order.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.chain(gradtx.clip_by_global_norm(1.0),
    ...                   gradtx.scale_by_adam(), gradtx.scale(-1e-3))
    >>> state = tx.init({"w": jnp.ones(3)})
  """
  txs = tuple(transforms)

  def members(state):
    if len(state) != len(txs):
      raise ValueError(
          f"chain: the state holds {len(state)} member states but the chain "
          f"has {len(txs)} members. Was it built by this chain's init()?")
    return state

  return _chained("chain", txs, [f"#{i}" for i in range(len(txs))], tuple,
                  tuple, members)


def named_chain(*transforms: tuple[str, base.GradientTransformation],
                ) -> base.GradientTransformation:
  """Like :func:`chain`, with members named: the state is a ``{name: state}``.

  Args:
    *transforms: ``(name, transform)`` pairs, applied in the order given;
      the names (unique) key the members' states.

  Returns:
    A :class:`GradientTransformation` whose state is a dict from each name
      to its member's state.

  Example:
    >>> import gradtx
    >>> tx = gradtx.named_chain(("clip", gradtx.clip(1.0)),
    ...                         ("sgd", gradtx.sgd(0.1)))
  """
  names = [n for n, _ in transforms]
  if len(set(names)) != len(names):
    raise ValueError(f"named_chain: names must be unique, got {names}.")
  txs = tuple(tx for _, tx in transforms)

  def members(state):
    if set(state) != set(names):
      raise ValueError(
          f"named_chain: the state has members {sorted(state)} but the chain "
          f"has {sorted(names)}.")
    return [state[n] for n in names]

  return _chained("named_chain", txs, [repr(n) for n in names], dict,
                  lambda states: dict(zip(names, states)), members)


# --------------------------------------------------------------------------
# Partition


class PartitionState(NamedTuple):
  """One inner state per label.

  Attributes:
    inner_states: each label's transform state (a :class:`MaskedState`), by
      label.
  """
  inner_states: dict


def partition(transforms: Mapping[Hashable, base.GradientTransformation],
              param_labels: Union[Any, Callable[[Any], Any]],
              *, mask_compatible_extra_args: bool = False,
              ) -> base.GradientTransformation:
  """Param groups: a different transform for each label of the params.

  ``param_labels`` is a tree of labels with the params' structure (or a
  prefix of it, or a plain dict for a Flax ``FrozenDict`` / ``nnx.State``),
  or a function from params to one. Each transform sees only its own
  leaves: its state holds nothing for the others (each inner state is a
  :func:`masked` state, as in optax). ``mask_compatible_extra_args`` is
  passed on to :func:`masked`.

  Args:
    transforms: a transform per label.
    param_labels: the label of each leaf: a tree of labels with the params'
      structure (or a prefix of one), or a function of the params returning one;
      every label must be a key of ``transforms``.
    mask_compatible_extra_args: also mask every extra argument that has the
      updates' tree structure, so each transform sees only its own leaves of it
      (see :func:`masked`).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> params = {"encoder": {"w": jnp.ones(3)}, "head": {"w": jnp.ones(2)}}
    >>> tx = gradtx.partition(
    ...     {"slow": gradtx.adam(1e-4), "fast": gradtx.sgd(1e-2)},
    ...     {"encoder": "slow", "head": "fast"})
    >>> state = tx.init(params)
  """
  fn = "partition"
  if not transforms:
    raise ValueError(f"{fn}: transforms is empty; give a dict label -> "
                     f"transform.")
  for label, tx in transforms.items():
    V.check_transform(fn, f"transforms[{label!r}]", tx)

  def labels_of(tree):
    labels = spec_tree(fn, param_labels, tree)
    unknown = set(jax.tree.leaves(labels)) - set(transforms)
    if unknown:
      raise ValueError(
          f"{fn}: the params carry labels {sorted(map(str, unknown))} that "
          f"have no transform; transforms has {sorted(map(str, transforms))}.")
    return labels

  def masks(tree):
    labels = labels_of(tree)
    return {label: jax.tree.map(lambda l, label=label: l == label, labels)
            for label in transforms}

  def group(tx, mask):
    return masked(tx, mask,
                  mask_compatible_extra_args=mask_compatible_extra_args)

  def init_fn(params):
    m = masks(params)
    return PartitionState(inner_states={
        label: group(tx, m[label]).init(params)
        for label, tx in transforms.items()})

  def update_fn(updates, state, params=None, **extra_args):
    LW.check_updates_match_params(fn, updates, params)
    m = masks(updates)
    new_states = {}
    for label, tx in transforms.items():
      updates, new_states[label] = group(tx, m[label]).update(
          updates, state.inner_states[label], params, **extra_args)
    return updates, PartitionState(inner_states=new_states)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
