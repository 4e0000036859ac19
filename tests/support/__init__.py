"""Test support: real protocol peers and shared fixtures' helpers."""
