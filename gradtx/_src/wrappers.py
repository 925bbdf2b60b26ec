"""Wrappers that change where or when an inner transform applies."""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, NamedTuple, Union

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import tree as T
from gradtx._src import validation as V


def _key_name(k: Any) -> Any:
  for attr in ("key", "name", "idx"):
    if hasattr(k, attr):
      return getattr(k, attr)
  return str(k)


def _fmt_key(names: tuple) -> str:
  return "".join(f"[{n!r}]" for n in names)


def is_mask_fn(spec: Any) -> bool:
  """Whether a mask (or label) spec is a function of the params.

  As in optax: a spec is a function when every leaf of it is callable. A
  callable *pytree* (an equinox module of bools, say) has non-callable leaves
  and is a tree, not a function.
  """
  leaves = jax.tree.leaves(jax.tree.map(callable, spec))
  return bool(leaves) and all(leaves)


def spec_tree(fn: str, spec: Any, params: Any) -> Any:
  """``spec`` as a tree matching ``params`` or a prefix of it.

  Returns the spec itself (called on the params if it is a function) when it
  is a prefix of the params' structure, so a ``False`` over a subtree stays
  one entry, as in optax; otherwise (a plain dict for a Flax ``FrozenDict``
  or an ``nnx.State``) the per-leaf tree from :func:`broadcast_to_params`.
  """
  spec = spec(params) if is_mask_fn(spec) else spec
  try:
    jax.tree.map(lambda v, sub: None, spec, params)
    return spec
  except (ValueError, TypeError):
    return broadcast_to_params(fn, spec, params)


def broadcast_to_params(fn: str, spec: Any, params: Any) -> Any:
  """A tree of per-leaf values with ``params``' structure, from ``spec``.

  ``spec`` (a mask or a tree of labels) may be a function of the params, a
  tree of the same structure, or a prefix of it (one value for a whole
  subtree). Container types need not match: a plain dict works for a Flax
  ``FrozenDict`` or an ``nnx.State`` (leaves are matched by key path, and
  the ``.value`` of an nnx variable by its parent's path).
  """
  spec = spec(params) if is_mask_fn(spec) else spec
  try:
    return jax.tree.map(lambda v, sub: jax.tree.map(lambda _: v, sub), spec,
                        params)
  except (ValueError, TypeError):
    pass
  table = {tuple(_key_name(k) for k in path): v
           for path, v in jax.tree_util.tree_flatten_with_path(spec)[0]}
  paths, treedef = jax.tree_util.tree_flatten_with_path(params)
  out, used = [], set()
  for path, _ in paths:
    names = tuple(_key_name(k) for k in path)
    for n in range(len(names), -1, -1):
      if names[:n] in table:
        out.append(table[names[:n]])
        used.add(names[:n])
        break
    else:
      raise ValueError(
          f"{fn}: no entry for the param at {jax.tree_util.keystr(path)}. "
          f"Give a value for every param, or for one of its parent keys; the "
          f"spec has entries for {sorted(map(_fmt_key, table))[:8]}.")
  unused = [k for k in table if k not in used]
  if unused and paths:
    # An entry that matches no param is almost always a typo or a renamed
    # layer: the param it meant silently got another entry's value.
    raise ValueError(
        f"{fn}: the spec has entries for "
        f"{sorted(map(_fmt_key, unused))[:8]}, which match no param. The "
        f"params have {[jax.tree_util.keystr(p) for p, _ in paths][:8]}.")
  return jax.tree.unflatten(treedef, out)


def _static_mask(fn: str, mask_tree: Any) -> Any:
  """Returns ``mask_tree`` if its leaves are known at trace time."""
  for path, m in jax.tree_util.tree_flatten_with_path(mask_tree)[0]:
    if isinstance(m, jax.core.Tracer):
      raise TypeError(
          f"{fn}: the mask at {jax.tree_util.keystr(path)} is a traced "
          f"value. A mask decides which params have state, so it must be "
          f"known when the step is traced: compute it from the params' "
          f"names, shapes or dtypes (e.g. lambda p: jax.tree.map(lambda x: "
          f"x.ndim > 1, p)), not from their values.")
  return mask_tree


class MaskedNode(NamedTuple):
  """Stands for a masked-out subtree: a pytree node with no leaves."""


class MaskedState(NamedTuple):
  """The inner transform's state, built on the masked params.

  Attributes:
    inner_state: the state of the inner transform, built on the params with each
      masked-out subtree replaced by a :class:`MaskedNode`.
  """
  inner_state: Any


def masked(inner: base.GradientTransformation,
           mask: Union[Any, Callable[[Any], Any]],
           *, mask_compatible_extra_args: bool = False,
           ) -> base.GradientTransformation:
  """Applies ``inner`` to the leaves where ``mask`` is True only.

  ``mask`` is a tree of bools with the params' structure (or a prefix of it),
  or a function from params to such a tree. Masked-out leaves pass through
  unchanged, and the inner state holds nothing for them: a masked-out
  subtree is one :class:`MaskedNode` in the inner state, as in optax, so the
  state has optax's structure.

  Args:
    inner: the transform to apply to the unmasked leaves.
    mask: the tree of bools (or prefix of it), or a function of the params
      returning one. A pytree that happens to be callable (an equinox module
      of bools) is a tree: only a spec whose every leaf is callable is called.
    mask_compatible_extra_args: also mask every extra argument that has the
      updates' tree structure (e.g. per-param values for ``inner``).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> params = {"w": jnp.ones(3), "b": jnp.zeros(3)}
    >>> decay_w_only = gradtx.masked(gradtx.add_decayed_weights(1e-2),
    ...                              {"w": True, "b": False})
    >>> state = decay_w_only.init(params)
  """
  return _masked("masked", inner, mask, mask_compatible_extra_args)


