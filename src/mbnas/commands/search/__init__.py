"""`mbnas search`: the loop, its settings, resume, costs, fidelity and repeats."""
