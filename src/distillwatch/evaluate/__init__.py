"""Scoring scans against a world's ground truth."""

from distillwatch.evaluate.labels import WorldLabels, load_labels
from distillwatch.evaluate.metrics import Evaluation, evaluate
from distillwatch.evaluate.scan_output import ScanOutput, load_scan_output

__all__ = ["Evaluation", "ScanOutput", "WorldLabels", "evaluate", "load_labels",
           "load_scan_output"]
