"""Linking accounts: edges from shared evidence, then clusters."""
