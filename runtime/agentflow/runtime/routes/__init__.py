"""HTTP routes of the runtime, grouped by resource."""

__all__: list[str] = []
