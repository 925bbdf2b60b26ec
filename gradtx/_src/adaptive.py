"""Per-parameter adaptive scalings: Adagrad, RMSProp, Adam and relatives.

Each factory's update runs one fused per-leaf function (see
:func:`gradtx._src.tree.leafwise`). Numbers match optax 0.2.8 op for op where
optax has the transform, except :func:`scale_by_rprop` (see its docstring).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import tree as T
from gradtx._src import validation as V


def _sqrt0(x: Any) -> Any:
  """The root of an initial second-moment value (states store roots)."""
  return math.sqrt(x) if isinstance(x, (int, float)) else jnp.sqrt(x)


# Second moments are stored as their roots: ``sqrt(v)`` instead of ``v``.
# Squaring doubles the exponent, so a float32 gradient of 1e30 (or the largest
# bfloat16) would overflow ``v`` to Inf; its root fits. The roots are updated
# by :func:`gradtx._src.tree.root_ema` without ever forming ``v``. The numbers
# agree with the squared form (and with optax) up to rounding.


# --------------------------------------------------------------------------
# Adagrad


class ScaleByRssState(NamedTuple):
  """The root of the running sum of squared gradients, ``sqrt(G_t)``
  (optax's field of the same name holds ``G_t``; see the module notes)."""
  sum_of_squares: Any


def scale_by_rss(initial_accumulator_value: Any = 0.1, eps: Any = 1e-7, *,
                 eps_in_sqrt: bool = True) -> base.GradientTransformation:
  r"""Adagrad's scaling by the root of the sum of squared gradients.

  .. math::
     G_t = G_{t-1} + g_t^2, \qquad
     u_t = g_t / \sqrt{G_t + \epsilon}\ \text{(eps_in_sqrt)} \quad\text{or}
     \quad u_t = g_t / (\sqrt{G_t} + \epsilon)

  With ``eps_in_sqrt=True`` (the optax default) entries whose ``G_t`` is 0
  get a 0 update. Duchi, Hazan & Singer (JMLR 2011) start ``G_0 = 0`` and add
  ``eps`` outside the root: ``initial_accumulator_value=0.0,
  eps_in_sqrt=False`` (PyTorch's ``Adagrad`` form).
  """
  fn = "scale_by_rss"
  V.check_nonnegative(fn, "initial_accumulator_value",
                      initial_accumulator_value)
  V.check_nonnegative(fn, "eps", eps)

  def init_fn(params):
    return ScaleByRssState(sum_of_squares=T.tree_full_like(
        params, _sqrt0(initial_accumulator_value)))

  def leaf(g, s):
    s = T.root_ema(s, g, 1, 1)
    if eps_in_sqrt:
      return jnp.where(s > 0, T.root_add_rsqrt(s, eps), 0.0) * g, s
    return g / (s + T.like(eps, s)), s

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    updates, s = T.leafwise(leaf, 2, updates, state.sum_of_squares, name=fn)
    return updates, ScaleByRssState(sum_of_squares=s)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# RMSProp


class ScaleByRmsState(NamedTuple):
  """Step count and the root of the EMA of ``g**2`` (optax's ``nu`` holds
  the EMA itself; see the module notes)."""
  count: jax.Array
  nu: Any


def _rms_scaling(root, eps, eps_in_sqrt):
  """``1/sqrt(v + eps)`` or ``1/(sqrt(v) + eps)`` from ``root = sqrt(v)``."""
  if eps_in_sqrt:
    return T.root_add_rsqrt(root, eps)
  return 1 / (root + T.like(eps, root))


def scale_by_rms(decay: Any = 0.9, eps: Any = 1e-8, initial_scale: Any = 0.0,
                 eps_in_sqrt: bool = True, bias_correction: bool = False,
                 ) -> base.GradientTransformation:
  r"""RMSProp's scaling (Hinton, Lecture 6e, 2012).

  .. math::
     \nu_t = \rho \nu_{t-1} + (1 - \rho) g_t^2, \qquad
     u_t = g_t / \sqrt{\nu_t + \epsilon}

  ``eps_in_sqrt=False`` gives ``g / (sqrt(nu) + eps)`` (PyTorch's form);
  ``bias_correction`` divides ``nu`` by ``1 - rho**t``.
  """
  fn = "scale_by_rms"
  V.check_decay(fn, "decay", decay)
  V.check_nonnegative(fn, "eps", eps)
  V.check_nonnegative(fn, "initial_scale", initial_scale)

  def init_fn(params):
    return ScaleByRmsState(count=base.zero_count(),
                           nu=T.tree_full_like(params, _sqrt0(initial_scale)))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    rho = T.at(decay, state.count)
    count = base.safe_increment(state.count)
    bc = T.one_minus_pow(rho, count) if bias_correction else None

    def leaf(g, n):
      r, omr = T.pair(rho, n)
      n = T.root_ema(n, g, r, omr)
      n_hat = n / jnp.sqrt(bc).astype(n.dtype) if bias_correction else n
      return _rms_scaling(n_hat, eps, eps_in_sqrt) * g, n

    updates, nu = T.leafwise(leaf, 2, updates, state.nu, name=fn)
    return updates, ScaleByRmsState(count=count, nu=nu)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


class ScaleByStddevState(NamedTuple):
  """Step count, EMA of ``g`` and the root of the EMA of ``g**2``."""
  count: jax.Array
  mu: Any
  nu: Any


def scale_by_stddev(decay: Any = 0.9, eps: Any = 1e-8,
                    initial_scale: Any = 0.0, eps_in_sqrt: bool = True,
                    bias_correction: bool = False,
                    ) -> base.GradientTransformation:
  r"""Centered RMSProp's scaling by the running standard deviation.

  .. math::
     \mu_t = \rho\mu_{t-1} + (1-\rho) g_t,\quad
     \nu_t = \rho\nu_{t-1} + (1-\rho) g_t^2,\quad
     u_t = g_t / \sqrt{\nu_t - \mu_t^2 + \epsilon}

  Graves, "Generating sequences with recurrent neural networks" (2013), eq. 38.

  Differs from optax 0.2.8 where the variance estimate rounds below zero:
  gradtx clamps it at 0, where optax's ``sqrt`` returns NaN. This happens at
  the first step with ``bias_correction=True`` (the variance of one sample is
  0), so prefer ``eps_in_sqrt=True`` there.
  """
  fn = "scale_by_stddev"
  V.check_decay(fn, "decay", decay)
  V.check_nonnegative(fn, "eps", eps)
  V.check_nonnegative(fn, "initial_scale", initial_scale)

  def init_fn(params):
    return ScaleByStddevState(count=base.zero_count(),
                              mu=T.tree_zeros_like(params),
                              nu=T.tree_full_like(params,
                                                  _sqrt0(initial_scale)))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    rho = T.at(decay, state.count)
    count = base.safe_increment(state.count)
    bc = T.one_minus_pow(rho, count) if bias_correction else None

    def leaf(g, m, n):
      (r, omr), (rn, omrn) = T.pair(rho, g), T.pair(rho, n)
      m = omr * g + r * m
      n = T.root_ema(n, g, rn, omrn)
      if bias_correction:
        m_hat = m / bc.astype(m.dtype)
        n_hat = n / jnp.sqrt(bc).astype(n.dtype)
      else:
        m_hat, n_hat = m, n
      # var = n_hat**2 - |m_hat|**2 = (n_hat - |m_hat|)(n_hat + |m_hat|),
      # scaled by a power of two where n_hat is too big to square. It is a
      # difference of nearly equal numbers; rounding can make it slightly
      # negative (with bias_correction it is exactly 0 at t = 1), and optax
      # then returns NaN. Clamp at 0 instead.
      hi, down = T._root_scales(n.dtype)
      big = n_hat > hi
      s = jnp.where(big, down, 1.0).astype(n.dtype)
      a, b = n_hat * s, jnp.abs(m_hat).astype(n.dtype) * s
      var_s = jnp.maximum((a - b) * (a + b), 0)
      if eps_in_sqrt:
        scale = jax.lax.rsqrt(var_s + T.like(eps, n) * s * s) * s
      else:
        scale = 1 / (jnp.sqrt(var_s) / s + T.like(eps, n))
      return scale * g, m, n

    updates, mu, nu = T.leafwise(leaf, 3, updates, state.mu, state.nu, name=fn)
    return updates, ScaleByStddevState(count=count, mu=mu, nu=nu)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Adam


class ScaleByAdamState(NamedTuple):
  """Step count, first moment ``mu`` and the root of the second moment,
  ``nu = sqrt(v_t)`` (both without bias correction). optax's ``nu`` holds
  ``v_t`` itself; the root cannot overflow (see the module notes)."""
  count: jax.Array
  mu: Any
  nu: Any


class AdamMoments(NamedTuple):
  """What ``scale_by_adam`` hands to the adaptive transforms after it.

  See ``docs/design.md``. The update it stands for is, per leaf::

      where(adaptive, rect * mu_hat / (sqrt(rms_hat**2 + eps_root) + eps),
            mu_hat)

  Attributes:
    mu_hat: the bias-corrected (and, for Nadam, Nesterov) first moment.
    rms_hat: the root of the bias-corrected second moment,
      ``sqrt(v_t / (1 - b2**t))``, or what replaces it.
    count: this step's index ``t`` (1 on the first step).
    b2: the second-moment decay (RAdam's rectification needs it).
    bc1, bc2: the bias corrections ``1 - b1**t`` and ``1 - b2**t`` that
      ``mu_hat`` and ``rms_hat**2`` were divided by (1 where a consumer undid
      them): the raw moments are ``mu_hat * bc1`` and
      ``(rms_hat * sqrt(bc2))**2``.
    eps, eps_root: the denominator's ``eps`` outside and inside the root.
    rect: a scalar multiplier of the adaptive step (RAdam's ``r_t``).
    adaptive: a scalar bool; False while the step is un-adapted momentum.
  """
  mu_hat: Any
  rms_hat: Any
  count: jax.Array
  b2: Any
  bc1: Any
  bc2: Any
  eps: Any
  eps_root: Any
  rect: Any = 1.0
  adaptive: Any = True


def adam_moments_to_updates(m: AdamMoments) -> Any:
  """Turns the hand-off record into plain updates (see :class:`AdamMoments`)."""
  plain = m.adaptive is True and isinstance(m.rect, float) and m.rect == 1.0

  def leaf(mu, rms):
    step = mu / (T.root_add(rms, m.eps_root) + T.like(m.eps, rms))
    if plain:
      return (step,)
    step = jnp.asarray(m.rect).astype(mu.dtype) * step
    return (jnp.where(m.adaptive, step, mu),)

  return T.leafwise(leaf, 1, m.mu_hat, m.rms_hat, name="scale_by_adam")[0]


def scale_by_adam(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
                  eps_root: Any = 0.0, mu_dtype: Optional[Any] = None, *,
                  nesterov: bool = False, nu_dtype: Optional[Any] = None,
                  ) -> base.GradientTransformation:
  r"""Adam's scaling by bias-corrected moment estimates.

  .. math::
     m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
     v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
     \hat m_t = \frac{m_t}{1-\beta_1^t},\quad
     \hat v_t = \frac{v_t}{1-\beta_2^t},\quad
     u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}

  With ``nesterov=True`` (Nadam, Dozat 2016) ``\hat m_t`` becomes
  ``b1 * m_t / (1 - b1**(t+1)) + (1 - b1) * g_t / (1 - b1**t)``.
  Kingma & Ba, "Adam: A method for stochastic optimization" (ICLR 2015).

  The state keeps ``sqrt(v_t)`` rather than ``v_t`` (optax keeps ``v_t``),
  so a float32 gradient of 1e30 or the largest bfloat16 never overflows it
  to Inf; the updates agree with the squared form up to rounding.

  Args:
    b1: decay rate of the first moment, in [0, 1), or a schedule of the
      step (the bias correction then uses the current value,
      ``1 - b1(t)**t``, as optax's ``inject_hyperparams`` does).
    b2: decay rate of the second moment, likewise.
    eps: added to the root of ``v_hat``.
    eps_root: added inside the root.
    mu_dtype: dtype in which the first moment is stored (e.g.
      ``jnp.bfloat16`` to halve the state); the maths runs in the promoted
      dtype of the gradient and the stored moment.
    nesterov: use Nadam's look-ahead first moment (see above).
    nu_dtype: the same for the second moment (optax has ``mu_dtype`` only).
      The step reads the root of ``v_t`` as stored, rounded to
      ``nu_dtype`` (while, as in optax, it reads ``m_t`` before the
      rounding to ``mu_dtype``).

  Followed in a :func:`gradtx.chain` by ``amsgrad_max``, ``rectify`` or
  ``bound_lr``, it hands them its moments instead of finished updates.
  """
  fn = "scale_by_adam"
  V.check_decay(fn, "b1", b1)
  V.check_decay(fn, "b2", b2)
  V.check_nonnegative(fn, "eps", eps)
  V.check_nonnegative(fn, "eps_root", eps_root)
  mu_dtype = V.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = V.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByAdamState(count=base.zero_count(),
                            mu=T.tree_zeros_like(params, mu_dtype),
                            nu=T.tree_zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, *, emit_moments=False,
                **extra_args):
    del params, extra_args
    beta1, beta2 = T.at(b1, state.count), T.at(b2, state.count)
    count = base.safe_increment(state.count)
    bc1 = T.one_minus_pow(beta1, count)
    bc2 = T.one_minus_pow(beta2, count)
    root_bc2 = jnp.sqrt(bc2)
    bc1_next = T.one_minus_pow(beta1, base.safe_increment(count)) \
        if nesterov else None

    def moments(g, m, v):
      (c1, omc1), (c2, omc2) = T.pair(beta1, g), T.pair(beta2, v)
      m_new = omc1 * g + c1 * m
      v_new = T.root_ema(v, g, c2, omc2)
      if nu_dtype is not None:
        # The step reads the root as stored (rounded to nu_dtype): the
        # unrounded one would be a second result per entry, which XLA then
        # writes out to memory (1.8x slower steps with bfloat16 nu on CPU).
        v_new = v_new.astype(v.dtype).astype(v_new.dtype)
      if nesterov:
        m_hat = (c1 * (m_new / bc1_next.astype(m_new.dtype))
                 + omc1 * (g / bc1.astype(g.dtype)))
      else:
        m_hat = m_new / bc1.astype(m_new.dtype)
      v_hat = v_new / root_bc2.astype(v_new.dtype)
      m_store = m_new if mu_dtype is None else m_new.astype(mu_dtype)
      return m_hat, v_hat, m_store, v_new.astype(v.dtype)

    if emit_moments:
      m_hat, v_hat, mu, nu = T.leafwise(moments, 4, updates, state.mu,
                                        state.nu, name=fn)
      out = AdamMoments(m_hat, v_hat, count, beta2, bc1, bc2, eps, eps_root)
    else:
      def leaf(g, m, v):
        m_hat, v_hat, m_store, v_store = moments(g, m, v)
        den = T.root_add(v_hat, eps_root) + T.like(eps, v_hat)
        if not nesterov:
          return m_hat / den, m_store, v_store
        # Nadam's m_hat can exceed the dtype's range (1.47 * g at t = 1)
        # where the update does not: divide each term before summing.
        c1, omc1 = T.pair(beta1, g)
        m_new = omc1 * g + c1 * m
        inv = 1 / den
        return ((c1 / bc1_next.astype(g.dtype)) * (m_new * inv)
                + (omc1 / bc1.astype(g.dtype)) * (g * inv), m_store, v_store)
      out, mu, nu = T.leafwise(leaf, 3, updates, state.mu, state.nu, name=fn)
    return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

  update_fn.gradtx_name = fn
  update_fn.emits_moments = True
  return base.GradientTransformation(init_fn, update_fn)


def scale_by_adamax(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
                    ) -> base.GradientTransformation:
  r"""Adamax: Adam with the infinity norm (Kingma & Ba 2015, Sec. 7.1).

  .. math::
     m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
     u_t' = \max(|g_t| + \epsilon, \beta_2 u_{t-1}'),\quad
     u_t = \frac{m_t}{(1-\beta_1^t)\, u_t'}
  """
  fn = "scale_by_adamax"
  V.check_decay(fn, "b1", b1)
  V.check_decay(fn, "b2", b2)
  V.check_nonnegative(fn, "eps", eps)

  def init_fn(params):
    return ScaleByAdamState(count=base.zero_count(),
                            mu=T.tree_zeros_like(params),
                            nu=T.tree_zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    count = base.safe_increment(state.count)
    bc1 = T.one_minus_pow(b1, count)

    def leaf(g, m, u):
      m = (1 - b1) * g + b1 * m
      u = jnp.maximum(jnp.abs(g) + T.like(eps, u), T.like(b2, u) * u)
      return (m / bc1.astype(m.dtype)) / u, m, u

    updates, mu, nu = T.leafwise(leaf, 3, updates, state.mu, state.nu, name=fn)
    return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Adadelta


class ScaleByAdaDeltaState(NamedTuple):
  """Step count and the roots of the EMAs of squared gradients (``e_g``) and
  of squared updates (``e_x``); optax's fields hold the EMAs themselves."""
  count: jax.Array
  e_g: Any
  e_x: Any


_ADADELTA_COMPLEX = (
    "it is defined here for real parameters only (optax's version squares "
    "the complex gradient without conjugating it, so there is no reference "
    "to agree with). For complex parameters use adam, rmsprop, adagrad or "
    "sgd, or optimise the real and imaginary parts as separate real leaves.")

_RPROP_COMPLEX = (
    "Rprop adapts each step size from the signs of successive gradients, and "
    "a complex number has no sign. For complex parameters use adam, "
    "rmsprop, adagrad or sgd, or optimise the real and imaginary parts as "
    "separate real leaves.")


def scale_by_adadelta(rho: Any = 0.9, eps: Any = 1e-6,
                      ) -> base.GradientTransformation:
  r"""Adadelta's unit-correcting scaling (Zeiler 2012, Algorithm 1).

  .. math::
     E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2,\quad
     u_t = \frac{\sqrt{E[\Delta x^2]_{t-1} + \epsilon}}
                {\sqrt{E[g^2]_t + \epsilon}}\, g_t,\quad
     E[\Delta x^2]_t = \rho E[\Delta x^2]_{t-1} + (1-\rho) u_t^2

  ``u_t`` points along the gradient: the paper's step is ``-u_t``, which the
  named optimizer :func:`gradtx.adadelta` applies.
  """
  fn = "scale_by_adadelta"
  V.check_decay(fn, "rho", rho)
  V.check_nonnegative(fn, "eps", eps)

  def init_fn(params):
    return ScaleByAdaDeltaState(count=base.zero_count(),
                                e_g=T.tree_zeros_like(params),
                                e_x=T.tree_zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    T.reject_complex(fn, updates, _ADADELTA_COMPLEX)
    r_t = T.at(rho, state.count)

    def leaf(g, e_g, e_x):
      r, omr = T.pair(r_t, g)
      e_g = T.root_ema(e_g, g, r, omr)
      u = (T.root_add(e_x, eps) / T.root_add(e_g, eps)) * g
      e_x = T.root_ema(e_x, u, r, omr)
      return u, e_g, e_x

    updates, e_g, e_x = T.leafwise(leaf, 3, updates, state.e_g, state.e_x,
                                   name=fn)
    return updates, ScaleByAdaDeltaState(
        count=base.safe_increment(state.count), e_g=e_g, e_x=e_x)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# Rprop


class ScaleByRpropState(NamedTuple):
  """Per-entry step sizes and the last step taken (``step * sign(g)``)."""
  step_sizes: Any
  prev_updates: Any


def scale_by_rprop(learning_rate: Any, eta_minus: Any = 0.5,
                   eta_plus: Any = 1.2, min_step_size: Any = 1e-6,
                   max_step_size: Any = 50.0) -> base.GradientTransformation:
  r"""Resilient backpropagation, iRprop- (Riedmiller & Braun 1993; Igel &
  Hüsken 2000).

  .. math::
     s_t = \begin{cases}
       \min(\eta^+ s_{t-1}, s_{max}) & g_t g_{t-1} > 0\\
       \max(\eta^- s_{t-1}, s_{min}) & g_t g_{t-1} < 0\\
       s_{t-1} & \text{otherwise}\end{cases},\qquad
     u_t = \begin{cases} 0 & g_t g_{t-1} < 0\\
       s_t\,\mathrm{sign}(g_t) & \text{otherwise}\end{cases}

  After a sign change the stored gradient is zeroed, so the next step does
  not shrink the step size again. The step taken is ``-u_t``
  (:func:`gradtx.rprop` applies the sign).

  Differs from optax 0.2.8, whose ``scale_by_rprop`` returns the update it
  computed at the *previous* step (its first update is all zeros and every
  later one lags by a step). Here step ``t`` applies the update computed from
  ``g_t``, as in the paper and in ``torch.optim.Rprop``.
  """
  fn = "scale_by_rprop"
  if callable(learning_rate):
    raise ValueError(
        f"{fn}: learning_rate is Rprop's initial step size, a number, got the "
        f"schedule {learning_rate!r}; Rprop adapts its step sizes itself.")
  V.check_learning_rate(fn, learning_rate)
  V.check_interval(fn, "eta_minus", eta_minus, 0.0, 1.0, lo_closed=False,
                   hint="it shrinks the step after a sign change.")
  V.check_interval(fn, "eta_plus", eta_plus, 1.0, float("inf"),
                   hi_closed=True, hint="it grows the step while the sign "
                   "holds.")
  V.check_nonnegative(fn, "min_step_size", min_step_size)
  V.check_nonnegative(fn, "max_step_size", max_step_size)
  if (V.is_concrete_number(min_step_size) and V.is_concrete_number(
      max_step_size) and float(max_step_size) < float(min_step_size)):
    raise ValueError(
        f"{fn}: max_step_size must be >= min_step_size, got "
        f"{min_step_size=} and {max_step_size=}.")

  def init_fn(params):
    return ScaleByRpropState(
        step_sizes=T.tree_full_like(params, learning_rate),
        prev_updates=T.tree_zeros_like(params))

  def leaf(g, s, prev):
    sign = g * prev
    s = jnp.where(sign == 0, s, jnp.clip(
        s * jnp.where(sign > 0, eta_plus, eta_minus),
        min=min_step_size, max=max_step_size))
    u = jnp.where(sign < 0, jnp.zeros_like(g), s * jnp.sign(g))
    return u, s, u

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    T.reject_complex(fn, updates, _RPROP_COMPLEX)
    updates, s, prev = T.leafwise(leaf, 3, updates, state.step_sizes,
                                  state.prev_updates, name=fn)
    return updates, ScaleByRpropState(step_sizes=s, prev_updates=prev)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
