from distillwatch.simulate.tactics.registry import TACTICS, get_tactic

__all__ = ["TACTICS", "get_tactic"]
