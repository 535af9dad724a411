"""The network layer of pycos (netpycos)."""
