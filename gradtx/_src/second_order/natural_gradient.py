"""Natural gradient: the Fisher (generalised Gauss-Newton) matrix of a
model's outputs, applied by Jacobian-vector products and inverted by
conjugate gradients (Martens' Hessian-free style)."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import combining
from gradtx._src import leafwise as LW
from gradtx._src import linesearch as L
from gradtx._src import numerics as num
from gradtx._src import scaling
from gradtx._src import tree_utils as T
from gradtx._src import validation as V
from gradtx._src.second_order import curvature as C

__all__ = ["ScaleByNaturalGradientState", "natural_gradient",
           "scale_by_natural_gradient"]

_LOSSES = ("softmax_cross_entropy", "squared")

_NEEDS_OUTPUTS = (
    "{name}: update needs the model's outputs: update(updates, state, "
    "params, output_fn=lambda p: model(p, batch), **data), with updates the "
    "gradient of the loss of those outputs; got output_fn={output_fn!r}.")


def output_function(name: str, params: Any, output_fn: Any,
            extra_args: dict) -> Any:
  """``params -> output_fn(params, **data)`` from the keyword arguments of
  ``update``, after checking they are there (the transforms that read a
  model's outputs: this one and the Gauss-Newton diagonal of
  :func:`gradtx.scale_by_hessian_diag`)."""
  if params is None:
    raise ValueError(base.NO_PARAMS_MSG.format(name=name))
  if not callable(output_fn):
    raise TypeError(_NEEDS_OUTPUTS.format(name=name, output_fn=output_fn))
  kw = L._objective_kwargs(name, output_fn, strict=False, extra_args={
      k: v for k, v in extra_args.items()
      if k not in ("value", "grad", "value_fn")})
  return lambda p: output_fn(p, **kw)


def check_loss(name: str, loss: Any) -> None:
  """Raises ``ValueError`` unless ``loss`` names an output loss gradtx
  knows the curvature of."""
  if loss not in _LOSSES:
    raise ValueError(
        f"{name}: loss must be one of {_LOSSES}, got loss={loss!r}: "
        f"'softmax_cross_entropy' when output_fn returns logits (batch "
        f"first, classes last), 'squared' when it returns residuals r with "
        f"loss |r|^2 / 2.")


class ScaleByNaturalGradientState(NamedTuple):
  """The state of :func:`scale_by_natural_gradient`.

  Attributes:
    num_cg_steps: conjugate-gradient iterations of the last ``update``
      (each one Jacobian-vector product and one vector-Jacobian product).
  """
  num_cg_steps: jax.Array


def _output_curvature(loss, outputs):
  """``v -> H_out v``: the Hessian of the loss in the outputs (the Fisher of
  the predictive distribution for softmax cross-entropy), averaged over
  the leading (batch) axis."""
  if loss == "squared":
    return lambda v: v
  probs = jax.nn.softmax(outputs, axis=-1)
  batch = outputs.shape[0] if outputs.ndim > 1 else 1

  def apply(v):
    pv = jnp.sum(probs * v, axis=-1, keepdims=True)
    return probs * (v - pv) / batch
  return apply


def scale_by_natural_gradient(damping: Any = 1e-3, max_cg_steps: int = 10,
                              loss: str = "softmax_cross_entropy",
                              ) -> base.GradientTransformation:
  r"""Scales the updates by the inverse of the damped Fisher matrix.

  With :math:`J` the Jacobian of the model's outputs :math:`z(w)` (logits)
  in the params and :math:`H_z` the Hessian of the loss in the outputs,
  the generalised Gauss-Newton matrix :math:`G = J^\top H_z J` is, for
  softmax cross-entropy, the Fisher information of the model's predictive
  distribution (:math:`H_z = \mathrm{diag}(p) - p p^\top` per example,
  averaged over the batch; Amari, Neural Computation 1998; Martens,
  *New insights and perspectives on the natural gradient method*, JMLR
  2020), and for ``loss="squared"`` the Gauss-Newton matrix :math:`J^\top
  J`. The output is

  .. math::
     d \approx (G + \lambda I)^{-1} g

  by ``max_cg_steps`` iterations of conjugate gradients from 0, each
  multiplying by :math:`G` through one ``jax.jvp`` and one ``jax.vjp`` of
  the model (no matrix is formed; Schraudolph, Neural Computation 2002;
  Martens, ICML 2010), :math:`\lambda` = ``damping``. :math:`G` is
  positive semi-definite, so CG is well posed and :math:`d` is a descent
  direction for any :math:`\lambda > 0`.

  ``update(updates, state, params, output_fn=z)`` reads the model's
  outputs as a function of the params (``output_fn(params, **data)``, the
  mini-batch bound in or passed as data); ``updates`` is the gradient of
  the loss. Chain a learning rate after it, as :func:`natural_gradient`
  does.

  Args:
    damping: :math:`\lambda > 0`.
    max_cg_steps: conjugate-gradient iterations per call.
    loss: ``"softmax_cross_entropy"`` (outputs are logits, the last axis
      the classes, the first the batch) or ``"squared"``.

  Example:
    >>> import gradtx, jax, jax.numpy as jnp
    >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> labels = jnp.array([0, 1, 1])
    >>> logits = lambda w: x @ w
    >>> def loss(w):
    ...   return -jnp.mean(jnp.take_along_axis(
    ...       jax.nn.log_softmax(logits(w)), labels[:, None], axis=1))
    >>> tx = gradtx.natural_gradient(1.0)
    >>> @jax.jit
    ... def step(w, state):
    ...   u, state = tx.update(jax.grad(loss)(w), state, w, output_fn=logits)
    ...   return gradtx.apply_updates(w, u), state
    >>> w = jnp.zeros((2, 2))
    >>> state = tx.init(w)
    >>> for _ in range(5):
    ...   w, state = step(w, state)
    >>> print(float(loss(w)) < 0.05)
    True
  """
  fn = "scale_by_natural_gradient"
  V.check_positive(fn, "damping", damping)
  V.check_int(fn, "max_cg_steps", max_cg_steps, 1)
  check_loss(fn, loss)

  def init_fn(params):
    C.real_leaves(fn, params)
    return ScaleByNaturalGradientState(num_cg_steps=num.zero_count())

  def update_fn(updates, state, params=None, *, output_fn=None,
                **extra_args):
    del state
    z = output_function(fn, params, output_fn, extra_args)
    C.real_leaves(fn, updates, "update")
    LW.check_updates_match_params(fn, updates, params)
    dtype = L._scalar_dtype(fn, params)
    outputs, jvp_fn = jax.linearize(z, params)
    _, vjp_fn = jax.vjp(z, params)
    curvature = jax.tree.map(
        lambda o: _output_curvature(loss, o), outputs)
    lam = jnp.asarray(damping).astype(dtype)

    def gvp(v):
      jv = jvp_fn(v)
      hjv = jax.tree.map(lambda c, x: c(x), curvature, jv)
      out = L._like_params(vjp_fn(hjv)[0], params)
      return L._axpy(lam, v, out)

    # CG is linear in g: run it on g / max|g| so that its dot products stay
    # in range for gradients up to the dtype's max, and scale back.
    g_scale = jnp.max(jnp.stack([jnp.max(jnp.abs(x)).astype(dtype)
                                 for x in jax.tree.leaves(updates)]))
    g_scale = jnp.where((g_scale > 0) & jnp.isfinite(g_scale), g_scale, 1)
    g = L._like_params(L._scale_tree(1 / g_scale, updates), params)
    dot = lambda a, b: L._dot(a, b, dtype)

    def body(_, carry):
      d, r, p, rr = carry
      gp = gvp(p)
      pgp = dot(p, gp)
      alpha = jnp.where(pgp > 0, rr / jnp.where(pgp > 0, pgp, 1), 0)
      d = L._axpy(alpha, p, d)
      r_new = L._axpy(-alpha, gp, r)
      rr_new = dot(r_new, r_new)
      beta = jnp.where(rr > 0, rr_new / jnp.where(rr > 0, rr, 1), 0)
      return d, r_new, L._axpy(beta, p, r_new), rr_new

    carry = (T.tree_zeros_like(g), g, g, dot(g, g))
    d, _, _, _ = jax.lax.fori_loop(0, max_cg_steps, body, carry)
    d = jax.tree.map(lambda x: jnp.where(jnp.isfinite(dot(g, g)), x, jnp.nan),
                     d)
    d = LW.leafwise(lambda u: (u * g_scale.astype(u.dtype),), 1, d,
                   name=fn)[0]
    return d, ScaleByNaturalGradientState(
        num_cg_steps=jnp.full([], max_cg_steps, jnp.int32))

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)


def natural_gradient(learning_rate: base.ScalarOrSchedule,
                     damping: Any = 1e-3, max_cg_steps: int = 10,
                     loss: str = "softmax_cross_entropy",
                     ) -> base.GradientTransformation:
  r"""Natural gradient descent: ``w <- w - eta (F + lambda I)^-1 g``.

  .. math::
     w_{t+1} = w_t - \eta_t (F(w_t) + \lambda I)^{-1} \nabla L(w_t)

  with :math:`F` the Fisher information (generalised Gauss-Newton) matrix of
  the model's outputs on the current mini-batch, inverted by conjugate
  gradients (Amari, Neural Computation 1998; Martens, ICML 2010). It is
  ``chain(scale_by_natural_gradient(damping, max_cg_steps, loss),
  scale_by_learning_rate(learning_rate))``; ``update`` takes the model's
  outputs as ``output_fn`` (see :func:`scale_by_natural_gradient`).
  ``examples/natural_gradient_digits.py`` trains a Flax classifier with it.

  Args:
    learning_rate: the step size, a number or a schedule of the step count.
    damping: the Tikhonov damping :math:`\lambda > 0` added to the Fisher
      matrix.
    max_cg_steps: the conjugate-gradient iterations (Fisher-vector products) per
      step; a positive int.
    loss: ``"softmax_cross_entropy"`` (the outputs are logits, the last axis the
      classes, the first the batch) or ``"squared"`` (the Gauss-Newton matrix of
      a squared error).

  Example:
    >>> import gradtx, jax, jax.numpy as jnp
    >>> tx = gradtx.natural_gradient(1.0, damping=1e-2)
    >>> w = jnp.zeros(2)
    >>> outputs = lambda w: w[None, :]          # logits of one example
    >>> g = jnp.array([0.5, -0.5])              # label 1, uniform start
    >>> u, _ = tx.update(g, tx.init(w), w, output_fn=outputs)
    >>> print(jnp.round(u, 3))
    [-0.98  0.98]
  """
  fn = "natural_gradient"
  V.check_learning_rate(fn, learning_rate)
  return combining.chain(
      scale_by_natural_gradient(damping=damping, max_cg_steps=max_cg_steps,
                                loss=loss),
      scaling.scale_by_learning_rate(learning_rate))
