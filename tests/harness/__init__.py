"""Test harness: real PostgreSQL servers (primary + streaming replicas) for the test suite."""
