"""Benchmarks, each a script printing one table (README, "Benchmarks")."""
