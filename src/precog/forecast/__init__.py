"""Forecasting: Elo, in-game win probability, historical matrices, ensembles, model registry, evaluation.

The trading side talks to `precog.forecast.interface` only: probabilities leave this package as Decimal.
"""
