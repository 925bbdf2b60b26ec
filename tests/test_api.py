"""The public namespace: flat, explicit, documented."""

import inspect

import common
import gradtx


def test_all_lists_exactly_the_public_names():
  public = {n for n in dir(gradtx) if not n.startswith("_")}
  modules = {n for n in public if inspect.ismodule(getattr(gradtx, n))}
  assert set(gradtx.__all__) == public - modules
  assert list(gradtx.__all__) == sorted(gradtx.__all__,
                                        key=lambda n: (n[0].islower(), n))


def test_every_public_name_is_documented():
  undocumented = [n for n in gradtx.__all__
                  if not (inspect.getdoc(getattr(gradtx, n)) or "").strip()]
  assert not undocumented, f"no docstring: {undocumented}"


def test_every_named_optimizer_docstring_has_formula_paper_and_example():
  named = ["sgd", "sgdw", "adagrad", "adadelta", "rmsprop", "rprop", "adam",
           "adamw", "adamax", "nadam", "nadamw", "noisy_sgd", "amsgrad",
           "radam", "adabound", "amsbound", "ranger", "swats", "lookahead",
           "lbfgs"]
  for name in named:
    doc = inspect.getdoc(getattr(gradtx, name))
    assert ".. math::" in doc or ":math:" in doc, f"{name}: no formula"
    assert "Example:" in doc and ">>>" in doc, f"{name}: no example"
    assert any(str(y) in doc for y in range(1951, 2026)), f"{name}: no paper"


def test_no_optax_import_at_run_time():
  code = ("import sys, gradtx; gradtx.adam(1e-3); "
          "print('optax' in sys.modules)")
  assert common.python_prints(code) == "False"
