"""vSGD: per-parameter learning rates from the gradient's variance and the
curvature (Schaul, Zhang & LeCun, *No more pesky learning rates*, ICML
2013), with the diagonal curvature of :func:`gradtx.scale_by_hessian_diag`'s
estimators."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import adding
from gradtx._src import base
from gradtx._src import combining
from gradtx._src import leafwise as LW
from gradtx._src import linesearch as L
from gradtx._src import numerics as num
from gradtx._src import scaling
from gradtx._src import tree_utils as T
from gradtx._src import validation as V
from gradtx._src.second_order import curvature as C
from gradtx._src.second_order import hessian_diag as HD

__all__ = ["ScaleByVSGDState", "scale_by_vsgd", "vsgd"]


class ScaleByVSGDState(NamedTuple):
  r"""The state of :func:`scale_by_vsgd`, trees like the params (in at
  least float32).

  Attributes:
    count: ``update`` calls so far (int32, saturating).
    rng_key: the PRNG key of the next curvature probes.
    g_bar: :math:`\bar g`, the moving average of the gradient.
    v_bar: :math:`\bar v`, that of its square.
    h_bar: :math:`\bar h`, that of the absolute diagonal curvature.
    tau: :math:`\tau`, the memory (in steps) of the averages.
  """
  count: jax.Array
  rng_key: jax.Array
  g_bar: Any
  v_bar: Any
  h_bar: Any
  tau: Any


def scale_by_vsgd(key: Any = None, estimator: str = "hutchinson",
                  loss: Any = None, num_samples: int = 1,
                  init_samples: int = 10, slow_start: Optional[Any] = None,
                  eps: Any = 1e-8) -> base.GradientTransformation:
  r"""Scales each coordinate by vSGD's learning rate
  :math:`\eta_i = \bar g_i^2 / (\bar h_i \bar v_i)`.

  vSGD (Schaul, Zhang & LeCun, *No more pesky learning rates*, ICML 2013,
  Algorithm 1, "vSGD-l") chooses, per parameter, the rate that minimises
  the expected loss after the step on a noisy quadratic model: the
  diagonal Newton rate :math:`1/h_i` shrunk by the fraction of the squared
  gradient that is signal rather than noise, :math:`\bar g_i^2 / \bar v_i
  \in [0, 1]`. Each step, with :math:`g` the gradient and :math:`h` an
  estimate of the diagonal curvature,

  .. math::
     \bar g_i &\leftarrow (1 - \tau_i^{-1})\, \bar g_i + \tau_i^{-1} g_i,
     \qquad
     \bar v_i \leftarrow (1 - \tau_i^{-1})\, \bar v_i + \tau_i^{-1} g_i^2,
     \\
     \bar h_i &\leftarrow (1 - \tau_i^{-1})\, \bar h_i + \tau_i^{-1} |h_i|,
     \qquad
     \eta_i = \frac{\bar g_i^2}{\bar h_i\, \bar v_i},
     \\
     \tau_i &\leftarrow \Big(1 - \frac{\bar g_i^2}{\bar v_i}\Big) \tau_i + 1,
     \qquad u_i = \eta_i\, g_i.

  The memory :math:`\tau_i` adapts too: it grows while the gradient is
  mostly noise (the rate then anneals like :math:`1/t`) and falls back to
  about 1 when the signal dominates or the landscape changes.

  **Initialisation** (the paper's "slow start"). The first
  ``init_samples`` calls (:math:`n_0`) only gather the plain means of
  :math:`g`, :math:`g^2` and :math:`|h|` and return zero updates; then
  :math:`\bar v` and :math:`\bar h` are multiplied by :math:`C` =
  ``slow_start`` (:math:`\max(1, d/10)` for :math:`d` params by default,
  as in the authors' implementation) and :math:`\tau = n_0`: the first
  rates err on the small side (the first is :math:`((C (n_0 - 1) + 1) /
  n_0)^2` times smaller, without noise), and the overestimate is forgotten
  at the rate of the memory.

  **Curvature.** The paper estimates :math:`h` with bbprop (Becker &
  LeCun 1988), a Gauss-Newton approximation of the Hessian's diagonal
  propagated backwards through the network. gradtx takes it from
  :func:`scale_by_hessian_diag`'s unbiased estimators, chosen by
  ``estimator``: ``"hutchinson"`` (the Hessian of ``value_fn``, one
  Hessian-vector product) or ``"gauss_newton"`` (the Gauss-Newton matrix
  of ``output_fn``'s outputs under ``loss``, one vector-Jacobian product
  per sample: the stochastic counterpart of bbprop). ``update`` reads
  them as that transform does; ``updates`` is the (mini-batch) gradient.
  The rates are those of the paper when the estimates are exact (a
  diagonal Hessian); otherwise the estimator's noise enters :math:`\bar
  h`. :math:`\bar v` and :math:`\bar h` are floored at ``eps`` in the
  division (a zero gradient gives :math:`\eta = 0`).

  Args:
    key: a PRNG key (``jax.random.key(seed)``) or an int seed for the
      curvature probes. Required.
    estimator: ``"hutchinson"`` (reads ``value_fn``) or ``"gauss_newton"``
      (reads ``output_fn``), as in :func:`scale_by_hessian_diag`.
    loss: with ``estimator="gauss_newton"``, ``"squared"`` or
      ``"softmax_cross_entropy"``; ``None`` otherwise.
    num_samples: curvature probes per ``update``, averaged.
    init_samples: :math:`n_0 \ge 1`, the calls that initialise the
      averages (their updates are zero); 10 as in the authors' code. With
      :math:`n_0 = 1` the first step forgets the initial averages
      (:math:`\tau = 1`) and the slow start has no effect.
    slow_start: :math:`C \ge 1`, the factor on the initial :math:`\bar v`
      and :math:`\bar h`; ``None``: :math:`\max(1, d/10)`.
    eps: :math:`\epsilon > 0`, the floor of :math:`\bar v` and
      :math:`\bar h` in the rate.

  Example:
    >>> import gradtx, jax, jax.numpy as jnp
    >>> f = lambda w: 0.5 * jnp.sum(jnp.array([1.0, 100.0]) * w ** 2)
    >>> tx = gradtx.chain(gradtx.scale_by_vsgd(key=0, init_samples=1),
    ...                   gradtx.scale(-1.0))
    >>> w = jnp.array([1.0, 1.0])
    >>> state = tx.init(w)
    >>> for _ in range(2):   # the first call initialises the averages
    ...   u, state = tx.update(jax.grad(f)(w), state, w, value_fn=f)
    ...   w = gradtx.apply_updates(w, u)
    >>> print(w)   # without noise, the rate is 1 / h: a Newton step
    [0. 0.]
  """
  fn = "scale_by_vsgd"
  HD.check_estimator(fn, estimator, loss, num_samples)
  V.check_int(fn, "init_samples", init_samples, 1,
              " (the calls that initialise the averages)")
  if slow_start is not None:
    V.check_interval(
        fn, "slow_start", slow_start, 1.0, float("inf"), hi_closed=True,
        hint="slow_start multiplies the first variance and curvature "
        "estimates so that the first rates err on the small side; the "
        "default is max(1, d / 10) for d params (pass None).")
  V.check_positive(fn, "eps", eps)
  key = adding._as_key(fn, key)

  def init_fn(params):
    C.real_leaves(fn, params)
    dtype = L._scalar_dtype(fn, params)
    zeros = lambda: T.tree_zeros_like(params, dtype)
    return ScaleByVSGDState(count=num.zero_count(),
                            rng_key=jax.random.clone(key), g_bar=zeros(),
                            v_bar=zeros(), h_bar=zeros(), tau=zeros())

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG.format(name=fn))
    C.real_leaves(fn, updates, "update")
    LW.check_updates_match_params(fn, updates, params)
    rng_key, probe_key = jax.random.split(state.rng_key)
    diag = HD.diagonal_curvature(fn, estimator, loss, num_samples,
                                 probe_key, params, extra_args)
    c_slow = (max(1.0, C.size(params) / 10.0) if slow_start is None
              else slow_start)
    count = num.safe_increment(state.count)
    warming = count <= init_samples
    last_warm = count == init_samples

    def leaf(g, d, g_bar, v_bar, h_bar, tau):
      dt, out_dtype = g_bar.dtype, g.dtype
      g = g.astype(dt)
      h = jnp.abs(d.astype(dt))
      # While warming: plain means of the first n0 samples.
      k = count.astype(dt)
      g_mean = g_bar + (g - g_bar) / k
      v_mean = v_bar + (g * g - v_bar) / k
      h_mean = h_bar + (h - h_bar) / k
      slow = T.like(c_slow, g_mean)
      g_init = g_mean
      v_init = jnp.where(last_warm, slow * v_mean, v_mean)
      h_init = jnp.where(last_warm, slow * h_mean, h_mean)
      tau_init = jnp.where(last_warm, T.like(float(init_samples), tau), tau)
      # Algorithm 1: the averages with the memory tau, then the rate, then
      # the memory.
      w_new = 1 / jnp.where(tau > 0, tau, 1)

      def average(old, x):
        # At tau = 1 the past has weight 0 exactly, even where it is inf.
        return jnp.where(w_new < 1, (1 - w_new) * old, 0) + w_new * x

      g_run = average(g_bar, g)
      v_run = average(v_bar, g * g)
      h_run = average(h_bar, h)
      floor = T.like(eps, g_run)
      # g^2 / v as (g / sqrt v)^2: finite where g^2 overflows (v = inf
      # gives a rate of 0 for that entry, never NaN).
      signal = jnp.clip(
          jnp.square(g_run / jnp.sqrt(jnp.maximum(v_run, floor))), 0, 1)
      rate = signal / jnp.maximum(h_run, floor)
      tau_run = (1 - signal) * tau + 1
      # 0 * g while warming: zero, except that a NaN or inf gradient still
      # shows in its entry's update.
      u = jnp.where(warming, 0 * g, rate * g).astype(out_dtype)
      pick = lambda a, b: jnp.where(warming, a, b)
      return (u, pick(g_init, g_run), pick(v_init, v_run),
              pick(h_init, h_run), pick(tau_init, tau_run))

    out, g_bar, v_bar, h_bar, tau = LW.leafwise(
        leaf, 5, updates, diag, state.g_bar, state.v_bar, state.h_bar,
        state.tau, name=fn)
    return out, ScaleByVSGDState(count=count, rng_key=rng_key, g_bar=g_bar,
                                 v_bar=v_bar, h_bar=h_bar, tau=tau)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


def vsgd(learning_rate: base.ScalarOrSchedule = 1.0, *, key: Any = None,
         estimator: str = "hutchinson", loss: Any = None,
         num_samples: int = 1, init_samples: int = 10,
         slow_start: Optional[Any] = None, eps: Any = 1e-8,
         ) -> base.GradientTransformation:
  r"""vSGD: SGD with a learning rate per parameter and no rate to tune.

  .. math::
     w_i \leftarrow w_i - \gamma\, \frac{\bar g_i^2}{\bar h_i\, \bar v_i}
     \, g_i

  with :math:`\bar g`, :math:`\bar v`, :math:`\bar h` moving averages of
  the gradient, its square and the diagonal curvature over an adaptive
  memory (Schaul, Zhang & LeCun, *No more pesky learning rates*, ICML
  2013; see :func:`scale_by_vsgd` for the whole update and its slow-start
  initialisation). It is ``chain(scale_by_vsgd(...),
  scale_by_learning_rate(learning_rate))``; :math:`\gamma` =
  ``learning_rate`` is 1 in the paper and should stay so (a safety factor
  below 1 at most). ``update`` needs the objective the curvature is
  estimated from: ``value_fn`` (``estimator="hutchinson"``) or
  ``output_fn`` (``estimator="gauss_newton"``).

  Args:
    learning_rate: :math:`\gamma`, a multiplier of the rates (1).
    key: a PRNG key or int seed for the curvature probes. Required.
    estimator: ``"hutchinson"`` or ``"gauss_newton"``.
    loss: the outputs' loss for ``"gauss_newton"`` (``"squared"`` or
      ``"softmax_cross_entropy"``).
    num_samples: curvature probes per step.
    init_samples: :math:`n_0`, the steps that initialise the averages.
    slow_start: :math:`C`, the initial overestimate of :math:`\bar v` and
      :math:`\bar h` (``None``: :math:`\max(1, d/10)`).
    eps: the floor of :math:`\bar v` and :math:`\bar h`.

  Example:
    >>> import gradtx, jax, jax.numpy as jnp
    >>> f = lambda w: jnp.sum(jnp.array([1.0, 1e3]) * (w - 1.0) ** 2)
    >>> result = gradtx.minimize(f, jnp.zeros(2), gradtx.vsgd(key=0),
    ...                          max_steps=50, gtol=1e-6)
    >>> print(jnp.round(result.params, 4))
    [1. 1.]
  """
  fn = "vsgd"
  V.check_learning_rate(fn, learning_rate)
  return combining.chain(
      scale_by_vsgd(key=key, estimator=estimator, loss=loss,
                    num_samples=num_samples, init_samples=init_samples,
                    slow_start=slow_start, eps=eps),
      scaling.scale_by_learning_rate(learning_rate))
