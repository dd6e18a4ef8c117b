"""Multi-cluster services: the MCS API controller (exports, imports, derived objects)."""
