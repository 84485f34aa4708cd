"""Offhours: keep your working hours in Slack without leaving anyone hanging."""
