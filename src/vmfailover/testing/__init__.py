"""Test support that ships with vmfailover: the lab, the backend contract suite, simulators.

Products that embed vmfailover use these to test their own integration against the same peers we
test against.
"""
