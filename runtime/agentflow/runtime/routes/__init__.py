"""HTTP routes of the runtime, grouped by resource."""
