"""Hyperparameters held in the optimizer state, changeable at run time."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._src import base
from gradtx._src import combine


@jax.tree_util.register_pytree_with_keys_class
class Hyperparams(dict):
  """A dict of scalar hyperparameters that keeps one dtype per entry.

  Flattening (which ``jax.jit`` does to its arguments) converts every value
  to its fixed dtype, so ``state.hyperparams["learning_rate"] = 0.01`` with a
  Python float, a NumPy scalar or a JAX array all give the jitted step the
  same input signature: changing a value never recompiles.
  """

  def __init__(self, values=(), dtypes=None):
    super().__init__(values)
    self.dtypes = dict(dtypes or {})

  def _leaf(self, key):
    v = self[key]
    dtype = self.dtypes.get(key)
    if dtype is None or not isinstance(
        v, (int, float, np.number, np.ndarray, jax.Array)):
      return v  # a placeholder JAX put in while rebuilding the tree
    # Always convert: a weakly typed array (jnp.asarray(0.1)) of the right
    # dtype would still change the jitted step's signature.
    return jnp.asarray(v).astype(dtype)

  def tree_flatten_with_keys(self):
    keys = sorted(self)
    children = [(jax.tree_util.DictKey(k), self._leaf(k)) for k in keys]
    return children, (tuple(keys), tuple(self.dtypes.get(k) for k in keys))

  @classmethod
  def tree_unflatten(cls, aux, children):
    keys, dtypes = aux
    return cls(zip(keys, children), dict(zip(keys, dtypes)))

  def __repr__(self):
    return f"Hyperparams({dict.__repr__(self)})"


class InjectHyperparamsState(NamedTuple):
  """Step count, the current hyperparameters and the inner state."""
  count: jax.Array
  hyperparams: Hyperparams
  inner_state: Any


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
  ``state.hyperparams["learning_rate"] = 3e-4``: the jitted step does not
  recompile, since the values are inputs of the compiled program rather than
  constants baked into it. A schedule given for a hyperparameter is
  evaluated at every step and its current value stored there.

  Numbers (int, float, 0-d arrays) are injected, floats in the params'
  widest float dtype but at least float32 (or ``hyperparam_dtype``; optax
  would store ``b2=0.999`` for bfloat16 params as bfloat16, i.e. 1.0); bools, strings, dtypes, keys
  and the names in ``static_args`` stay fixed. Results equal the un-injected
  optimizer's: bit for bit in float64 and for the learning rate; a decay
  given as a float32 array rather than a Python float may differ in the last
  bit.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=1e-3)
    >>> state = tx.init({"w": jnp.ones(2)})
    >>> state.hyperparams["learning_rate"] = 1e-4
    >>> print(float(state.hyperparams["learning_rate"]))
    0.0001
  """
  static = {static_args} if isinstance(static_args, str) else set(static_args)
  signature = inspect.signature(inner_factory)
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
      elif callable(v) and not isinstance(v, jax.Array):
        schedules[k] = v
      elif _is_numeric(v):
        numeric[k] = v
      else:
        fixed[k] = v
    inner_factory(**fixed, **numeric,
                  **{k: s(0) for k, s in schedules.items()})  # validate now

    def build(hp):
      return inner_factory(**fixed, **hp)

    def dtypes_for(params):
      fdt = _float_dtype(params, hyperparam_dtype)
      out = {}
      for k in list(numeric) + list(schedules):
        v = numeric.get(k)
        is_int = v is not None and (
            isinstance(v, (int, np.integer)) or (
                hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.integer)))
        out[k] = jnp.dtype(jnp.int32) if is_int else fdt
      return out

    def init_fn(params):
      count = base.zero_count()
      values = dict(numeric)
      values.update({k: s(count) for k, s in schedules.items()})
      hp = Hyperparams(values, dtypes_for(params))
      hp = Hyperparams({k: hp._leaf(k) for k in hp}, hp.dtypes)
      return InjectHyperparamsState(count=count, hyperparams=hp,
                                    inner_state=build(dict(hp)).init(params))

    def update_fn(updates, state, params=None, **extra_args):
      values = dict(state.hyperparams)
      values.update({k: s(state.count) for k, s in schedules.items()})
      hp = Hyperparams(values, state.hyperparams.dtypes)
      hp = Hyperparams({k: hp._leaf(k) for k in hp}, hp.dtypes)
      inner = build(dict(hp))
      if combine._accepts_extra_args(inner.update):
        updates, inner_state = inner.update(updates, state.inner_state,
                                            params, **extra_args)
      else:
        updates, inner_state = inner.update(updates, state.inner_state,
                                            params)
      return updates, InjectHyperparamsState(
          count=base.safe_increment(state.count), hyperparams=hp,
          inner_state=inner_state)

    update_fn.gradtx_name = f"inject_hyperparams({name})"
    return base.GradientTransformation(init_fn, update_fn)

  return wrapped
