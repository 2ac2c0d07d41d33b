"""Patrols and inspection rounds (巡更、巡检): checkpoints resolved from taps.

Taps are ingested like readings (see :mod:`gateway.sensors.checkpoint`); the rounds,
schedules and inspection plans built on them live here.
"""
