"""Benchmarks for Modelyard: ratios against peers measured in the same run, never timed tests."""
