"""The kosmos.io API: CRD models, well-known names and labels. Pure data, no I/O."""
