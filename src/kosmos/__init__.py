"""Kosmos: many Kubernetes clusters that behave like one."""
