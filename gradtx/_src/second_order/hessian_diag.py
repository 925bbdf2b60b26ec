"""Diagonal curvature: unbiased estimates of the diagonal of the Hessian
(Hutchinson's) or of the Gauss-Newton matrix (from sampled output
gradients), and the preconditioner built on them. :func:`gradtx.scale_by_vsgd`
reads the same estimators through :func:`diagonal_curvature`."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._src import adding
from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import linesearch as L
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V
from gradtx._src.second_order import curvature as C
from gradtx._src.second_order import natural_gradient as NG
from gradtx._src.second_order import newton as N

__all__ = ["ScaleByHessianDiagState", "scale_by_hessian_diag"]


ESTIMATORS = ("hutchinson", "gauss_newton")


def check_estimator(fn: str, estimator: Any, loss: Any,
                    num_samples: Any) -> None:
  """Validates the estimator arguments at construction (shared by every
  transform that reads :func:`diagonal_curvature`)."""
  if estimator not in ESTIMATORS:
    raise ValueError(
        f"{fn}: estimator must be one of {ESTIMATORS}, got "
        f"estimator={estimator!r}: 'hutchinson' estimates the Hessian's "
        f"diagonal of value_fn, 'gauss_newton' the Gauss-Newton diagonal of "
        f"output_fn's outputs under loss.")
  if estimator == "gauss_newton":
    if loss is None:
      raise ValueError(
          f"{fn}: estimator='gauss_newton' needs the loss of the outputs, "
          f"whose output Hessian it samples: loss='squared' (output_fn "
          f"returns residuals r, loss |r|^2 / 2) or "
          f"loss='softmax_cross_entropy' (output_fn returns logits).")
    NG.check_loss(fn, loss)
  elif loss is not None:
    raise ValueError(
        f"{fn}: loss={loss!r} is read by estimator='gauss_newton' only; "
        f"estimator='hutchinson' takes the Hessian of value_fn itself. Drop "
        f"loss, or pass estimator='gauss_newton' and output_fn to update.")
  V.check_int(fn, "num_samples", num_samples, 1,
              " (probe vectors per update)")


def _rademacher_like(key: jax.Array, tree: Any) -> Any:
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(key, max(treedef.num_leaves, 1))
  return jax.tree.unflatten(treedef, [
      C._like_leaf(jax.random.rademacher(k, jnp.shape(x)).astype(
          jnp.asarray(x).dtype), x)
      for x, k in zip(leaves, keys)])


def _output_hessian_sample(key: jax.Array, loss: str, out: jax.Array,
                           ) -> jax.Array:
  r"""A sample :math:`z` with :math:`\mathbb{E}[z z^\top] = H_L`, the
  Hessian of the loss in the outputs ``out``.

  ``"squared"`` (:math:`\tfrac12\|r\|^2`, :math:`H_L = I`): Rademacher
  entries. ``"softmax_cross_entropy"`` (logits, the first axis the batch
  of :math:`B`, the mean loss): per example :math:`z = (e_y - p) /
  \sqrt{B}` with the label :math:`y` drawn from the model's predictive
  distribution :math:`p = \mathrm{softmax}`, whose covariance is
  :math:`(\mathrm{diag}\, p - p p^\top) / B`, the output Hessian (and
  Fisher) that :func:`gradtx.scale_by_natural_gradient` multiplies by.
  """
  if loss == "squared":
    return jax.random.rademacher(key, jnp.shape(out)).astype(out.dtype)
  logits = out.astype(jnp.promote_types(out.dtype, jnp.float32))
  batch = out.shape[0] if out.ndim > 1 else 1
  probs = jax.nn.softmax(logits, axis=-1)
  labels = jax.random.categorical(key, logits, axis=-1)
  onehot = jax.nn.one_hot(labels, out.shape[-1], dtype=probs.dtype)
  return ((onehot - probs) / jnp.sqrt(batch)).astype(out.dtype)


def diagonal_curvature(fn: str, estimator: str, loss: Any, num_samples: int,
                       key: jax.Array, params: Any, extra_args: dict) -> Any:
  r"""An unbiased estimate of a curvature matrix's diagonal, a tree like
  ``params``, averaged over ``num_samples`` probes drawn with ``key``.

  * ``"hutchinson"``: :math:`z \odot \nabla^2 f\, z` with Rademacher
    :math:`z`, :math:`\mathbb{E} = \mathrm{diag}(\nabla^2 f)`; one
    Hessian-vector product (``jax.jvp`` of ``jax.grad``) per probe, ``f``
    read from ``extra_args`` (``value_fn`` and its data). Signed where the
    Hessian is indefinite.
  * ``"gauss_newton"``: :math:`(J^\top z)^2` with :math:`z` a sample of
    covariance :math:`H_L` (:func:`_output_hessian_sample`), :math:`J` the
    Jacobian of the outputs: :math:`\mathbb{E}[(J^\top z)^2] =
    \mathrm{diag}(J^\top \mathbb{E}[z z^\top] J) = \mathrm{diag}(J^\top
    H_L J)`, the generalised Gauss-Newton diagonal (Martens, JMLR 2020);
    one vector-Jacobian product per probe, the outputs read from
    ``extra_args`` (``output_fn`` and its data). Never negative.
  """
  keys = jax.random.split(key, num_samples)
  if estimator == "hutchinson":
    f = N.objective(fn, params, extra_args.get("value_fn"),
                    N._extra_without_objective(
                        {k: v for k, v in extra_args.items()
                         if k != "value_fn"}))
    grad = jax.grad(f)

    def probe(k):
      z = _rademacher_like(k, params)
      hz = jax.jvp(grad, (params,), (z,))[1]
      return jax.tree.map(lambda a, b: a * b.astype(a.dtype), z, hz)
  else:
    z_fn = NG.output_function(fn, params, extra_args.get("output_fn"),
                      {k: v for k, v in extra_args.items()
                       if k != "output_fn"})
    outputs, vjp_fn = jax.vjp(z_fn, params)

    def probe(k):
      leaves, treedef = jax.tree.flatten(outputs)
      ks = jax.random.split(k, max(len(leaves), 1))
      # Each sample lives where its output does (a cotangent must have its
      # output's sharding).
      z = jax.tree.unflatten(treedef, [
          C._like_leaf(_output_hessian_sample(ki, loss, jnp.asarray(o)), o)
          for o, ki in zip(leaves, ks)])
      jz = L._like_params(vjp_fn(z)[0], params)
      return jax.tree.map(lambda a: a * a, jz)

  estimates = [probe(k) for k in keys]
  if num_samples == 1:
    return estimates[0]
  return jax.tree.map(lambda *xs: sum(xs[1:], xs[0]) / num_samples,
                      *estimates)


class ScaleByHessianDiagState(NamedTuple):
  r"""The state of :func:`scale_by_hessian_diag`.

  Attributes:
    count: ``update`` calls so far (int32, saturating).
    rng_key: the PRNG key of the next probe vectors.
    nu: the moving average of the squared estimates
      :math:`(z \odot \nabla^2 f\, z)^2`, a tree like the params (in at
      least float32).
  """
  count: jax.Array
  rng_key: jax.Array
  nu: Any


def scale_by_hessian_diag(b2: Any = 0.9, eps: Any = 1e-8,
                          key: Any = None, estimator: str = "hutchinson",
                          loss: Any = None, num_samples: int = 1,
                          ) -> base.GradientTransformation:
  r"""Divides the updates by an estimate of a curvature matrix's diagonal.

  Two unbiased estimators of the diagonal :math:`D`, chosen by
  ``estimator``:

  * ``"hutchinson"`` (the Hessian of the objective): Hutchinson's probe
    (Comm. Stat. 1990; Bekas, Kokiopoulou & Saad 2007), one
    Hessian-vector product with a Rademacher :math:`z` (entries
    :math:`\pm 1`), :math:`\mathbb{E}[z \odot \nabla^2 f\, z] =
    \mathrm{diag}(\nabla^2 f)`. ``update`` reads the objective as
    :func:`scale_by_newton_cg` does (``value_fn`` and its data).
  * ``"gauss_newton"`` (the generalised Gauss-Newton matrix :math:`G =
    J^\top H_L J` of a loss :math:`L` of the model's outputs, :math:`J`
    their Jacobian, :math:`H_L` the loss's Hessian in them):
    :math:`\mathbb{E}[(J^\top z)^2] = \mathrm{diag}(J^\top \mathbb{E}[z
    z^\top] J) = \mathrm{diag}(G)` for any :math:`z` with covariance
    :math:`H_L`, one vector-Jacobian product per sample: Rademacher
    :math:`z` for ``loss="squared"`` (:math:`H_L = I`), and for
    ``loss="softmax_cross_entropy"`` :math:`z = e_y - p` with the label
    :math:`y` drawn from the model's own predictive distribution :math:`p`
    (covariance :math:`\mathrm{diag}\, p - p p^\top`, per example over
    a batch of :math:`B`, divided by :math:`\sqrt B`): the Monte-Carlo
    Fisher, equal to the GGN for this loss (Martens, *New insights and
    perspectives on the natural gradient method*, JMLR 2020; Martens,
    Sutskever & Swersky, ICML 2012, curvature propagation). ``update``
    reads the outputs as :func:`scale_by_natural_gradient` does
    (``output_fn`` and its data). The estimate is never negative and has
    no Hessian-vector product: it is cheaper, and the natural choice for
    non-convex models, where :math:`G` is positive semi-definite and the
    Hessian is not.

  The squares of the estimates are averaged over steps, as in AdaHessian
  (Yao et al., AAAI 2021), and the output is

  .. math::
     u = \frac{g}{\sqrt{\hat\nu_t} + \epsilon},\qquad
     \nu_t = \beta_2 \nu_{t-1} + (1 - \beta_2)\, \hat D_t^2,
     \quad \hat\nu_t = \nu_t / (1 - \beta_2^t),

  with :math:`\hat D_t` the mean of ``num_samples`` probes: a diagonal
  Newton step (Becker & LeCun 1988), which is unitless in the sense of
  the lecture notes: chain a negative learning rate of about 1 after it.
  The absolute value of the curvature (through the square) keeps it a
  descent direction where the Hessian is indefinite. ``updates`` is the
  gradient at ``params``.

  Args:
    b2: :math:`\beta_2 \in [0, 1)`, the weight of past estimates.
    eps: :math:`\epsilon > 0`, added to the root.
    key: a PRNG key (``jax.random.key(seed)``) or an int seed for the
      probes. Required.
    estimator: ``"hutchinson"`` (reads ``value_fn``) or
      ``"gauss_newton"`` (reads ``output_fn``), as above.
    loss: with ``estimator="gauss_newton"``, the loss of the outputs:
      ``"squared"`` (``output_fn`` returns residuals :math:`r`, loss
      :math:`\tfrac12\|r\|^2`) or ``"softmax_cross_entropy"``
      (``output_fn`` returns logits, batch first, classes last; the mean
      over the batch). Must be ``None`` for ``"hutchinson"``.
    num_samples: probes per ``update``, averaged (fewer noisy steps for
      more products).

  Example:
    >>> import gradtx, jax, jax.numpy as jnp
    >>> f = lambda w: 0.5 * jnp.sum(jnp.array([1.0, 100.0]) * w ** 2)
    >>> tx = gradtx.chain(gradtx.scale_by_hessian_diag(b2=0.0, key=0),
    ...                   gradtx.scale(-1.0))
    >>> w = jnp.array([1.0, 1.0])
    >>> u, _ = tx.update(jax.grad(f)(w), tx.init(w), w, value_fn=f)
    >>> print(gradtx.apply_updates(w, u))   # the diagonal Newton step
    [0. 0.]
    >>> # The Gauss-Newton diagonal of residuals r(w) = a * w:
    >>> tx = gradtx.scale_by_hessian_diag(b2=0.0, key=0,
    ...                                   estimator="gauss_newton",
    ...                                   loss="squared")
    >>> r = lambda w: jnp.array([1.0, 10.0]) * w
    >>> u, _ = tx.update(w, tx.init(w), w, output_fn=r)
    >>> print(jnp.round(u * 100.0, 4))      # g / diag(J^T J)
    [100.   1.]
  """
  fn = "scale_by_hessian_diag"
  V.check_decay(fn, "b2", b2)
  V.check_positive(fn, "eps", eps)
  check_estimator(fn, estimator, loss, num_samples)
  key = adding._as_key(fn, key)

  def init_fn(params):
    C.real_leaves(fn, params)
    return ScaleByHessianDiagState(count=num.zero_count(),
                                   rng_key=jax.random.clone(key),
                                   nu=T.tree_zeros_like(
                                       params, L._scalar_dtype(fn, params)))

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG.format(name=fn))
    C.real_leaves(fn, updates, "update")
    LW.check_updates_match_params(fn, updates, params)
    rng_key, probe_key = jax.random.split(state.rng_key)
    diag = diagonal_curvature(fn, estimator, loss, num_samples, probe_key,
                              params, extra_args)
    count = num.safe_increment(state.count)
    correction = num.one_minus_pow(b2, count)

    def leaf(g, d, nu):
      est = d.astype(nu.dtype)
      nu = T.like(b2, nu) * nu + T.like(1 - b2, nu) * est * est
      nu_hat = nu / T.like(correction, nu)
      # In the moments' dtype (at least float32): a bfloat16 bias
      # correction would be off by its rounding, enough to overflow g.
      u = g.astype(nu.dtype) / (jnp.sqrt(nu_hat) + T.like(eps, nu))
      return u.astype(g.dtype), nu

    out, nu = LW.leafwise(leaf, 2, updates, diag, state.nu, name=fn)
    return out, ScaleByHessianDiagState(count=count, rng_key=rng_key, nu=nu)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
