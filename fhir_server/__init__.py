"""FHIR R4 interface (``/fhir/``): resources, HTTP conventions and views. See docs/api.md."""
