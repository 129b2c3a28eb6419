"""Tests of the sklimg command, one file per command."""
