"""Simulated worlds for the demo and the tests: NFL games, a market maker, and the models that watch them."""
