"""Example backends for the conformance kit."""
