"""The LR range test on a small model."""

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def _loss(p, b):
  return jnp.mean((b[0] @ p["w"] - b[1]) ** 2)


@functools.cache
def _data(seed=0, n=256, d=8):
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  x = jax.random.normal(k1, (n, d))
  w_true = jax.random.normal(k2, (d,))
  return x, x @ w_true + 0.01 * jax.random.normal(k3, (n,))


def _problem():
  x, y = _data()
  batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, len(x), 32)]
  return _loss, {"w": jnp.zeros(x.shape[1])}, batches


@jax.jit
def _sgd_loss_after(lr, params, xs, ys, full):
  """The loss on ``full`` after one SGD step per batch of ``xs, ys``."""
  tx = gradtx.sgd(lr)

  def step(carry, batch):
    p, s = carry
    u, s = tx.update(jax.grad(_loss)(p, batch), s)
    return (gradtx.apply_updates(p, u), s), None

  (p, _), _ = jax.lax.scan(step, (params, tx.init(params)), (xs, ys))
  return _loss(p, full)


def test_suggestion_lies_where_the_loss_falls_fastest_and_it_stops_on_divergence():
  loss, params, batches = _problem()
  result = gradtx.lr_find(loss, params, itertools.cycle(batches), gradtx.sgd,
                          min_lr=1e-4, max_lr=10.0, num_steps=120)
  assert result.stopped_early and "diverged" in result.reason
  assert len(result.losses) < 120
  lrs, sm = result.learning_rates, result.smoothed_losses
  # Independently: the slope of the smoothed loss against log(lr).
  slope = np.gradient(sm, np.log(lrs))
  i = int(np.searchsorted(lrs, result.suggestion))
  assert slope[i] < 0, "the loss must be falling at the suggestion"
  assert slope[i] <= np.quantile(slope, 0.2), "among the steepest fifth"
  assert result.suggestion < lrs[int(np.argmin(sm))]
  # And the suggestion actually trains: 30 SGD steps cut the loss 10-fold.
  xs, ys = (jnp.stack([b[i] for b in itertools.islice(
      itertools.cycle(batches), 30)]) for i in (0, 1))
  full = _data()
  assert (float(_sgd_loss_after(result.suggestion, params, xs, ys, full))
          < 0.1 * float(loss(params, full)))


def test_stops_on_nan_and_when_batches_run_out():
  loss, params, batches = _problem()
  r = gradtx.lr_find(loss, params, batches, gradtx.adam, num_steps=50)
  assert not r.stopped_early and "ran out after 8" in r.reason
  assert len(r.losses) == 8 and r.suggestion is not None

  nan_loss = lambda p, b: jnp.where(jnp.sum(p["w"] ** 2) > 1.0, jnp.nan,
                                    loss(p, b))
  r = gradtx.lr_find(nan_loss, params, itertools.cycle(batches), gradtx.sgd,
                     min_lr=1e-3, max_lr=100.0, num_steps=100)
  assert r.stopped_early and "nan" in r.reason


def test_compiles_once_for_the_whole_sweep(monkeypatch):
  loss, params, batches = _problem()
  traces = []

  def counting_loss(p, b):
    traces.append(1)
    return loss(p, b)

  gradtx.lr_find(counting_loss, params, itertools.cycle(batches),
                 lambda lr: gradtx.sgd(lr, momentum=0.9), num_steps=30,
                 min_lr=1e-5, max_lr=1e-2)
  assert len(traces) == 1


def test_on_step_reports_every_step_as_it_happens():
  loss, params, batches = _problem()
  seen = []
  r = gradtx.lr_find(loss, params, itertools.cycle(batches), gradtx.sgd,
                     min_lr=1e-4, max_lr=10.0, num_steps=120,
                     on_step=lambda *a: seen.append(a))
  assert [s[0] for s in seen] == list(range(1, len(r.losses) + 1))
  np.testing.assert_allclose([s[1] for s in seen], r.learning_rates)
  np.testing.assert_allclose([s[2] for s in seen], r.losses)


def test_plot_has_log_axes_clips_spikes_and_marks_the_suggestion(tmp_path):
  pytest.importorskip("matplotlib")
  loss, params, batches = _problem()
  r = gradtx.lr_find(loss, params, itertools.cycle(batches), gradtx.sgd,
                     min_lr=1e-4, max_lr=10.0, num_steps=60)
  # A spike 50 times the starting loss, as the end of a sweep often has.
  losses = r.losses.copy()
  losses[-3] = 50 * r.smoothed_losses.max()
  spiky = dataclasses.replace(r, losses=losses)
  path = tmp_path / "lr_find.png"
  fig = spiky.plot(str(path))
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  ax = fig.axes[0]
  assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
  lo, hi = ax.get_ylim()
  assert hi < 2 * r.smoothed_losses.max() < losses[-3]
  assert lo <= r.losses.min()
  raw, smooth, mark = ax.get_lines()[0], ax.get_lines()[1], ax.get_lines()[-1]
  assert max(raw.get_ydata()) <= hi  # the spike drawn at the top edge
  np.testing.assert_allclose(smooth.get_ydata(), r.smoothed_losses)
  assert mark.get_xdata()[0] == pytest.approx(r.suggestion)
  labels = [t.get_text() for t in ax.get_legend().get_texts()]
  assert labels[1] == "smoothed loss" and labels[2].startswith("suggestion")


@pytest.mark.parametrize("kw,match", [
    (dict(min_lr=0.0), "min_lr"), (dict(min_lr=1.0, max_lr=0.5), "max_lr"),
    (dict(num_steps=1), "num_steps"), (dict(smoothing=1.0), "smoothing"),
    (dict(diverge_threshold=1.0), "diverge_threshold")])
def test_bad_arguments(kw, match):
  loss, params, batches = _problem()
  with pytest.raises(ValueError, match=match):
    gradtx.lr_find(loss, params, batches, gradtx.sgd, **kw)
