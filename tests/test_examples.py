"""Smoke tests: every example runs with tiny settings (examples/compare.py
with two of its optimizers: its recorded gallery run trains them all)."""

import importlib.util
import json
import math
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _load(name):
  spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_compare_prints_a_row_per_chosen_optimizer_in_order(capsys):
  # Two of the table, in an order that is not the table's: each row is one
  # more compiled training loop. Every entry of the table runs in the
  # gallery's recorded run (below) and each optimizer has its own tests.
  mod = _load("compare")
  # 4 x 500 examples: the shapes of the 2000 test examples, whose random
  # numbers then take no compile of their own.
  mod.main(["--steps", "4", "--batch", "500", "--optimizers", "adamax",
            "nesterov"])
  lines = capsys.readouterr().out.strip().splitlines()
  assert lines[0].split() == ["optimizer", "final", "loss", "test", "acc",
                              "time", "(s)"]
  rows = [l.split() for l in lines[1:]]
  assert [r[0] for r in rows] == ["adamax", "nesterov"]
  for r in rows:
    assert math.isfinite(float(r[1])) and 0 <= float(r[2]) <= 1, r


def test_compare_by_default_trains_every_optimizer_of_its_table():
  # The gallery's record of `python examples/compare.py` (its defaults),
  # which tests/test_docs.py checks was made by the current code.
  record = json.loads((ROOT / "docs" / "gallery" / "compare.json").read_text())
  assert record["command"] == "python examples/compare.py"
  rows = [l.split() for l in record["output"].strip().splitlines()[1:]]
  assert [r[0] for r in rows] == list(_load("compare").OPTIMIZERS)
  for r in rows:
    assert float(r[1]) < 0.2 and float(r[2]) > 0.9, r


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--optimizers", "adam",
                                                      "adamm"]])
def test_compare_rejects_bad_arguments(argv, capsys):
  with pytest.raises(SystemExit):
    _load("compare").main(argv)
  assert "error:" in capsys.readouterr().err


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


@pytest.mark.parametrize("steps", ["0", "-1"])
def test_lookahead_swats_example_rejects_steps_below_one(steps, capsys):
  with pytest.raises(SystemExit):
    _load("lookahead_swats").main(["--steps", steps])
  assert "--steps must be at least 1" in capsys.readouterr().err


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
