"""gradtx: composable, pure gradient transformations for JAX.

The contract is stated once, in :mod:`gradtx._src.base`:
``GradientTransformation(init, update)`` with
``update(updates, state, params=None, **extra_args) -> (updates, state)``,
structurally the same as optax's.
"""

from gradtx._src.accumulation import EmaParamsState
from gradtx._src.accumulation import EmaState
from gradtx._src.accumulation import MultiSteps
from gradtx._src.accumulation import MultiStepsState
from gradtx._src.accumulation import TraceState
from gradtx._src.accumulation import ema
from gradtx._src.accumulation import ema_params
from gradtx._src.accumulation import skip_large_updates
from gradtx._src.accumulation import skip_not_finite
from gradtx._src.accumulation import trace
from gradtx._src.adam import AmsgradMaxState
from gradtx._src.adam import ScaleByAdamState
from gradtx._src.adam import amsgrad_max
from gradtx._src.adam import bound_lr
from gradtx._src.adam import rectify
from gradtx._src.adam import scale_by_adam
from gradtx._src.adam import scale_by_adamax
from gradtx._src.adaptive import ScaleByAdaDeltaState
from gradtx._src.adaptive import ScaleByRmsState
from gradtx._src.adaptive import ScaleByRpropState
from gradtx._src.adaptive import ScaleByRssState
from gradtx._src.adaptive import ScaleByStddevState
from gradtx._src.adaptive import scale_by_adadelta
from gradtx._src.adaptive import scale_by_rms
from gradtx._src.adaptive import scale_by_rprop
from gradtx._src.adaptive import scale_by_rss
from gradtx._src.adaptive import scale_by_stddev
from gradtx._src.adding import AddDecayedWeightsState
from gradtx._src.adding import AddNoiseState
from gradtx._src.adding import add_decayed_weights
from gradtx._src.adding import add_noise
from gradtx._src.alias import adabound
from gradtx._src.alias import adadelta
from gradtx._src.alias import adagrad
from gradtx._src.alias import adam
from gradtx._src.alias import adamax
from gradtx._src.alias import adamw
from gradtx._src.alias import amsbound
from gradtx._src.alias import amsgrad
from gradtx._src.alias import nadam
from gradtx._src.alias import nadamw
from gradtx._src.alias import noisy_sgd
from gradtx._src.alias import radam
from gradtx._src.alias import ranger
from gradtx._src.alias import rmsprop
from gradtx._src.alias import rprop
from gradtx._src.alias import sgd
from gradtx._src.alias import sgdw
from gradtx._src.base import AdamMoments
from gradtx._src.base import EmptyState
from gradtx._src.base import GradientTransformation
from gradtx._src.base import GradientTransformationExtraArgs
from gradtx._src.base import MomentConsumer
from gradtx._src.base import MomentEmitter
from gradtx._src.base import MomentRelay
from gradtx._src.base import apply_updates
from gradtx._src.base import call_update
from gradtx._src.base import identity
from gradtx._src.base import stateless
from gradtx._src.base import stateless_with_tree_map
from gradtx._src.base import takes_extra_args
from gradtx._src.base import with_extra_args_support
from gradtx._src.clipping import clip
from gradtx._src.clipping import clip_by_global_norm
from gradtx._src.combining import PartitionState
from gradtx._src.combining import chain
from gradtx._src.combining import named_chain
from gradtx._src.combining import partition
from gradtx._src.conditionality import ApplyIfFiniteState
from gradtx._src.conditionality import apply_if_finite
from gradtx._src.inject import Hyperparams
from gradtx._src.inject import InjectHyperparamsState
from gradtx._src.inject import InjectStatefulHyperparamsState
from gradtx._src.inject import inject_hyperparams
from gradtx._src.layouts import flatten
from gradtx._src.linesearch import BacktrackingLinesearchInfo
from gradtx._src.linesearch import ScaleByBacktrackingLinesearchState
from gradtx._src.linesearch import ScaleByZoomLinesearchState
from gradtx._src.linesearch import ZoomLinesearchInfo
from gradtx._src.linesearch import scale_by_backtracking_linesearch
from gradtx._src.linesearch import scale_by_zoom_linesearch
from gradtx._src.linesearch import value_and_grad_from_state
from gradtx._src.lookahead import LookaheadParams
from gradtx._src.lookahead import LookaheadState
from gradtx._src.lookahead import lookahead
from gradtx._src.lr_find import LRFindResult
from gradtx._src.lr_find import lr_find
from gradtx._src.masking import MaskedNode
from gradtx._src.masking import MaskedState
from gradtx._src.masking import freeze
from gradtx._src.masking import masked
from gradtx._src.numerics import safe_increment
from gradtx._src.scaling import ScaleByScheduleState
from gradtx._src.scaling import scale
from gradtx._src.scaling import scale_by_learning_rate
from gradtx._src.scaling import scale_by_schedule
from gradtx._src.schedules import constant_schedule
from gradtx._src.schedules import cosine_decay_schedule
from gradtx._src.schedules import cosine_onecycle_schedule
from gradtx._src.schedules import cosine_warm_restarts_schedule
from gradtx._src.schedules import cyclic_schedule
from gradtx._src.schedules import exponential_decay
from gradtx._src.schedules import inverse_sqrt_decay
from gradtx._src.schedules import inverse_time_decay
from gradtx._src.schedules import join_schedules
from gradtx._src.schedules import linear_onecycle_schedule
from gradtx._src.schedules import linear_schedule
from gradtx._src.schedules import piecewise_constant_schedule
from gradtx._src.schedules import polynomial_schedule
from gradtx._src.schedules import sgdr_schedule
from gradtx._src.schedules import warmup_cosine_decay_schedule
from gradtx._src.schedules import warmup_exponential_decay_schedule
from gradtx._src.second_order.bfgs import ScaleByBFGSState
from gradtx._src.second_order.bfgs import bfgs
from gradtx._src.second_order.bfgs import scale_by_bfgs
from gradtx._src.second_order.gauss_newton import ScaleByGaussNewtonState
from gradtx._src.second_order.gauss_newton import gauss_newton
from gradtx._src.second_order.hessian_diag import ScaleByHessianDiagState
from gradtx._src.second_order.hessian_diag import scale_by_hessian_diag
from gradtx._src.second_order.lbfgs import ScaleByLBFGSState
from gradtx._src.second_order.lbfgs import lbfgs
from gradtx._src.second_order.lbfgs import scale_by_lbfgs
from gradtx._src.second_order.least_squares import LeastSquaresInfo
from gradtx._src.second_order.least_squares import (
    ScaleByLevenbergMarquardtState)
