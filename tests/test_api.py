"""The public namespace: flat, explicit, documented."""

import inspect
import pathlib
import re

import jax.numpy as jnp
import numpy as np
import pytest

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


def test_optax_spellings_are_accepted():
  import optax
  tree = {"w": jnp.ones(2)}
  for kwargs in [dict(fill_value=3.0), dict(value=3.0)]:
    np.testing.assert_array_equal(
        gradtx.tree_full_like(tree, **kwargs)["w"],
        optax.tree_utils.tree_full_like(tree, 3.0)["w"])
  with pytest.raises(TypeError, match="tree_full_like: give the fill value "
                     "once"):
    gradtx.tree_full_like(tree, 1.0, value=2.0)
  # scale_by_learning_rate() is the identity, as optax's default None.
  u, _ = gradtx.scale_by_learning_rate().update(tree, gradtx.EmptyState())
  np.testing.assert_array_equal(u["w"], tree["w"])
  # add_noise / noisy_sgd take optax's seed= (an int seed) as well as key=.
  for make in [lambda **kw: gradtx.add_noise(0.1, 0.5, **kw),
               lambda **kw: gradtx.noisy_sgd(0.1, **kw)]:
    a, b = make(seed=3), make(key=3)
    ua, _ = a.update(tree, a.init(tree))
    ub, _ = b.update(tree, b.init(tree))
    np.testing.assert_array_equal(ua["w"], ub["w"])
    with pytest.raises(ValueError, match="add_noise: got both key=3 and "
                       "seed=3; pass one of them"):
      make(key=3, seed=3)
  # The chain is optax's ExtraArgs type; a plain transform can be wrapped.
  assert isinstance(gradtx.chain(gradtx.scale(1.0)),
                    gradtx.GradientTransformationExtraArgs)
  plain = gradtx.GradientTransformation(
      lambda p: gradtx.EmptyState(), lambda u, s, p=None: (u, s))
  wrapped = gradtx.with_extra_args_support(plain)
  assert not isinstance(plain, gradtx.GradientTransformationExtraArgs)
  assert gradtx.with_extra_args_support(wrapped) is wrapped
  wrapped.update(tree, gradtx.EmptyState(), unused=1)


def _package_sources():
  root = pathlib.Path(gradtx.__file__).parent
  return {p.relative_to(root).as_posix(): p.read_text()
          for p in root.rglob("*.py")}


def test_signatures_are_read_in_one_place():
  """The one forwarding rule reads signatures through ``base.signature``;
  nothing else in the package calls ``inspect.signature``."""
  readers = [name for name, text in _package_sources().items()
             if "inspect.signature(" in text]
  assert readers == ["_src/base.py"], readers


def test_no_function_attribute_carries_a_protocol():
  """The only attribute set on an ``update`` function is the documented
  ``gradtx_name`` label (docs/contract.md); composition is typed."""
  attrs = set()
  for text in _package_sources().values():
    attrs |= set(re.findall(r"\b(?:update_fn|update|fn)\.(\w+)\s*=[^=]", text))
  assert attrs <= {"gradtx_name"}, attrs
