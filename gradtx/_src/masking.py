"""Masks: :func:`masked` applies an inner transform to some leaves only,
:func:`freeze` zeroes the updates of some leaves; and the mask helpers that
:func:`gradtx.partition` shares (a spec as a tree, or a function of the
params, broadcast to the params' structure)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import tree_utils as T


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
    LW.check_updates_match_params(fn, updates, params)
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
