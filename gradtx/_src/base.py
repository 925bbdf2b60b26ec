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

Extra arguments follow one rule. Every gradtx ``update`` accepts
``**extra_args`` (a line search's value and value function, say) and ignores
the ones it does not use. Whatever calls another transform's ``update`` (a
chain, a wrapper such as ``masked`` or ``inject_hyperparams``) does it through
:func:`call_update`, which forwards the extra arguments when the callee takes
them (a :class:`GradientTransformationExtraArgs`, or an ``update`` with
``**kwargs``) and drops them otherwise (an optax transform without them).

The Adam moment hand-off is part of the contract. ``scale_by_adam`` can hand
the transform after it an :class:`AdamMoments` record (bias-corrected moments,
bias corrections, ``eps``) instead of finished updates, and ``amsgrad_max``,
``rectify`` and ``bound_lr`` read that record, so a chain of them keeps one
copy of each moment. Three types say who takes part:

* :class:`MomentEmitter`: its ``update`` returns an :class:`AdamMoments`
  instead of updates when called with the extra argument
  ``emit_moments=True`` (:data:`EMIT_MOMENTS`); otherwise plain updates.
* :class:`MomentConsumer`: its ``update`` takes an :class:`AdamMoments` as
  its ``updates``; it must follow an emitter.
* :class:`MomentRelay`: both (``amsgrad_max``, ``rectify``).

The request travels as an extra argument, so it passes through every wrapper
that forwards extra arguments. :func:`gradtx.chain` asks a member to emit
exactly when the member after it is a consumer (and checks at construction
that it can), and a chain is itself a consumer if its first member is one and
an emitter if its last member is one; ``inject_hyperparams`` keeps the type of
the transform it builds. Other wrappers (``masked``, ``partition``, ...) are
plain transforms: they may wrap a whole adaptive chain, not half of one.
Outside gradtx's chain (in ``optax.chain``, say) nobody asks for the record,
so an emitter returns plain updates and a consumer raises an error that says
to put the group into one :func:`gradtx.chain`.

The optional function attribute ``update.gradtx_name`` is a label for error
messages, nothing more.

Conventions kept by every transform in the library:

* state is one ``NamedTuple`` per transform, whatever its flags;
* step counters are int32 scalars that saturate at ``2**31 - 1`` instead of
  wrapping (see :func:`safe_increment`);
* ``None`` leaves in ``updates`` (the masked-out parts of a tree) stay ``None``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp

from gradtx._src import leafwise as LW


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


def signature(fn: Callable[..., Any]) -> Optional[inspect.Signature]:
  """``fn``'s signature, or ``None`` where Python cannot tell it (a builtin,
  say). gradtx's one reader of signatures."""
  try:
    return inspect.signature(fn)
  except (TypeError, ValueError):
    return None


def takes_extra_args(tx: Any) -> bool:
  """Whether ``tx.update`` takes extra keyword arguments (the rule of
  :func:`call_update`).

  Args:
    tx: a gradient transformation (gradtx's, optax's or any object with
      ``update``).

  Returns:
    True for a :class:`GradientTransformationExtraArgs` or an ``update``
      with ``**kwargs``, False otherwise.
  """
  if isinstance(tx, GradientTransformationExtraArgs):
    return True
  sig = signature(tx.update)
  return sig is not None and any(
      p.kind is inspect.Parameter.VAR_KEYWORD
      for p in sig.parameters.values())


def call_update(tx: Any, updates: Updates, state: OptState,
                params: Optional[Params] = None,
                **extra_args: Any) -> tuple[Updates, OptState]:
  """``tx.update(updates, state, params, **extra_args)``, under the one rule
  for extra arguments: they are forwarded when ``tx`` takes them (see
  :func:`takes_extra_args`) and dropped otherwise. Every gradtx chain and
  wrapper calls the transforms inside it through this.

  Args:
    tx: the transform to call.
    updates: its input updates.
    state: its state.
    params: the current params, or ``None``.
    **extra_args: the extra keyword arguments to forward.

  Returns:
    ``tx.update``'s ``(updates, state)``.
  """
  if extra_args and takes_extra_args(tx):
    return tx.update(updates, state, params, **extra_args)
  return tx.update(updates, state, params)


