"""Failover plans: what to fail over, from which point, with which mapping, order and options.

The layer between the pure rules (:mod:`vmfailover.policy`) and execution
(:mod:`vmfailover.engine`): a plan is validated against an inventory and compiled into the per-VM
steps the runner executes. It may import the model, the policy layer and the backend protocol.
"""
