"""Smoke tests: every example runs with tiny settings."""

import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load(name):
  spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_compare_prints_a_row_per_optimizer(capsys):
  mod = _load("compare")
  mod.main(["--steps", "4", "--batch", "8"])
  lines = capsys.readouterr().out.strip().splitlines()
  assert lines[0].split()[0] == "optimizer"
  assert [l.split()[0] for l in lines[1:]] == list(mod.OPTIMIZERS)


def test_compare_rejects_bad_arguments():
  with pytest.raises(SystemExit):
    _load("compare").main(["--steps", "0"])


@pytest.mark.parametrize("name,argv", [
    ("flax_nnx", ["--steps", "60"]),
    ("flax_linen_trainstate", ["--steps", "60"]),
    ("param_groups", []),
    ("equinox_mlp", ["--steps", "60"]),
])
def test_training_examples_reduce_the_loss(name, argv):
  first, last = _load(name).main(argv)
  assert last < 0.5 * first


def test_custom_transform_example_converges():
  params = _load("custom_transform").main([])
  assert float(abs(params["w"]).max()) < 0.1


def test_lookahead_swats_example_reports_the_switch(capsys):
  results = _load("lookahead_swats").main(["--steps", "200"])
  out = capsys.readouterr().out
  assert "switched=True" in out
  assert all(v < 5.0 for v in results.values())


def test_lbfgs_fit_example_reduces_both_losses(capsys):
  pytest.importorskip("sklearn")
  results = _load("lbfgs_fit").main(["--steps", "5"])
  assert list(results) == ["logistic regression", "MLP 64-32-10"]
  for r in results.values():
    assert r["last"] < 0.5 * r["first"]
    # One evaluation at the start, then at least one per step.
    assert r["steps"] == 5 and r["evaluations"] >= 6
  assert "evaluations" in capsys.readouterr().out
