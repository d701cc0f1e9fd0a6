"""Readers for exchange files."""

from distillwatch.io.exchange_files import find_exchange_files, iter_exchanges

__all__ = ["find_exchange_files", "iter_exchanges"]
