"""Sharpness-aware training with per-unit radii (AdaSAP)."""
from .adaptive import UnitIndex, adaptive_perturbation, normalised_scores, unit_radii

__all__ = ['UnitIndex', 'adaptive_perturbation', 'normalised_scores', 'unit_radii']