def _masked(fn: str, inner: base.GradientTransformation, mask: Any,
            mask_compatible_extra_args: bool) -> base.GradientTransformation:
  """:func:`masked`, with errors naming ``fn`` (masked or freeze)."""
  def apply_mask(tree, mask_tree):
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)

  def get_mask(tree):
    return _static_mask(fn, spec_tree(fn, mask, tree))

  def mask_extra_args(extra_args, updates, mask_tree):
    if not mask_compatible_extra_args:
      return extra_args
    structure = jax.tree.structure(updates)
    return {k: apply_mask(v, mask_tree)
            if jax.tree.structure(v) == structure else v
            for k, v in extra_args.items()}

  def init_fn(params):
    return MaskedState(inner_state=inner.init(apply_mask(params,
                                                         get_mask(params))))

  def update_fn(updates, state, params=None, **extra_args):
    T.check_updates_match_params(fn, updates, params)
    mask_tree = get_mask(updates)
    masked_updates = apply_mask(updates, mask_tree)
    masked_params = None if params is None else apply_mask(params, mask_tree)
    new, inner_state = base.call_update(
        inner, masked_updates, state.inner_state, masked_params,
        **mask_extra_args(extra_args, updates, mask_tree))
    updates = jax.tree.map(lambda m, n, u: n if m else u, mask_tree, new,
                           updates)
    return updates, MaskedState(inner_state=inner_state)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


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
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
      raise TypeError(f"{fn}: transforms[{label!r}] is {tx!r}, not a "
                      f"gradient transformation.")

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
    T.check_updates_match_params(fn, updates, params)
    m = masks(updates)
    new_states = {}
    for label, tx in transforms.items():
      updates, new_states[label] = group(tx, m[label]).update(
          updates, state.inner_states[label], params, **extra_args)
    return updates, PartitionState(inner_states=new_states)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


def _set_to_zero() -> base.GradientTransformation:
  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    # follow_sharding: the zeros keep the update's sharding under jit.
    return jax.tree.map(lambda u: T.follow_sharding(jnp.zeros_like(u), u),
                        updates), state

  update_fn.gradtx_name = "set_to_zero"
  return base.GradientTransformation(base.init_empty_state, update_fn)


def freeze(mask: Union[Any, Callable[[Any], Any]],
           ) -> base.GradientTransformation:
  """Zeroes the updates of the leaves where ``mask`` is True.

  It is :func:`masked` around a transform that sets updates to zero, so its
  state is ``MaskedState(inner_state=EmptyState())``, as in optax.

  Chain it last (after the learning rate) so frozen params never move; the
  optimizer before it still keeps state for them. To keep no state for
  frozen params, use ``partition({"train": opt, "frozen": freeze(True)},
  labels)`` instead.

  Args:
    mask: the leaves to freeze: a tree of bools with the params' structure (or a
      prefix of one, or a single ``True`` for all), or a function of the params
      returning one.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.chain(gradtx.adam(1e-3),
    ...                   gradtx.freeze({"backbone": True, "head": False}))
  """
  return _masked("freeze", _set_to_zero(), mask, False)


class EmaParamsState(NamedTuple):
  """Step count and the moving average of the params.

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``.
    ema: the moving average of the params, the weights to evaluate with.
  """
  count: jax.Array
  ema: Any


def ema_params(decay: Any = 0.999) -> base.GradientTransformation:
  r"""Keeps an exponential moving average of the weights, for evaluation.

  .. math::
     \bar\theta_t = \beta\,\bar\theta_{t-1} + (1-\beta)\,\theta_t,\qquad
     \bar\theta_0 = \theta_0

  (Polyak & Juditsky 1992 averaging, in its exponential form). The updates
  pass through unchanged; put it last in the chain so that
  :math:`\theta_t` is ``params + updates``. Read ``state.ema`` (for a
  chain, the last member's state) to evaluate.

  Args:
    decay: the weight :math:`\beta` of the past average, in [0, 1).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.chain(gradtx.adam(1e-3), gradtx.ema_params(0.99))
    >>> state = tx.init({"w": jnp.ones(2)})
  """
  fn = "ema_params"
  V.check_decay(fn, "decay", decay)

  def init_fn(params):
    return EmaParamsState(count=base.zero_count(),
                          ema=T.tree_strong(params))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG.format(name=fn))
    beta = T.at(decay, state.count)

    def leaf(u, p, e):
      b, omb = T.pair(beta, e)
      return (b * e + omb * (p + u).astype(e.dtype),)

    ema = T.leafwise(leaf, 1, updates, params, state.ema, name=fn,
                     params_index=0)[0]
    return updates, EmaParamsState(count=base.safe_increment(state.count),
                                   ema=ema)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
