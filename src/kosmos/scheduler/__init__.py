"""kosmos-scheduler extender: distribution policies, per-cluster placement, true capacity."""
