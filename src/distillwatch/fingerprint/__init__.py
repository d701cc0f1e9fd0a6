"""Per-exchange features computed once at ingest; after this step no raw text is needed."""
