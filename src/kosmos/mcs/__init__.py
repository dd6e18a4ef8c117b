"""Multi-cluster services (the MCS API): export/import controllers, DNS, endpoint probing."""
