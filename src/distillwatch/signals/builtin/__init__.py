"""The built-in signals, one module per kind of evidence."""
