"""Tests for recsys.data: loading, validating and indexing the input layout.

``tiny`` holds the six-member tables whose answers are worked out by hand; the test modules
follow the package: files (``test_tables``), checks and messages (``test_validation``),
building and using a Network (``test_network``).
"""
