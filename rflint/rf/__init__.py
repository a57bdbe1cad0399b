"""Receptive-field algebra on the IR: pure math, no torch."""
