"""Named optimizers: each is a short chain of primitives and holds no maths.

Signatures, defaults and per-step numbers follow optax 0.2.8 where optax has
the optimizer; the docstrings say where and why gradtx differs.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from gradtx._src import accumulation
from gradtx._src import adam as adam_lib
from gradtx._src import adaptive
from gradtx._src import adding
from gradtx._src import base
from gradtx._src import combining
from gradtx._src import lookahead as lookahead_lib
from gradtx._src import scaling
from gradtx._src import validation as V

MaskOrFn = Optional[Union[Any, Callable[[Any], Any]]]


def _momentum(name: str, momentum: Any, nesterov: bool,
              accumulator_dtype: Any = None) -> base.GradientTransformation:
  if momentum is None:
    if nesterov:
      raise ValueError(f"{name}: nesterov=True needs a momentum, e.g. "
                       f"momentum=0.9.")
    return base.identity()
  V.check_decay(name, "momentum", momentum)
  return accumulation.trace(momentum, nesterov, accumulator_dtype)


def sgd(learning_rate: base.ScalarOrSchedule, momentum: Optional[Any] = None,
        nesterov: bool = False, accumulator_dtype: Optional[Any] = None,
        ) -> base.GradientTransformation:
  r"""Stochastic gradient descent, with heavy-ball or Nesterov momentum.

  .. math::
     v_t = \beta v_{t-1} + g_t,\qquad
     \theta_t = \theta_{t-1} - \eta\, v_t
     \quad(\text{Nesterov: } \theta_t = \theta_{t-1} - \eta(g_t + \beta v_t))

  Robbins & Monro (1951); Polyak (1964); Sutskever et al. (ICML 2013).
  Same as ``torch.optim.SGD`` with ``dampening=0``.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    momentum: the heavy-ball momentum :math:`\beta` in [0, 1), applied to the
      gradients (the velocity accumulates ``g_t``, not ``eta * g_t``); ``None``:
      no momentum.
    nesterov: use Nesterov's momentum (``g_t + beta * v_t``); needs a
      ``momentum``.
    accumulator_dtype: the dtype the momentum buffer is stored in; ``None``:
      each param's dtype.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.sgd(0.1, momentum=0.9)
    >>> params = jnp.array([1.0, -2.0])
    >>> state = tx.init(params)
    >>> updates, state = tx.update(2 * params, state)
    >>> print(gradtx.apply_updates(params, updates))
    [ 0.8 -1.6]
  """
  V.check_learning_rate("sgd", learning_rate)
  return combining.chain(
      _momentum("sgd", momentum, nesterov, accumulator_dtype),
      scaling.scale_by_learning_rate(learning_rate))


def sgdw(learning_rate: base.ScalarOrSchedule, momentum: Optional[Any] = None,
         nesterov: bool = False, weight_decay: base.ScalarOrSchedule = 1e-4,
         mask: MaskOrFn = None, accumulator_dtype: Optional[Any] = None,
         ) -> base.GradientTransformation:
  r"""SGD with decoupled weight decay (SGDW, Loshchilov & Hutter, ICLR 2019).

  .. math::
     v_t = \beta v_{t-1} + g_t,\qquad
     \theta_t = \theta_{t-1} - \eta\,(v_t + \lambda \theta_{t-1})

  The decay never enters the momentum buffer, unlike
  ``sgd`` on a loss with an L2 term (or ``torch.optim.SGD(weight_decay=...)``),
  where ``lambda * theta`` is added to the gradient and then accumulated.
  The paper writes the decay as ``eta_t * lambda`` with ``eta_t`` a schedule
  multiplier; here it is scaled by the learning rate, as ``adamw`` does in
  optax and PyTorch, so ``lambda_paper = learning_rate * weight_decay`` for a
  constant learning rate. optax has no ``sgdw``.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    momentum: the heavy-ball momentum :math:`\beta` in [0, 1), applied to the
      gradients (the velocity accumulates ``g_t``, not ``eta * g_t``); ``None``:
      no momentum.
    nesterov: use Nesterov's momentum (``g_t + beta * v_t``); needs a
      ``momentum``.
    weight_decay: the decoupled decay rate :math:`\lambda`:
      ``weight_decay * params`` is added to the step after the momentum and
      multiplied by the learning rate; a number or a schedule of the step count.
    mask: where the weight decay applies: a tree of bools with the params'
      structure (or a prefix of one), or a function of the params returning one;
      ``None``: every leaf.
    accumulator_dtype: the dtype the momentum buffer is stored in; ``None``:
      each param's dtype.

  Example:
    >>> import gradtx
    >>> tx = gradtx.sgdw(0.1, momentum=0.9, weight_decay=1e-2)
  """
  V.check_learning_rate("sgdw", learning_rate)
  return combining.chain(
      _momentum("sgdw", momentum, nesterov, accumulator_dtype),
      adding.add_decayed_weights(weight_decay, mask),
      scaling.scale_by_learning_rate(learning_rate))


def adagrad(learning_rate: base.ScalarOrSchedule,
            initial_accumulator_value: Any = 0.1, eps: Any = 1e-7, *,
            eps_in_sqrt: bool = True) -> base.GradientTransformation:
  r"""Adagrad (Duchi, Hazan & Singer, JMLR 2011).

  .. math::
     G_t = G_{t-1} + g_t^2,\qquad
     \theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{G_t + \epsilon}}

  The defaults are optax's (``G_0 = 0.1``, ``eps`` inside the root). The
  paper's form, and ``torch.optim.Adagrad``'s, is
  ``adagrad(lr, initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False)``:
  ``theta -= lr * g / (sqrt(G) + eps)``.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    initial_accumulator_value: the starting value ``G_0`` of the sum of squared
      gradients, non-negative.
    eps: the denominator's :math:`\epsilon`, non-negative: inside the root with
      ``eps_in_sqrt``, added to the root otherwise.
    eps_in_sqrt: put ``eps`` inside the square root (optax's default) rather
      than outside it (the paper's and PyTorch's form).

  Example:
    >>> import gradtx
    >>> tx = gradtx.adagrad(0.1, initial_accumulator_value=0.0,
    ...                     eps_in_sqrt=False)
  """
  V.check_learning_rate("adagrad", learning_rate)
  return combining.chain(
      adaptive.scale_by_rss(initial_accumulator_value, eps,
                            eps_in_sqrt=eps_in_sqrt),
      scaling.scale_by_learning_rate(learning_rate))


def adadelta(learning_rate: Optional[base.ScalarOrSchedule] = None,
             rho: Any = 0.9, eps: Any = 1e-6,
             weight_decay: base.ScalarOrSchedule = 0.0,
             weight_decay_mask: MaskOrFn = None,
             ) -> base.GradientTransformation:
  r"""Adadelta (Zeiler, "ADADELTA: an adaptive learning rate method", 2012).

  .. math::
     E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2,\quad
     \Delta_t = -\frac{\sqrt{E[\Delta^2]_{t-1}+\epsilon}}
                      {\sqrt{E[g^2]_t+\epsilon}}\,g_t,\quad
     E[\Delta^2]_t = \rho E[\Delta^2]_{t-1} + (1-\rho)\Delta_t^2,\quad
     \theta_t = \theta_{t-1} + \eta\,\Delta_t

  ``learning_rate=None`` is the paper's method (``eta = 1``): no learning
  rate at all. Differs from optax 0.2.8, whose ``adadelta()`` with the
  default ``learning_rate=None`` returns ``+|Delta_t|`` along the gradient and
  so *ascends* the loss; gradtx descends. With a learning rate the two agree
  (``torch.optim.Adadelta`` defaults to ``lr=1.0``). ``weight_decay`` adds
  ``lambda * theta`` to the gradient (L2, as in optax and PyTorch).

  Args:
    learning_rate: a factor on Adadelta's step, a number or a schedule of the
      step count; ``None`` (the paper's method) is 1.
    rho: the decay rate of the moving averages of the squared gradients and of
      the squared updates, in [0, 1).
    eps: added inside both square roots; non-negative. It also sets the size of
      the first steps, since the average of the squared updates starts at 0.
    weight_decay: the L2 coefficient: ``weight_decay * params`` is added to the
      gradients before the scaling (as in optax and PyTorch); a number or a
      schedule of the step count.
    weight_decay_mask: where the weight decay applies: a tree of bools with the
      params' structure (or a prefix of one), or a function of the params
      returning one; ``None``: every leaf.

  Example:
    >>> import gradtx
    >>> tx = gradtx.adadelta()   # the paper's learning-rate-free form
  """
  return combining.chain(
      adding.add_decayed_weights(weight_decay, weight_decay_mask),
      adaptive.scale_by_adadelta(rho, eps),
      scaling.scale_by_learning_rate(
          1.0 if learning_rate is None else learning_rate))


def rmsprop(learning_rate: base.ScalarOrSchedule, decay: Any = 0.9,
            eps: Any = 1e-8, initial_scale: Any = 0.0,
            eps_in_sqrt: bool = True, centered: bool = False,
            momentum: Optional[Any] = None, nesterov: bool = False,
            bias_correction: bool = False) -> base.GradientTransformation:
  r"""RMSProp (Hinton, Lecture 6e, 2012), optionally centered (Graves 2013).

  .. math::
     \nu_t = \rho\nu_{t-1} + (1-\rho) g_t^2,\qquad
     \theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{\nu_t + \epsilon}}

  ``centered`` divides by the running standard deviation
  ``sqrt(nu - mu**2 + eps)`` instead; ``momentum`` applies heavy-ball (or
  Nesterov) momentum to the scaled step, as optax does. PyTorch's
  ``RMSprop`` puts ``eps`` outside the root (``eps_in_sqrt=False``) and
  accumulates momentum before the learning rate, which gives the same step
  for a constant learning rate.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    decay: the decay rate :math:`\rho` of the moving average of the squared
      gradients, in [0, 1); a number or a schedule of the step count.
    eps: the denominator's :math:`\epsilon`, non-negative: inside the root with
      ``eps_in_sqrt``, added to the root otherwise.
    initial_scale: the starting value of the moving average ``nu``.
    eps_in_sqrt: put ``eps`` inside the square root (optax's form) rather than
      outside it (PyTorch's).
    centered: divide by the running standard deviation ``sqrt(nu - mu**2)``
      instead of ``sqrt(nu)`` (Graves 2013).
    momentum: the momentum in [0, 1) applied to the scaled step (after the
      learning rate, as optax does); ``None``: no momentum.
    nesterov: use Nesterov's momentum; needs a ``momentum``.
    bias_correction: divide the moving averages by ``1 - decay**t``.

  Example:
    >>> import gradtx
    >>> tx = gradtx.rmsprop(1e-3, centered=True, momentum=0.9)
  """
  V.check_learning_rate("rmsprop", learning_rate)
  scaler = adaptive.scale_by_stddev if centered else adaptive.scale_by_rms
  return combining.chain(
      scaler(decay, eps, initial_scale, eps_in_sqrt, bias_correction),
      scaling.scale_by_learning_rate(learning_rate),
      _momentum("rmsprop", momentum, nesterov))


def rprop(learning_rate: Any, eta_minus: Any = 0.5, eta_plus: Any = 1.2,
          min_step_size: Any = 1e-6, max_step_size: Any = 50.0,
          ) -> base.GradientTransformation:
  r"""Rprop, the iRprop- variant (Riedmiller & Braun 1993; Igel & Hüsken 2000).

  Each entry keeps its own step size, grown by ``eta_plus`` while the
  gradient keeps its sign and shrunk by ``eta_minus`` when it flips:

  .. math::
     s_t = \operatorname{clip}\big(s_{t-1}\cdot\eta^{\pm},\ s_{min},
       \ s_{max}\big),\qquad
     \theta_t = \theta_{t-1} - \begin{cases} 0 & g_t g_{t-1} < 0\\
       s_t\,\mathrm{sign}(g_t) & \text{otherwise}\end{cases}

  (after a flip the stored gradient is zeroed). ``learning_rate`` is the
  initial step size ``s_0``. Meant for full-batch training.

  Differs from optax 0.2.8, whose ``rprop`` applies at step ``t`` the update
  computed at step ``t - 1`` (its first step is zero). gradtx applies this
  step's update, like the paper and ``torch.optim.Rprop``.

  Args:
    learning_rate: the initial step size ``s_0`` of every entry, a positive
      number (not a schedule: Rprop adapts its step sizes itself).
    eta_minus: the factor in (0, 1) that shrinks a step size after a sign
      change.
    eta_plus: the factor, at least 1, that grows a step size while the sign
      holds.
    min_step_size: the smallest step size, non-negative.
    max_step_size: the largest step size, at least ``min_step_size``.

  Example:
    >>> import gradtx
    >>> tx = gradtx.rprop(1e-2)
  """
  return combining.chain(
      adaptive.scale_by_rprop(learning_rate, eta_minus, eta_plus,
                              min_step_size, max_step_size),
      scaling.scale(-1.0))


def adam(learning_rate: base.ScalarOrSchedule, b1: Any = 0.9,
         b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0,
         mu_dtype: Optional[Any] = None, *, nesterov: bool = False,
         nu_dtype: Optional[Any] = None) -> base.GradientTransformation:
  r"""Adam (Kingma & Ba, "Adam: A method for stochastic optimization", 2015).

  .. math::
     m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
     v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
     \theta_t = \theta_{t-1} - \eta\,
       \frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t) + \epsilon_{root}}
       + \epsilon}

  Same numbers as ``optax.adam``. ``torch.optim.Adam`` adds ``eps`` to
  ``sqrt(v_t) / sqrt(1 - b2**t)``, which is the same thing.
  ``mu_dtype``/``nu_dtype`` store the moments in lower precision.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the second moment (the squared gradients' moving
      average), in [0, 1).
    eps: added to the denominator outside the square root, for numerical
      stability; non-negative.
    eps_root: added to the second moment inside the square root (non-zero only
      to differentiate through the step, where the root of 0 has no gradient);
      non-negative.
    mu_dtype: the dtype the first moment is stored in (e.g. ``jnp.bfloat16``);
      ``None``: each param's dtype.
    nesterov: use Nesterov's momentum (the look-ahead first moment of
      :func:`nadam`).
    nu_dtype: the dtype the second moment ``v`` is stored in; ``None``: each
      param's dtype.

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.adam(1e-3)
    >>> params = {"w": jnp.ones(3)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.full(3, 0.5)}, state)
    >>> print(updates["w"])
    [-0.001 -0.001 -0.001]
  """
  V.check_learning_rate("adam", learning_rate)
  return combining.chain(
      adam_lib.scale_by_adam(b1, b2, eps, eps_root, mu_dtype,
                             nesterov=nesterov, nu_dtype=nu_dtype),
      scaling.scale_by_learning_rate(learning_rate))


def adamw(learning_rate: base.ScalarOrSchedule, b1: Any = 0.9,
          b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0,
          mu_dtype: Optional[Any] = None,
          weight_decay: base.ScalarOrSchedule = 1e-4, mask: MaskOrFn = None,
          *, nesterov: bool = False, nu_dtype: Optional[Any] = None,
          ) -> base.GradientTransformation:
  r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, ICLR 2019).

  .. math::
     \theta_t = \theta_{t-1} - \eta\left(
       \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}
       + \lambda\,\theta_{t-1}\right)

  with ``m_hat, v_hat`` as in :func:`adam`. The decay bypasses the moments,
  which is what makes it different from Adam on an L2-regularised loss.
  The decay is scaled by the learning rate, as in optax and
  ``torch.optim.AdamW`` (default decay 1e-4 here and in optax, 1e-2 in
  PyTorch). ``mask`` selects the leaves that decay.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the second moment (the squared gradients' moving
      average), in [0, 1).
    eps: added to the denominator outside the square root, for numerical
      stability; non-negative.
    eps_root: added to the second moment inside the square root (non-zero only
      to differentiate through the step, where the root of 0 has no gradient);
      non-negative.
    mu_dtype: the dtype the first moment is stored in (e.g. ``jnp.bfloat16``);
      ``None``: each param's dtype.
    weight_decay: the decoupled decay rate :math:`\lambda`:
      ``weight_decay * params`` is added to the scaled update and then
      multiplied by the learning rate; a number or a schedule of the step count.
    mask: where the weight decay applies: a tree of bools with the params'
      structure (or a prefix of one), or a function of the params returning one;
      ``None``: every leaf.
    nesterov: use Nesterov's momentum (the look-ahead first moment of
      :func:`nadamw`).
    nu_dtype: the dtype the second moment ``v`` is stored in; ``None``: each
      param's dtype.

  Example:
    >>> import gradtx
    >>> tx = gradtx.adamw(1e-3, weight_decay=1e-2,
    ...                   mask=lambda p: {k: k != "bias" for k in p})
  """
  V.check_learning_rate("adamw", learning_rate)
  return combining.chain(
      adam_lib.scale_by_adam(b1, b2, eps, eps_root, mu_dtype,
                             nesterov=nesterov, nu_dtype=nu_dtype),
      adding.add_decayed_weights(weight_decay, mask),
      scaling.scale_by_learning_rate(learning_rate))


