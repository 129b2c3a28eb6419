"""The test suite (a package, so that its conftest files have names of their own)."""
