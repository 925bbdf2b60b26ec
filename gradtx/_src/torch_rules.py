"""The three update rules of ``torch.optim`` that gradtx's primitives do not
have, for the presets of :mod:`gradtx.torch_like` (which exports them):
:func:`scale_by_nadam` (NAdam's momentum-decay schedule),
:func:`scale_by_radam` (torch's RAdam: ``eps`` before the bias correction,
switch at ``rho_t > 5``) and :func:`add_decoupled_weight_decay` (AdamW's
decay factor ``1 - lr * weight_decay``, rounded as torch rounds it).

This module is imported by :mod:`gradtx.torch_like` only, once ``gradtx``
is initialised, so it may use the public namespace.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V

_PREFIX = "torch_like."


def _is_zero(x: Any) -> bool:
  """True for a Python 0: an option that is off, left out of the chain.

  Only Python numbers decide the chain's structure. An array (as from
  :func:`gradtx.inject_hyperparams`: concrete in ``init``, traced in
  ``update``) keeps its part of the chain whatever its value, so that
  ``init`` and ``update`` build the same chain.
  """
  return isinstance(x, (int, float)) and not isinstance(x, bool) and x == 0


# --------------------------------------------------------------------------
# Step-dependent scalars, as accurate as torch's.
#
# torch computes 1 - b**t, NAdam's mu_t and RAdam's rho_t in Python floats
# (double). In float32 (JAX without x64), 1 - b2**t loses what rounding
# b2 = 0.999 to float32 costs: 1.3e-5 relative, a systematic 6e-6 in every
# Adam step. Taking log(b) in double once and exponentiating per step keeps
# these scalars to a few float32 ulps. For 1 - b**t that is gradtx's own
# bias correction (traced decays included); RAdam's rho_t of a schedule or
# a traced value (e.g. from inject_hyperparams) uses the plain formula.


def _float_count(count: jax.Array) -> jax.Array:
  return count.astype(jnp.result_type(float))


def _is_number(x: Any) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


# ``1 - b ** t`` without cancellation: gradtx's own bias correction.
_one_minus_pow = num.one_minus_pow


def _radam_rho(b2: Any, t: jax.Array) -> tuple:
  r"""``(rho_inf, rho_t)`` of RAdam, ``rho_t`` without cancellation.

  :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)` subtracts two
  numbers near :math:`\rho_\infty` (1999 for ``b2=0.999``) in the first
  steps, losing three digits in float32. With :math:`l = \log\beta_2`,
  :math:`s = -tl` and :math:`s/(e^s-1) = 1 - s/2 + R(s)`,
  :math:`\rho_t = (\rho_\infty + 2/l) + t + (2/l)R(s)`: the constant is
  taken in double here, and :math:`R(s) = s^2/12 - s^4/720 + \dots` from its
  series while :math:`s < 1`; beyond, the direct form no longer cancels.
  """
  if not _is_number(b2):
    b2t = b2 ** t
    rho_inf = 2 / (1 - b2) - 1
    return rho_inf, rho_inf - 2 * t * b2t / (1 - b2t)
  rho_inf = 2 / (1 - b2) - 1
  if b2 == 0:
    return rho_inf, jnp.full_like(t, rho_inf)
  l = math.log(b2)
  s = -l * t
  s2 = s * s
  series = s2 * (1 / 12 - s2 * (1 / 720 - s2 * (
      1 / 30240 - s2 * (1 / 1209600 - s2 / 47900160))))
  small = s < 1
  s_big = jnp.where(small, 1.0, s)  # no 0/0 in the branch not taken
  near = (rho_inf + 2 / l) + t + (2 / l) * series
  # expm1 overflows to inf for large s, and s / inf = 0 gives rho_inf.
  far = rho_inf + (2 / l) * (s_big / jnp.expm1(s_big))
  return rho_inf, jnp.where(small, near, far)


# --------------------------------------------------------------------------
# New primitives


class ScaleByNadamState(NamedTuple):
  """Step count, the momentum product and NAdam's two moments.

  Attributes:
    count: steps taken (int32).
    mu_product: :math:`\\prod_{k \\le t} \\mu_k`, a scalar in JAX's default
      float dtype (float32 unless x64), as torch keeps it in its default
      dtype.
    mu: the first moment :math:`m_t` (no bias correction).
    nu: the second moment :math:`v_t` (torch's ``exp_avg_sq``).
  """
  count: jax.Array
  mu_product: jax.Array
  mu: Any
  nu: Any


def scale_by_nadam(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
                   momentum_decay: Any = 4e-3,
                   ) -> base.GradientTransformation:
  r"""NAdam's scaling with the momentum-decay schedule of ``torch.optim.NAdam``.

  Dozat, "Incorporating Nesterov momentum into Adam" (ICLR workshop 2016),
  with the warming momentum schedule :math:`\mu_t` of the paper, as PyTorch
  implements it:

  .. math::
     \mu_t = \beta_1\big(1 - \tfrac12\, 0.96^{t\psi}\big),\quad
     m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
     v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
     u_t = \Big(\frac{1-\mu_t}{1-\prod_{k\le t}\mu_k}\, g_t
           + \frac{\mu_{t+1}}{1-\prod_{k\le t+1}\mu_k}\, m_t\Big)
           \Big/ \Big(\sqrt{v_t/(1-\beta_2^t)} + \epsilon\Big)

  with :math:`\psi` = ``momentum_decay``; the step is ``-lr * u_t``.
  ``gradtx.scale_by_adam(nesterov=True)`` (optax's Nadam) has the constant
  :math:`\mu_t = \beta_1` and the bias corrections :math:`1-\beta_1^t`. No
  chain of existing primitives gives the schedule: it weighs ``g_t`` and
  ``m_t`` by different step-dependent factors while the moving average keeps
  the constant :math:`\beta_1`.

  Args:
    b1: the first moment's decay :math:`\beta_1`, in [0, 1).
    b2: the second moment's decay :math:`\beta_2`, in [0, 1).
    eps: added to the root of the bias-corrected second moment.
    momentum_decay: :math:`\psi`, how fast :math:`\mu_t` warms up to
      :math:`\beta_1`; 0 keeps it at :math:`\beta_1/2`.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> from gradtx import torch_like as tl
    >>> tx = gradtx.chain(tl.scale_by_nadam(),
    ...                   gradtx.scale_by_learning_rate(2e-3))
    >>> state = tx.init(jnp.zeros(2, jnp.float32))
    >>> updates, state = tx.update(jnp.array([1.0, -4.0], jnp.float32), state)
    >>> print(updates.round(6))
    [-0.002113  0.002113]
  """
  fn = _PREFIX + "scale_by_nadam"
  V.check_decay(fn, "b1", b1)
  V.check_decay(fn, "b2", b2)
  V.check_nonnegative(fn, "eps", eps)
  V.check_nonnegative(fn, "momentum_decay", momentum_decay)

  def init_fn(params):
    return ScaleByNadamState(
        count=num.zero_count(),
        mu_product=jnp.ones([], jnp.result_type(float)),
        mu=T.tree_zeros_like(params), nu=T.tree_zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    beta1, beta2 = V.at(b1, state.count), V.at(b2, state.count)
    psi = V.at(momentum_decay, state.count)
    count = gradtx.safe_increment(state.count)
    t = _float_count(count)
    if _is_number(psi):
      decay_t, decay_next = (jnp.exp(t * (psi * math.log(0.96))),
                             jnp.exp((t + 1) * (psi * math.log(0.96))))
    else:
      decay_t, decay_next = 0.96 ** (t * psi), 0.96 ** ((t + 1) * psi)
    mu_t = beta1 * (1 - 0.5 * decay_t)
    mu_next = beta1 * (1 - 0.5 * decay_next)
    # torch multiplies its stored product by mu_t in the product's dtype.
    mu_product = state.mu_product * mu_t.astype(state.mu_product.dtype)
    coef_g = (1 - mu_t) / (1 - mu_product)
    coef_m = mu_next / (1 - mu_product * mu_next)
    bc2 = _one_minus_pow(beta2, t)

    def leaf(g, m, v):
      (c1, omc1), (c2, omc2) = T.pair(beta1, g), T.pair(beta2, v)
      m = omc1 * g + c1 * m
      v = omc2 * num.abs_sq(g) + c2 * v
      denom = jnp.sqrt(v / bc2.astype(v.dtype)) + T.like(eps, v)
      u = (coef_g.astype(g.dtype) * g + coef_m.astype(m.dtype) * m) / denom
      return u, m, v

    updates, mu, nu = LW.leafwise(leaf, 3, updates, state.mu, state.nu,
                                 name=fn)
    return updates, ScaleByNadamState(count=count, mu_product=mu_product,
                                      mu=mu, nu=nu)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


def scale_by_radam(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
                   ) -> base.GradientTransformation:
  r"""RAdam's rectified scaling as ``torch.optim.RAdam`` computes it.

  Liu et al., "On the variance of the adaptive learning rate and beyond"
  (ICLR 2020). With Adam's moments :math:`m_t, v_t`,
  :math:`\rho_\infty = 2/(1-\beta_2) - 1`,
  :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)` and
  :math:`r_t = \sqrt{(\rho_t-4)(\rho_t-2)\rho_\infty /
  ((\rho_\infty-4)(\rho_\infty-2)\rho_t)}`:

  .. math::
     u_t = \frac{m_t}{1-\beta_1^t}\cdot\begin{cases}
       r_t\,\sqrt{1-\beta_2^t}\,/\,(\sqrt{v_t} + \epsilon) & \rho_t > 5\\
       1 & \text{otherwise (un-adapted momentum step)}\end{cases}

  Two details differ from ``gradtx.radam`` and ``optax.radam``
  (``scale_by_adam`` then ``rectify``), which is why torch's rule gets a
  transform of its own: torch adds ``eps`` to the root of the *raw*
  :math:`v_t`, before the bias correction, where they add it to
  :math:`\sqrt{v_t/(1-\beta_2^t)}` (with ``b2=0.999`` the effective ``eps``
  differs by up to a factor 32 in the first steps); and torch switches when
  :math:`\rho_t > 5`, they when :math:`\rho_t \ge 5`. Besides, ``rho_t`` is
  computed without the cancellation of the formula above (which costs
  optax's float32 ``rho_t`` three digits; see ``_radam_rho``), so the switch
  and :math:`r_t` match torch's double-precision ones.

  Args:
    b1: the first moment's decay :math:`\beta_1`, in [0, 1).
    b2: the second moment's decay :math:`\beta_2`, in [0, 1).
    eps: added to :math:`\sqrt{v_t}` before the bias correction.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> from gradtx import torch_like as tl
    >>> tx = gradtx.chain(tl.scale_by_radam(),
    ...                   gradtx.scale_by_learning_rate(1e-3))
    >>> state = tx.init(jnp.zeros(2, jnp.float32))
    >>> updates, state = tx.update(jnp.array([1.0, -4.0], jnp.float32), state)
    >>> print(updates)  # rho_1 = 1: a plain momentum step, -lr * g
    [-0.001  0.004]
  """
  fn = _PREFIX + "scale_by_radam"
  V.check_decay(fn, "b1", b1)
  V.check_decay(fn, "b2", b2)
  V.check_nonnegative(fn, "eps", eps)

  def init_fn(params):
    return gradtx.ScaleByAdamState(count=num.zero_count(),
                                   mu=T.tree_zeros_like(params),
                                   nu=T.tree_zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    beta1, beta2 = V.at(b1, state.count), V.at(b2, state.count)
    count = gradtx.safe_increment(state.count)
    t = _float_count(count)
    bc1 = _one_minus_pow(beta1, t)
    rho_inf, rho = _radam_rho(beta2, t)
    adaptive = rho > 5
    # r_t only where it is used: no NaN even in the branch jnp.where drops.
    rho = jnp.where(adaptive, rho, rho_inf)
    rect = jnp.sqrt((rho - 4) * (rho - 2) / rho
                    * (rho_inf / ((rho_inf - 4) * (rho_inf - 2))))
    adaptive_scale = rect * jnp.sqrt(_one_minus_pow(beta2, t))

    def leaf(g, m, v):
      (c1, omc1), (c2, omc2) = T.pair(beta1, g), T.pair(beta2, v)
      m = omc1 * g + c1 * m
      v = omc2 * num.abs_sq(g) + c2 * v
      m_hat = m / bc1.astype(m.dtype)
      step = (m_hat * adaptive_scale.astype(m.dtype)
              / (jnp.sqrt(v) + T.like(eps, v)))
      return jnp.where(adaptive, step, m_hat), m, v

    updates, mu, nu = LW.leafwise(leaf, 3, updates, state.mu, state.nu,
                                 name=fn)
    return updates, gradtx.ScaleByAdamState(count=count, mu=mu, nu=nu)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


class AddDecoupledWeightDecayState(NamedTuple):
  """The number of updates made so far (for a learning-rate schedule).

  Attributes:
    count: steps taken (int32), the step the learning-rate schedule reads.
  """
  count: jax.Array


def add_decoupled_weight_decay(learning_rate: base.ScalarOrSchedule,
                               weight_decay: Any,
                               ) -> base.GradientTransformation:
  r"""Decoupled weight decay with the decay factor rounded as torch rounds it.

  ``torch.optim.AdamW`` (and ``NAdam``, ``RAdam`` with
  ``decoupled_weight_decay=True``) multiply the params by
  :math:`1 - \eta_t\lambda` before the step, with that factor rounded to
  float32 (float64 for float64 params: the precision torch multiplies in).
  This adds

  .. math::
     u \leftarrow u + \frac{1 - \mathrm{fl}(1 - \eta_t\lambda)}{\eta_t}\,
       \theta

  so that ``scale_by_learning_rate(learning_rate)`` after it makes the same
  decay. In exact arithmetic it is
  ``gradtx.add_decayed_weights(weight_decay)`` (Loshchilov & Hutter, ICLR
  2019); the rounding changes the decay by up to ``2**-25 / (lr * wd)``
  relatively: 0.14% for AdamW's defaults (``lr * wd = 1e-5``), 1.4e-8 of
  each param per step, already 1.4e-6 after 100 steps.

  Args:
    learning_rate: the learning rate of the ``scale_by_learning_rate`` that
      follows, a number or a schedule of the step count.
    weight_decay: :math:`\lambda`, a number or a schedule.

  Returns:
    A :class:`gradtx.GradientTransformation` whose state is an
      :class:`AddDecoupledWeightDecayState`. It needs ``params`` in
      ``update``.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> from gradtx import torch_like as tl
    >>> tx = gradtx.chain(tl.add_decoupled_weight_decay(1e-3, 1e-2),
    ...                   gradtx.scale_by_learning_rate(1e-3))
    >>> params = jnp.ones(1, jnp.float32)
    >>> updates, _ = tx.update(jnp.zeros(1, jnp.float32), tx.init(params),
    ...                        params)
    >>> print(f"{float(updates[0]):.6e}")  # float32(1 - 1e-5) - 1
    -1.001358e-05
  """
  fn = _PREFIX + "add_decoupled_weight_decay"
  if learning_rate is None:
    raise ValueError(f"{fn}: learning_rate is None; pass the learning rate "
                     f"of the scale_by_learning_rate that follows.")
  V.check_learning_rate(fn, learning_rate)
  V.check_nonnegative(fn, "weight_decay", weight_decay)

  def init_fn(params):
    del params
    return AddDecoupledWeightDecayState(count=num.zero_count())

  def rate(lr, wd, dtype):
    """(1 - fl(1 - lr * wd)) / lr, fl rounding as torch's mul_ does."""
    # torch multiplies in float32 for float32, 16-bit and complex64 params.
    real = jnp.promote_types(jnp.finfo(dtype).dtype, jnp.float32)
    if _is_number(lr) and _is_number(wd):
      # torch forms 1 - lr * wd in double and rounds it once, in mul_.
      factor = float(np.asarray(1.0 - lr * wd, dtype=real))
      return (1.0 - factor) / lr if lr else float(wd)
    f = jnp.result_type(float)
    lr, wd = jnp.asarray(lr, f), jnp.asarray(wd, f)
    factor = (1 - lr * wd).astype(real).astype(f)
    return jnp.where(lr == 0, wd, (1 - factor) / jnp.where(lr == 0, 1, lr))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    new_state = AddDecoupledWeightDecayState(
        count=gradtx.safe_increment(state.count))
    if _is_zero(weight_decay):
      return updates, new_state  # a constant 0 needs no params
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG.format(name=fn))
    lr = V.at(learning_rate, state.count)
    wd = V.at(weight_decay, state.count)

    # One rate per params dtype, not one per leaf.
    rates = {x.dtype: rate(lr, wd, x.dtype) for x in jax.tree.leaves(params)}

    def leaf(g, p):
      return (g + T.like(rates[p.dtype], g) * p,)

    updates = LW.leafwise(leaf, 1, updates, params, name=fn)[0]
    return updates, new_state

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
