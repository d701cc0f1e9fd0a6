"""Writing scan results in the output contract (shared/schema/scan-output.md)."""
