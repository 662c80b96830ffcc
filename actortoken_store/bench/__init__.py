"""Benchmarks of the store against raw psycopg: ``python -m actortoken_store.bench``.

The bench creates its own database, loads synthetic Clerk-shaped tokens, runs each store
method and its raw psycopg reference in the same process with alternating repeats, and
prints medians, p50 and p99. ``--json PATH`` writes the same numbers. It is a script, not a
test: nothing here asserts a speed.
"""