# --------------------------------------------------------------------------
# The Adam moment hand-off

EMIT_MOMENTS = "emit_moments"


"""The extra argument that asks a :class:`MomentEmitter` for its
:class:`AdamMoments` record instead of finished updates."""


class AdamMoments(NamedTuple):
  """What an emitter (``scale_by_adam``) hands to the consumer after it.

  A pytree (a ``NamedTuple``). The update it stands for is, per leaf::

      where(adaptive, rect * mu_hat / (sqrt(nu_hat + eps_root) + eps),
            mu_hat)

  Attributes:
    mu_hat: the bias-corrected (and, for Nadam, Nesterov) first moment.
    nu_hat: the bias-corrected second moment ``v_t / (1 - b2**t)``, or what
      replaces it (AMSGrad's running maximum).
    count: this step's index ``t`` (1 on the first step).
    b2: the second-moment decay (RAdam's rectification needs it).
    bc1: the bias correction ``1 - b1**t`` that ``mu_hat`` was divided by
      (1 where a consumer undid it): the raw first moment is
      ``mu_hat * bc1``.
    bc2: likewise ``1 - b2**t`` for ``nu_hat``.
    eps: the denominator's ``eps``, outside the root.
    eps_root: the denominator's ``eps_root``, inside the root.
    rect: a scalar multiplier of the adaptive step (RAdam's ``r_t``).
    adaptive: a scalar bool; False while the step is un-adapted momentum.
  """
  mu_hat: Any
  nu_hat: Any
  count: Array
  b2: Any
  bc1: Any
  bc2: Any
  eps: Any
  eps_root: Any
  rect: Any = 1.0
  adaptive: Any = True


class MomentEmitter(GradientTransformationExtraArgs):
  """A transform whose ``update`` returns an :class:`AdamMoments` record
  instead of updates when called with ``emit_moments=True``.

  Attributes:
    init: ``init(params) -> state``, as for any transform.
    update: ``update(updates, state, params=None, **extra_args) ->
      (updates, state)``, with the role above.
  """


class MomentConsumer(GradientTransformationExtraArgs):
  """A transform whose ``update`` reads an :class:`AdamMoments` record as its
  ``updates``; in a :func:`gradtx.chain` it must follow an emitter.

  Attributes:
    init: ``init(params) -> state``, as for any transform.
    update: ``update(updates, state, params=None, **extra_args) ->
      (updates, state)``, with the role above.
  """


class MomentRelay(MomentConsumer, MomentEmitter):
  """A consumer that can also emit: it reads the record and, when asked,
  hands on a modified one (``amsgrad_max``, ``rectify``).

  Attributes:
    init: ``init(params) -> state``, as for any transform.
    update: ``update(updates, state, params=None, **extra_args) ->
      (updates, state)``, with the role above.
  """


def moment_role(consumes: bool, emits: bool) -> type:
  """The contract type for a transform that reads and/or hands on moments."""
  if consumes:
    return MomentRelay if emits else MomentConsumer
  return MomentEmitter if emits else GradientTransformationExtraArgs


def like(tx: Any, init: Callable[..., Any], update: Callable[..., Any],
         ) -> GradientTransformationExtraArgs:
  """``(init, update)`` with ``tx``'s part in the moment hand-off: for
  wrappers whose ``update`` calls ``tx``'s and forwards extra arguments."""
  return moment_role(isinstance(tx, MomentConsumer),
                     isinstance(tx, MomentEmitter))(init, update)


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
    raise LW.structure_error("apply_updates", updates, params, 0,
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
