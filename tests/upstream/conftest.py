"""``--upstream-all``: run every optax test module, not only the CI ones."""


def pytest_addoption(parser):
  parser.addoption(
      "--upstream-all", action="store_true", default=False,
      help="tests/upstream: run all of optax's test modules (several "
      "minutes), not only the fast ones.")