def adamax(learning_rate: base.ScalarOrSchedule, b1: Any = 0.9,
           b2: Any = 0.999, eps: Any = 1e-8) -> base.GradientTransformation:
  r"""Adamax, Adam under the infinity norm (Kingma & Ba 2015, Algorithm 2).

  .. math::
     m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
     u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon),\quad
     \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\frac{m_t}{u_t}

  ``eps`` inside the max, as in optax and ``torch.optim.Adamax``.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the infinity norm ``u_t``, in [0, 1).
    eps: added to ``|g_t|`` inside the maximum, so the denominator is never 0;
      non-negative.

  Example:
    >>> import gradtx
    >>> tx = gradtx.adamax(2e-3)
  """
  V.check_learning_rate("adamax", learning_rate)
  return combining.chain(adam_lib.scale_by_adamax(b1, b2, eps),
                       scaling.scale_by_learning_rate(learning_rate))


def nadam(learning_rate: base.ScalarOrSchedule, b1: Any = 0.9,
          b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0,
          mu_dtype: Optional[Any] = None, *, nesterov: bool = True,
          nu_dtype: Optional[Any] = None) -> base.GradientTransformation:
  r"""Nadam: Adam with Nesterov momentum (Dozat, ICLR workshop 2016).

  The first moment looks one step ahead:

  .. math::
     \bar m_t = \frac{\beta_1 m_t}{1-\beta_1^{t+1}}
              + \frac{(1-\beta_1) g_t}{1-\beta_1^{t}},\qquad
     \theta_t = \theta_{t-1} - \eta\,
       \frac{\bar m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}

  This is optax's form. Dozat's Algorithm 2 also multiplies ``v_hat`` by
  ``b2`` and ``torch.optim.NAdam`` adds a momentum-decay schedule
  (``momentum_decay=4e-3``); neither is done here.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the second moment (the squared gradients' moving
      average), in [0, 1).
    eps: added to the denominator outside the square root, for numerical
      stability; non-negative.
    eps_root: added to the second moment inside the square root (non-zero only
      to differentiate through the step, where the root of 0 has no gradient);
      non-negative.
    mu_dtype: the dtype the first moment is stored in (e.g. ``jnp.bfloat16``);
      ``None``: each param's dtype.
    nesterov: use the look-ahead first moment (True, the default); False gives
      :func:`adam`.
    nu_dtype: the dtype the second moment ``v`` is stored in; ``None``: each
      param's dtype.

  Example:
    >>> import gradtx
    >>> tx = gradtx.nadam(1e-3)
  """
  V.check_learning_rate("nadam", learning_rate)
  return combining.chain(
      adam_lib.scale_by_adam(b1, b2, eps, eps_root, mu_dtype,
                             nesterov=nesterov, nu_dtype=nu_dtype),
      scaling.scale_by_learning_rate(learning_rate))


