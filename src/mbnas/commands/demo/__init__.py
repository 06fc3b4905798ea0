"""`mbnas demo`: phantom data and a short search on the CPU."""
