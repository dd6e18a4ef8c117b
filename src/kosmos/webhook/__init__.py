"""Admission webhooks for Kosmos resources."""