def nadamw(learning_rate: base.ScalarOrSchedule, b1: Any = 0.9,
           b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0,
           mu_dtype: Optional[Any] = None,
           weight_decay: base.ScalarOrSchedule = 1e-4, mask: MaskOrFn = None,
           *, nesterov: bool = True, nu_dtype: Optional[Any] = None,
           ) -> base.GradientTransformation:
  r"""NadamW: Nadam's look-ahead moment (Dozat 2016) with AdamW's decoupled
  decay (Loshchilov & Hutter 2019).

  .. math::
     \theta_t = \theta_{t-1} - \eta\left(
       \frac{\bar m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}
       + \lambda\theta_{t-1}\right)

  with ``m_bar`` as in :func:`nadam`; the decay is scaled by the learning
  rate (optax's convention). ``torch.optim.NAdam(decoupled_weight_decay=True)``
  is the nearest PyTorch form.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the second moment (the squared gradients' moving
      average), in [0, 1).
    eps: added to the denominator outside the square root, for numerical
      stability; non-negative.
    eps_root: added to the second moment inside the square root (non-zero only
      to differentiate through the step, where the root of 0 has no gradient);
      non-negative.
    mu_dtype: the dtype the first moment is stored in (e.g. ``jnp.bfloat16``);
      ``None``: each param's dtype.
    weight_decay: the decoupled decay rate :math:`\lambda`:
      ``weight_decay * params`` is added to the scaled update and then
      multiplied by the learning rate; a number or a schedule of the step count.
    mask: where the weight decay applies: a tree of bools with the params'
      structure (or a prefix of one), or a function of the params returning one;
      ``None``: every leaf.
    nesterov: use the look-ahead first moment (True, the default); False gives
      :func:`adamw`.
    nu_dtype: the dtype the second moment ``v`` is stored in; ``None``: each
      param's dtype.

  Example:
    >>> import gradtx
    >>> tx = gradtx.nadamw(1e-3, weight_decay=1e-2)
  """
  V.check_learning_rate("nadamw", learning_rate)
  return combining.chain(
      adam_lib.scale_by_adam(b1, b2, eps, eps_root, mu_dtype,
                             nesterov=nesterov, nu_dtype=nu_dtype),
      adding.add_decayed_weights(weight_decay, mask),
      scaling.scale_by_learning_rate(learning_rate))


