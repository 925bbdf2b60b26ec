"""Diagonal curvature: Hutchinson's estimate of the Hessian's diagonal, as a
preconditioner in a chain."""

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
from gradtx._src.second_order import newton as N

__all__ = ["ScaleByHessianDiagState", "scale_by_hessian_diag"]


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
                          key: Any = None) -> base.GradientTransformation:
  r"""Divides the updates by an estimate of the Hessian's diagonal.

  Hutchinson's estimator (Comm. Stat. 1990; Bekas, Kokiopoulou & Saad 2007)
  gives the diagonal from one Hessian-vector product with a Rademacher
  probe :math:`z` (entries :math:`\pm 1`):
  :math:`\mathbb{E}[z \odot \nabla^2 f\, z] = \mathrm{diag}(\nabla^2 f)`.
  Its squares are averaged over steps, as in AdaHessian (Yao et al., AAAI
  2021), and the output is

  .. math::
     u = \frac{g}{\sqrt{\hat\nu_t} + \epsilon},\qquad
     \nu_t = \beta_2 \nu_{t-1} + (1 - \beta_2) (z \odot \nabla^2 f\, z)^2,
     \quad \hat\nu_t = \nu_t / (1 - \beta_2^t),

  a diagonal Newton step (Becker & LeCun 1988), which is unitless in the
  sense of the lecture notes: chain a negative learning rate of about 1
  after it. The absolute value of the curvature (through the square) keeps
  it a descent direction where the Hessian is indefinite.

  ``update`` reads the objective as :func:`scale_by_newton_cg` does
  (``value_fn`` and its data, ``updates`` the gradient at ``params``) and
  makes one Hessian-vector product (``jax.jvp`` of ``jax.grad``) per call.

  Args:
    b2: :math:`\beta_2 \in [0, 1)`, the weight of past estimates.
    eps: :math:`\epsilon > 0`, added to the root.
    key: a PRNG key (``jax.random.key(seed)``) or an int seed for the
      probes. Required.

  Example:
    >>> import gradtx, jax, jax.numpy as jnp
    >>> f = lambda w: 0.5 * jnp.sum(jnp.array([1.0, 100.0]) * w ** 2)
    >>> tx = gradtx.chain(gradtx.scale_by_hessian_diag(b2=0.0, key=0),
    ...                   gradtx.scale(-1.0))
    >>> w = jnp.array([1.0, 1.0])
    >>> u, _ = tx.update(jax.grad(f)(w), tx.init(w), w, value_fn=f)
    >>> print(gradtx.apply_updates(w, u))   # the diagonal Newton step
    [0. 0.]
  """
  fn = "scale_by_hessian_diag"
  V.check_decay(fn, "b2", b2)
  V.check_positive(fn, "eps", eps)
  key = adding._as_key(fn, key)

  def init_fn(params):
    C.real_leaves(fn, params)
    return ScaleByHessianDiagState(count=num.zero_count(),
                                   rng_key=jax.random.clone(key),
                                   nu=T.tree_zeros_like(
                                       params, L._scalar_dtype(fn, params)))

  def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
    f = N.objective(fn, params, value_fn,
                    N._extra_without_objective(extra_args))
    C.real_leaves(fn, updates, "update")
    LW.check_updates_match_params(fn, updates, params)
    rng_key, probe_key = jax.random.split(state.rng_key)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(probe_key, treedef.num_leaves)
    z = jax.tree.unflatten(treedef, [
        jax.random.rademacher(k, jnp.shape(p)).astype(jnp.asarray(p).dtype)
        for p, k in zip(leaves, keys)])
    hz = jax.jvp(jax.grad(f), (params,), (z,))[1]
    count = num.safe_increment(state.count)
    correction = num.one_minus_pow(b2, count)

    def leaf(g, zi, hzi, nu):
      est = (zi * hzi.astype(zi.dtype)).astype(nu.dtype)
      nu = T.like(b2, nu) * nu + T.like(1 - b2, nu) * est * est
      nu_hat = nu / T.like(correction, nu)
      # In the moments' dtype (at least float32): a bfloat16 bias
      # correction would be off by its rounding, enough to overflow g.
      u = g.astype(nu.dtype) / (jnp.sqrt(nu_hat) + T.like(eps, nu))
      return u.astype(g.dtype), nu

    out, nu = LW.leafwise(leaf, 2, updates, z, hz, state.nu, name=fn)
    return out, ScaleByHessianDiagState(count=count, rng_key=rng_key, nu=nu)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
