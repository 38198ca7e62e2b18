"""The VPI network and the Gaussian algebra it is built on."""

from vpi.model.backbone import Features, build_backbone
from vpi.model.gaussian import aggregate_priors, kl_divergence, masked_average_pool
from vpi.model.vpi import VPIModel

__all__ = [
    "Features",
    "VPIModel",
    "aggregate_priors",
    "build_backbone",
    "kl_divergence",
    "masked_average_pool",
]