def noisy_sgd(learning_rate: base.ScalarOrSchedule, eta: Any = 0.01,
              gamma: Any = 0.55, key: Any = None, *, seed: Any = None,
              ) -> base.GradientTransformation:
  r"""SGD on gradients with annealed Gaussian noise (Neelakantan et al. 2015).

  .. math::
     \theta_t = \theta_{t-1} - \eta_{lr}\left(g_t + \mathcal{N}\!\left(0,
       \frac{\eta}{(1+t)^{\gamma}}\right)\right)

  ``key`` is required (a ``jax.random.key`` or an int seed; optax's
  ``seed=`` is the other spelling of an int seed); optax 0.2.8 falls back to
  seed 0 with a warning. For the same key the draws equal optax's.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    eta: the initial variance :math:`\eta` of the noise, non-negative.
    gamma: the decay exponent :math:`\gamma` of the variance,
      ``eta / (1 + t)**gamma``.
    key: a PRNG key (``jax.random.key(seed)``) or an int seed. Required (or
      ``seed``).
    seed: optax's other spelling of an int seed; give ``key`` or ``seed``.

  Example:
    >>> import gradtx, jax
    >>> tx = gradtx.noisy_sgd(0.01, key=jax.random.key(0))
  """
  V.check_learning_rate("noisy_sgd", learning_rate)
  return combining.chain(adding.add_noise(eta, gamma, key, seed=seed),
                       scaling.scale_by_learning_rate(learning_rate))


