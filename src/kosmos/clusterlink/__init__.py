"""ClusterLink: cross-cluster pod and service networking (planner, agent, elector)."""
