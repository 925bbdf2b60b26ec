r"""``torch.optim``'s optimizers as gradtx transforms, step for step.

Each constructor takes the arguments of its ``torch.optim`` namesake (the
same names, order, keyword-only markers and defaults as PyTorch 2.13, with
``params`` left out) and returns a :class:`gradtx.GradientTransformation`
that moves the params as torch's ``optimizer.step()`` does: in float32 the
two trajectories agree to 1e-6 (relative, absolute near 0) over 100 steps,
with one exception listed below (``tests/test_torch_like.py`` runs torch
and gradtx side by side for every preset and its main options, with and
without ``jax_enable_x64``).

Porting a training loop:

  >>> import jax, jax.numpy as jnp, gradtx
  >>> from gradtx import torch_like as tl
  >>> # torch: opt = torch.optim.AdamW(model.parameters(), lr=0.1,
  >>> #                                weight_decay=0.01)
  >>> tx = tl.AdamW(lr=0.1, weight_decay=0.01)
  >>> params = {"w": jnp.array([1.0, -2.0], jnp.float32)}
  >>> state = tx.init(params)
  >>> loss_fn = lambda p: jnp.sum(p["w"] ** 2)
  >>> for _ in range(3):
  ...   grads = jax.grad(loss_fn)(params)                 # loss.backward()
  ...   updates, state = tx.update(grads, state, params)  # opt.step()
  ...   params = gradtx.apply_updates(params, updates)
  >>> print([round(float(w), 4) for w in params["w"]])  # as torch's
  [0.6989, -1.6949]

The rest of the torch vocabulary:

* ``opt.zero_grad()``: nothing to do, gradients are values.
* Pass ``params`` to ``update`` whenever ``weight_decay`` is not 0.
* An ``lr_scheduler`` stepped once per ``opt.step()``: pass ``lr`` as a
  schedule of the step count; step ``t`` (from 0) uses ``lr(t)``, also
  inside the decoupled decay and Adagrad's ``lr / (1 + t * lr_decay)``.
  Rprop's ``lr`` is its initial step size and must be a number.
* Param groups with their own options: :func:`gradtx.partition`, one
  preset per group.
* Changing ``param_group["lr"]`` (or another option) during training:
  :func:`gradtx.inject_hyperparams` wraps any preset; Rprop's ``lr`` must
  stay a number (``static_args="lr"``).
* ``opt.state_dict()``: ``state`` is a pytree; checkpoint it with the params.

Each preset is a :func:`gradtx.chain` of gradtx primitives: ``maximize=True``
puts ``scale(-1)`` first (torch negates the gradient before anything else),
L2 ``weight_decay`` is :func:`gradtx.add_decayed_weights` before the
scaling, and ``lr`` is :func:`gradtx.scale_by_learning_rate` at the end.
Three rules of torch's have no gradtx primitive, and this module adds them:
:func:`scale_by_nadam` (NAdam's momentum-decay schedule),
:func:`scale_by_radam` (torch's RAdam: ``eps`` before the bias correction,
switch at ``rho_t > 5``) and :func:`add_decoupled_weight_decay` (AdamW's
decay factor ``1 - lr * weight_decay``, which torch rounds to float32). The
two scalings also take their step-dependent scalars (``1 - b2**t``, RAdam's
``rho_t``) to full float32 accuracy, as torch gets them by computing them
in double; see :func:`scale_by_radam`.

Where the results differ from torch:

* Complex params: torch runs these optimizers on ``view_as_real`` (real and
  imaginary parts as separate reals, each with its own second moment);
  gradtx uses ``|g|**2`` per complex entry. Real params agree.
* Hyperparameters torch accepts but that make the method degenerate are
  refused: ``momentum`` (SGD, RMSprop), ``alpha`` (RMSprop), ``rho``
  (Adadelta) and ``dampening`` (SGD) must be in [0, 1).
* Centered RMSprop: where rounding makes ``E[g^2] - E[g]^2`` negative torch
  takes the root of it (NaN); gradtx clamps it at 0.
* ``foreach``, ``fused``, ``capturable`` and ``differentiable`` are accepted
  only at their defaults: under ``jax.jit`` XLA fuses the per-parameter loop,
  the state already lives on the device, and every gradtx step is a pure
  function that ``jax.grad`` differentiates.
* Rounding: torch rounds the params twice per step in NAdam (two
  ``addcdiv_``), gradtx once (``params + updates``); that and other
  last-bit differences stay below the 1e-6 above.
* ``Adam`` and ``AdamW`` without ``jax_enable_x64``: they are built on
  :func:`gradtx.scale_by_adam`, which takes ``1 - b2**t`` in float32, with
  ``b2`` rounded to float32 (0.999 becomes 0.99900001): every step is then
  about 6e-6 too large relatively, and with ``lr=0.02`` the params drift
  from torch's by up to 7e-6 in 100 steps. With x64 they agree to 1e-6.

How each preset differs from gradtx's optax-style optimizer of the same name
(``gradtx.adam`` and friends) is in its docstring.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx._src import base
from gradtx._src import tree as T
from gradtx._src import validation as V

__all__ = (
    "AddDecoupledWeightDecayState",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SGD",
    "ScaleByNadamState",
    "add_decoupled_weight_decay",
    "scale_by_nadam",
    "scale_by_radam",
)

_PREFIX = "torch_like."

# torch-only switches: their defaults, and why no other value applies in JAX.
_TORCH_ONLY = {
    "foreach": (None, ("under jax.jit XLA fuses the loop over the parameters "
                       "itself; there is no per-tensor loop to choose")),
    "fused": (None, ("under jax.jit XLA fuses each step into a few kernels; "
                     "there is no separate fused implementation")),
    "capturable": (False, ("a jitted gradtx step keeps its whole state, step "
                           "counts included, on the device already")),
    "differentiable": (False, ("every gradtx update is a pure function that "
                               "jax.grad can differentiate already")),
}


# --------------------------------------------------------------------------
# Argument checks


def _check_torch_only(fn: str, **flags: Any) -> None:
  for name, value in flags.items():
    default, why = _TORCH_ONLY[name]
    ok = value is None if default is None else (
        isinstance(value, (bool, np.bool_)) and not value)
    if not ok:
      raise ValueError(
          f"{fn}: {name}={value!r} does not apply in JAX: {why}. Leave "
          f"{name} at its default ({name}={default!r}).")


def _check_bool(fn: str, arg: str, value: Any) -> None:
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(f"{fn}: {arg} must be True or False, got "
                     f"{arg}={value!r}.")


def _check_pair(fn: str, arg: str, value: Any, what: str) -> tuple:
  if not (isinstance(value, (tuple, list)) and len(value) == 2):
    raise ValueError(f"{fn}: {arg} must be a pair {what}, got "
                     f"{arg}={value!r}.")
  return tuple(value)


def _check_betas(fn: str, betas: Any) -> tuple:
  b1, b2 = _check_pair(fn, "betas", betas, "(beta1, beta2)")
  V.check_decay(fn, "betas[0]", b1)
  V.check_decay(fn, "betas[1]", b2)
  return b1, b2


def _check_common(fn: str, lr: Any, eps: Any = 0.0,
                  weight_decay: Any = 0.0) -> None:
  V.check_learning_rate(fn, lr, arg="lr")  # refuses None too
  V.check_nonnegative(fn, "eps", eps)
  V.check_nonnegative(fn, "weight_decay", weight_decay)


def _is_zero(x: Any) -> bool:
  """True for a Python 0: an option that is off, left out of the chain.

  Only Python numbers decide the chain's structure. An array (as from
  :func:`gradtx.inject_hyperparams`: concrete in ``init``, traced in
  ``update``) keeps its part of the chain whatever its value, so that
  ``init`` and ``update`` build the same chain.
  """
  return isinstance(x, (int, float)) and not isinstance(x, bool) and x == 0


def _known(x: Any, test) -> bool:
  """``test(float(x))`` where ``x`` is a concrete number, else False."""
  return T.is_concrete_number(x) and test(float(x))


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
_one_minus_pow = T.one_minus_pow


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
        count=base.zero_count(),
        mu_product=jnp.ones([], jnp.result_type(float)),
        mu=T.tree_zeros_like(params), nu=T.tree_zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    beta1, beta2 = T.at(b1, state.count), T.at(b2, state.count)
    psi = T.at(momentum_decay, state.count)
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
      v = omc2 * T.abs_sq(g) + c2 * v
      denom = jnp.sqrt(v / bc2.astype(v.dtype)) + T.like(eps, v)
      u = (coef_g.astype(g.dtype) * g + coef_m.astype(m.dtype) * m) / denom
      return u, m, v

    updates, mu, nu = T.leafwise(leaf, 3, updates, state.mu, state.nu,
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
    return gradtx.ScaleByAdamState(count=base.zero_count(),
                                   mu=T.tree_zeros_like(params),
                                   nu=T.tree_zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    beta1, beta2 = T.at(b1, state.count), T.at(b2, state.count)
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
      v = omc2 * T.abs_sq(g) + c2 * v
      m_hat = m / bc1.astype(m.dtype)
      step = (m_hat * adaptive_scale.astype(m.dtype)
              / (jnp.sqrt(v) + T.like(eps, v)))
      return jnp.where(adaptive, step, m_hat), m, v

    updates, mu, nu = T.leafwise(leaf, 3, updates, state.mu, state.nu,
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
    return AddDecoupledWeightDecayState(count=base.zero_count())

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
    lr = T.at(learning_rate, state.count)
    wd = T.at(weight_decay, state.count)

    # One rate per params dtype, not one per leaf.
    rates = {x.dtype: rate(lr, wd, x.dtype) for x in jax.tree.leaves(params)}

    def leaf(g, p):
      return (g + T.like(rates[p.dtype], g) * p,)

    updates = T.leafwise(leaf, 1, updates, params, name=fn)[0]
    return updates, new_state

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Chain pieces


def _maximize(maximize: bool) -> list:
  # torch negates the gradient first, before the weight decay.
  return [gradtx.scale(-1.0)] if maximize else []


def _l2(weight_decay: Any) -> list:
  return [] if _is_zero(weight_decay) else [
      gradtx.add_decayed_weights(weight_decay)]


def _decoupled(lr: Any, weight_decay: Any) -> list:
  return [] if _is_zero(weight_decay) else [
      add_decoupled_weight_decay(lr, weight_decay)]


def _chain(*groups: list) -> base.GradientTransformation:
  return gradtx.chain(*[tx for group in groups for tx in group])


# --------------------------------------------------------------------------
# SGD


def SGD(lr: base.ScalarOrSchedule = 1e-3, momentum: float = 0,
        dampening: float = 0, weight_decay: float = 0,
        nesterov: bool = False, *, maximize: bool = False,
        foreach: Optional[bool] = None, differentiable: bool = False,
        fused: Optional[bool] = None) -> base.GradientTransformation:
  r"""``torch.optim.SGD``: SGD with L2 decay, dampened or Nesterov momentum.

  .. math::
     g_t \leftarrow g_t + \lambda\theta_{t-1},\quad
     b_1 = g_1,\ \ b_t = \mu b_{t-1} + (1-\tau) g_t,\quad
     \theta_t = \theta_{t-1} - \eta\,\begin{cases}
       g_t + \mu b_t & \text{nesterov}\\ b_t & \text{otherwise}\end{cases}

  (``mu`` = ``momentum``, ``tau`` = ``dampening``; without momentum the step
  is ``-lr * g_t``). Robbins & Monro (1951); Polyak (1964); Sutskever et al.
  (ICML 2013). The first momentum step is not dampened: torch starts the
  buffer at ``g_1``. With ``dampening=0`` this is ``gradtx.sgd`` plus the L2
  term: ``chain(add_decayed_weights(wd), trace(mu, nesterov),
  scale_by_learning_rate(lr))``. A non-zero dampening inserts
  ``scale_by_schedule(1/(1-tau) at step 0, else 1)`` before the trace and
  ``scale(1-tau)`` after it: ``(1-tau)`` times the trace of those rescaled
  gradients is torch's buffer ``b_t``. Nesterov needs ``momentum > 0`` and
  ``dampening == 0``, as in torch.

  Args and defaults are torch's; ``foreach``, ``differentiable`` and
  ``fused`` only at their defaults (see the module docstring).

  Args:
    lr: the learning rate :math:`\eta`, a number or a schedule of the step
      count (torch's ``lr_scheduler``).
    momentum: :math:`\mu`, the momentum factor in [0, 1); 0 is plain SGD.
    dampening: :math:`\tau`, in [0, 1): the momentum buffer adds ``(1 -
      dampening) * g`` (not on the first step, as in torch). A number, not
      a schedule.
    weight_decay: :math:`\lambda`, the L2 penalty added to the gradient
      (``g + weight_decay * param``); 0 turns it off. Needs ``params`` in
      ``update``.
    nesterov: Nesterov momentum; needs ``momentum > 0`` and
      ``dampening=0``.
    maximize: maximize the objective: the gradients are negated first.
    foreach: torch's implementation switch; only ``None`` is accepted
      (under ``jax.jit`` XLA fuses the loop over the params).
    differentiable: torch's autograd switch; only ``False`` is accepted
      (every gradtx step is a pure function that ``jax.grad``
      differentiates).
    fused: torch's implementation switch; only ``None`` is accepted (XLA
      fuses each step).

  Returns:
    A :class:`gradtx.GradientTransformation`: a :func:`gradtx.chain` of
      gradtx primitives whose state is the tuple of their states.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> from gradtx import torch_like as tl
    >>> tx = tl.SGD(lr=0.1, momentum=0.9)
    >>> params = jnp.array([1.0, -2.0], jnp.float32)
    >>> state = tx.init(params)
    >>> updates, state = tx.update(2 * params, state, params)
    >>> print(gradtx.apply_updates(params, updates))
    [ 0.8 -1.6]
  """
  fn = _PREFIX + "SGD"
  _check_torch_only(fn, foreach=foreach, differentiable=differentiable,
                    fused=fused)
  _check_common(fn, lr, weight_decay=weight_decay)
  V.check_decay(fn, "momentum", momentum)
  if callable(dampening):
    raise ValueError(f"{fn}: dampening must be a number, not a schedule, "
                     f"got dampening={dampening!r}.")
  V.check_interval(fn, "dampening", dampening, 0.0, 1.0,
                   hint="it scales the gradient's weight in the momentum "
                   "buffer by 1 - dampening.")
  _check_bool(fn, "nesterov", nesterov)
  _check_bool(fn, "maximize", maximize)
  if nesterov and (_known(momentum, lambda m: m == 0)
                   or _known(dampening, lambda d: d != 0)):
    raise ValueError(
        f"{fn}: nesterov=True needs momentum > 0 and dampening=0 (as in "
        f"torch), got momentum={momentum!r} and dampening={dampening!r}.")

  if _is_zero(momentum):
    momentum_group = []
  elif _is_zero(dampening):
    momentum_group = [gradtx.trace(momentum, nesterov)]
  else:
    # torch: b_1 = g_1, b_t = mu b_{t-1} + (1 - tau) g_t. With c = 1 - tau
    # and w_t = b_t / c this is w_1 = g_1 / c, w_t = mu w_{t-1} + g_t: a
    # plain trace of the gradients with the first one scaled by 1 / c.
    c = 1.0 - dampening
    momentum_group = [
        gradtx.scale_by_schedule(
            lambda count: jnp.where(count == 0, 1.0 / c, 1.0)),
        gradtx.trace(momentum),
        gradtx.scale(c)]
  return _chain(_maximize(maximize), _l2(weight_decay), momentum_group,
                [gradtx.scale_by_learning_rate(lr)])


# --------------------------------------------------------------------------
# Adam, AdamW


def _adam(fn: str, lr, betas, eps, weight_decay, amsgrad, maximize,
          decoupled_weight_decay) -> base.GradientTransformation:
  _check_common(fn, lr, eps, weight_decay)
  b1, b2 = _check_betas(fn, betas)
  _check_bool(fn, "amsgrad", amsgrad)
  _check_bool(fn, "maximize", maximize)
  _check_bool(fn, "decoupled_weight_decay", decoupled_weight_decay)
  return _chain(
      _maximize(maximize),
      [] if decoupled_weight_decay else _l2(weight_decay),
      [gradtx.scale_by_adam(b1, b2, eps)],
      [gradtx.amsgrad_max(max_of_raw=True)] if amsgrad else [],
      _decoupled(lr, weight_decay) if decoupled_weight_decay else [],
      [gradtx.scale_by_learning_rate(lr)])


def Adam(lr: base.ScalarOrSchedule = 1e-3, betas: tuple = (0.9, 0.999),
         eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False,
         *, foreach: Optional[bool] = None, maximize: bool = False,
         capturable: bool = False, differentiable: bool = False,
         fused: Optional[bool] = None, decoupled_weight_decay: bool = False,
         ) -> base.GradientTransformation:
  r"""``torch.optim.Adam`` (Kingma & Ba, ICLR 2015), optionally AMSGrad.

  .. math::
     g_t \leftarrow g_t + \lambda\theta_{t-1},\quad
     m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
     v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
     \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
       \frac{m_t}{\sqrt{\hat v_t / (1-\beta_2^t)} + \epsilon},\qquad
     \hat v_t = \begin{cases}\max(\hat v_{t-1}, v_t) & \text{amsgrad}\\
       v_t & \text{otherwise}\end{cases}

  ``chain(add_decayed_weights(wd), scale_by_adam(b1, b2, eps),
  scale_by_learning_rate(lr))``, the same numbers as ``gradtx.adam`` when
  ``weight_decay=0``. ``amsgrad=True`` keeps the maximum of the *raw*
  ``v_t`` (Reddi et al., ICLR 2018): ``amsgrad_max(max_of_raw=True)``,
  where ``gradtx.amsgrad`` and ``optax.amsgrad`` keep the maximum of the
  bias-corrected ``v_t / (1 - b2**t)``. ``decoupled_weight_decay=True`` is
  :func:`AdamW`.

  Args and defaults are torch's; ``foreach``, ``capturable``,
  ``differentiable`` and ``fused`` only at their defaults.

  Args:
    lr: the learning rate :math:`\eta`, a number or a schedule of the step
      count (torch's ``lr_scheduler``).
    betas: ``(beta1, beta2)``, the decay rates of the first and second
      moments, each in [0, 1).
    eps: :math:`\epsilon`, added to the denominator for numerical
      stability.
    weight_decay: :math:`\lambda`, the L2 penalty added to the gradient
      (``g + weight_decay * param``); 0 turns it off. Needs ``params`` in
      ``update``.
    amsgrad: keep the running maximum of the raw second moment (AMSGrad,
      Reddi et al. 2018).
    foreach: torch's implementation switch; only ``None`` is accepted
      (under ``jax.jit`` XLA fuses the loop over the params).
    maximize: maximize the objective: the gradients are negated first.
    capturable: torch's CUDA-graph switch; only ``False`` is accepted (a
      jitted step keeps its state on the device already).
    differentiable: torch's autograd switch; only ``False`` is accepted
      (every gradtx step is a pure function that ``jax.grad``
      differentiates).
    fused: torch's implementation switch; only ``None`` is accepted (XLA
      fuses each step).
    decoupled_weight_decay: apply ``weight_decay`` to the params as AdamW
      does (a factor ``1 - lr * weight_decay``) instead of adding it to the
      gradient.

  Returns:
    A :class:`gradtx.GradientTransformation`: a :func:`gradtx.chain` of
      gradtx primitives whose state is the tuple of their states.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> from gradtx import torch_like as tl
    >>> tx = tl.Adam(lr=1e-3, amsgrad=True)
    >>> params = {"w": jnp.ones(3, jnp.float32)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.full(3, 0.5, jnp.float32)}, state)
    >>> print(updates["w"])
    [-0.001 -0.001 -0.001]
  """
  fn = _PREFIX + "Adam"
  _check_torch_only(fn, foreach=foreach, capturable=capturable,
                    differentiable=differentiable, fused=fused)
  return _adam(fn, lr, betas, eps, weight_decay, amsgrad, maximize,
               decoupled_weight_decay)


def AdamW(lr: base.ScalarOrSchedule = 1e-3, betas: tuple = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 1e-2,
          amsgrad: bool = False, *, maximize: bool = False,
          foreach: Optional[bool] = None, capturable: bool = False,
          differentiable: bool = False, fused: Optional[bool] = None,
          ) -> base.GradientTransformation:
  r"""``torch.optim.AdamW``: Adam with decoupled weight decay.

  Loshchilov & Hutter (ICLR 2019). As :func:`Adam`, with the decay applied
  to the params instead of the gradient:

  .. math::
     \theta_t = \theta_{t-1}(1 - \eta\lambda) - \frac{\eta}{1-\beta_1^t}\,
       \frac{m_t}{\sqrt{\hat v_t / (1-\beta_2^t)} + \epsilon}

  ``chain(scale_by_adam(b1, b2, eps), add_decoupled_weight_decay(lr, wd),
  scale_by_learning_rate(lr))``: ``gradtx.adamw`` (and ``optax.adamw``)
  with torch's default ``weight_decay=1e-2`` (theirs is 1e-4) and torch's
  rounding of the factor ``1 - lr * wd`` to the params' dtype (see
  :func:`add_decoupled_weight_decay`); ``amsgrad=True`` keeps the maximum
  of the raw ``v_t`` as in :func:`Adam`.

  Args and defaults are torch's; ``foreach``, ``capturable``,
  ``differentiable`` and ``fused`` only at their defaults.

  Args:
    lr: the learning rate :math:`\eta`, a number or a schedule of the step
      count (torch's ``lr_scheduler``).
    betas: ``(beta1, beta2)``, the decay rates of the first and second
      moments, each in [0, 1).
    eps: :math:`\epsilon`, added to the denominator for numerical
      stability.
    weight_decay: :math:`\lambda`, the decoupled weight decay: the params
      are multiplied by ``1 - lr * weight_decay`` each step (torch's
      default 1e-2). Needs ``params`` in ``update``.
    amsgrad: keep the running maximum of the raw second moment (AMSGrad,
      Reddi et al. 2018).
    maximize: maximize the objective: the gradients are negated first.
    foreach: torch's implementation switch; only ``None`` is accepted
      (under ``jax.jit`` XLA fuses the loop over the params).
    capturable: torch's CUDA-graph switch; only ``False`` is accepted (a
      jitted step keeps its state on the device already).
    differentiable: torch's autograd switch; only ``False`` is accepted
      (every gradtx step is a pure function that ``jax.grad``
      differentiates).
    fused: torch's implementation switch; only ``None`` is accepted (XLA
      fuses each step).

  Returns:
    A :class:`gradtx.GradientTransformation`: a :func:`gradtx.chain` of
      gradtx primitives whose state is the tuple of their states.

  Example:
    >>> from gradtx import torch_like as tl
    >>> tx = tl.AdamW(lr=3e-4, weight_decay=0.05)
  """
  fn = _PREFIX + "AdamW"
  _check_torch_only(fn, foreach=foreach, capturable=capturable,
                    differentiable=differentiable, fused=fused)
  return _adam(fn, lr, betas, eps, weight_decay, amsgrad, maximize, True)


# --------------------------------------------------------------------------
# RMSprop


def RMSprop(lr: base.ScalarOrSchedule = 1e-2, alpha: float = 0.99,
            eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
            centered: bool = False, capturable: bool = False,
            foreach: Optional[bool] = None, maximize: bool = False,
            differentiable: bool = False) -> base.GradientTransformation:
  r"""``torch.optim.RMSprop`` (Hinton, Lecture 6e, 2012; centered: Graves 2013).

  .. math::
     g_t \leftarrow g_t + \lambda\theta_{t-1},\quad
     v_t = \alpha v_{t-1} + (1-\alpha) g_t^2,\quad
     d_t = \sqrt{v_t - \bar g_t^2} + \epsilon\ \ (\text{centered}),
       \ \ \sqrt{v_t} + \epsilon\ \ (\text{otherwise}),\\
     b_t = \mu b_{t-1} + g_t / d_t,\qquad
     \theta_t = \theta_{t-1} - \eta\, b_t

  with :math:`\bar g_t = \alpha\bar g_{t-1} + (1-\alpha) g_t` and
  :math:`b_t = g_t / d_t` when ``momentum=0``. ``eps`` is outside the root
  and the momentum is taken before the learning rate: ``chain(
  add_decayed_weights(wd), scale_by_rms(alpha, eps, eps_in_sqrt=False)
  (scale_by_stddev if centered), trace(momentum), scale_by_learning_rate(lr))``.
  ``gradtx.rmsprop`` and ``optax.rmsprop`` put ``eps`` inside the root,
  default ``decay=0.9`` and apply momentum after the learning rate (the same
  thing only for a constant ``lr``).

  Args and defaults are torch's; ``capturable``, ``foreach`` and
  ``differentiable`` only at their defaults.

  Args:
    lr: the learning rate :math:`\eta`, a number or a schedule of the step
      count (torch's ``lr_scheduler``).
    alpha: :math:`\alpha`, the decay rate of the running average of
      ``g**2``, in [0, 1).
    eps: :math:`\epsilon`, added to the denominator for numerical
      stability.
    weight_decay: :math:`\lambda`, the L2 penalty added to the gradient
      (``g + weight_decay * param``); 0 turns it off. Needs ``params`` in
      ``update``.
    momentum: :math:`\mu`, the momentum factor in [0, 1) applied to ``g /
      d`` before the learning rate; 0 turns it off.
    centered: divide by the running standard deviation of the gradient
      (Graves 2013) instead of its root mean square.
    capturable: torch's CUDA-graph switch; only ``False`` is accepted (a
      jitted step keeps its state on the device already).
    foreach: torch's implementation switch; only ``None`` is accepted
      (under ``jax.jit`` XLA fuses the loop over the params).
    maximize: maximize the objective: the gradients are negated first.
    differentiable: torch's autograd switch; only ``False`` is accepted
      (every gradtx step is a pure function that ``jax.grad``
      differentiates).

  Returns:
    A :class:`gradtx.GradientTransformation`: a :func:`gradtx.chain` of
      gradtx primitives whose state is the tuple of their states.

  Example:
    >>> from gradtx import torch_like as tl
    >>> tx = tl.RMSprop(lr=1e-3, momentum=0.9, centered=True)
  """
  fn = _PREFIX + "RMSprop"
  _check_torch_only(fn, capturable=capturable, foreach=foreach,
                    differentiable=differentiable)
  _check_common(fn, lr, eps, weight_decay)
  V.check_decay(fn, "alpha", alpha)
  V.check_decay(fn, "momentum", momentum)
  _check_bool(fn, "centered", centered)
  _check_bool(fn, "maximize", maximize)
  scaler = gradtx.scale_by_stddev if centered else gradtx.scale_by_rms
  return _chain(
      _maximize(maximize), _l2(weight_decay),
      [scaler(alpha, eps, 0.0, eps_in_sqrt=False)],
      [] if _is_zero(momentum) else [gradtx.trace(momentum)],
      [gradtx.scale_by_learning_rate(lr)])


# --------------------------------------------------------------------------
# Adagrad, Adadelta


def Adagrad(lr: base.ScalarOrSchedule = 1e-2, lr_decay: float = 0,
            weight_decay: float = 0, initial_accumulator_value: float = 0,
            eps: float = 1e-10, foreach: Optional[bool] = None, *,
            maximize: bool = False, differentiable: bool = False,
            fused: Optional[bool] = None) -> base.GradientTransformation:
  r"""``torch.optim.Adagrad`` (Duchi, Hazan & Singer, JMLR 2011).

  .. math::
     g_t \leftarrow g_t + \lambda\theta_{t-1},\quad
     G_t = G_{t-1} + g_t^2,\quad
     \theta_t = \theta_{t-1} - \frac{\eta}{1 + (t-1)\,\delta}\,
       \frac{g_t}{\sqrt{G_t} + \epsilon}

  with ``G_0 = initial_accumulator_value`` and ``delta = lr_decay``:
  ``chain(add_decayed_weights(wd), scale_by_rss(G_0, eps,
  eps_in_sqrt=False), scale_by_learning_rate(inverse_time_decay(lr,
  lr_decay)))``. ``lr_decay`` is torch's (the paper has none): it is the
  1/t schedule :func:`gradtx.inverse_time_decay` on top of Adagrad's own
  decay. ``gradtx.adagrad`` and ``optax.adagrad`` default to ``G_0 = 0.1``
  and ``eps=1e-7`` inside the root, and have no ``lr_decay``.

  Args and defaults are torch's; ``foreach``, ``differentiable`` and
  ``fused`` only at their defaults.

  Args:
    lr: the learning rate :math:`\eta`, a number or a schedule of the step
      count (torch's ``lr_scheduler``).
    lr_decay: :math:`\delta`: step ``t`` (from 1) uses the learning rate
      ``lr / (1 + (t - 1) * lr_decay)``.
    weight_decay: :math:`\lambda`, the L2 penalty added to the gradient
      (``g + weight_decay * param``); 0 turns it off. Needs ``params`` in
      ``update``.
    initial_accumulator_value: :math:`G_0`, the starting value of the sum
      of squared gradients.
    eps: :math:`\epsilon`, added to the denominator for numerical
      stability.
    foreach: torch's implementation switch; only ``None`` is accepted
      (under ``jax.jit`` XLA fuses the loop over the params).
    maximize: maximize the objective: the gradients are negated first.
    differentiable: torch's autograd switch; only ``False`` is accepted
      (every gradtx step is a pure function that ``jax.grad``
      differentiates).
    fused: torch's implementation switch; only ``None`` is accepted (XLA
      fuses each step).

  Returns:
    A :class:`gradtx.GradientTransformation`: a :func:`gradtx.chain` of
      gradtx primitives whose state is the tuple of their states.

  Example:
    >>> from gradtx import torch_like as tl
    >>> tx = tl.Adagrad(lr=0.1, lr_decay=1e-3)
  """
  fn = _PREFIX + "Adagrad"
  _check_torch_only(fn, foreach=foreach, differentiable=differentiable,
                    fused=fused)
  _check_common(fn, lr, eps, weight_decay)
  V.check_nonnegative(fn, "lr_decay", lr_decay)
  V.check_nonnegative(fn, "initial_accumulator_value",
                      initial_accumulator_value)
  _check_bool(fn, "maximize", maximize)
  if _is_zero(lr_decay):
    rate = lr
  elif callable(lr):
    decay = gradtx.inverse_time_decay(1.0, lr_decay)
    rate = lambda count: lr(count) * decay(count)
  else:
    rate = gradtx.inverse_time_decay(lr, lr_decay)
  return _chain(
      _maximize(maximize), _l2(weight_decay),
      [gradtx.scale_by_rss(initial_accumulator_value, eps,
                           eps_in_sqrt=False)],
      [gradtx.scale_by_learning_rate(rate)])


def Adadelta(lr: base.ScalarOrSchedule = 1.0, rho: float = 0.9,
             eps: float = 1e-6, weight_decay: float = 0,
             foreach: Optional[bool] = None, *, capturable: bool = False,
             maximize: bool = False, differentiable: bool = False,
             ) -> base.GradientTransformation:
  r"""``torch.optim.Adadelta`` (Zeiler 2012), with a learning rate.

  .. math::
     g_t \leftarrow g_t + \lambda\theta_{t-1},\quad
     E_t = \rho E_{t-1} + (1-\rho) g_t^2,\quad
     \Delta_t = \frac{\sqrt{D_{t-1}+\epsilon}}{\sqrt{E_t+\epsilon}}\,g_t,\\
     D_t = \rho D_{t-1} + (1-\rho)\Delta_t^2,\quad
     \theta_t = \theta_{t-1} - \eta\,\Delta_t

  ``chain(add_decayed_weights(wd), scale_by_adadelta(rho, eps),
  scale_by_learning_rate(lr))``: ``gradtx.adadelta(lr, rho, eps,
  weight_decay)``, with torch's default ``lr=1.0`` (the paper's method).

  Args and defaults are torch's; ``foreach``, ``capturable`` and
  ``differentiable`` only at their defaults.

  Args:
    lr: a factor on Adadelta's step (torch's default 1.0 is the paper's
      method), a number or a schedule.
    rho: :math:`\rho`, the decay rate of the running averages of ``g**2``
      and of the squared steps, in [0, 1).
    eps: :math:`\epsilon`, added to the denominator for numerical
      stability.
    weight_decay: :math:`\lambda`, the L2 penalty added to the gradient
      (``g + weight_decay * param``); 0 turns it off. Needs ``params`` in
      ``update``.
    foreach: torch's implementation switch; only ``None`` is accepted
      (under ``jax.jit`` XLA fuses the loop over the params).
    capturable: torch's CUDA-graph switch; only ``False`` is accepted (a
      jitted step keeps its state on the device already).
    maximize: maximize the objective: the gradients are negated first.
    differentiable: torch's autograd switch; only ``False`` is accepted
      (every gradtx step is a pure function that ``jax.grad``
      differentiates).

  Returns:
    A :class:`gradtx.GradientTransformation`: a :func:`gradtx.chain` of
      gradtx primitives whose state is the tuple of their states.

  Example:
    >>> from gradtx import torch_like as tl
    >>> tx = tl.Adadelta()
  """
  fn = _PREFIX + "Adadelta"
  _check_torch_only(fn, foreach=foreach, capturable=capturable,
                    differentiable=differentiable)
  _check_common(fn, lr, eps, weight_decay)
  V.check_decay(fn, "rho", rho)
  _check_bool(fn, "maximize", maximize)
  return _chain(_maximize(maximize), _l2(weight_decay),
                [gradtx.scale_by_adadelta(rho, eps)],
                [gradtx.scale_by_learning_rate(lr)])


# --------------------------------------------------------------------------
# NAdam, RAdam, Adamax


def NAdam(lr: base.ScalarOrSchedule = 2e-3, betas: tuple = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 0,
          momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False,
          *, foreach: Optional[bool] = None, maximize: bool = False,
          capturable: bool = False, differentiable: bool = False,
          ) -> base.GradientTransformation:
  r"""``torch.optim.NAdam``: Nadam with the momentum-decay schedule.

  Dozat, "Incorporating Nesterov momentum into Adam" (ICLR workshop 2016).
  With :math:`u_t` from :func:`scale_by_nadam`:

  .. math::
     \theta_t = \theta_{t-1}(1 - \eta\lambda_{dec}) - \eta\, u_t
     \quad\text{on } g_t \leftarrow g_t + \lambda_{L2}\theta_{t-1}

  ``weight_decay`` is L2 (added to the gradient) or, with
  ``decoupled_weight_decay=True``, AdamW's decoupled decay (NAdamW):
  ``chain(scale_by_nadam(b1, b2, eps, momentum_decay),
  scale_by_learning_rate(lr))`` with ``add_decayed_weights(wd)`` before it
  or :func:`add_decoupled_weight_decay` between them. ``gradtx.nadam`` and
  ``optax.nadam`` have no schedule (:math:`\mu_t = \beta_1`), so their
  numbers differ.

  Args and defaults are torch's; ``foreach``, ``capturable`` and
  ``differentiable`` only at their defaults.

  Args:
    lr: the learning rate :math:`\eta`, a number or a schedule of the step
      count (torch's ``lr_scheduler``).
    betas: ``(beta1, beta2)``, the decay rates of the first and second
      moments, each in [0, 1).
    eps: :math:`\epsilon`, added to the denominator for numerical
      stability.
    weight_decay: :math:`\lambda`, the L2 penalty added to the gradient
      (``g + weight_decay * param``); 0 turns it off. Needs ``params`` in
      ``update``.
    momentum_decay: :math:`\psi`, the momentum-decay rate of NAdam's
      schedule :math:`\mu_t = \beta_1(1 - 0.5 \cdot 0.96^{t\psi})` (torch's
      4e-3).
    decoupled_weight_decay: apply ``weight_decay`` to the params as AdamW
      does (a factor ``1 - lr * weight_decay``) instead of adding it to the
      gradient.
    foreach: torch's implementation switch; only ``None`` is accepted
      (under ``jax.jit`` XLA fuses the loop over the params).
    maximize: maximize the objective: the gradients are negated first.
    capturable: torch's CUDA-graph switch; only ``False`` is accepted (a
      jitted step keeps its state on the device already).
    differentiable: torch's autograd switch; only ``False`` is accepted
      (every gradtx step is a pure function that ``jax.grad``
      differentiates).

  Returns:
    A :class:`gradtx.GradientTransformation`: a :func:`gradtx.chain` of
      gradtx primitives whose state is the tuple of their states.

  Example:
    >>> from gradtx import torch_like as tl
    >>> tx = tl.NAdam(lr=2e-3, weight_decay=1e-2, decoupled_weight_decay=True)
  """
  fn = _PREFIX + "NAdam"
  _check_torch_only(fn, foreach=foreach, capturable=capturable,
                    differentiable=differentiable)
  _check_common(fn, lr, eps, weight_decay)
  b1, b2 = _check_betas(fn, betas)
  V.check_nonnegative(fn, "momentum_decay", momentum_decay)
  _check_bool(fn, "decoupled_weight_decay", decoupled_weight_decay)
  _check_bool(fn, "maximize", maximize)
  return _chain(
      _maximize(maximize),
      [] if decoupled_weight_decay else _l2(weight_decay),
      [scale_by_nadam(b1, b2, eps, momentum_decay)],
      _decoupled(lr, weight_decay) if decoupled_weight_decay else [],
      [gradtx.scale_by_learning_rate(lr)])


def RAdam(lr: base.ScalarOrSchedule = 1e-3, betas: tuple = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 0,
          decoupled_weight_decay: bool = False, *,
          foreach: Optional[bool] = None, maximize: bool = False,
          capturable: bool = False, differentiable: bool = False,
          ) -> base.GradientTransformation:
  r"""``torch.optim.RAdam``: rectified Adam (Liu et al., ICLR 2020).

  With :math:`u_t` from :func:`scale_by_radam` (momentum steps while
  :math:`\rho_t \le 5`, rectified adaptive steps after):

  .. math::
     \theta_t = \theta_{t-1}(1 - \eta\lambda_{dec}) - \eta\, u_t
     \quad\text{on } g_t \leftarrow g_t + \lambda_{L2}\theta_{t-1}

  ``chain(scale_by_radam(b1, b2, eps), scale_by_learning_rate(lr))`` with
  L2 decay before it or (``decoupled_weight_decay=True``)
  :func:`add_decoupled_weight_decay` between them. ``gradtx.radam`` and
  ``optax.radam`` add ``eps`` after the bias correction and switch at
  :math:`\rho_t \ge 5` (see :func:`scale_by_radam`).

  Args and defaults are torch's; ``foreach``, ``capturable`` and
  ``differentiable`` only at their defaults.

  Args:
    lr: the learning rate :math:`\eta`, a number or a schedule of the step
      count (torch's ``lr_scheduler``).
    betas: ``(beta1, beta2)``, the decay rates of the first and second
      moments, each in [0, 1).
    eps: :math:`\epsilon`, added to the denominator for numerical
      stability.
    weight_decay: :math:`\lambda`, the L2 penalty added to the gradient
      (``g + weight_decay * param``); 0 turns it off. Needs ``params`` in
      ``update``.
    decoupled_weight_decay: apply ``weight_decay`` to the params as AdamW
      does (a factor ``1 - lr * weight_decay``) instead of adding it to the
      gradient.
    foreach: torch's implementation switch; only ``None`` is accepted
      (under ``jax.jit`` XLA fuses the loop over the params).
    maximize: maximize the objective: the gradients are negated first.
    capturable: torch's CUDA-graph switch; only ``False`` is accepted (a
      jitted step keeps its state on the device already).
    differentiable: torch's autograd switch; only ``False`` is accepted
      (every gradtx step is a pure function that ``jax.grad``
      differentiates).

  Returns:
    A :class:`gradtx.GradientTransformation`: a :func:`gradtx.chain` of
      gradtx primitives whose state is the tuple of their states.

  Example:
    >>> from gradtx import torch_like as tl
    >>> tx = tl.RAdam(lr=1e-3)
  """
  fn = _PREFIX + "RAdam"
  _check_torch_only(fn, foreach=foreach, capturable=capturable,
                    differentiable=differentiable)
  _check_common(fn, lr, eps, weight_decay)
  b1, b2 = _check_betas(fn, betas)
  _check_bool(fn, "decoupled_weight_decay", decoupled_weight_decay)
  _check_bool(fn, "maximize", maximize)
  return _chain(
      _maximize(maximize),
      [] if decoupled_weight_decay else _l2(weight_decay),
      [scale_by_radam(b1, b2, eps)],
      _decoupled(lr, weight_decay) if decoupled_weight_decay else [],
      [gradtx.scale_by_learning_rate(lr)])


def Adamax(lr: base.ScalarOrSchedule = 2e-3, betas: tuple = (0.9, 0.999),
           eps: float = 1e-8, weight_decay: float = 0,
           foreach: Optional[bool] = None, *, maximize: bool = False,
           differentiable: bool = False, capturable: bool = False,
           ) -> base.GradientTransformation:
  r"""``torch.optim.Adamax``: Adam under the infinity norm (Kingma & Ba 2015).

  .. math::
     g_t \leftarrow g_t + \lambda\theta_{t-1},\quad
     m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
     u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon),\quad
     \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\frac{m_t}{u_t}

  ``eps`` inside the max, as in ``gradtx.adamax`` and ``optax.adamax``:
  ``chain(add_decayed_weights(wd), scale_by_adamax(b1, b2, eps),
  scale_by_learning_rate(lr))``. The paper adds no ``eps``.

  Args and defaults are torch's; ``foreach``, ``differentiable`` and
  ``capturable`` only at their defaults.

  Args:
    lr: the learning rate :math:`\eta`, a number or a schedule of the step
      count (torch's ``lr_scheduler``).
    betas: ``(beta1, beta2)``: the decay of the first moment, and of the
      running infinity norm, each in [0, 1).
    eps: :math:`\epsilon`, added to the denominator for numerical
      stability.
    weight_decay: :math:`\lambda`, the L2 penalty added to the gradient
      (``g + weight_decay * param``); 0 turns it off. Needs ``params`` in
      ``update``.
    foreach: torch's implementation switch; only ``None`` is accepted
      (under ``jax.jit`` XLA fuses the loop over the params).
    maximize: maximize the objective: the gradients are negated first.
    differentiable: torch's autograd switch; only ``False`` is accepted
      (every gradtx step is a pure function that ``jax.grad``
      differentiates).
    capturable: torch's CUDA-graph switch; only ``False`` is accepted (a
      jitted step keeps its state on the device already).

  Returns:
    A :class:`gradtx.GradientTransformation`: a :func:`gradtx.chain` of
      gradtx primitives whose state is the tuple of their states.

  Example:
    >>> from gradtx import torch_like as tl
    >>> tx = tl.Adamax(lr=2e-3)
  """
  fn = _PREFIX + "Adamax"
  _check_torch_only(fn, foreach=foreach, differentiable=differentiable,
                    capturable=capturable)
  _check_common(fn, lr, eps, weight_decay)
  b1, b2 = _check_betas(fn, betas)
  _check_bool(fn, "maximize", maximize)
  return _chain(_maximize(maximize), _l2(weight_decay),
                [gradtx.scale_by_adamax(b1, b2, eps)],
                [gradtx.scale_by_learning_rate(lr)])


# --------------------------------------------------------------------------
# Rprop


def Rprop(lr: float = 1e-2, etas: tuple = (0.5, 1.2),
          step_sizes: tuple = (1e-6, 50), *, capturable: bool = False,
          foreach: Optional[bool] = None, maximize: bool = False,
          differentiable: bool = False) -> base.GradientTransformation:
  r"""``torch.optim.Rprop``: iRprop- (Riedmiller & Braun 1993; Igel & Hüsken
  2000).

  .. math::
     s_t = \operatorname{clip}\big(s_{t-1}\cdot\eta_t,\ s_{min},
       \ s_{max}\big),\quad
     \eta_t = \begin{cases}\eta^+ & g_t g_{t-1} > 0\\
       \eta^- & g_t g_{t-1} < 0\\ 1 & \text{otherwise}\end{cases},\quad
     \theta_t = \theta_{t-1} - \begin{cases} 0 & g_t g_{t-1} < 0\\
       s_t\,\mathrm{sign}(g_t) & \text{otherwise}\end{cases}

  with ``s_0 = lr`` and, after a sign change, the stored gradient zeroed.
  torch clamps the step sizes at every step, even where the sign product is
  0; ``gradtx.scale_by_rprop`` clamps only where it grows or shrinks them.
  The two differ only on the first step (the later ones start inside
  ``step_sizes``), where torch clamps ``lr`` itself, so this is
  ``chain(scale_by_rprop(clip(lr, *step_sizes), *etas, *step_sizes),
  scale(-1))``: ``gradtx.rprop`` with the initial step size clipped.
  ``optax.rprop`` applies each update a step late.

  Args and defaults are torch's; ``capturable``, ``foreach`` and
  ``differentiable`` only at their defaults.

  Args:
    lr: the initial step size of every entry; a number (not a schedule: it
      is a starting value, not a rate).
    etas: ``(etaminus, etaplus)``, the factors that shrink (``0 < etaminus
      < 1``) and grow (``etaplus > 1``) each step size when the gradient's
      sign flips or stays.
    step_sizes: ``(min, max)``, the bounds of each entry's step size.
    capturable: torch's CUDA-graph switch; only ``False`` is accepted (a
      jitted step keeps its state on the device already).
    foreach: torch's implementation switch; only ``None`` is accepted
      (under ``jax.jit`` XLA fuses the loop over the params).
    maximize: maximize the objective: the gradients are negated first.
    differentiable: torch's autograd switch; only ``False`` is accepted
      (every gradtx step is a pure function that ``jax.grad``
      differentiates).

  Returns:
    A :class:`gradtx.GradientTransformation`: a :func:`gradtx.chain` of
      gradtx primitives whose state is the tuple of their states.

  Example:
    >>> from gradtx import torch_like as tl
    >>> tx = tl.Rprop(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50))
  """
  fn = _PREFIX + "Rprop"
  _check_torch_only(fn, capturable=capturable, foreach=foreach,
                    differentiable=differentiable)
  if not T.is_concrete_number(lr):
    raise ValueError(
        f"{fn}: lr is Rprop's initial step size and must be a number, got "
        f"lr={lr!r}; Rprop adapts its step sizes itself.")
  V.check_learning_rate(fn, lr, arg="lr")
  eta_minus, eta_plus = _check_pair(fn, "etas", etas, "(etaminus, etaplus)")
  smin, smax = _check_pair(fn, "step_sizes", step_sizes,
                           "(min_step_size, max_step_size)")
  for arg, value in (("etas[0]", eta_minus), ("etas[1]", eta_plus),
                     ("step_sizes[0]", smin), ("step_sizes[1]", smax)):
    if not T.is_concrete_number(value):
      raise ValueError(f"{fn}: {arg} must be a number, got {arg}={value!r}.")
  V.check_interval(fn, "etas[0]", eta_minus, 0.0, 1.0, lo_closed=False,
                   hint="etaminus shrinks the step after a sign change.")
  V.check_interval(fn, "etas[1]", eta_plus, 1.0, math.inf, lo_closed=False,
                   hint="etaplus grows the step while the sign holds.")
  V.check_nonnegative(fn, "step_sizes[0]", smin)
  V.check_nonnegative(fn, "step_sizes[1]", smax)
  if float(smax) < float(smin):
    raise ValueError(f"{fn}: step_sizes must be (min, max) with min <= max, "
                     f"got step_sizes={step_sizes!r}.")
  _check_bool(fn, "maximize", maximize)
  s0 = min(max(float(lr), float(smin)), float(smax))
  return _chain(_maximize(maximize),
                [gradtx.scale_by_rprop(s0, eta_minus, eta_plus, smin, smax),
                 gradtx.scale(-1.0)])