def amsgrad(learning_rate: base.ScalarOrSchedule, b1: Any = 0.9,
            b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0,
            mu_dtype: Optional[Any] = None, bias_correction_mu: bool = True,
            bias_correction_nu: bool = True) -> base.GradientTransformation:
  r"""AMSGrad (Reddi, Kale & Kumar, "On the convergence of Adam and beyond",
  ICLR 2018).

  .. math::
     \hat v^{max}_t = \max(\hat v^{max}_{t-1}, \hat v_t),\qquad
     \theta_t = \theta_{t-1} - \eta\,
       \frac{\hat m_t}{\sqrt{\hat v^{max}_t + \epsilon_{root}} + \epsilon}

  ``chain(scale_by_adam(...), amsgrad_max(...), scale_by_learning_rate(lr))``:
  the same numbers as ``optax.amsgrad`` (which keeps the maximum of the
  bias-corrected ``v_hat``). ``torch.optim.Adam(amsgrad=True)`` keeps the
  maximum of the raw ``v``: ``amsgrad_max(max_of_raw=True)``.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the second moment (the squared gradients' moving
      average), in [0, 1).
    eps: added to the denominator outside the square root, for numerical
      stability; non-negative.
    eps_root: added to the second moment inside the square root (non-zero only
      to differentiate through the step, where the root of 0 has no gradient);
      non-negative.
    mu_dtype: the dtype the first moment is stored in (e.g. ``jnp.bfloat16``);
      ``None``: each param's dtype.
    bias_correction_mu: divide the first moment by ``1 - b1**t`` (set both flags
      False for the paper's algorithm, which has no bias correction).
    bias_correction_nu: take the maximum of the bias-corrected ``v_hat``
      (optax's default) rather than of the raw ``v``.

  Example:
    >>> import gradtx
    >>> tx = gradtx.amsgrad(1e-3)
  """
  V.check_learning_rate("amsgrad", learning_rate)
  return combining.chain(
      adam_lib.scale_by_adam(b1, b2, eps, eps_root, mu_dtype),
      adam_lib.amsgrad_max(bias_correction_mu, bias_correction_nu),
      scaling.scale_by_learning_rate(learning_rate))


