"""Reliability tooling: fault tallies for the report, a secret scanner, a fault-injecting TCP proxy."""