from gradtx._src.second_order.least_squares import levenberg_marquardt
from gradtx._src.second_order.minimize import LeastSquaresResult
from gradtx._src.second_order.minimize import MinimizeResult
from gradtx._src.second_order.minimize import least_squares
from gradtx._src.second_order.minimize import minimize
from gradtx._src.second_order.natural_gradient import (
    ScaleByNaturalGradientState)
from gradtx._src.second_order.natural_gradient import natural_gradient
from gradtx._src.second_order.natural_gradient import scale_by_natural_gradient
from gradtx._src.second_order.newton import ScaleByNewtonCGState
from gradtx._src.second_order.newton import ScaleByNewtonState
from gradtx._src.second_order.newton import newton
from gradtx._src.second_order.newton import newton_cg
from gradtx._src.second_order.newton import scale_by_newton
from gradtx._src.second_order.newton import scale_by_newton_cg
from gradtx._src.second_order.vsgd import ScaleByVSGDState
from gradtx._src.second_order.vsgd import scale_by_vsgd
from gradtx._src.second_order.vsgd import vsgd
from gradtx._src.swats import SwatsState
from gradtx._src.swats import swats
from gradtx._src.tree_utils import tree_cast
from gradtx._src.tree_utils import tree_full_like
from gradtx._src.tree_utils import tree_global_norm
from gradtx._src.tree_utils import tree_zeros_like

__version__ = "0.1.0"

__all__ = (
    "AdamMoments",
    "AddDecayedWeightsState",
    "AddNoiseState",
    "AmsgradMaxState",
    "ApplyIfFiniteState",
    "BacktrackingLinesearchInfo",
    "EmaParamsState",
    "EmaState",
    "EmptyState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "Hyperparams",
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "LRFindResult",
    "LeastSquaresInfo",
    "LeastSquaresResult",
    "LookaheadParams",
    "LookaheadState",
    "MaskedNode",
    "MaskedState",
    "MinimizeResult",
    "MomentConsumer",
    "MomentEmitter",
    "MomentRelay",
    "MultiSteps",
    "MultiStepsState",
    "PartitionState",
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByBFGSState",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByGaussNewtonState",
    "ScaleByHessianDiagState",
    "ScaleByLBFGSState",
    "ScaleByLevenbergMarquardtState",
    "ScaleByNaturalGradientState",
    "ScaleByNewtonCGState",
    "ScaleByNewtonState",
    "ScaleByRmsState",
    "ScaleByRpropState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "ScaleByStddevState",
    "ScaleByVSGDState",
    "ScaleByZoomLinesearchState",
    "SwatsState",
    "TraceState",
    "ZoomLinesearchInfo",
    "adabound",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "add_decayed_weights",
    "add_noise",
    "amsbound",
    "amsgrad",
    "amsgrad_max",
    "apply_if_finite",
    "apply_updates",
    "bfgs",
    "bound_lr",
    "call_update",
    "chain",
    "clip",
    "clip_by_global_norm",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "cosine_warm_restarts_schedule",
    "cyclic_schedule",
    "ema",
    "ema_params",
    "exponential_decay",
    "flatten",
    "freeze",
    "gauss_newton",
    "identity",
    "inject_hyperparams",
    "inverse_sqrt_decay",
    "inverse_time_decay",
    "join_schedules",
    "lbfgs",
    "least_squares",
    "levenberg_marquardt",
    "linear_onecycle_schedule",
    "linear_schedule",
    "lookahead",
    "lr_find",
    "masked",
    "minimize",
    "nadam",
    "nadamw",
    "named_chain",
    "natural_gradient",
    "newton",
    "newton_cg",
    "noisy_sgd",
    "partition",
    "piecewise_constant_schedule",
    "polynomial_schedule",
    "radam",
    "ranger",
    "rectify",
    "rmsprop",
    "rprop",
    "safe_increment",
    "scale",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_backtracking_linesearch",
    "scale_by_bfgs",
    "scale_by_hessian_diag",
    "scale_by_lbfgs",
    "scale_by_learning_rate",
    "scale_by_natural_gradient",
    "scale_by_newton",
    "scale_by_newton_cg",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_stddev",
    "scale_by_vsgd",
    "scale_by_zoom_linesearch",
    "sgd",
    "sgdr_schedule",
    "sgdw",
    "skip_large_updates",
    "skip_not_finite",
    "stateless",
    "stateless_with_tree_map",
    "swats",
    "takes_extra_args",
    "trace",
    "tree_cast",
    "tree_full_like",
    "tree_global_norm",
    "tree_zeros_like",
    "value_and_grad_from_state",
    "vsgd",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "with_extra_args_support",
)
