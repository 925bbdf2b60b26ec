"""The gradtx contract.

A gradient transformation is a pair of pure functions::

    init(params) -> state
    update(updates, state, params=None, **extra_args) -> (updates, state)

``init`` builds the state (moments, counters, keys) from the params it will
optimise; ``update`` maps this step's updates (usually the gradients) and the
old state to new updates and the new state. Neither mutates anything, so both
can be jitted, vmapped and differentiated.

This is structurally the same contract as optax's ``GradientTransformation``:
a ``NamedTuple`` of ``(init, update)``. An optax transform can therefore be used
inside :func:`gradtx.chain`, and a gradtx transform inside ``optax.chain``,
``flax.nnx.Optimizer`` or ``flax.training.train_state.TrainState``.

Every gradtx ``update`` accepts ``**extra_args`` (a line search's value and
value function, say) and ignores the ones it does not use; :func:`gradtx.chain`
forwards them only to members whose ``update`` can take them.

Conventions kept by every transform in the library:

* state is one ``NamedTuple`` per transform, whatever its flags;
* step counters are int32 scalars that saturate at ``2**31 - 1`` instead of
  wrapping (see :func:`safe_increment`);
* ``None`` leaves in ``updates`` (the masked-out parts of a tree) stay ``None``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp

from gradtx._src import tree as T

Array = jax.Array
ArrayTree = Any
Params = Any
Updates = Any
OptState = Any
Schedule = Callable[[Any], Any]
ScalarOrSchedule = Union[float, Array, Schedule]

NO_PARAMS_MSG = (
    "{name}: this transform needs the current params; call "
    "update(updates, state, params) instead of update(updates, state)."
)


class GradientTransformation(NamedTuple):
  """A pair of pure functions ``(init, update)``; see the module docstring.

  Attributes:
    init: ``init(params) -> state``. Builds the transform's state (moments,
      counters, keys) for ``params``, a pytree of arrays.
    update: ``update(updates, state, params=None, **extra_args) ->
      (updates, state)``. Maps this step's updates (usually the gradients)
      and the old state to the new updates and the new state; ``params``
      are the current params, needed by some transforms (weight decay,
      say), and ``extra_args`` the extra inputs some transforms read (a
      line search's ``value`` and ``value_fn``), ignored by the others.
  """

  init: Callable[[Params], OptState]
  update: Callable[..., tuple[Updates, OptState]]


class GradientTransformationExtraArgs(GradientTransformation):
  """A :class:`GradientTransformation` whose ``update`` takes any extra
  keyword arguments (optax's type of the same name).

  Every gradtx ``update`` already does; :func:`gradtx.chain` returns this
  type, as optax's does, and :func:`with_extra_args_support` wraps any
  transform (an optax one, say) into it.

  Attributes:
    init: ``init(params) -> state``, as in :class:`GradientTransformation`.
    update: ``update(updates, state, params=None, **extra_args) -> (updates,
      state)``; it accepts any extra keyword arguments and ignores those it does
      not use.
  """


def with_extra_args_support(tx: GradientTransformation,
                            ) -> GradientTransformationExtraArgs:
  """``tx`` with an ``update`` that ignores extra keyword arguments it does
  not take (``tx`` itself if it already is that type), as in optax.

  Args:
    tx: the transform to wrap, a gradtx or optax transform.
  """
  if isinstance(tx, GradientTransformationExtraArgs):
    return tx

  def update(updates, state, params=None, **extra_args):
    del extra_args
    return tx.update(updates, state, params)

  return GradientTransformationExtraArgs(tx.init, update)


class EmptyState(NamedTuple):
  """The state of a stateless transform: an empty ``NamedTuple``."""


def init_empty_state(params: Params) -> EmptyState:
  del params
  return EmptyState()


def identity() -> GradientTransformation:
  """The transform that returns its updates unchanged.

  Returns:
    A :class:`GradientTransformation` whose state is :class:`EmptyState`.
  """

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    return updates, state

  return GradientTransformation(init_empty_state, update_fn)


def stateless(
    f: Callable[[Updates, Optional[Params]], Updates],
) -> GradientTransformation:
  """Turns ``f(updates, params) -> updates`` into a stateless transform.

  Args:
    f: a function of the whole updates tree and the params (``None`` when
      ``update`` is called without params) returning the new updates tree.

  Returns:
    A :class:`GradientTransformation` whose state is :class:`EmptyState`.
  """

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    return f(updates, params), state

  return GradientTransformation(init_empty_state, update_fn)


def stateless_with_tree_map(
    f: Callable[[Array, Optional[Array]], Array],
) -> GradientTransformation:
  """Like :func:`stateless`, with ``f(update_leaf, param_leaf)`` per leaf.

  Args:
    f: a function of one update leaf and the matching param leaf (``None``
      when ``update`` is called without params) returning the new update
      leaf.

  Returns:
    A :class:`GradientTransformation` whose state is :class:`EmptyState`.
  """

  def g(updates, params):
    if params is None:
      return jax.tree.map(lambda u: f(u, None), updates)
    return jax.tree.map(f, updates, params)

  return stateless(g)


def apply_updates(params: Params, updates: Updates) -> Params:
  """Returns ``params + updates``, keeping each param's dtype.

  The sum is computed in the promoted dtype of the two leaves and cast back,
  so bfloat16 params with float32 updates stay bfloat16. ``None`` params stay
  ``None``, and a ``None`` update leaves its param as it is. Updates whose
  keys or shapes differ from the params' raise a ``ValueError`` (a shape is
  never broadcast), and a complex update for a real param a ``TypeError``:
  the cast back would drop its imaginary part.

  Args:
    params: the current params, a pytree of arrays (``None`` leaves
      allowed).
    updates: the updates ``tx.update`` returned, with the params'
      structure and shapes.

  Returns:
    The new params, ``params + updates`` leaf by leaf, with the params'
      structure and dtypes.
  """
  paths, treedef = jax.tree_util.tree_flatten_with_path(
      params, is_leaf=lambda x: x is None)
  try:
    update_leaves = treedef.flatten_up_to(updates)
  except (ValueError, TypeError):
    raise T.structure_error("apply_updates", updates, params, 0,
                            is_params=True) from None

  def leaf(path, p, u):
    if p is None or u is None:
      return p
    if jnp.shape(u) != jnp.shape(p):
      raise ValueError(
          f"apply_updates: the update at {jax.tree_util.keystr(path)} has "
          f"shape {jnp.shape(u)} but the param has {jnp.shape(p)}. Pass the "
          f"params the updates were computed for.")
    dtype = jnp.asarray(p).dtype
    if (jnp.iscomplexobj(u) and not jnp.issubdtype(dtype,
                                                     jnp.complexfloating)):
      raise TypeError(
          f"apply_updates: the update at {jax.tree_util.keystr(path)} is "
          f"complex ({jnp.result_type(u)}) but the param is {dtype}; adding "
          f"it would drop the imaginary part. Were the gradients taken of "
          f"complex inputs? Take the real part of the loss or of the "
          f"gradients, or make the param complex.")
    return jnp.asarray(p + u).astype(dtype)

  return treedef.unflatten([leaf(path, p, u) for (path, p), u
                            in zip(paths, update_leaves)])


def safe_increment(count: Array) -> Array:
  """``count + 1``, saturating at the dtype's maximum instead of wrapping.

  A counter that wrapped to ``-2**31`` would turn ``b2 ** count`` into
  ``inf`` and every bias correction into NaN after 2**31 steps.

  Args:
    count: an integer or floating-point array, usually an int32 scalar
      step counter.

  Returns:
    ``count + 1`` in ``count``'s dtype, or the dtype's maximum where
      ``count`` has reached it.
  """
  count = jnp.asarray(count)
  dtype = count.dtype
  if jnp.issubdtype(dtype, jnp.integer):
    top = jnp.iinfo(dtype).max
  elif jnp.issubdtype(dtype, jnp.floating):
    top = jnp.finfo(dtype).max
  else:
    raise TypeError(
        f"safe_increment: a counter must be an integer or float array, got "
        f"dtype {dtype}.")
  top = jnp.asarray(top, dtype)
  return jnp.where(count < top, count + jnp.asarray(1, dtype), top)


def zero_count() -> Array:
  """A fresh step counter: an int32 scalar zero."""
  return jnp.zeros([], jnp.int32)
