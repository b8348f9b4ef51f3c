"""Compatibility: variants live in :mod:`pfnlab.model.variant` (public via :mod:`pfnlab`)."""

from pfnlab.model.variant import VARIANTS, Variant, get_variant, register, variant

__all__ = ["VARIANTS", "Variant", "get_variant", "register", "variant"]
