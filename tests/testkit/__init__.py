"""Test support: throw-away project copies and servers started on 127.0.0.1 (tests, benchmarks)."""
