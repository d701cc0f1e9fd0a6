"""distillwatch: find and stop distillation attacks on LLM APIs.

The package mirrors the data path: ingest -> fingerprint -> profile -> link -> score -> report,
with the traffic simulator and evaluator (``distillwatch.simulate``, ``distillwatch.evaluate``)
beside it. Heavy optional engines are imported lazily by the modules that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