def radam(learning_rate: base.ScalarOrSchedule, b1: Any = 0.9,
          b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0,
          threshold: Any = 5.0, *, nesterov: bool = False,
          ) -> base.GradientTransformation:
  r"""RAdam, rectified Adam (Liu et al., "On the variance of the adaptive
  learning rate and beyond", ICLR 2020).

  .. math::
     \theta_t = \theta_{t-1} - \eta \begin{cases}
       r_t\,\hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)
         & \rho_t \ge \text{threshold}\\
       \hat m_t & \text{otherwise}\end{cases}

  with ``r_t`` and ``rho_t`` as in :func:`gradtx.rectify`: in the first
  steps, while the variance of the adaptive rate is intractable, RAdam takes
  un-adapted momentum steps, which removes the need for warm-up.
  ``chain(scale_by_adam(...), rectify(threshold), scale_by_learning_rate(lr))``;
  the same numbers as ``optax.radam`` and ``torch.optim.RAdam``.

  Args:
    learning_rate: the step size, a number or a schedule of the step count
      (``count -> value``, read at the number of steps taken before this one).
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the second moment (the squared gradients' moving
      average), in [0, 1).
    eps: added to the denominator outside the square root, for numerical
      stability; non-negative.
    eps_root: added to the second moment inside the square root (non-zero only
      to differentiate through the step, where the root of 0 has no gradient);
      non-negative.
    threshold: the value of :math:`\rho_t` from which the rectified adaptive
      step is taken; at least 4 (5 as in optax and PyTorch).
    nesterov: use Nesterov's momentum (the look-ahead first moment of
      :func:`nadam`).

  Example:
    >>> import gradtx
    >>> tx = gradtx.radam(1e-3)
  """
  V.check_learning_rate("radam", learning_rate)
  return combining.chain(
      adam_lib.scale_by_adam(b1, b2, eps, eps_root, nesterov=nesterov),
      adam_lib.rectify(threshold),
      scaling.scale_by_learning_rate(learning_rate))


