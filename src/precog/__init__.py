"""Precog: automated trading for prediction-market event contracts."""

__version__ = "0.1.0"
