"""Facility-monitoring and field-inspection gateway (物业设施监测与巡检网关)."""

__version__ = "0.1.0"
