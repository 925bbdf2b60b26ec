"""Hyperparameters held in the optimizer state, changeable at run time."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._src import base
from gradtx._src import numerics as num
from gradtx._src import validation as V


@jax.tree_util.register_pytree_with_keys_class
class Hyperparams(dict):
  """The dict of injected hyperparameters, as optax keeps them, whose
  entries keep their dtypes when set.

  ``hyperparams["learning_rate"] = 1e-4`` stores the value cast to the dtype
  the entry has, so a jitted step is given the same input signature and
  does not recompile. Where the entry is a box that holds the array (as
  Flax nnx's ``nnx.Optimizer`` wraps every state leaf in a variable), the
  box keeps its place and takes the new value: the optimizer owning it sees
  the change at its next step, and its jitted step is not traced again.
  Any other dict (from ``optax.tree_utils.tree_set``, say) works as the
  ``hyperparams`` of a state too; the next update casts its values.

  Flattens as a dict does: its keys in sorted order, as ``DictKey`` paths.
  """

  def __setitem__(self, key, value):
    old = self.get(key)
    # A box: nnx's variables have get_value/set_value; others a .value.
    accessors = (callable(getattr(old, "get_value", None))
                 and callable(getattr(old, "set_value", None)))
    box = old is not None and not isinstance(
        old, (jax.Array, np.ndarray, np.generic)) and (
            accessors or hasattr(old, "value"))
    target = (old.get_value() if accessors else old.value) if box else old
    dtype = getattr(target, "dtype", None)
    if dtype is not None and _is_numeric(value):
      value = jnp.asarray(value).astype(dtype)
    if not box:
      super().__setitem__(key, value)
    elif accessors:
      old.set_value(value)
    else:
      old.value = value

  def tree_flatten_with_keys(self):
    keys = tuple(sorted(self))
    return [(jax.tree_util.DictKey(k), dict.__getitem__(self, k))
            for k in keys], keys

  @classmethod
  def tree_unflatten(cls, keys, children):
    return cls(zip(keys, children))

  def __repr__(self):
    return f"Hyperparams({dict.__repr__(self)})"


class WrappedScheduleState(NamedTuple):
  """The state of a plain schedule ``f(count)`` in ``hyperparams_states``:
  its step count (optax's ``WrappedScheduleState``)."""
  count: jax.Array


def _is_stateful_schedule(value: Any) -> bool:
  """An object with ``init()``, ``update(state, **extra_args)`` and
  ``__call__(state, **extra_args)``, optax's ``StatefulSchedule`` protocol."""
  return (callable(value) and callable(getattr(value, "init", None))
          and callable(getattr(value, "update", None)))


class InjectStatefulHyperparamsState(NamedTuple):
  """Step count, the current hyperparameters, the schedules' states and
  the inner state: optax's ``InjectStatefulHyperparamsState``, leaf for
  leaf.

  Attributes:
    count: the number of updates made.
    hyperparams: a :class:`Hyperparams` dict of the current values.
    hyperparams_states: ``{name: state}`` for each hyperparameter given as
      a schedule (a :class:`WrappedScheduleState` for a plain ``f(count)``).
    inner_state: the inner optimizer's state.
  """
  count: jax.Array
  hyperparams: Any
  hyperparams_states: dict
  inner_state: Any


# optax's older name for the same state.
InjectHyperparamsState = InjectStatefulHyperparamsState


def _is_numeric(value: Any) -> bool:
  if isinstance(value, bool):
    return False
  if isinstance(value, (int, float, np.integer, np.floating)):
    return True
  if isinstance(value, (np.ndarray, jax.Array)):
    return value.ndim == 0 and (jnp.issubdtype(value.dtype, jnp.floating) or
                                jnp.issubdtype(value.dtype, jnp.integer))
  return False


def _float_dtype(params: Any, hyperparam_dtype: Optional[Any]) -> Any:
  if hyperparam_dtype is not None:
    return jnp.dtype(hyperparam_dtype)
  dtypes = [x.dtype for x in jax.tree.leaves(params)
            if jnp.issubdtype(x.dtype, jnp.floating)]
  widest = max(dtypes, key=lambda d: jnp.finfo(d).bits, default=None)
  # Never narrower than float32: in bfloat16, b2=0.999 rounds to 1.0 and
  # Adam's second moment would stop moving (optax stores it so).
  if widest is None or jnp.finfo(widest).bits < 32:
    return jnp.dtype(jnp.float32)
  return widest


def inject_hyperparams(inner_factory: Callable[..., Any],
                       static_args: Union[str, Iterable[str]] = (),
                       hyperparam_dtype: Optional[Any] = None,
                       ) -> Callable[..., base.GradientTransformation]:
  """Wraps an optimizer factory so its numeric hyperparameters live in state.

  ``inject_hyperparams(gradtx.adam)(learning_rate=1e-3)`` builds a transform
  whose state has ``hyperparams={"learning_rate": ..., "b1": ..., ...}``.
  Read them for logging; change them between steps with
  ``state.hyperparams["learning_rate"] = 3e-4`` (also on the state of a Flax
  ``nnx.Optimizer``, ``opt.opt_state.hyperparams["learning_rate"] = 3e-4``)
  or ``optax.tree_utils.tree_set(state, learning_rate=3e-4)``: the values
  are inputs of the compiled step rather than constants baked into it, and
  a value set is cast to the entry's dtype, so the jitted step does not
  recompile.

  A hyperparameter given as a schedule ``f(count)``, or as a stateful
  schedule (an object with ``init()``, ``update(state, **extra_args)`` and
  ``__call__(state, **extra_args)``, like optax's ``StatefulSchedule``), is
  evaluated at every step and its current value stored in ``hyperparams``;
  its state is kept in ``hyperparams_states``. The state is optax's
  ``InjectStatefulHyperparamsState``, leaf for leaf.

  Numbers (int, float, 0-d arrays) are injected, floats in the params'
  widest float dtype but at least float32 (or ``hyperparam_dtype``; optax
  would store ``b2=0.999`` for bfloat16 params as bfloat16, i.e. 1.0), ints
  as int32, a strongly typed JAX array in its own dtype; bools, strings,
  dtypes, keys and the names in ``static_args``
  stay fixed. Results equal the un-injected optimizer's: bit for bit in
  float64 and for the learning rate; a decay given as a float32 array
  rather than a Python float may differ in the last bit.

  Args:
    inner_factory: the optimizer factory to wrap (:func:`adam`, a chain-building
      function, an optax alias), called with the hyperparameters' current values
      at every step.
    static_args: the name, or names, of arguments to keep fixed even if numeric
      (e.g. an int that sets a shape, such as ``memory_size``); each must be a
      parameter of ``inner_factory``.
    hyperparam_dtype: the dtype of the injected float values; ``None``: the
      params' widest float dtype, at least float32.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=1e-3)
    >>> state = tx.init({"w": jnp.ones(2)})
    >>> state.hyperparams["learning_rate"] = 1e-4
    >>> print(float(state.hyperparams["learning_rate"]))
    0.0001
  """
  static = {static_args} if isinstance(static_args, str) else set(static_args)
  signature = base.signature(inner_factory)
  if signature is None:
    raise TypeError(
        f"inject_hyperparams: cannot read the parameters of "
        f"{inner_factory!r}; pass a Python function such as gradtx.adam.")
  name = getattr(inner_factory, "__name__", "factory")
  unknown = static - set(signature.parameters)
  if unknown:
    raise ValueError(
        f"inject_hyperparams: static_args {sorted(unknown)} are not "
        f"parameters of {name}; it takes {list(signature.parameters)}.")

  @functools.wraps(inner_factory)
  def wrapped(*args, **kwargs):
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    schedules, numeric, fixed = {}, {}, {}
    for k, v in bound.arguments.items():
      if k in static or signature.parameters[k].kind in (
          inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        fixed[k] = v
      elif _is_stateful_schedule(v):
        schedules[k] = v
      elif callable(v) and not isinstance(v, jax.Array):
        schedules[k] = _WrappedSchedule(v)
      elif _is_numeric(v):
        numeric[k] = v
      else:
        fixed[k] = v
    ints = {k for k, v in numeric.items()
            if isinstance(v, (int, np.integer)) or (
                hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.integer))}
    # A strongly typed JAX array keeps the dtype it was given in (as in
    # optax): the caller chose it.
    chosen = {k: v.dtype for k, v in numeric.items()
              if isinstance(v, jax.Array) and not v.weak_type
              and k not in ints}
    # Built once to validate the arguments and to learn the inner
    # transform's part in the moment hand-off, which this one keeps.
    probe = inner_factory(**fixed, **numeric,
                          **{k: s(s.init()) for k, s in schedules.items()})

    def build(hp):
      return inner_factory(**fixed, **hp)

    def first_build(hp):
      """``build`` at init, where the values first reach the factory as
      arrays: a factory that needs an int as a Python number fails here,
      and the error names the arguments to keep static."""
      try:
        return build(dict(hp))
      except (TypeError, ValueError) as e:
        if not ints:
          raise
        hint = ", ".join(repr(k) for k in sorted(ints))
        kind = ValueError if isinstance(e, ValueError) else TypeError
        raise kind(
            f"inject_hyperparams({name}): {name} rejects its hyperparameters "
            f"as arrays: {e}\nAn argument that must stay a Python number "
            f"(a step count, a size) goes in static_args, e.g. "
            f"inject_hyperparams({name}, static_args=({hint},)).") from e

    def cast(values, tree):
      fdt = _float_dtype(tree, hyperparam_dtype)
      return Hyperparams({
          k: jnp.asarray(v).astype(
              jnp.int32 if k in ints else chosen.get(k, fdt))
          for k, v in values.items()})

    def init_fn(params):
      states = {k: s.init() for k, s in schedules.items()}
      values = dict(numeric)
      values.update({k: s(states[k]) for k, s in schedules.items()})
      hp = cast(values, params)
      return InjectStatefulHyperparamsState(
          count=num.zero_count(), hyperparams=hp, hyperparams_states=states,
          inner_state=first_build(hp).init(params))

    def update_fn(updates, state, params=None, **extra_args):
      # The hand-off request is for the inner transform, not the schedules.
      sched_args = {k: v for k, v in extra_args.items()
                    if k != base.EMIT_MOMENTS}
      values = dict(state.hyperparams)
      values.update({k: s(state.hyperparams_states[k], **sched_args)
                     for k, s in schedules.items()})
      like = params
      if like is None:  # the updates, or the moments a consumer reads
        like = (updates.mu_hat if isinstance(updates, base.AdamMoments)
                else updates)
      hp = cast(values, like)
      states = {k: s.update(state.hyperparams_states[k], **sched_args)
                for k, s in schedules.items()}
      inner = build(dict(hp))
      updates, inner_state = base.call_update(inner, updates,
                                              state.inner_state, params,
                                              **extra_args)
      return updates, InjectStatefulHyperparamsState(
          count=num.safe_increment(state.count), hyperparams=hp,
          hyperparams_states=states, inner_state=inner_state)

    update_fn.gradtx_name = f"inject_hyperparams({name})"
    return base.like(probe, init_fn, update_fn)

  return wrapped


class _WrappedSchedule:
  """A plain schedule ``f(count)`` as a stateful one (its state counts)."""

  def __init__(self, fn: Callable[[Any], Any]):
    self.fn = fn

  def init(self) -> WrappedScheduleState:
    return WrappedScheduleState(count=num.zero_count())

  def update(self, state: WrappedScheduleState,
             **extra_args: Any) -> WrappedScheduleState:
    del extra_args
    return WrappedScheduleState(count=num.safe_increment(state.count))

  def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> Any:
    del extra_args
    return V.at(self.fn, state.count)
