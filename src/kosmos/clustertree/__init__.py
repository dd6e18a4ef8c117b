"""ClusterTree: member clusters as leaf nodes of the host; pods and dependencies synced."""
