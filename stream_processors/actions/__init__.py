"""Improvement actions: recorded as ``action.recorded`` events, measured by their before/after effect."""
