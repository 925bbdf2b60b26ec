"""Shared test setup.

float64 is enabled for the whole suite: the per-step reference tests compare
in float64 at relative 1e-9. Tests of other dtypes ask for them explicitly.
Rank promotion is strict so that an accidental broadcast in a transform
fails loudly instead of silently changing shapes.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
