"""Terms added to the updates: weight decay and annealed gradient noise."""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import masking
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V


class AddDecayedWeightsState(NamedTuple):
  """The number of updates made so far, kept for a weight-decay schedule
  only (a constant rate keeps ``EmptyState``, as in optax, whose name for
  this state is ``WeightDecaySchedule``).

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``; the weight-decay schedule is read at it.
  """
  count: jax.Array


def add_decayed_weights(weight_decay: base.ScalarOrSchedule = 0.0,
                        mask: Optional[Union[Any, Callable[[Any], Any]]] = None,
                        ) -> base.GradientTransformation:
  r"""Adds ``weight_decay * params`` to the updates: :math:`u + \lambda\theta`.

  Placed before an adaptive scaling it is L2 regularisation (the decay goes
  through the preconditioner); placed after it, next to the learning rate, it
  is the decoupled weight decay of Loshchilov & Hutter (ICLR 2019), as in
  :func:`gradtx.adamw` and :func:`gradtx.sgdw`.

  Args:
    weight_decay: a number or a schedule of the step count.
    mask: a tree of bools (or a function of the params returning one):
      decay only where True, e.g. skip biases and norm scales.
  """
  # Any real rate, as in optax: a negative one (optax's fromage builds
  # one) pushes the weights away from zero.
  V.check_interval("add_decayed_weights", "weight_decay", weight_decay,
                   -math.inf, math.inf, hi_closed=True)

  scheduled = callable(weight_decay)

  def init_fn(params):
    del params
    if scheduled:
      return AddDecayedWeightsState(count=num.zero_count())
    return base.EmptyState()

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if scheduled:
      new_state = AddDecayedWeightsState(
          count=num.safe_increment(state.count))
    else:
      new_state = state
    if isinstance(weight_decay, (int, float)) and weight_decay == 0.0:
      return updates, new_state  # a constant 0 needs no params
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG.format(name="add_decayed_weights"))
    if updates is None:
      return None, new_state  # no gradients at all: nothing to decay
    s = V.at(weight_decay, state.count) if scheduled else weight_decay
    updates = LW.leafwise(lambda g, p: (g + T.like(s, g) * p,), 1, updates,
                         params, name="add_decayed_weights",
                         params_index=0)[0]
    return updates, new_state

  update_fn.gradtx_name = "add_decayed_weights"
  tx = base.GradientTransformation(init_fn, update_fn)
  return tx if mask is None else masking.masked(tx, mask)


class AddNoiseState(NamedTuple):
  """Step count and the PRNG key of the next draw.

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``; the noise variance decays with it.
    rng_key: the PRNG key the next step splits to draw its noise.
  """
  count: jax.Array
  rng_key: jax.Array


def _as_key(fn: str, key: Any) -> jax.Array:
  if key is None:
    raise ValueError(
        f"{fn}: pass an explicit PRNG key, e.g. key=jax.random.key(0), or an "
        f"int seed (key=0 or seed=0); gradtx draws no hidden default seed.")
  dtype = getattr(key, "dtype", None)
  if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
    if key.shape != ():
      raise ValueError(
          f"{fn}: key must be a single PRNG key, got an array of keys of "
          f"shape {key.shape}; pick one, e.g. keys[0].")
    return key
  if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
    return jax.random.key(key)
  if (dtype is not None and jnp.issubdtype(dtype, jnp.integer)
      and getattr(key, "shape", None) == ()):
    return jax.random.key(key)  # a traced or 0-d integer seed
  raise ValueError(
      f"{fn}: key must be a typed PRNG key (jax.random.key(seed)) or an int "
      f"seed, got {key!r}. A raw uint32 key from jax.random.PRNGKey can be "
      f"wrapped with jax.random.wrap_key_data.")


def _key_or_seed(fn: str, key: Any, seed: Any) -> jax.Array:
  """optax's ``seed=`` spelling of the key, with no silent default seed."""
  if seed is not None:
    if key is not None:
      raise ValueError(f"{fn}: got both key={key!r} and seed={seed!r}; pass "
                       f"one of them.")
    key = seed
  return _as_key(fn, key)


def add_noise(eta: Any, gamma: Any, key: Any = None, *, seed: Any = None,
              ) -> base.GradientTransformation:
  r"""Adds annealed Gaussian noise (Neelakantan et al., 2015).

  .. math::
     u_t = g_t + \mathcal{N}\!\left(0, \frac{\eta}{(1 + t)^{\gamma}}\right),
     \qquad t = 0, 1, \dots

  Each step splits the stored key, then draws one normal sample per leaf from
  keys split off the sample key, so the draws equal optax's for the same key.
  The paper uses ``gamma = 0.55`` and ``eta`` in {0.01, 0.3, 1.0}.

  Args:
    eta: the initial variance (a number or a schedule of the step).
    gamma: the decay exponent of the variance.
    key: a PRNG key (``jax.random.key(seed)``) or an int seed. Required:
      optax 0.2.8 falls back to seed 0 with a warning, gradtx refuses.
    seed: optax's other spelling of an int seed; give ``key`` or ``seed``.
  """
  fn = "add_noise"
  V.check_nonnegative(fn, "eta", eta)
  V.check_nonnegative(fn, "gamma", gamma)
  key = _key_or_seed(fn, key, seed)

  def init_fn(params):
    del params
    # A copy made now lands where the counter does (on the mesh, inside
    # jax.set_mesh), so the step's output key has the same sharding as its
    # input and the second step does not compile again.
    return AddNoiseState(count=num.zero_count(),
                         rng_key=jax.random.clone(key))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    count = num.safe_increment(state.count)
    e = eta(state.count) if callable(eta) else eta
    std = jnp.sqrt(e / count ** gamma)
    rng_key, sample_key = jax.random.split(state.rng_key)
    leaves, treedef = jax.tree.flatten(updates)
    keys = jax.random.split(sample_key, treedef.num_leaves)
    noisy = [g + T.like(std, g) * jax.random.normal(k, g.shape, g.dtype)
             for g, k in zip(leaves, keys)]
    return (jax.tree.unflatten(treedef, noisy),
            AddNoiseState(count=count, rng_key=rng_key))

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
