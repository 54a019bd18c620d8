"""Damaged and runaway submissions for the hardening tests (see harness.py)."""