def _l2(weight_decay: Any) -> base.GradientTransformation:
  """Coupled (L2) decay added to the gradient, as AdaBound's code does."""
  return adding.add_decayed_weights(weight_decay)


def adabound(learning_rate: base.ScalarOrSchedule = 1e-3, b1: Any = 0.9,
             b2: Any = 0.999, final_lr: Any = 0.1, gamma: Any = 1e-3,
             eps: Any = 1e-8, weight_decay: base.ScalarOrSchedule = 0.0,
             ) -> base.GradientTransformation:
  r"""AdaBound (Luo, Xiong, Liu & Sun, "Adaptive gradient methods with
  dynamic bound of learning rate", ICLR 2019).

  Adam whose per-entry step size is clipped into bounds that tighten from
  ``[0, inf)`` towards ``final_lr``, so training starts like Adam and ends
  like SGD:

  .. math::
     \theta_t = \theta_{t-1} - \operatorname{clip}\!\left(
       \frac{\alpha\sqrt{1-\beta_2^t}}{(1-\beta_1^t)(\sqrt{v_t}+\epsilon)},
       \ \alpha^*\Big(1-\frac{1}{\gamma t+1}\Big),
       \ \alpha^*\Big(1+\frac{1}{\gamma t}\Big)\right) m_t

  Reproduces the authors' ``AdaBound`` optimizer (``Luolc/AdaBound``)
  step for step, including its L2 ``weight_decay`` (added to the gradient)
  and its bounds following a learning-rate schedule. optax has no AdaBound.
  ``chain(add_decayed_weights(wd), scale_by_adam(b1, b2, eps),
  bound_lr(lr, final_lr, gamma))``.

  Args:
    learning_rate: Adam's step size :math:`\alpha`, a number or a schedule of
      the step count (the bounds follow a schedule through
      :math:`\alpha_t/\alpha_0`).
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the second moment (the squared gradients' moving
      average), in [0, 1).
    final_lr: the learning rate both bounds converge to (SGD's rate at the end);
      a number, scaled by ``learning_rate / learning_rate(0)`` when
      ``learning_rate`` is a schedule, or a schedule itself, then used as it is.
    gamma: how fast the bounds close in on ``final_lr``: the lower bound is
      ``final_lr * (1 - 1 / (gamma * t + 1))``, the upper
      ``final_lr * (1 + 1 / (gamma * t))``. Positive.
    eps: added to the denominator outside the square root, for numerical
      stability; non-negative.
    weight_decay: the L2 coefficient: ``weight_decay * params`` is added to the
      gradients before the moments see them; a number or a schedule of the step
      count (0: no decay).

  Example:
    >>> import gradtx
    >>> tx = gradtx.adabound(1e-3, final_lr=0.1)
  """
  return combining.chain(
      _l2(weight_decay),
      adam_lib.scale_by_adam(b1, b2, eps),
      adam_lib.bound_lr(learning_rate, final_lr, gamma))


