"""Sinks: where events and the checkpoint go, together."""
