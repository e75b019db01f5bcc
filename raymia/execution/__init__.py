"""The only package that imports Ray (except `inprocess`, the executor for unit tests)."""
