"""SWATS: switching from Adam to SGD (Keskar & Socher, 2017)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._src import base
from gradtx._src import leafwise as LW
from gradtx._src import numerics as num
from gradtx._src import tree_utils as T
from gradtx._src import validation as V


class SwatsState(NamedTuple):
  r"""SWATS's state.

  Attributes:
    count: steps taken.
    mu: Adam's first moment; after the switch, the SGD momentum buffer (the
      same memory: Adam's ``m`` is not needed once the switch is made).
    nu: Adam's second moment :math:`a_k` (frozen after the switch).
    lam: the running average :math:`\lambda` of the projected rates.
    sgd_lr: the SGD learning rate :math:`\Lambda` chosen at the switch (0
      before it).
    switched: a bool, True once SGD has taken over.
    switch_step: the step at which it switched (0 before it).

  With ``per_leaf=True``, ``lam``, ``sgd_lr``, ``switched`` and
  ``switch_step`` are trees of scalars, one per leaf.
  """
  count: jax.Array
  mu: Any
  nu: Any
  lam: Any
  sgd_lr: Any
  switched: Any
  switch_step: Any


def swats(learning_rate: base.ScalarOrSchedule, b1: Any = 0.9,
          b2: Any = 0.999, eps: Any = 1e-9, *, per_leaf: bool = False,
          switch_rtol: Any = None, min_adam_steps: int = 2,
          ) -> base.GradientTransformation:
  r"""SWATS: Adam until a projected SGD rate settles, then SGD (momentum).

  Keskar & Socher, "Improving generalization performance by switching from
  Adam to SGD" (2017), Algorithm 1. While in the Adam phase, with
  :math:`p_k` Adam's step:

  .. math::
     p_k = -\alpha_k \frac{\sqrt{1-\beta_2^k}}{1-\beta_1^k}
           \frac{m_k}{\sqrt{a_k} + \epsilon},\quad
     \gamma_k = \frac{p_k^\top p_k}{-p_k^\top g_k},\quad
     \lambda_k = \beta_2 \lambda_{k-1} + (1-\beta_2)\gamma_k

  and once :math:`k > 1` and
  :math:`|\lambda_k/(1-\beta_2^k) - \gamma_k| < \epsilon` the optimizer
  switches, for good, to SGD with momentum at
  :math:`\Lambda = \lambda_k/(1-\beta_2^k)`:

  .. math::
     v_k = \beta_1 v_{k-1} + g_k,\qquad w_k = w_{k-1} - (1-\beta_1)\Lambda v_k

  The switch happens inside ``jit`` (a ``jnp.where``, no Python branch). The
  state exposes ``switched``, ``switch_step`` and ``sgd_lr`` for logging.
  ``eps`` is both Adam's and the switch tolerance, as in the paper.

  A switch that fires in practice: the paper's test compares an absolute gap
  with ``eps`` (1e-9), while the projected rates are of the order of the
  learning rate times a quarter or more. In the first steps Adam's steps
  are all alike, :math:`\gamma_k` barely moves and the gap is tiny (a larger
  ``eps`` switches within a few steps, to a rate that only fits the start);
  later the rate grows and wanders with the gradient noise, and a gap below
  1e-9 may never come (on a 20-dimensional quadratic, with and without
  noise, none in 3000 steps at learning rates 1e-2 and 1e-3).
  ``switch_rtol`` replaces the test by a relative one, and
  ``min_adam_steps`` sets the first step at which it may fire:

  .. math::
     k \ge k_{min} \quad\text{and}\quad
     |\lambda_k/(1-\beta_2^k) - \gamma_k| < \rho\,\lambda_k/(1-\beta_2^k)

  (:math:`\rho` = ``switch_rtol``: the projected rate agrees with its
  average to within a fraction :math:`\rho`, and the average is positive,
  so SGD never gets a negative rate). ``switch_rtol=0.05`` with
  ``min_adam_steps`` around a tenth of the run (or an epoch) lets Adam
  make its fast start, then switches once the rate has stopped growing: on
  that quadratic with gradient noise 0.1, learning rate 1e-2 and
  ``min_adam_steps=100``, after about 210 steps, and SGD then brings the
  loss below Adam's noise floor. The defaults (``switch_rtol=None``,
  ``min_adam_steps=2``) are the paper's rule.

  Global or per leaf: by default (``per_leaf=False``) the projections are
  dot products over the whole tree and the whole model switches at once.
  ``per_leaf=True`` does it per leaf (per tensor), each with its own
  :math:`\Lambda`, as the authors' PyTorch code does per parameter group.

  Args:
    learning_rate: Adam's step size :math:`\alpha` (a number or a schedule).
    b1: Adam's first-moment decay rate, in [0, 1); also the momentum of
      the SGD phase.
    b2: Adam's second-moment decay rate, in [0, 1); also the decay of
      :math:`\lambda`, the average of the projected rate.
    eps: Adam's epsilon and, when ``switch_rtol`` is None, the paper's
      absolute switch tolerance.
    per_leaf: switch each leaf on its own (see above).
    switch_rtol: None for the paper's test; a number in (0, 1) for the
      relative test above.
    min_adam_steps: the first step at which the switch may happen (at
      least 2: at step 1 the average equals :math:`\gamma_1` by
      construction).

  Example:
    >>> import gradtx, jax.numpy as jnp
    >>> tx = gradtx.swats(1e-3)
    >>> state = tx.init({"w": jnp.ones(2)})
    >>> bool(state.switched)
    False
  """
  fn = "swats"
  V.check_learning_rate(fn, learning_rate)
  V.check_decay(fn, "b1", b1)
  V.check_decay(fn, "b2", b2)
  V.check_nonnegative(fn, "eps", eps)
  if switch_rtol is not None:
    V.check_interval(
        fn, "switch_rtol", switch_rtol, 0.0, 1.0, lo_closed=False,
        hint="It is the relative gap allowed between the projected SGD rate "
        "and its running average, e.g. 0.05; None keeps the paper's absolute "
        "test with eps.")
  V.check_int(fn, "min_adam_steps", min_adam_steps, 2,
              " (at step 1 the average equals the projected rate by "
              "construction)")

  def init_fn(params):
    scalar = lambda dtype: (T.tree_map_leaves(
        lambda p: jnp.zeros([], dtype), params) if per_leaf
        else jnp.zeros([], dtype))
    fdt = jnp.result_type(float)
    return SwatsState(count=num.zero_count(), mu=T.tree_zeros_like(params),
                      nu=T.tree_zeros_like(params), lam=scalar(fdt),
                      sgd_lr=scalar(fdt), switched=scalar(jnp.bool_),
                      switch_step=scalar(jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    V.reject_complex(
        fn, updates, "its switching test projects Adam's step on the "
        "gradient, a real dot product that has no complex form here. For "
        "complex parameters use adam, or sgd with momentum.")
    lr = V.at(learning_rate, state.count)
    k = num.safe_increment(state.count)
    bc1, bc2 = 1 - b1 ** k, 1 - b2 ** k
    step_size = lr * jnp.sqrt(bc2) / bc1

    # Adam's candidate step for every leaf (used only before the switch).
    def adam_leaf(g, m, a):
      m_new = (1 - b1) * g + b1 * m
      a_new = (1 - b2) * g * g + b2 * a
      p = -T.like(step_size, g) * m_new / (jnp.sqrt(a_new) + eps)
      return p, m_new, a_new, jnp.sum(p * g), jnp.sum(p * p)

    p, m_new, a_new, pg, pp = LW.leafwise(adam_leaf, 5, updates, state.mu,
                                         state.nu, name=fn)

    def decide(pg, pp, lam, sgd_lr, switched, switch_step):
      nonzero = pg != 0
      gamma = jnp.where(nonzero, pp / jnp.where(nonzero, -pg, 1.0), 0.0)
      lam_new = jnp.where(nonzero, b2 * lam + (1 - b2) * gamma, lam)
      cand = lam_new / bc2
      if switch_rtol is None:  # the paper's test
        close = jnp.abs(cand - gamma) < eps
      else:  # relative, and only to a positive rate
        close = jnp.abs(cand - gamma) < switch_rtol * cand
      now = (~switched) & nonzero & (k >= min_adam_steps) & close
      return (jnp.where(switched, lam, lam_new),
              jnp.where(now, cand, sgd_lr).astype(sgd_lr.dtype),
              switched | now, jnp.where(now, k, switch_step))

    if per_leaf:
      lam, sgd_lr, switched, switch_step = LW.leafwise(
          decide, 4, pg, pp, state.lam, state.sgd_lr, state.switched,
          state.switch_step, name=fn)
      just = jax.tree.map(lambda s, s0: s & ~s0, switched, state.switched)
      flags = (state.switched, just, sgd_lr)
    else:
      tot = lambda t: sum(jax.tree.leaves(t), jnp.zeros([]))
      lam, sgd_lr, switched, switch_step = decide(
          tot(pg), tot(pp), state.lam, state.sgd_lr, state.switched,
          state.switch_step)
      leaf_flag = lambda x: T.tree_map_leaves(lambda _: x, updates)
      flags = (leaf_flag(state.switched),
               leaf_flag(switched & ~state.switched), leaf_flag(sgd_lr))

    def apply_leaf(g, p, m_new, a_new, m_old, a_old, was, just, rate):
      # SGD phase: the momentum buffer lives where Adam's m was; it starts
      # from 0 at the switch (Algorithm 1 sets v = 0 when switching).
      v = jnp.where(was, b1 * m_old + g, jnp.zeros_like(g))
      sgd = -(1 - b1) * rate.astype(g.dtype) * v
      u = jnp.where(was, sgd, p)
      mu = jnp.where(was, v, jnp.where(just, jnp.zeros_like(m_new), m_new))
      nu = jnp.where(was | just, a_old, a_new)
      return u, mu, nu

    u, mu, nu = LW.leafwise(apply_leaf, 3, updates, p, m_new, a_new, state.mu,
                           state.nu, *flags, name=fn, same_shape=False)
    return u, SwatsState(count=k, mu=mu, nu=nu, lam=lam, sgd_lr=sgd_lr,
                         switched=switched, switch_step=switch_step)

  update_fn.gradtx_name = fn
  return base.GradientTransformation(init_fn, update_fn)
