"""Backtesting: historical or recorded data replayed through the live engine on a simulated clock."""