def amsbound(learning_rate: base.ScalarOrSchedule = 1e-3, b1: Any = 0.9,
             b2: Any = 0.999, final_lr: Any = 0.1, gamma: Any = 1e-3,
             eps: Any = 1e-8, weight_decay: base.ScalarOrSchedule = 0.0,
             ) -> base.GradientTransformation:
  r"""AMSBound: AdaBound on AMSGrad's running maximum (Luo et al., 2019).

  As :func:`adabound`, with :math:`v_t` replaced by
  :math:`v^{max}_t = \max(v^{max}_{t-1}, v_t)`, the maximum of the *raw*
  second moment, as in the authors' ``AdaBound(amsbound=True)``:
  ``chain(add_decayed_weights(wd), scale_by_adam(b1, b2, eps),
  amsgrad_max(max_of_raw=True), bound_lr(lr, final_lr, gamma))``.

  Args:
    learning_rate: Adam's step size :math:`\alpha`, a number or a schedule of
      the step count (the bounds follow a schedule through
      :math:`\alpha_t/\alpha_0`).
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the second moment (the squared gradients' moving
      average), in [0, 1).
    final_lr: the learning rate both bounds converge to (SGD's rate at the end);
      a number, scaled by ``learning_rate / learning_rate(0)`` when
      ``learning_rate`` is a schedule, or a schedule itself, then used as it is.
    gamma: how fast the bounds close in on ``final_lr``: the lower bound is
      ``final_lr * (1 - 1 / (gamma * t + 1))``, the upper
      ``final_lr * (1 + 1 / (gamma * t))``. Positive.
    eps: added to the denominator outside the square root, for numerical
      stability; non-negative.
    weight_decay: the L2 coefficient: ``weight_decay * params`` is added to the
      gradients before the moments see them; a number or a schedule of the step
      count (0: no decay).

  Example:
    >>> import gradtx
    >>> tx = gradtx.amsbound(1e-3, final_lr=0.1)
  """
  return combining.chain(
      _l2(weight_decay),
      adam_lib.scale_by_adam(b1, b2, eps),
      adam_lib.amsgrad_max(max_of_raw=True),
      adam_lib.bound_lr(learning_rate, final_lr, gamma))


def ranger(learning_rate: base.ScalarOrSchedule = 1e-3, b1: Any = 0.95,
           b2: Any = 0.999, eps: Any = 1e-5, threshold: Any = 5.0,
           sync_period: int = 6, slow_step_size: Any = 0.5,
           weight_decay: base.ScalarOrSchedule = 0.0,
           ) -> base.GradientTransformation:
  r"""Ranger: Lookahead over RAdam (the seeds' "RAdam + Lookahead").

  .. math::
     \theta_t = \theta_{t-1} + \text{RAdam}(g_t);\quad
     \text{every } k \text{ steps: }
     \phi \leftarrow \phi + \alpha(\theta_t - \phi),\ \theta_t
     \leftarrow \phi

  RAdam (Liu et al., ICLR 2020) inside :func:`gradtx.lookahead` (Zhang et
  al., NeurIPS 2019). The defaults are those of Less Wright's original
  Ranger (2019): ``lr=1e-3, betas=(0.95, 0.999), eps=1e-5, k=6,
  alpha=0.5``, RAdam threshold 5; ``weight_decay`` is L2, added to the
  gradient as that code does. Ranger's later gradient centralisation is not
  included.

  Args:
    learning_rate: RAdam's step size, a number or a schedule of the step count.
    b1: the decay rate of the first moment (the gradients' moving average), in
      [0, 1).
    b2: the decay rate of the second moment (the squared gradients' moving
      average), in [0, 1).
    eps: added to the denominator outside the square root, for numerical
      stability; non-negative.
    threshold: RAdam's rectification threshold on :math:`\rho_t`, at least 4
      (see :func:`rectify`).
    sync_period: ``k``, the number of fast (RAdam) steps between syncs of the
      slow weights; a positive int.
    slow_step_size: ``alpha`` in [0, 1], how far the slow weights move towards
      the fast ones at a sync.
    weight_decay: the L2 coefficient: ``weight_decay * params`` is added to the
      gradients before the moments see them; a number or a schedule of the step
      count (0: no decay).

  Example:
    >>> import gradtx
    >>> tx = gradtx.ranger(1e-3)
  """
  V.check_learning_rate("ranger", learning_rate)
  return lookahead_lib.lookahead(
      combining.chain(
          _l2(weight_decay),
          adam_lib.scale_by_adam(b1, b2, eps),
          adam_lib.rectify(threshold),
          scaling.scale_by_learning_rate(learning_rate)),
      sync_period=sync_period, slow_step_size=slow_step_size)
