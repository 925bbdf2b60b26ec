r"""``torch.optim``'s optimizers as gradtx transforms, step for step.

Each constructor takes the arguments of its ``torch.optim`` namesake (the
same names, order, keyword-only markers and defaults, checked against
PyTorch 2.13, with ``params`` left out) and returns a
:class:`gradtx.GradientTransformation` that moves the params as torch's
``optimizer.step()`` does: in float32 the
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
from typing import Any, Optional

import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx._src import base
from gradtx._src import numerics as num
from gradtx._src import validation as V
from gradtx._src.torch_rules import AddDecoupledWeightDecayState
from gradtx._src.torch_rules import ScaleByNadamState
from gradtx._src.torch_rules import _PREFIX, _is_zero
from gradtx._src.torch_rules import add_decoupled_weight_decay
from gradtx._src.torch_rules import scale_by_nadam
from gradtx._src.torch_rules import scale_by_radam

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


def _known(x: Any, test) -> bool:
  """``test(float(x))`` where ``x`` is a concrete number, else False."""
  return num.is_concrete_number(x) and test(float(x))


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
# torch's switches, documented once


_SWITCH_DOCS = {
    "foreach": "torch's implementation switch; only ``None`` is accepted\n"
               "      (under ``jax.jit`` XLA fuses the loop over the params).",
    "maximize": "maximize the objective: the gradients are negated first.",
    "capturable": "torch's CUDA-graph switch; only ``False`` is accepted (a\n"
                  "      jitted step keeps its state on the device already).",
    "differentiable": "torch's autograd switch; only ``False`` is accepted\n"
                      "      (every gradtx step is a pure function that "
                      "``jax.grad``\n      differentiates).",
    "fused": "torch's implementation switch; only ``None`` is accepted (XLA\n"
             "      fuses each step).",
}


def _documents_switches(preset):
  """Appends to ``preset``'s Args section the entries of the torch switches
  it takes (``foreach``, ``maximize``, ...), in its signature's order.

  The API reference renders this runtime docstring (docs/griffe_gradtx.py).
  """
  names = [n for n in base.signature(preset).parameters
           if n in _SWITCH_DOCS]
  doc = preset.__doc__
  end = doc.index("\n\n  Returns:")
  preset.__doc__ = doc[:end] + "".join(
      f"\n    {n}: {_SWITCH_DOCS[n]}" for n in names) + doc[end:]
  return preset


# --------------------------------------------------------------------------
# SGD


@_documents_switches
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


@_documents_switches
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


@_documents_switches
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


@_documents_switches
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


@_documents_switches
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
    rate = lambda count: V.at(lr, count) * decay(count)
  else:
    rate = gradtx.inverse_time_decay(lr, lr_decay)
  return _chain(
      _maximize(maximize), _l2(weight_decay),
      [gradtx.scale_by_rss(initial_accumulator_value, eps,
                           eps_in_sqrt=False)],
      [gradtx.scale_by_learning_rate(rate)])


@_documents_switches
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


@_documents_switches
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


@_documents_switches
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


@_documents_switches
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


@_documents_switches
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

  Args:
    lr: the initial step size of every entry; a number (not a schedule: it
      is a starting value, not a rate).
    etas: ``(etaminus, etaplus)``, the factors that shrink (``0 < etaminus
      < 1``) and grow (``etaplus > 1``) each step size when the gradient's
      sign flips or stays.
    step_sizes: ``(min, max)``, the bounds of each entry's step size.

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
  if not num.is_concrete_number(lr):
    raise ValueError(
        f"{fn}: lr is Rprop's initial step size and must be a number, got "
        f"lr={lr!r}; Rprop adapts its step sizes itself.")
  V.check_learning_rate(fn, lr, arg="lr")
  eta_minus, eta_plus = _check_pair(fn, "etas", etas, "(etaminus, etaplus)")
  smin, smax = _check_pair(fn, "step_sizes", step_sizes,
                           "(min_step_size, max_step_size)")
  for arg, value in (("etas[0]", eta_minus), ("etas[1]", eta_plus),
                     ("step_sizes[0]", smin), ("step_sizes[1]", smax)):
    if not num.is_concrete_number(value):
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
