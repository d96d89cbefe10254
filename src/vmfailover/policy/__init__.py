"""Pure rules: retention, network mapping, re-IP, the start order and its sequencer, point choice
and the fencing decision.

Nothing here performs I/O or reads a clock: every function is given the facts (an inventory, the
recovery points, the current instant) and answers deterministically, so each rule can be tested
with hypothesis and replayed exactly. This layer imports only the model.
"""
