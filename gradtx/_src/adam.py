"""Adam (:func:`scale_by_adam`) and the transforms that compose after it.

:func:`scale_by_adam` can hand the transform after it in a
:func:`gradtx.chain` its bias-corrected moments (an :class:`AdamMoments`
record, see the contract in ``gradtx/_src/base.py``) instead of finished
updates. :func:`amsgrad_max` (AMSGrad's running maximum), :func:`rectify`
(RAdam's variance rectification) and :func:`bound_lr` (AdaBound's dynamic
bounds) read that record, so that ``chain(scale_by_adam(), amsgrad_max(),
bound_lr(...))`` keeps one copy of each moment and the named optimizers
(``amsgrad``, ``radam``, ``adabound``, ``amsbound``, ``ranger``) are short
chains of them. :func:`scale_by_adamax` (Adam with the infinity norm) keeps
the same state as :func:`scale_by_adam`.

A gradient entry beyond about ``1.8e19`` (in float32 or bfloat16) squares to
Inf: ``v`` becomes Inf and the update of that entry 0, as in optax, until
``v`` decays back. Guard against such spikes by clipping first,
``chain(clip_by_global_norm(1.0), adam(...))``, or by skipping the steps whose
gradients are not finite, ``apply_if_finite(adam(...), k)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V
from gradtx._src.adaptive import _ema_sq


class ScaleByAdamState(NamedTuple):
  """Step count, first moment ``mu = m_t`` and second moment ``nu = v_t``
  (both without bias correction), as in optax.

  Attributes:
    count: the number of steps taken, an int32 scalar that saturates at
      ``2**31 - 1``.
    mu: the first moment ``m_t``, without bias correction.
    nu: the second moment ``v_t`` (the moving average of the squared gradients,
      not its root), without bias correction.
  """
  count: jax.Array
  mu: Any
  nu: Any


AdamMoments = base.AdamMoments


def adam_moments_to_updates(m: AdamMoments) -> Any:
  """Turns the hand-off record into plain updates (see :class:`AdamMoments`)."""
  plain = m.adaptive is True and isinstance(m.rect, float) and m.rect == 1.0

  def leaf(mu, nu):
    step = mu / adam_denominator(nu, m.eps, m.eps_root)
    if plain:
      return (step,)
    step = jnp.asarray(m.rect).astype(mu.dtype) * step
    return (jnp.where(m.adaptive, step, mu),)

  return LW.leafwise(leaf, 1, m.mu_hat, m.nu_hat, name="scale_by_adam")[0]


def adam_denominator(nu_hat: jax.Array, eps: Any, eps_root: Any) -> jax.Array:
  """Adam's ``sqrt(nu_hat + eps_root) + eps``."""
  if not (isinstance(eps_root, (int, float)) and eps_root == 0):
    nu_hat = nu_hat + T.like(eps_root, nu_hat)
  return jnp.sqrt(nu_hat) + T.like(eps, nu_hat)


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

  A gradient entry whose square overflows (beyond about 1.8e19 in float32)
  makes ``v_t`` Inf and that entry's updates 0, as in optax; see the module
  notes for how to guard against such spikes.

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
      The step reads ``v_t`` as stored, rounded to ``nu_dtype`` (while, as
      in optax, it reads ``m_t`` before the rounding to ``mu_dtype``).

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
    return ScaleByAdamState(count=num.zero_count(),
                            mu=T.tree_zeros_like(params, mu_dtype),
                            nu=T.tree_zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params
    # The moments first: another optimizer's state (a TraceState, whose
    # count is None) then fails on them, with chain's error that says so.
    state_mu, state_nu = state.mu, state.nu
    beta1, beta2 = V.at(b1, state.count), V.at(b2, state.count)
    count = num.safe_increment(state.count)
    bc1 = num.one_minus_pow(beta1, count)
    bc2 = num.one_minus_pow(beta2, count)
    bc1_next = num.one_minus_pow(beta1, num.safe_increment(count)) \
        if nesterov else None

    def moments(g, m, v):
      (c1, omc1), (c2, omc2) = T.pair(beta1, g), T.pair(beta2, v)
      m_new = omc1 * g + c1 * m
      v_new = _ema_sq(v, g, c2, omc2)
      if nu_dtype is not None:
        # The step reads v as stored (rounded to nu_dtype): the unrounded
        # one would be a second result per entry, which XLA then writes out
        # to memory (1.8x slower steps with bfloat16 nu on CPU).
        v_new = v_new.astype(v.dtype).astype(v_new.dtype)
      if nesterov:
        m_hat = (c1 * (m_new / bc1_next.astype(m_new.dtype))
                 + omc1 * (g / bc1.astype(g.dtype)))
      else:
        m_hat = m_new / bc1.astype(m_new.dtype)
      v_hat = v_new / bc2.astype(v_new.dtype)
      m_store = m_new if mu_dtype is None else m_new.astype(mu_dtype)
      return m_hat, v_hat, m_store, v_new.astype(v.dtype)

    if extra_args.get(base.EMIT_MOMENTS, False):
      m_hat, v_hat, mu, nu = LW.leafwise(moments, 4, updates, state_mu,
                                        state_nu, name=fn)
      out = AdamMoments(m_hat, v_hat, count, beta2, bc1, bc2, eps, eps_root)
    else:
      def leaf(g, m, v):
        m_hat, v_hat, m_store, v_store = moments(g, m, v)
        den = adam_denominator(v_hat, eps, eps_root)
        if not nesterov:
          return m_hat / den, m_store, v_store
        # Nadam's m_hat can exceed the dtype's range (1.47 * g at t = 1)
        # where the update does not: divide each term before summing.
        c1, omc1 = T.pair(beta1, g)
        m_new = omc1 * g + c1 * m
        inv = 1 / den
        return ((c1 / bc1_next.astype(g.dtype)) * (m_new * inv)
                + (omc1 / bc1.astype(g.dtype)) * (g * inv), m_store, v_store)
      out, mu, nu = LW.leafwise(leaf, 3, updates, state_mu, state_nu, name=fn)
    return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

  update_fn.gradtx_name = fn
  return base.MomentEmitter(init_fn, update_fn)


def scale_by_adamax(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
                    ) -> base.GradientTransformation:
  r"""Adamax: Adam with the infinity norm (Kingma & Ba 2015, Sec. 7.1).

  .. math::
     m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
     u_t' = \max(|g_t| + \epsilon, \beta_2 u_{t-1}'),\quad
     u_t = \frac{m_t}{(1-\beta_1^t)\, u_t'}

  Args:
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the infinity norm ``u_t``, in [0, 1).
    eps: added to ``|g_t|`` inside the maximum, so the denominator is never 0;
      non-negative.
  """
  fn = "scale_by_adamax"
  V.check_decay(fn, "b1", b1)
  V.check_decay(fn, "b2", b2)
  V.check_nonnegative(fn, "eps", eps)

  def init_fn(params):
    return ScaleByAdamState(count=num.zero_count(),
                            mu=T.tree_zeros_like(params),
                            nu=T.tree_zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    count = num.safe_increment(state.count)
    bc1 = num.one_minus_pow(b1, count)

    def leaf(g, m, u):
      m = (1 - b1) * g + b1 * m
      u = jnp.maximum(jnp.abs(g) + T.like(eps, u), T.like(b2, u) * u)
      return (m / bc1.astype(m.dtype)) / u, m, u

    updates, mu, nu = LW.leafwise(leaf, 3, updates, state.mu, state.nu, name=fn)
    return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------
# What composes after scale_by_adam


def _expect_moments(fn: str, updates: Any) -> AdamMoments:
  if not isinstance(updates, AdamMoments):
    raise TypeError(
        f"{fn}: expected the moment estimates handed over by scale_by_adam, "
        f"got plain updates ({type(updates).__name__}). {fn} reads the "
        f"moments of the transform before it, which only gradtx.chain asks "
        f"for: put it right after scale_by_adam (or after another of "
        f"amsgrad_max, rectify, bound_lr) in one gradtx.chain, e.g. "
        f"gradtx.chain(gradtx.scale_by_adam(), gradtx.{fn}(...), ...). "
        f"optax.chain cannot carry the hand-off; inside it, pass that whole "
        f"gradtx.chain as one member.")
  return updates


def _finish(moments: AdamMoments, extra_args: dict) -> Any:
  if extra_args.get(base.EMIT_MOMENTS, False):
    return moments
  return adam_moments_to_updates(moments)


class AmsgradMaxState(NamedTuple):
  """The running maximum of the second-moment estimate.

  Attributes:
    nu_max: the running maximum of the second moment, per entry: of the
      bias-corrected ``v_hat`` or, with ``max_of_raw`` (or without
      ``bias_correction_nu``), of the raw ``v``.
  """
  nu_max: Any


def amsgrad_max(bias_correction_mu: bool = True,
                bias_correction_nu: bool = True, *,
                max_of_raw: bool = False) -> base.GradientTransformation:
  r"""AMSGrad: divide by the running maximum of the second moment.

  .. math::
     \hat v^{max}_t = \max(\hat v^{max}_{t-1}, \hat v_t),\qquad
     u_t = \frac{\hat m_t}{\sqrt{\hat v^{max}_t + \epsilon_{root}}
           + \epsilon}

  Reddi, Kale & Kumar, "On the convergence of Adam and beyond" (ICLR 2018).
  The maximum makes the effective step size non-increasing, which repairs
  Adam's non-convergence counterexample. Goes right after ``scale_by_adam``
  in a :func:`gradtx.chain`; the chain then holds three buffers per
  parameter (``mu``, ``nu``, ``nu_max``), the same leaves, in the same
  order, as optax's ``ScaleByAmsgradState``.

  Args:
    bias_correction_mu: divide the first moment by ``1 - b1**t`` (set both
      flags False for the paper's Algorithm, which has no bias correction).
    bias_correction_nu: take the maximum of the bias-corrected ``v_hat``
      (optax's default) rather than of the raw ``v``.
    max_of_raw: with ``bias_correction_nu``, take the maximum of the raw
      ``v_t`` and bias-correct the maximum, ``v_max / (1 - b2**t)``, as
      ``torch.optim.Adam(amsgrad=True)`` and the AdaBound authors' AMSBound
      do.

  Example:
    >>> import gradtx
    >>> tx = gradtx.chain(gradtx.scale_by_adam(), gradtx.amsgrad_max(),
    ...                   gradtx.scale_by_learning_rate(1e-3))
  """
  fn = "amsgrad_max"

  def init_fn(params):
    return AmsgradMaxState(nu_max=T.tree_zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params
    m = _expect_moments(fn, updates)
    raw = max_of_raw or not bias_correction_nu
    bc2 = jnp.asarray(m.bc2)

    def leaf(nu_hat, nu_max):
      v = nu_hat * bc2.astype(nu_hat.dtype) if raw else nu_hat
      new_max = jnp.maximum(nu_max, v.astype(nu_max.dtype))
      if raw and bias_correction_nu:
        return new_max / bc2.astype(new_max.dtype), new_max
      return new_max, new_max

    nu_eff, nu_max = LW.leafwise(leaf, 2, m.nu_hat, state.nu_max, name=fn)
    m = m._replace(nu_hat=nu_eff,
                   bc2=m.bc2 if bias_correction_nu else 1.0)
    if not bias_correction_mu:
      bc1 = jnp.asarray(m.bc1)
      m = m._replace(mu_hat=jax.tree.map(
          lambda x: x * bc1.astype(x.dtype), m.mu_hat), bc1=1.0)
    return _finish(m, extra_args), AmsgradMaxState(nu_max=nu_max)

  update_fn.gradtx_name = fn
  return base.MomentRelay(init_fn, update_fn)


def rectify(threshold: Any = 5.0) -> base.GradientTransformation:
  r"""RAdam's variance rectification (Liu et al., ICLR 2020).

  With :math:`\rho_\infty = 2/(1-\beta_2) - 1` and
  :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`, the approximate
  length of the second moment's moving average:

  .. math::
     r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}
                      {(\rho_\infty-4)(\rho_\infty-2)\rho_t}},\qquad
     u_t = \begin{cases}
       r_t\, \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)
         & \rho_t \ge \text{threshold}\\
       \hat m_t & \text{otherwise (momentum SGD, un-adapted)}\end{cases}

  The paper switches at ``rho_t > 4``; its code and optax use
  ``rho_t >= 5``, the default here. A threshold below 4 is refused: there
  ``r_t`` is the root of a negative number, and optax returns NaN. Goes after ``scale_by_adam`` (and after
  ``amsgrad_max`` if both are used).

  Args:
    threshold: the value of :math:`\rho_t` from which the adaptive (rectified)
      step is taken; below it the step is un-adapted momentum. At least 4 (5 by
      default, as in optax).

  Example:
    >>> import gradtx
    >>> tx = gradtx.chain(gradtx.scale_by_adam(), gradtx.rectify(),
    ...                   gradtx.scale_by_learning_rate(1e-3))
  """
  fn = "rectify"
  V.check_interval(
      fn, "threshold", threshold, 4.0, float("inf"), hi_closed=True,
      hint="r_t is only defined for rho_t > 4 (optax returns NaN below it); "
      "the paper switches at 4, its code at 5.")

  def update_fn(updates, state, params=None, **extra_args):
    del params
    m = _expect_moments(fn, updates)
    b2 = m.b2
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    b2t = b2 ** m.count
    rho = rho_inf - 2 * m.count * b2t / (1 - b2t)
    on = rho >= threshold
    # Evaluate r only where it is used, so no NaN is formed even in the
    # branch that jnp.where discards (its gradient would still be NaN).
    safe_rho = jnp.where(on, rho, rho_inf)
    r = jnp.sqrt((safe_rho - 4.0) * (safe_rho - 2.0) * rho_inf
                 / ((rho_inf - 4.0) * (rho_inf - 2.0) * safe_rho))
    m = m._replace(rect=r if isinstance(m.rect, float) and m.rect == 1.0
                   else m.rect * r,
                   adaptive=on if m.adaptive is True else m.adaptive & on)
    return _finish(m, extra_args), state

  update_fn.gradtx_name = fn
  return base.MomentRelay(base.init_empty_state, update_fn)


def bound_lr(learning_rate: base.ScalarOrSchedule, final_lr: Any = 0.1,
             gamma: Any = 1e-3) -> base.GradientTransformation:
  r"""AdaBound's dynamic bounds on the per-entry step size (Luo et al., 2019).

  Following the authors' implementation (``Luolc/AdaBound``,
  ``adabound.py``), with :math:`m_t, v_t` the raw moments:

  .. math::
     \eta_t = \operatorname{clip}\!\left(
       \frac{\alpha_t \sqrt{1-\beta_2^t}}{(1-\beta_1^t)(\sqrt{v_t}+\epsilon)},
       \ \eta^{l}_t,\ \eta^{u}_t\right),\qquad
     \Delta\theta_t = -\eta_t\, m_t,\\
     \eta^{l}_t = \alpha^*_t\Big(1 - \frac{1}{\gamma t + 1}\Big),\qquad
     \eta^{u}_t = \alpha^*_t\Big(1 + \frac{1}{\gamma t}\Big),\qquad
     \alpha^*_t = \text{final\_lr}\cdot\alpha_t/\alpha_0

  The bounds start wide (Adam) and close in on ``final_lr`` (SGD). When
  ``learning_rate`` is a schedule the bounds follow it through
  :math:`\alpha_t/\alpha_0`, as the authors' code does; ``final_lr`` may
  itself be a schedule, which is then used as it is. The paper's
  Algorithm 2 also divides by :math:`\sqrt t` and omits the bias
  corrections; the code, which this follows, does not. If ``rectify`` comes
  before it, the rectification multiplies the unclipped step size, and in the
  un-adapted phase that step size is :math:`\alpha_t/(1-\beta_1^t)`.

  This transform produces finished updates (the sign included): it is the
  last of the adaptive group. Follow it with nothing that rescales, or put a
  decoupled decay after it.

  Args:
    learning_rate: Adam's step size :math:`\alpha`, a number or a schedule of
      the step count; the bounds follow a schedule through
      :math:`\alpha_t / \alpha_0`.
    final_lr: the learning rate both bounds converge to (SGD's rate at the end);
      a number, scaled by ``learning_rate / learning_rate(0)`` when
      ``learning_rate`` is a schedule, or a schedule itself, then used as it is.
    gamma: how fast the bounds close in on ``final_lr``: the lower bound is
      ``final_lr * (1 - 1 / (gamma * t + 1))``, the upper
      ``final_lr * (1 + 1 / (gamma * t))``. Positive.

  Example:
    >>> import gradtx
    >>> tx = gradtx.chain(gradtx.scale_by_adam(),
    ...                   gradtx.bound_lr(1e-3, final_lr=0.1))
  """
  fn = "bound_lr"
  V.check_learning_rate(fn, learning_rate)
  V.check_nonnegative(fn, "final_lr", final_lr)
  V.check_positive(fn, "gamma", gamma,
                   hint="it sets how fast the bounds close; 1e-3 is usual.")
  if callable(learning_rate):
    lr0 = learning_rate(0)
    if V.is_concrete_number(lr0) and float(lr0) == 0.0:
      raise ValueError(
          f"{fn}: the learning-rate schedule is 0 at step 0; the bounds are "
          f"scaled by lr(t)/lr(0), so lr(0) must be positive.")

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    m = _expect_moments(fn, updates)
    V.reject_complex(
        fn, m.mu_hat, "AdaBound clips each entry's step size between real "
        "bounds, and gradtx computes that step size in the params' dtype. "
        "For complex parameters use adam or amsgrad.")
    t = m.count
    if callable(learning_rate):
      lr = learning_rate(t - 1)
      ratio = lr / learning_rate(0)
    else:
      lr, ratio = learning_rate, 1.0
    # A final_lr schedule is taken as it is; a constant follows lr(t)/lr(0).
    final = final_lr(t - 1) if callable(final_lr) else final_lr * ratio
    lower = final * (1 - 1 / (gamma * t + 1))
    upper = final * (1 + 1 / (gamma * t))
    bc1, bc2 = jnp.asarray(m.bc1), jnp.asarray(m.bc2)

    def leaf(mu_hat, nu_hat):
      dt = mu_hat.dtype
      raw_m = mu_hat * bc1.astype(dt)
      # sqrt(nu_hat + eps_root) * sqrt(bc2) + eps: the authors' raw
      # sqrt(v_t) + eps when eps_root = 0.
      denom = (adam_denominator(nu_hat, 0.0, m.eps_root)
               * jnp.sqrt(bc2).astype(dt) + T.like(m.eps, nu_hat))
      step = (lr * jnp.sqrt(bc2) / bc1).astype(dt) / denom
      if not (m.adaptive is True and isinstance(m.rect, float)):
        step = jnp.where(m.adaptive, jnp.asarray(m.rect).astype(dt) * step,
                         jnp.asarray(lr / bc1).astype(dt))
      eta = jnp.clip(step, jnp.asarray(lower).astype(dt),
                     jnp.asarray(upper).astype(dt))
      return (-eta * raw_m,)

    return LW.leafwise(leaf, 1, m.mu_hat, m.nu_hat, name=fn)[0], state

  update_fn.gradtx_name = fn
  return base.MomentConsumer(base.init_empty_state, update_fn)
