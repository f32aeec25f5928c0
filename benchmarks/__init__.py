"""pqref benchmarks: see README.md; run with `PYTHONPATH=. python3 -m benchmarks.run`."""
