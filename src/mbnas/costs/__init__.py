"""Cost figures of a network: parameters, MACs, memory and latency."""
