"""The adversarial suite: hostile upstreams and clients, fuzzers, kill -9 (issue 17)."""
