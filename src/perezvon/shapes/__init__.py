"""JSON shapes shared by every layer above services: rows → resources, and validated input models."""
