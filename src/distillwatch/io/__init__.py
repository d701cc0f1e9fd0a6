"""Readers for exchange files."""

from distillwatch.io.exchange_files import (
    find_exchange_files,
    is_json_document,
    iter_exchanges,
    iter_lines,
)

__all__ = ["find_exchange_files", "is_json_document", "iter_exchanges", "iter_lines"]
