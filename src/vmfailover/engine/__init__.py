"""Execution: the runner, its events and results, readiness checks and RTO simulation.

The engine drives the sans-IO sequencer against a backend found through the protocol (never a
particular implementation), on the runner's clock.
"""
