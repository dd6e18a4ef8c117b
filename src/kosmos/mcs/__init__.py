"""Multi-cluster services: the MCS API controller, its DNS and the endpoint prober."""
