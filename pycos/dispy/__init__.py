"""dispycos: distributed computing over netpycos (see docs/dispycos.md)."""
