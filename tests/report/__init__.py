"""Tests for distillwatch.report."""
